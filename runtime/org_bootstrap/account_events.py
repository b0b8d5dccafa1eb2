"""New and moved accounts: apply the configured contacts to the one account an event names.

Organizations and Control Tower events reach the default event bus in us-east-1
(:data:`~org_bootstrap.validation.EVENTS_REGION`) through CloudTrail;
EventBridge rules put them on an SQS queue and this handler reads the queue in batches
(``ReportBatchItemFailures``): a message whose account could not be brought to the config is
reported failed, retried after the queue's visibility timeout, and moved to the dead-letter queue
after the queue's ``maxReceiveCount``. Nothing is dropped silently.

Event shapes, as AWS documents them (the field that names the account):

- ``CreateAccountResult`` (source ``aws.organizations``, "AWS Service Event via CloudTrail"):
  ``detail.serviceEventDetails.createAccountStatus.accountId``, with ``state`` SUCCEEDED.
  https://docs.aws.amazon.com/organizations/latest/userguide/orgs_cloudtrail-integration.html
- ``AcceptHandshake`` ("AWS API Call via CloudTrail"): the ``ACCOUNT`` party of
  ``detail.responseElements.handshake``, else the caller ``detail.userIdentity.accountId``.
  https://docs.aws.amazon.com/organizations/latest/APIReference/API_AcceptHandshake.html
  CloudTrail records the call in the account that made it, so an invitation accepted by a member
  account reaches the management account's bus only where that account's events are forwarded;
  https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_accept-decline-invite.html
  The drift schedule catches invited accounts either way.
- ``MoveAccount`` ("AWS API Call via CloudTrail"): ``detail.requestParameters.accountId``.
  https://docs.aws.amazon.com/organizations/latest/APIReference/API_MoveAccount.html
- ``CreateManagedAccount`` / ``UpdateManagedAccount`` (source ``aws.controltower``, "AWS Service
  Event via CloudTrail"): ``detail.serviceEventDetails.createManagedAccountStatus.account.accountId``
  (``updateManagedAccountStatus`` for updates), with ``state`` SUCCEEDED.
  https://docs.aws.amazon.com/controltower/latest/userguide/lifecycle-events.html

The account's path of OUs is read fresh (``DescribeAccount`` and ``ListParents``), so OU targeting
and overrides follow a moved account, and the contacts are applied by
:func:`org_bootstrap.reconcile.reconcile_account`, the one implementation of "make this account
match the config".
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.clients import error_code
from org_bootstrap.contact_spec import ContactSpec
from org_bootstrap.environment import HandlerEnvironment
from org_bootstrap.jobs import unchangeable
from org_bootstrap.organization import describe_account
from org_bootstrap.reconcile import FAILED, SKIPPED, THROTTLED, ContactsApi, Outcome, Snapshots, reconcile_account
from org_bootstrap.validation import InvalidInputError, account_id_problem

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

ORGANIZATIONS_SOURCE = "aws.organizations"
CONTROL_TOWER_SOURCE = "aws.controltower"
API_CALL = "AWS API Call via CloudTrail"
SERVICE_EVENT = "AWS Service Event via CloudTrail"
SUCCEEDED = "SUCCEEDED"
IGNORED = "ignored"  # an event this handler does not act on (a failed creation, another handshake)
# Left of the Lambda timeout when the batch stops starting records: one account's six paced calls
# fit in it with room for throttled retries, and the answer still leaves before the timeout.
BATCH_SAFETY_MARGIN_SECONDS = 30.0


class UnrecognizedEventError(ValueError):
    """An event that names no account this handler can act on; it ends in the dead-letter queue."""


@dataclass(frozen=True)
class AccountEvent:
    name: str  # the CloudTrail eventName
    account_id: str | None  # None: nothing to do (see ``reason``)
    reason: str = ""


def _details(detail: Mapping[str, Any]) -> Mapping[str, Any]:
    value = detail.get("serviceEventDetails") or {}
    # CloudTrail log files carry serviceEventDetails as a JSON string; EventBridge as an object.
    return json.loads(value) if isinstance(value, str) else value


def _status(detail: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    status = _details(detail).get(key)
    if not isinstance(status, Mapping):
        raise UnrecognizedEventError(f"{detail.get('eventName')}: no serviceEventDetails.{key}")
    return status


def _handshake_account(detail: Mapping[str, Any]) -> tuple[str | None, str]:
    handshake = (detail.get("responseElements") or {}).get("handshake") or {}
    action = str(handshake.get("action", "invite"))
    if action.lower() != "invite":
        return None, f"a {action} handshake, not an invitation to join"
    for party in handshake.get("parties") or []:
        if str(party.get("type", "")).upper() == "ACCOUNT":
            return str(party.get("id")), ""
    # Only the invited account accepts an invitation: the caller is the account that joined.
    caller = (detail.get("userIdentity") or {}).get("accountId")
    return (str(caller) if caller else None), ""


def parse_event(event: Mapping[str, Any]) -> AccountEvent:
    """The account an Organizations or Control Tower event concerns; raises UnrecognizedEventError."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise UnrecognizedEventError(f"not an EventBridge event with a detail: {sorted(event)[:8]}")
    name = str(detail.get("eventName", ""))
    if detail.get("errorCode"):
        return AccountEvent(name, None, f"the call failed ({detail['errorCode']})")
    account: str | None
    reason = ""
    if name == "CreateAccountResult":
        status = _status(detail, "createAccountStatus")
        account = status.get("accountId") if status.get("state") == SUCCEEDED else None
        reason = "" if account else f"account creation {status.get('state')}"
    elif name == "AcceptHandshake":
        account, reason = _handshake_account(detail)
    elif name == "MoveAccount":
        account = (detail.get("requestParameters") or {}).get("accountId")
    elif name in ("CreateManagedAccount", "UpdateManagedAccount"):
        key = "createManagedAccountStatus" if name == "CreateManagedAccount" else "updateManagedAccountStatus"
        status = _status(detail, key)
        account = (status.get("account") or {}).get("accountId") if status.get("state") == SUCCEEDED else None
        reason = "" if account else f"Control Tower {name} {status.get('state')}"
    else:
        raise UnrecognizedEventError(f"{event.get('source')} {name!r} is not an account event this handler knows")
    if account is None:
        if not reason:
            raise UnrecognizedEventError(f"{name}: the event names no account")
        return AccountEvent(name, None, reason)
    problem = account_id_problem(f"{name} account", account)
    if problem:
        raise UnrecognizedEventError(problem)
    return AccountEvent(name, str(account), reason)


