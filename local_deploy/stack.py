"""What CloudFormation remembers about a deployed stack, kept in a JSON file between runs."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ResourceState:
    type: str
    physical_id: str
    # Custom resources: the properties as CloudFormation sent them (the next Update's
    # OldResourceProperties, a Delete's ResourceProperties). Functions, state machines, buckets and
    # tables: resolved, as the local deploy uses them. Anything else is recorded, not simulated.
    properties: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)  # Fn::GetAtt: a custom resource's Data, or ARNs
    depends_on: list[str] = field(default_factory=list)
    retain: bool = False  # DeletionPolicy: Retain
    definition: str = ""  # the template's definition, to tell an update of a recorded-only resource


@dataclass
class StackState:
    name: str
    account: str
    region: str
    partition: str = "aws"
    stack_id: str = ""
    status: str = "REVIEW_IN_PROGRESS"  # CloudFormation's status of a stack that was never deployed
    status_reason: str = ""
    resources: dict[str, ResourceState] = field(default_factory=dict)
    # The template of the last complete deploy (the day-two commands read its rules, queues and
    # schedule), and its Lambda layers' files by layer logical ID (what Lambda mounts at /opt).
    template: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.stack_id:
            self.stack_id = (
                f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/{self.name}/{uuid.uuid4()}"
            )

    @property
    def deployed(self) -> bool:
        return bool(self.resources)

    def new_stack_id(self) -> None:
        """A stack of the same name created again (the previous one was deleted)."""
        self.stack_id = ""
        self.__post_init__()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackState:
        resources = {lid: ResourceState(**resource) for lid, resource in data.get("resources", {}).items()}
        return cls(**{**data, "resources": resources})

    @classmethod
    def load(cls, path: Path) -> StackState | None:
        if not path.exists():
            return None
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def save(self, path: Path) -> None:
        write_json(path, self.to_dict())


def write_json(path: Path, data: Any) -> None:
    """Write whole or not at all: a run stopped half-way never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, path)
