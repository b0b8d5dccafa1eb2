"""Account settings as adapters: what each one reads, compares and writes, and nothing else.

A :class:`Setting` says, for one item of an account's setting (a contact type, the primary
contact, a Region): how to read it, which action makes it what it should be, how to write it, and
which operations (with their published quotas) and IAM permissions that takes; its spec (a
:class:`~org_bootstrap.engine.targeting.SettingSpec`) says how its config section reads. Everything else
(the config section's targets and overrides, planning, jobs, pacing, reports, restore snapshots,
drift, account events, IAM policies and denials, the plan view) is written once in the engine and
reaches a setting only through these few methods. Every module of this package that defines
``SETTING`` is a setting (:mod:`org_bootstrap.engine.registry` finds them).

Items are addressed by a key: ``<setting>/<item>`` (``primary_contact/PRIMARY``,
``regions/ap-east-1``); alternate contacts keep their bare contact types (``BILLING``) as keys,
which is what their jobs and snapshots have always stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from org_bootstrap.aws.partitions import COMMERCIAL
from org_bootstrap.engine.quotas import Quota
from org_bootstrap.engine.targeting import DELETE, SettingSpec

__all__ = ["DELETE", "RESTORE", "AccountCalls", "NotYet", "Permission", "Quota", "Refused", "Setting"]

RESTORE = "RESTORE"  # put back what was there before the stack first changed it


class NotYet(Exception):
    """The item cannot be worked on yet (no free request slot before the deadline, or an opposite
    request still in progress): not a failure, the account is retried later in the job."""


class Refused(Exception):
    """No write can make the item what it should be (a rule of the service that depends on what the
    account has now, known only once it is read): the account fails with this reason, naming the
    field and the rule, and nothing is written."""


class AccountCalls(Protocol):
    """The Account Management calls as the engine makes them (org_bootstrap.engine.reconcile.AccountApi):
    paced per operation, throttles retried, and addressed from the calling account (its own
    account without ``AccountId``)."""

    own_account_id: str
    deadline: float | None
    region_requests: Any

    def call(self, operation: str, account_id: str, **parameters: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Permission:
    """One IAM statement a setting's handlers need: these Account Management actions on the
    organization's accounts (the constructs add the account ARNs), under these conditions."""

    sid: str
    actions: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)


class Setting:
    """One account setting. Subclasses set the class attributes and read, action and write."""

    name: ClassVar[str]  # the config section, and the prefix of the setting's keys
    title: ClassVar[str]  # what the plan and the state call it ("primary contact")
    spec_type: ClassVar[type[SettingSpec[Any]]]
    read_operations: ClassVar[tuple[str, ...]]
    write_operations: ClassVar[tuple[str, ...]]
    # Each operation's published quota per calling account (rate and burst), by partition: a
    # partition not listed has the commercial partition's; one listed without an operation has not
    # got it (an empty table: the setting is not available there).
    # https://docs.aws.amazon.com/accounts/latest/reference/quotas.html
    quotas: ClassVar[Mapping[str, Mapping[str, Quota]]]
    # What RESTORE puts back where the account had nothing before the stack: None leaves the item
    # as it is (nothing can be deleted), DELETE deletes it.
    absent: ClassVar[str | None] = None
    # True when a write only starts a change that AWS finishes later (Regions: ENABLING, DISABLING):
    # a caller that cannot follow it (the account-event handler) reports it as in progress.
    asynchronous: ClassVar[bool] = False

    @property
    def resource_property(self) -> str:
        """The custom resource property that carries the setting's spec (``PrimaryContactSpec``)."""
        return f"{self.label}Spec"

    @property
    def label(self) -> str:
        """The setting's name in IAM statement IDs (``PrimaryContact``)."""
        return "".join(part.title() for part in self.name.split("_"))

    def quotas_in(self, partition: str) -> Mapping[str, Quota]:
        return self.quotas.get(partition, self.quotas[COMMERCIAL])

    def available_in(self, partition: str) -> bool:
        return bool(self.quotas_in(partition))

    @property
    def read_actions(self) -> tuple[str, ...]:
        return tuple(f"account:{operation}" for operation in self.read_operations)

    @property
    def write_actions(self) -> tuple[str, ...]:
        return tuple(f"account:{operation}" for operation in self.write_operations)

    def permissions(self, spec: SettingSpec[Any], *, write: bool, partition: str) -> list[Permission]:
        """What a role that reads (and, with ``write``, writes) the setting needs: by default its
        read and write actions; a setting with condition keys narrows them to what ``spec`` names."""
        actions = (*self.read_actions, *(self.write_actions if write else ()))
        return [Permission(f"{self.label}OfOrganizationAccounts", actions)]

    def removal_writes(self, removal: str) -> tuple[str, ...]:
        """The write operations ``removal`` still makes in accounts the spec excludes or no longer
        targets (releasing what the stack set there); IAM denies every other write there. By
        default ``retain`` makes none and ``restore`` all (it puts earlier values back)."""
        return () if removal == "retain" else self.write_operations

    def key(self, item: str) -> str:
        return f"{self.name}/{item}"

    def keyed(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A spec's ``desired`` values (item -> target) as engine targets (key -> target)."""
        return {self.key(item): target for item, target in values.items()}

    def read(self, api: AccountCalls, account_id: str, items: Sequence[str]) -> dict[str, Any]:
        """What each item is now (None: there is none), in as few calls as the API allows."""
        raise NotImplementedError

    def reads(self, items: Sequence[str]) -> dict[str, int]:
        """The calls :meth:`read` makes for these items of one account, by operation (what the
        local tools' estimates count): by default one call of the first read operation."""
        return {self.read_operations[0]: 1} if items else {}

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

    def text(self, value: Any, *, show_values: bool = False) -> str:
        """One item's value as the plan and the state show it: people's data masked unless
        ``show_values`` (a value is never None here: the views show "—" for none)."""
        return str(value)

    def state_text(self, state: Any, *, show_values: bool = False) -> str:
        """The setting's part of an account as the local deploy's organization file holds it (by
        default item -> value, one line each), for the state view."""
        return "\n".join(f"{item} {self.text(value, show_values=show_values)}" for item, value in sorted(state.items()))