@dataclass
class Dependencies:
    organizations: Any
    api: ContactsApi  # addressed from the calling account (its own contacts go without AccountId)
    spec: ContactSpec
    management_account_id: str
    caller_account_id: str
    snapshots: Snapshots | None = None

    @classmethod
    def from_environment(cls, environment: HandlerEnvironment | None = None) -> Dependencies:
        env = environment or HandlerEnvironment()
        return cls(
            organizations=env.organizations,
            api=env.contacts_api(),
            spec=env.spec(),
            management_account_id=env.management_account_id,
            caller_account_id=env.caller_account_id,
            snapshots=env.optional_snapshots(),
        )


@cache
def dependencies() -> Dependencies:
    """Clients and the spec are made once per Lambda container, outside the request path."""
    return Dependencies.from_environment()


def apply_to_account(account_id: str, deps: Dependencies) -> Outcome:
    """Make one account's contacts match the config, wherever it now sits in the organization."""
    reason = unchangeable(
        account_id, caller_account_id=deps.caller_account_id, management_account_id=deps.management_account_id
    )
    if reason:
        return Outcome(account_id, SKIPPED, reason="a delegated administrator cannot change the management account")
    try:
        account = describe_account(deps.organizations, account_id)
    except ClientError as error:
        if error_code(error) == "AccountNotFoundException":
            return Outcome(account_id, SKIPPED, reason="no longer in the organization")
        raise
    if not deps.spec.targets(account.id, account.path, deps.management_account_id):
        return Outcome(account_id, SKIPPED, reason="not targeted by the config")
    if not account.active:
        return Outcome(account_id, SKIPPED, reason=f"{account.status}, not ACTIVE")
    targets = deps.spec.desired(account.id, account.path)
    return reconcile_account(deps.api, account.id, targets, snapshots=deps.snapshots)


def handle(event: Mapping[str, Any], deps: Dependencies) -> Outcome:
    """One EventBridge event: which account it names, then that account's contacts."""
    found = parse_event(event)
    if found.account_id is None:
        outcome = Outcome("", IGNORED, reason=found.reason)
    else:
        outcome = apply_to_account(found.account_id, deps)
    LOG.info(json.dumps({"event": found.name, "event_id": event.get("id"), **outcome.to_dict()}))
    return outcome


def on_messages(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """SQS batch handler: answers the messages to retry, so one bad account never fails the rest.

    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
    """
    seconds_left = None if context is None else (lambda: context.get_remaining_time_in_millis() / 1000)
    return handle_batch(event.get("Records", []), dependencies(), seconds_left=seconds_left)


def handle_batch(
    records: Iterable[Mapping[str, Any]],
    deps: Dependencies,
    *,
    seconds_left: Callable[[], float] | None = None,
    margin: float = BATCH_SAFETY_MARGIN_SECONDS,
) -> dict[str, Any]:
    """Work the records to a deadline: a record whose account was throttled goes to the back of the
    batch and is tried again (the pacing has slowed down by then); no record starts with less than
    ``margin`` seconds left (``seconds_left``: the Lambda's remaining time), and every record not
    finished by then is answered as a batch item failure, for SQS to deliver again, instead of the
    whole batch timing out. The record in flight stops waiting for the pacing at half the margin."""
    if seconds_left is not None:
        limits = deps.api.limits
        deps = replace(deps, api=deps.api.until(limits.clock() + seconds_left() - margin / 2))
    failures: list[dict[str, str]] = []
    waiting: deque[Mapping[str, Any]] = deque(records)
    while waiting and (seconds_left is None or seconds_left() >= margin):
        record = waiting.popleft()
        message_id = record["messageId"]
        try:
            outcome = handle(json.loads(record["body"]), deps)
        except (UnrecognizedEventError, InvalidInputError, json.JSONDecodeError) as error:
            LOG.error(json.dumps({"message": message_id, "unusable_event": str(error)}))
            failures.append({"itemIdentifier": message_id})
            continue
        except Exception:  # a service error: retried after the visibility timeout
            LOG.exception("message %s failed", message_id)
            failures.append({"itemIdentifier": message_id})
            continue
        if outcome.status == THROTTLED:
            waiting.append(record)
        elif outcome.status == FAILED:
            failures.append({"itemIdentifier": message_id})
    if waiting:
        LOG.warning(json.dumps({"out_of_time": [record["messageId"] for record in waiting]}))
        failures += [{"itemIdentifier": record["messageId"]} for record in waiting]
    if failures:
        LOG.warning(json.dumps({"retrying": [f["itemIdentifier"] for f in failures]}))
    return {"batchItemFailures": failures}
