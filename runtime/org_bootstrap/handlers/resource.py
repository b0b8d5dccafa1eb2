"""What every custom resource handler shares: reading the event and naming what it owns.

The handlers run under the CDK Provider framework: they return ``PhysicalResourceId`` and
``Data`` or raise, and the framework answers CloudFormation either way.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
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


# A resource whose properties would make a template or a request too large (``docs/limits.md``)
# carries them in an object of the CDK bootstrap bucket instead, named by its content hash
# (``constructs.org_provider.OrgProvider.custom_resource``): this property says where.
PROPERTIES_OBJECT = "PropertiesObject"
# The objects' file extension, so that a handler's role reads these objects of the bucket and no other.
PROPERTIES_OBJECT_EXTENSION = ".cr-properties"

ObjectReader = Callable[[str, str], bytes]  # (bucket, key) -> the object's content


class PropertiesObjectError(RuntimeError):
    """The object that holds a resource's properties cannot be read or is not the one named."""


def properties(event: dict[str, Any], *, read: ObjectReader | None = None) -> dict[str, Any]:
    """The request's properties (``ServiceToken`` aside), those kept in an object included."""
    return expanded(raw_properties(event), read=read)


def old_properties(event: dict[str, Any], *, read: ObjectReader | None = None) -> dict[str, Any]:
    return expanded(raw_properties(event, "OldResourceProperties"), read=read)


def raw_properties(event: dict[str, Any], key: str = "ResourceProperties") -> dict[str, Any]:
    """The properties as CloudFormation sent them: an object's location, not its content."""
    return {name: value for name, value in event.get(key, {}).items() if name != "ServiceToken"}


def expanded(props: Mapping[str, Any], *, read: ObjectReader | None = None) -> dict[str, Any]:
    """``props`` with the properties kept in an object (``PropertiesObject``: Bucket, Key, Sha256)
    read from it and checked against the hash the template recorded; ``read`` reads an object (by
    default from S3, as the handlers do)."""
    found = dict(props)
    location = found.pop(PROPERTIES_OBJECT, None)
    if location is None:
        return found
    # Deployed, the bucket is a name; the local plan reads the template's (a reference) by its key.
    if not isinstance(location, Mapping) or not all(isinstance(location.get(k), str) for k in ("Key", "Sha256")):
        raise PropertiesObjectError(f"{PROPERTIES_OBJECT}: must be an object of Bucket, Key and Sha256")
    bucket, key, digest = str(location["Bucket"]), str(location["Key"]), str(location["Sha256"])
    try:
        content = (read or _read_s3)(bucket, key)
    except (ClientError, BotoCoreError, OSError) as error:
        raise PropertiesObjectError(
            f"{PROPERTIES_OBJECT}: cannot read s3://{bucket}/{key} ({error}); the deploy that named it uploaded it "
            "to the CDK bootstrap bucket (an object removed since, by cdk gc for instance, is uploaded again by "
            "deploying that config again)"
        ) from error
    if hashlib.sha256(content).hexdigest() != digest:
        raise PropertiesObjectError(f"{PROPERTIES_OBJECT}: s3://{bucket}/{key} is not the object the template names")
    stored = json.loads(content)
    if not isinstance(stored, dict):
        raise PropertiesObjectError(f"{PROPERTIES_OBJECT}: s3://{bucket}/{key} does not hold an object of properties")
    return {**stored, **found}


def _read_s3(bucket: str, key: str) -> bytes:
    return bytes(clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


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
    shown = {key: ("<redacted>" if key in redacted else value) for key, value in raw_properties(event).items()}
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
