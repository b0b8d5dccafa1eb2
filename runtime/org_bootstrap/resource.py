"""What every custom resource handler shares: reading the event and naming what it owns.

The handlers run under the CDK Provider framework: they return ``PhysicalResourceId`` and
``Data`` or raise, and the framework answers CloudFormation either way.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger(__name__)

REMOVAL_POLICIES = ("retain", "undo")

# Whether the stack made a change or found it already in place; recorded in the physical ID so
# that a Delete undoes only what the stack itself did.
CREATED = "created"
ADOPTED = "adopted"


def properties(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.get("ResourceProperties", {}).items() if key != "ServiceToken"}


def old_properties(event: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in event.get("OldResourceProperties", {}).items() if key != "ServiceToken"}


@dataclass(frozen=True)
class Ownership:
    """A physical resource ID of the form ``org-bootstrap/<kind>/<key>.../<created|adopted>``."""

    kind: str
    key: tuple[str, ...]
    origin: str

    @property
    def physical_id(self) -> str:
        return "/".join(("org-bootstrap", self.kind, *self.key, self.origin))

    @classmethod
    def parse(cls, physical_id: str, kind: str) -> Ownership | None:
        """Read a physical ID this handler wrote; None for anything else (a failed Create)."""
        parts = physical_id.split("/")
        if len(parts) < 4 or parts[0] != "org-bootstrap" or parts[1] != kind or parts[-1] not in (CREATED, ADOPTED):
            return None
        return cls(kind, tuple(parts[2:-1]), parts[-1])


def log_event(event: dict[str, Any], *, redacted: tuple[str, ...] = ()) -> None:
    shown = {key: ("<redacted>" if key in redacted else value) for key, value in properties(event).items()}
    LOG.info(
        json.dumps(
            {
                "request": event.get("RequestType"),
                "logical_id": event.get("LogicalResourceId"),
                "physical_id": event.get("PhysicalResourceId"),
                "properties": shown,
            }
        )
    )
