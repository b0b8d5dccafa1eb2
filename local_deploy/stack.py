"""What CloudFormation remembers about a deployed stack, kept in the state file between runs."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
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

    def interrupted(self) -> None:
        """The run doing this stack's operation was stopped (Ctrl-C): the operation ends where
        CloudFormation's would end on a failure there, with what was done kept, as after
        ``--no-rollback``; a stopped rollback is a failed one, and the stack can then only be destroyed."""
        if not self.status.endswith("_IN_PROGRESS") or self.status == "REVIEW_IN_PROGRESS":
            return
        operation = self.status.removesuffix("_IN_PROGRESS").removesuffix("_COMPLETE_CLEANUP")
        self.status = f"{operation}_FAILED"
        self.status_reason = "interrupted (Ctrl-C) during the operation"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackState:
        resources = {lid: ResourceState(**resource) for lid, resource in data.get("resources", {}).items()}
        return cls(**{**data, "resources": resources})
