"""Make one account's settings match what the config wants: read, compare, write.

This is the one implementation of that rule, for every account setting (alternate contacts,
primary contact, Regions: :mod:`org_bootstrap.engine.registry`). The deploy-time custom resource,
the new-account events and the drift schedule all call :func:`reconcile_account`; a setting only
says how to read, compare and write its items (:class:`org_bootstrap.settings.Setting`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore import xform_name
from botocore.exceptions import ClientError

from org_bootstrap.aws.clients import error_code, is_permanent, is_throttle
from org_bootstrap.engine.pacing import RateLimits, shared_limits
from org_bootstrap.engine.registry import setting_of
from org_bootstrap.settings import RESTORE, NotYet, Refused

LOG = logging.getLogger(__name__)

# What an item should become: a contact, DELETE, RESTORE, a Region status... (the setting's own).
Target = Any

CHANGED, UNCHANGED, DRIFTED, SKIPPED, FAILED = "changed", "unchanged", "drifted", "skipped", "failed"
# Not an end state: the service throttled the account's calls, or the pacing, slowed down by
# throttles, had no token before the caller's deadline. Whoever holds the work retries it later.
THROTTLED = "throttled"
THROTTLE_ATTEMPTS = 3  # tries of one call, paced, before the account is handed back as THROTTLED


class Snapshots(Protocol):
    """Durable record of what was in place before the stack first changed an item, by engine key
    (a contact type, ``primary_contact/PRIMARY``, ``regions/<Region>``)."""

    def remember(self, account_id: str, contact_type: str, contact: Any) -> None:
        """Record ``contact`` (None: there was none) unless a record already exists."""

    def recall(self, account_id: str, contact_type: str) -> tuple[bool, Any]:
        """(whether a record exists, the recorded value or None)."""

    def forget(self, account_id: str, contact_type: str) -> None: ...


class AccountApi:
    """The Account Management calls of every setting, paced per operation and addressed the way
    the API demands: the calling account's own settings without ``AccountId`` (the management
    account cannot name itself), every other account's with it.

    Every answer feeds the pacing (:mod:`org_bootstrap.engine.pacing`): a throttle slows the operation
    down, a success lets it speed back up. A throttled call is tried again, paced at the slower
    rate, ``attempts`` times in all; after that the throttle is raised for the caller to retry the
    account later (the clients leave throttles of this API to this class: see ``clients``).
    An AccountApi made by :meth:`until` raises :class:`OutOfTime` instead of waiting for a token
    past its deadline, so a batch's work in flight ends in time however slow the pacing has become.
    ``region_requests`` holds the Region requests a job has in flight (settings.regions).
    """

    def __init__(
        self,
        client: Any,
        own_account_id: str,
        limits: RateLimits | None = None,
        *,
        attempts: int = THROTTLE_ATTEMPTS,
        deadline: float | None = None,
        region_requests: Any = None,
    ) -> None:
        self.client = client
        self.own_account_id = own_account_id
        self.limits = limits or shared_limits(own_account_id)
        self.attempts = attempts
        self.deadline = deadline
        self.region_requests = region_requests

    def until(self, deadline: float) -> AccountApi:
        """The same calls and pacing, giving up at ``deadline`` (on the pacing's clock)."""
        return type(self)(
            self.client,
            self.own_account_id,
            self.limits,
            attempts=self.attempts,
            deadline=deadline,
            region_requests=self.region_requests,
        )

    def with_region_requests(self, region_requests: Any) -> AccountApi:
        """The same calls, pacing and deadline, counting Region requests in ``region_requests``."""
        return type(self)(
            self.client,
            self.own_account_id,
            self.limits,
            attempts=self.attempts,
            deadline=self.deadline,
            region_requests=region_requests,
        )

    def call(self, operation: str, account_id: str, **parameters: Any) -> dict[str, Any]:
        """One Account Management call addressed to ``account_id`` (boto3's method for ``operation``)."""
        found: dict[str, Any] = self._call(
            operation, getattr(self.client, xform_name(operation)), **self._address(account_id), **parameters
        )
        return found

    def _address(self, account_id: str) -> dict[str, str]:
        return {} if account_id == self.own_account_id else {"AccountId": account_id}

    def _call(self, operation: str, call: Any, **kwargs: Any) -> Any:
        for attempt in range(1, self.attempts + 1):
            if not self.limits.acquire(operation, self.deadline):
                raise OutOfTime(f"no {operation} token before the deadline (the pacing has slowed down)")
            try:
                answer = call(**kwargs)
            except ClientError as error:
                if is_throttle(error):
                    self.limits.throttled(operation)
                    if attempt < self.attempts:
                        continue
                else:
                    self.limits.succeeded(operation)  # the service answered: not a congestion signal
                raise
            self.limits.succeeded(operation)
            return answer
        raise AssertionError("unreachable")


class OutOfTime(Exception):
    """The pacing had no token for the call before the caller's deadline."""


@dataclass(frozen=True)
class Comparison:
    """One item of one account as read and compared: what is there, what it should be, and the
    action (``put``, ``delete``, ``enable``, ``disable``, or None when in sync). ``contact_type`` is
    the engine key (a bare contact type for alternate contacts). ``wanted`` is the setting's value,
    DELETE, or None for a RESTORE with nothing to put back (left alone)."""

    contact_type: str
    current: Any
    wanted: Any
    action: str | None
    restoring: bool = False


@dataclass
class Outcome:
    account_id: str
    status: str
    actions: dict[str, str] = field(default_factory=dict)  # engine key -> put | delete | enable | disable
    reason: str = ""
    # THROTTLED because an item must wait (NotYet: an opposite Region request in progress, which can
    # take hours), not because of the pacing: a job retries it later, an event leaves it to the drift check.
    waiting: bool = False
    # FAILED for a reason no retry fixes (access denied, a value the service refuses): a caller that
    # would retry the account (the account-events handler) reports it instead.
    permanent: bool = False
    # Per-type detail for a plan; holds contact values, so it stays out of to_dict (job state, reports).
    compared: list[Comparison] = field(default_factory=list, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"account": self.account_id, "status": self.status}
        if self.actions:
            data["actions"] = self.actions
        if self.reason:
            data["reason"] = self.reason
        return data


def reconcile_account(
    api: AccountApi,
    account_id: str,
    targets: Mapping[str, Target],
    *,
    snapshots: Snapshots | None = None,
    apply: bool = True,
) -> Outcome:
    """Bring each item in ``targets`` (engine key -> target) to its target, whatever setting it
    belongs to: each setting reads its items of the account, compares them, writes what differs.
    Never raises for a service error.

    Before the stack first changes an item, what was there is recorded (``snapshots``, by engine
    key), which RESTORE puts back. A throttle the pacing could not wait out is no failure: the
    outcome is THROTTLED, for the caller to retry the account later (reconciling is idempotent:
    the retry reads again), and so is an item that must wait (:class:`~org_bootstrap.settings.NotYet`).
    Only errors a retry cannot fix (access denied, validation, an account that is not ACTIVE, a
    write the setting knows the service refuses: :class:`~org_bootstrap.settings.Refused`) fail
    it. With ``apply=False`` nothing is written and an account that differs is reported ``drifted``.
    ``Outcome.compared`` has what was read and compared, item by item.
    """
    actions: dict[str, str] = {}
    compared: list[Comparison] = []
    groups: dict[str, list[tuple[str, str]]] = {}
    for key in sorted(targets):
        setting, item = setting_of(key)
        groups.setdefault(setting.name, []).append((key, item))
    try:
        for items in groups.values():
            setting, _ = setting_of(items[0][0])
            current = setting.read(api, account_id, [item for _, item in items])
            for key, item in items:
                now, target = current[item], targets[key]
                restoring = target == RESTORE
                if restoring:
                    assert snapshots is not None, "RESTORE needs the snapshot store"
                    recorded, previous = snapshots.recall(account_id, key)
                    wanted = previous if previous is not None else setting.absent
                    if not recorded or wanted is None:  # nothing the stack changed, or nothing it can put back
                        compared.append(Comparison(key, now, None, None, restoring=True))
                        if recorded and apply:
                            snapshots.forget(account_id, key)
                        continue
                else:
                    wanted = target
                if apply:  # a change under way is followed by a job that writes; a report-only one only reads
                    setting.following(api, account_id, item, now, wanted)
                action = setting.action(now, wanted)
                compared.append(Comparison(key, now, wanted, action, restoring=restoring))
                if action and apply:
                    if snapshots is not None and not restoring:
                        snapshots.remember(account_id, key, now)
                    setting.write(api, account_id, item, wanted, action)
                    LOG.info(setting.logged(action, account_id, item, wanted))
                if action:
                    actions[key] = action
                if restoring and apply and snapshots is not None:
                    snapshots.forget(account_id, key)
    except ClientError as error:
        reason = f"{error_code(error)}: {error.response.get('Error', {}).get('Message', '')}".strip()
        if is_throttle(error):
            LOG.info("account %s throttled, to be retried: %s", account_id, reason)
            return Outcome(account_id, THROTTLED, actions, reason, compared=compared)
        LOG.warning("account %s failed: %s", account_id, reason)
        return Outcome(account_id, FAILED, actions, reason, permanent=is_permanent(error), compared=compared)
    except OutOfTime as error:
        return Outcome(account_id, THROTTLED, actions, f"OutOfTime: {error}", compared=compared)
    except NotYet as error:
        LOG.info("account %s must wait, to be retried: %s", account_id, error)
        return Outcome(account_id, THROTTLED, actions, f"NotYet: {error}", waiting=True, compared=compared)
    except Refused as error:
        LOG.warning("account %s failed: %s", account_id, error)
        return Outcome(account_id, FAILED, actions, str(error), permanent=True, compared=compared)
    if not actions:
        return Outcome(account_id, UNCHANGED, compared=compared)
    return Outcome(account_id, CHANGED if apply else DRIFTED, actions, compared=compared)
