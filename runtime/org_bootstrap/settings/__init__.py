"""Account settings as adapters: what each one reads, compares and writes, and nothing else.

A :class:`Setting` says, for one item of an account's setting (a contact type, the primary
contact, a Region): how to read it, which action makes it what it should be, how to write it, and
which operations (quotas) and IAM actions that takes. Everything else (planning, jobs, pacing,
reports, restore snapshots, drift, account events, the plan view) is written once in the engine
and reaches a setting only through these few methods.

Items are addressed by a key: ``<setting>/<item>`` (``primary_contact/PRIMARY``,
``regions/ap-east-1``); alternate contacts keep their bare contact types (``BILLING``) as keys,
which is what their jobs and snapshots have always stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from org_bootstrap.contact_spec import DELETE
from org_bootstrap.targeting import SettingSpec

__all__ = ["DELETE", "RESTORE", "AccountCalls", "NotYet", "Refused", "Setting"]

RESTORE = "RESTORE"  # put back what was there before the stack first changed it


class NotYet(Exception):
    """The item cannot be worked on yet (no free request slot before the deadline, or an opposite
    request still in progress): not a failure, the account is retried later in the job."""


class Refused(Exception):
    """No write can make the item what it should be (a rule of the service that depends on what the
    account has now, known only once it is read): the account fails with this reason, naming the
    field and the rule, and nothing is written."""


class AccountCalls(Protocol):
    """The Account Management calls as the engine makes them (org_bootstrap.reconcile.AccountApi):
    paced per operation, throttles retried, and addressed from the calling account (its own
    account without ``AccountId``)."""

    own_account_id: str
    deadline: float | None
    region_requests: Any

    def call(self, operation: str, account_id: str, **parameters: Any) -> dict[str, Any]: ...


class Setting:
    """One account setting. Subclasses set the class attributes and the three methods."""

    name: ClassVar[str]  # the config section, and the prefix of the setting's keys
    spec_type: ClassVar[type[SettingSpec[Any]]]
    read_operations: ClassVar[tuple[str, ...]]
    write_operations: ClassVar[tuple[str, ...]]
    # What RESTORE puts back where the account had nothing before the stack: None leaves the item
    # as it is (nothing can be deleted), DELETE deletes it.
    absent: ClassVar[str | None] = None
    # True when a write only starts a change that AWS finishes later (Regions: ENABLING, DISABLING):
    # a caller that cannot follow it (the account-event handler) reports it as in progress.
    asynchronous: ClassVar[bool] = False

    @property
    def resource_property(self) -> str:
        """The custom resource property that carries the setting's spec (``PrimaryContactSpec``)."""
        return "".join(part.title() for part in self.name.split("_")) + "Spec"

    @property
    def read_actions(self) -> tuple[str, ...]:
        return tuple(f"account:{operation}" for operation in self.read_operations)

    @property
    def write_actions(self) -> tuple[str, ...]:
        return tuple(f"account:{operation}" for operation in self.write_operations)

    def key(self, item: str) -> str:
        return f"{self.name}/{item}"

    def keyed(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A spec's ``desired`` values (item -> target) as engine targets (key -> target)."""
        return {self.key(item): target for item, target in values.items()}

    def read(self, api: AccountCalls, account_id: str, items: Sequence[str]) -> dict[str, Any]:
        """What each item is now (None: there is none), in as few calls as the API allows."""
        raise NotImplementedError

    def action(self, current: Any, wanted: Any) -> str | None:
        """The write that makes ``current`` what it should be (``wanted``), or None when in sync;
        raises :class:`Refused` when the service would refuse every such write."""
        raise NotImplementedError

    def write(self, api: AccountCalls, account_id: str, item: str, wanted: Any, action: str) -> None:
        raise NotImplementedError

    def following(self, api: AccountCalls, account_id: str, item: str, current: Any, wanted: Any) -> None:
        """Called after each read: an asynchronous setting takes on a change already under way."""

    def logged(self, action: str, account_id: str, item: str, wanted: Any) -> str:
        """The log line of a write: never people's data in full."""
        return f"{action} {self.key(item)} of {account_id}"
