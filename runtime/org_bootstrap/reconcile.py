"""Make one account's alternate contacts match what the config wants: read, compare, write.

This is the one implementation of that rule. The deploy-time custom resource, the new-account
events and the drift schedule all call :func:`reconcile_account`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError

from org_bootstrap.clients import error_code, is_throttle
from org_bootstrap.contact_spec import DELETE, Contact
from org_bootstrap.pacing import RateLimits, shared_limits
from org_bootstrap.validation import mask

LOG = logging.getLogger(__name__)

RESTORE = "RESTORE"  # put back what was there before the stack first changed it
FIELDS = ("Name", "Title", "EmailAddress", "PhoneNumber")

# What a contact type should become: a contact, DELETE, or RESTORE.
Target = Contact | str

CHANGED, UNCHANGED, DRIFTED, SKIPPED, FAILED = "changed", "unchanged", "drifted", "skipped", "failed"
# Not an end state: the service throttled the account's calls, or the pacing, slowed down by
# throttles, had no token before the caller's deadline. Whoever holds the work retries it later.
THROTTLED = "throttled"
THROTTLE_ATTEMPTS = 3  # tries of one call, paced, before the account is handed back as THROTTLED


class Snapshots(Protocol):
    """Durable record of the contacts that were in place before the stack first changed them."""

    def remember(self, account_id: str, contact_type: str, contact: Contact | None) -> None:
        """Record ``contact`` (None: there was none) unless a record already exists."""

    def recall(self, account_id: str, contact_type: str) -> tuple[bool, Contact | None]:
        """(whether a record exists, the recorded contact or None)."""

    def forget(self, account_id: str, contact_type: str) -> None: ...


class ContactsApi:
    """The Account Management calls, paced per operation and addressed the way the API demands:
    the calling account's own contacts are set without ``AccountId`` (the management account
    cannot name itself), every other account's with it.

    Every answer feeds the pacing (:mod:`org_bootstrap.pacing`): a throttle slows the operation
    down, a success lets it speed back up. A throttled call is tried again, paced at the slower
    rate, ``attempts`` times in all; after that the throttle is raised for the caller to retry the
    account later (the clients leave throttles of this API to this class: see ``clients``).
    A ContactsApi made by :meth:`until` raises :class:`OutOfTime` instead of waiting for a token
    past its deadline, so a batch's work in flight ends in time however slow the pacing has become.
    """

    def __init__(
        self,
        client: Any,
        own_account_id: str,
        limits: RateLimits | None = None,
        *,
        attempts: int = THROTTLE_ATTEMPTS,
        deadline: float | None = None,
    ) -> None:
        self.client = client
        self.own_account_id = own_account_id
        self.limits = limits or shared_limits(own_account_id)
        self.attempts = attempts
        self.deadline = deadline

    def until(self, deadline: float) -> ContactsApi:
        """The same calls and pacing, giving up at ``deadline`` (on the pacing's clock)."""
        return ContactsApi(self.client, self.own_account_id, self.limits, attempts=self.attempts, deadline=deadline)

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

    def get(self, account_id: str, contact_type: str) -> Contact | None:
        try:
            found = self._call(
                "GetAlternateContact",
                self.client.get_alternate_contact,
                AlternateContactType=contact_type,
                **self._address(account_id),
            )
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return None
            raise
        return {key: found["AlternateContact"][key] for key in FIELDS}

    def put(self, account_id: str, contact_type: str, contact: Contact) -> None:
        self._call(
            "PutAlternateContact",
            self.client.put_alternate_contact,
            AlternateContactType=contact_type,
            **self._address(account_id),
            **contact,
        )

    def delete(self, account_id: str, contact_type: str) -> None:
        try:
            self._call(
                "DeleteAlternateContact",
                self.client.delete_alternate_contact,
                AlternateContactType=contact_type,
                **self._address(account_id),
            )
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise


class OutOfTime(Exception):
    """The pacing had no token for the call before the caller's deadline."""


@dataclass(frozen=True)
class Comparison:
    """One contact type of one account as read and compared: what is there, what it should be, and
    the action (``put``, ``delete``, or None when in sync). ``wanted`` is a contact, DELETE, or None
    for a RESTORE with nothing recorded (the stack never changed that type: it is left alone)."""

    contact_type: str
    current: Contact | None
    wanted: Contact | str | None
    action: str | None
    restoring: bool = False


@dataclass
class Outcome:
    account_id: str
    status: str
    actions: dict[str, str] = field(default_factory=dict)  # contact type -> put | delete
    reason: str = ""
    # Per-type detail for a plan; holds contact values, so it stays out of to_dict (job state, reports).
    compared: list[Comparison] = field(default_factory=list, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"account": self.account_id, "status": self.status}
        if self.actions:
            data["actions"] = self.actions
        if self.reason:
            data["reason"] = self.reason
        return data


def _same(current: Contact | None, wanted: Contact) -> bool:
    return current is not None and all(current.get(key) == wanted.get(key) for key in FIELDS)


def reconcile_account(
    api: ContactsApi,
    account_id: str,
    targets: Mapping[str, Target],
    *,
    snapshots: Snapshots | None = None,
    apply: bool = True,
) -> Outcome:
    """Bring each contact type in ``targets`` to its target; never raises for a service error.

    A throttle the pacing could not wait out is no failure: the outcome is THROTTLED, for the
    caller to retry the account later (reconciling is idempotent: the retry reads again). Only
    errors a retry cannot fix (access denied, validation, an account that is not ACTIVE) fail it.
    With ``apply=False`` nothing is written and an account that differs is reported ``drifted``.
    ``Outcome.compared`` has what was read and compared, type by type.
    """
    actions: dict[str, str] = {}
    compared: list[Comparison] = []
    try:
        for contact_type, target in sorted(targets.items()):
            current = api.get(account_id, contact_type)
            restoring = target == RESTORE
            if restoring:
                assert snapshots is not None, "RESTORE needs the snapshot store"
                recorded, previous = snapshots.recall(account_id, contact_type)
                if not recorded:
                    compared.append(Comparison(contact_type, current, None, None, restoring=True))
                    continue  # the stack never changed this type: nothing to put back
                wanted: Contact | str = previous if previous is not None else DELETE
            else:
                wanted = target
            if isinstance(wanted, Mapping):
                action = None if _same(current, wanted) else "put"
            else:
                action = "delete" if current is not None else None
            compared.append(Comparison(contact_type, current, wanted, action, restoring=restoring))
            if action and apply:
                if snapshots is not None and not restoring:
                    snapshots.remember(account_id, contact_type, current)
                if isinstance(wanted, Mapping):
                    api.put(account_id, contact_type, wanted)
                    LOG.info(
                        "put %s contact of %s (e-mail %s)",
                        contact_type,
                        account_id,
                        mask("EmailAddress", wanted["EmailAddress"]),
                    )
                else:
                    api.delete(account_id, contact_type)
                    LOG.info("deleted %s contact of %s", contact_type, account_id)
            if action:
                actions[contact_type] = action
            if restoring and apply and snapshots is not None:
                snapshots.forget(account_id, contact_type)
    except ClientError as error:
        reason = f"{error_code(error)}: {error.response.get('Error', {}).get('Message', '')}".strip()
        if is_throttle(error):
            LOG.info("account %s throttled, to be retried: %s", account_id, reason)
            return Outcome(account_id, THROTTLED, actions, reason, compared=compared)
        LOG.warning("account %s failed: %s", account_id, reason)
        return Outcome(account_id, FAILED, actions, reason, compared=compared)
    except OutOfTime as error:
        return Outcome(account_id, THROTTLED, actions, f"OutOfTime: {error}", compared=compared)
    if not actions:
        return Outcome(account_id, UNCHANGED, compared=compared)
    return Outcome(account_id, CHANGED if apply else DRIFTED, actions, compared=compared)
