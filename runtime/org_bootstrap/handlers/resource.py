"""What every custom resource handler shares: reading the event and naming what it owns.

The handlers run under the CDK Provider framework: they return ``PhysicalResourceId`` and
``Data`` or raise, and the framework answers CloudFormation either way.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from org_bootstrap.aws import clients

LOG = logging.getLogger(__name__)

# The stack's status while CloudFormation rolls a failed deploy back: a Delete then removes what
# the failed deploy created, an Update puts back what it changed.
ROLLING_BACK = ("ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")

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


def rolling_back(event: dict[str, Any]) -> bool:
    """Whether CloudFormation sends this request to roll back a failed deploy. The request does not
    say; the stack's status does (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-describing-stacks.html).
    When it cannot be read, False: the request is then handled as any other."""
    try:
        stacks = clients.client("cloudformation").describe_stacks(StackName=event["StackId"])["Stacks"]
    except (ClientError, BotoCoreError, KeyError) as error:
        LOG.warning("cannot read the stack's status, so not treated as a rollback: %s", error)
        return False
    status = str(stacks[0].get("StackStatus", "")) if stacks else ""
    if status in ROLLING_BACK:
        LOG.info("the stack is %s: this %s undoes the failed deploy", status, event.get("RequestType"))
    return status in ROLLING_BACK
