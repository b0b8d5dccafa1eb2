"""New and moved accounts: apply every configured setting to the one account an event names.

EventBridge rules put the Organizations and Control Tower events (us-east-1, through CloudTrail) on an
SQS queue; this handler reads it in batches and reports each record it could not finish, so nothing
is dropped silently. The event shapes it reads, with AWS's references, and what each event does are
in docs/operations.md ("Account events: the shapes the handler reads").
"""

from __future__ import annotations

import json
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.aws import clients
from org_bootstrap.aws.clients import error_code, is_permanent
from org_bootstrap.aws.organization import Account, describe_account, path_to
from org_bootstrap.aws.partitions import partition_here
from org_bootstrap.engine.continuation import last_jobs
from org_bootstrap.engine.jobs import (
    DRIFT_JOB_POINTER,
    Specs,
    by_setting,
    managed_at,
    released,
    unchangeable,
    uses_tags,
)
from org_bootstrap.engine.metrics import NAMESPACE
from org_bootstrap.engine.reconcile import (
    FAILED,
    SKIPPED,
    THROTTLED,
    AccountApi,
    Outcome,
    Snapshots,
    reconcile_account,
)
from org_bootstrap.engine.registry import setting_of
from org_bootstrap.engine.stores import S3JobStore
from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.handlers.environment import HandlerEnvironment
from org_bootstrap.settings import regions
from org_bootstrap.settings.regions import RegionRequests, Request
from org_bootstrap.validation import InvalidInputError, account_id_problem

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

ORGANIZATIONS_SOURCE = "aws.organizations"
CONTROL_TOWER_SOURCE = "aws.controltower"
API_CALL = "AWS API Call via CloudTrail"
SERVICE_EVENT = "AWS Service Event via CloudTrail"
SUCCEEDED = "SUCCEEDED"
IGNORED = "ignored"  # an event this handler does not act on (a failed creation or call)
TAG_EVENTS = ("TagResource", "UntagResource")
# Previous tag states tried for a tag event's release (the keys' values the config names, or none).
MAX_PREVIOUS_TAG_STATES = 256
# Left of the Lambda timeout when the batch stops starting records: one account's six paced calls
# fit in it with room for throttled retries, and the answer still leaves before the timeout.
BATCH_SAFETY_MARGIN_SECONDS = 30.0
FAILED_METRIC = "EventAccountsFailed"  # accounts whose event failed for a reason no retry fixes


class UnrecognizedEventError(ValueError):
    """An event that names no account this handler can act on; it ends in the dead-letter queue."""


@dataclass(frozen=True)
class AccountEvent:
    name: str  # the CloudTrail eventName
    account_id: str | None  # None: nothing to do (see ``reason``)
    reason: str = ""
    moved_from: str | None = None  # MoveAccount: the parent (root or OU) the account left
    retagged: tuple[str, ...] = ()  # TagResource / UntagResource: the tag keys set or removed


def _details(detail: Mapping[str, Any]) -> Mapping[str, Any]:
    value = detail.get("serviceEventDetails") or {}
    # CloudTrail log files carry serviceEventDetails as a JSON string; EventBridge as an object.
    return json.loads(value) if isinstance(value, str) else value


def _status(detail: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    status = _details(detail).get(key)
    if not isinstance(status, Mapping):
        raise UnrecognizedEventError(f"{detail.get('eventName')}: no serviceEventDetails.{key}")
    return status


def _joined_account(detail: Mapping[str, Any]) -> str | None:
    account = _details(detail).get("accountId")
    if account:
        return str(account)
    for resource in detail.get("resources") or []:
        arn = str(resource.get("ARN") or resource.get("arn") or "")
        if ":account/" in arn:  # arn:aws:organizations::<management>:account/o-.../<account>
            return arn.rsplit("/", 1)[-1]
    return None


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
    elif name == "AccountJoinedOrganization":
        account = _joined_account(detail)
    elif name == "MoveAccount":
        request = detail.get("requestParameters") or {}
        account = request.get("accountId")
        source = request.get("sourceParentId")
        if account and source:
            problem = _parent_problem(source)
            if problem:
                raise UnrecognizedEventError(f"MoveAccount sourceParentId: {problem}")
            return _checked(AccountEvent(name, str(account), moved_from=str(source)))
    elif name in TAG_EVENTS:
        request = detail.get("requestParameters") or {}
        resource = str(request.get("resourceId") or "")
        if not resource:
            raise UnrecognizedEventError(f"{name}: no requestParameters.resourceId")
        if not re.fullmatch(r"\d{12}", resource):  # an OU, a root or a policy: accounts' own tags target
            return AccountEvent(name, None, f"tags of {resource}, not of an account")
        if name == "TagResource":
            keys = [str(tag.get("key", "")) for tag in request.get("tags") or [] if isinstance(tag, Mapping)]
        else:
            keys = [str(key) for key in request.get("tagKeys") or []]
        return _checked(AccountEvent(name, resource, retagged=tuple(keys)))
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
    return _checked(AccountEvent(name, str(account), reason))


def _checked(found: AccountEvent) -> AccountEvent:
    problem = account_id_problem(f"{found.name} account", found.account_id)
    if problem:
        raise UnrecognizedEventError(problem)
    return found


def _parent_problem(parent_id: object) -> str | None:
    # https://docs.aws.amazon.com/organizations/latest/APIReference/API_MoveAccount.html (ParentId patterns)
    if isinstance(parent_id, str) and re.fullmatch(r"r-[0-9a-z]{4,32}|ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}", parent_id):
        return None
    return f"{parent_id!r} is neither a root ID (r-...) nor an OU ID (ou-...)"


@dataclass
class Dependencies:
    organizations: Any
    api: AccountApi  # addressed from the calling account (its own contacts go without AccountId)
    spec: Specs  # every setting's, by name (or one setting's spec)
    management_account_id: str
    caller_account_id: str
    snapshots: Snapshots | None = None
    # Where a failure no retry fixes is reported; each is optional (a test, an older stack).
    jobs: S3JobStore | None = None  # the job bucket: reports, and the running jobs' Region requests
    cloudwatch: Any = None
    sns: Any = None
    topic_arn: str = ""
    namespace: str = NAMESPACE  # the drift check's
    # The pointers to the last jobs whose Region requests count against the same limits
    job_pointers: tuple[str, ...] = (DRIFT_JOB_POINTER,)

    @classmethod
    def from_environment(cls, environment: HandlerEnvironment | None = None) -> Dependencies:
        env = environment or HandlerEnvironment()
        reporting = bool(env.variables.get("TOPIC_ARN"))
        return cls(
            organizations=env.organizations,
            api=env.account_api(),
            spec=env.specs(),
            management_account_id=env.management_account_id,
            caller_account_id=env.caller_account_id,
            snapshots=env.optional_snapshots(),
            jobs=env.jobs() if env.variables.get("JOB_BUCKET") else None,
            cloudwatch=env.client("cloudwatch") if reporting else None,
            sns=env.client("sns") if reporting else None,
            topic_arn=env.text("TOPIC_ARN", ""),
            namespace=env.text("METRIC_NAMESPACE", cls.namespace),
            job_pointers=tuple(
                pointer for pointer in (DRIFT_JOB_POINTER, env.text("DEPLOY_JOB_POINTER", "")) if pointer
            ),
        )


@cache
def dependencies() -> Dependencies:
    """Clients and the spec are made once per Lambda container, outside the request path."""
    return Dependencies.from_environment()


def apply_to_account(
    account_id: str, deps: Dependencies, *, moved_from: str | None = None, retagged: tuple[str, ...] = ()
) -> Outcome:
    """Make one account's settings match the config, wherever it now sits in the organization and
    whatever tags it now carries.

    ``moved_from``: the parent it left. The types the config managed there and no longer manages
    here (moved out of the targeted OUs, into an excluded one, or away from an override's item) get
    each setting's removal mode, exactly as when a config change releases them. ``retagged``: the
    tag keys a tag event set or removed; what the account may have had before is released the same
    way (see :func:`_before_retag`).
    """
    reason = unchangeable(
        account_id, caller_account_id=deps.caller_account_id, management_account_id=deps.management_account_id
    )
    if reason:
        return Outcome(account_id, SKIPPED, reason="a delegated administrator cannot change the management account")
    try:
        account = describe_account(deps.organizations, account_id, tags=uses_tags(deps.spec))
    except ClientError as error:
        if error_code(error) == "AccountNotFoundException":
            return Outcome(account_id, SKIPPED, reason="no longer in the organization")
        raise
    management = deps.management_account_id
    old_path = _old_path(deps, moved_from) if moved_from else None
    targets: dict[str, Any] = {}
    had_any = False
    for spec in by_setting(deps.spec).values():  # every setting, by the same rules
        wanted = managed_at(spec, account.id, account.path, management, account.tags)
        had = managed_at(spec, account.id, old_path, management, account.tags) if old_path is not None else {}
        if retagged and account.tags is not None:
            had = {**had, **_before_retag(spec, account, retagged, management, deps.snapshots)}
        targets.update({**wanted, **released(had, wanted, spec)})
        had_any = had_any or bool(had)
    if not targets:
        if had_any:  # moved out of the targets with removal = "retain"
            left = "moved out of the targets" if moved_from else "tagged out of the targets"
            return Outcome(account_id, SKIPPED, reason=f"{left}; removal retain leaves its settings")
        return Outcome(account_id, SKIPPED, reason="not targeted by the config")
    if not account.active:
        return Outcome(account_id, SKIPPED, reason=f"{account.status}, not ACTIVE")
    api = deps.api
    if any(setting_of(key)[0].asynchronous for key in targets):
        api = api.with_region_requests(region_requests(deps, api.limits.clock))
    outcome = reconcile_account(api, account.id, targets, snapshots=deps.snapshots)
    started = in_progress(outcome)
    if started and not outcome.reason:
        # Too long to follow here (ENABLING can take hours): the drift check or the next event sees it through.
        outcome.reason = "in progress: " + ", ".join(started)
    return outcome


def _before_retag(
    spec: SettingSpec[Any], account: Account, keys: tuple[str, ...], management: str, snapshots: Snapshots | None
) -> dict[str, Any]:
    """What ``spec`` may have managed in the account before a tag event changed ``keys``: the
    items it manages with each key absent or at any value the config names for it, kept only
    where the snapshot store records that the stack wrote the item in this account (CloudTrail
    gives a TagResource's new values, not the old ones)."""
    if snapshots is None or not spec.uses_tags:
        return {}
    named: dict[str, set[str]] = {key: set() for key in keys}
    for _, selector in spec.tag_selectors():
        for key, values in selector:
            if key in named:
                named[key].update(values)
    states: list[dict[str, str]] = [dict(account.tags or {})]
    for key in keys:
        states = [
            {**{k: v for k, v in state.items() if k != key}, **({key: value} if value is not None else {})}
            for state in states
            for value in (None, *sorted(named[key]))
        ][:MAX_PREVIOUS_TAG_STATES]
    had: dict[str, Any] = {}
    for state in states:
        had.update(managed_at(spec, account.id, account.path, management, state))
    return {key: target for key, target in had.items() if snapshots.recall(account.id, key)[0]}


def region_requests(deps: Dependencies, clock: Callable[[], float]) -> RegionRequests:
    """The Region requests in progress this handler knows of: the running jobs' (from their records),
    within the partition's limits; it never waits for a slot (a Region with none waits for the drift
    check or the next job)."""
    limits = regions.SETTING.opt_limits(partition_here())
    assert limits is not None, f"the {partition_here()} partition has no Region opt-in"
    return RegionRequests(limits, jobs_region_requests(deps), clock=clock, patient=False)


def jobs_region_requests(deps: Dependencies) -> list[Request]:
    """The Region requests the deploy and drift jobs still running have in flight, from their records."""
    if deps.jobs is None:
        return []
    try:
        running = [job for job in last_jobs(deps.jobs, *deps.job_pointers)() if not job.done]
    except ClientError as error:  # the count is a courtesy to the jobs: AWS enforces its own
        LOG.warning(json.dumps({"job_records": "unreadable", "error": error_code(error)}))
        return []
    return [Request.from_dict(request) for job in running for request in job.region_requests]


def in_progress(outcome: Outcome) -> list[str]:
    """The items the outcome's writes only started (an asynchronous setting's requests)."""
    return sorted(key for key in outcome.actions if setting_of(key)[0].asynchronous)


def _old_path(deps: Dependencies, parent_id: str) -> tuple[str, ...]:
    try:
        return path_to(deps.organizations, parent_id)
    except ClientError as error:
        if error_code(error) not in ("ChildNotFoundException", "ParentNotFoundException"):
            raise
        return (parent_id,)  # the OU was deleted since: its own ID is all that is known of the place


def _account_named(event: Any) -> str:
    try:
        return parse_event(event).account_id or ""
    except (UnrecognizedEventError, AttributeError):
        return ""


def handle(event: Mapping[str, Any], deps: Dependencies) -> Outcome:
    """One EventBridge event: which account it names, then that account's settings."""
    found = parse_event(event)
    if found.account_id is None:
        outcome = Outcome("", IGNORED, reason=found.reason)
    else:
        outcome = apply_to_account(found.account_id, deps, moved_from=found.moved_from, retagged=found.retagged)
    LOG.info(json.dumps({"event": found.name, "event_id": event.get("id"), **outcome.to_dict()}))
    return outcome


def on_messages(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """SQS batch handler: answers the messages to retry, so one bad account never fails the rest.

    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
    """
    seconds_left = None if context is None else (lambda: context.get_remaining_time_in_millis() / 1000)
    return handle_batch(event.get("Records", []), dependencies(), seconds_left=seconds_left)


def report_failure(deps: Dependencies, message_id: str, event_name: str, outcome: Outcome) -> None:
    """A record that failed for a reason no retry fixes: a report in the job bucket and a message on
    the topic, each where the function has one (account IDs and reasons only, never contacts)."""
    report = {"message": message_id, "event": event_name, **outcome.to_dict(), "retried": False}
    location = deps.jobs.save_report(f"event-{message_id}", report) if deps.jobs is not None else "(no job bucket)"
    LOG.error(json.dumps({**report, "report": location}))
    if deps.sns is not None and deps.topic_arn:
        subject = f"Account settings: account {outcome.account_id} failed, not retried"
        body = "\n".join(
            [
                f"The settings of account {outcome.account_id} could not be applied on its {event_name} event,",
                "for a reason no retry fixes; the event is not retried. The drift check tries the account again.",
                f"Reason: {outcome.reason[:500]}",
                f"Report: {location}",
            ]
        )
        deps.sns.publish(TopicArn=deps.topic_arn, Subject=subject[:100], Message=body)


def _count_failures(deps: Dependencies, count: int) -> None:
    if deps.cloudwatch is None:
        return
    try:
        deps.cloudwatch.put_metric_data(
            Namespace=deps.namespace, MetricData=[{"MetricName": FAILED_METRIC, "Value": float(count), "Unit": "Count"}]
        )
    except Exception:  # the reports and messages are written: failing the batch would send them again
        LOG.exception("the %s metric could not be published", FAILED_METRIC)


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
    whole batch timing out. The record in flight stops waiting for the pacing, and its calls stop
    being retried (:func:`org_bootstrap.aws.clients.retries_until`), at half the margin. A record
    that failed for a reason no retry fixes is reported (:func:`report_failure`) and acknowledged."""
    deadline = float("inf")
    clock = deps.api.limits.clock
    if seconds_left is not None:
        deadline = clock() + seconds_left() - margin / 2
        deps = replace(deps, api=deps.api.until(deadline))
    failures: list[dict[str, str]] = []
    waiting: deque[Mapping[str, Any]] = deque(records)
    reported = 0
    with clients.retries_until(deadline, clock):  # Organizations' retries stop at the deadline too
        while waiting and (seconds_left is None or seconds_left() >= margin):
            record = waiting.popleft()
            message_id = record["messageId"]
            name = ""
            try:
                event = json.loads(record["body"])
                name = str((event.get("detail") or {}).get("eventName", "")) if isinstance(event, Mapping) else ""
                outcome = handle(event, deps)
            except (UnrecognizedEventError, InvalidInputError, json.JSONDecodeError) as error:
                LOG.error(json.dumps({"message": message_id, "unusable_event": str(error)}))
                failures.append({"itemIdentifier": message_id})
                continue
            except Exception as error:  # a service error: retried after the visibility timeout, unless no retry helps
                if not is_permanent(error):
                    LOG.exception("message %s failed, to be retried", message_id)
                    failures.append({"itemIdentifier": message_id})
                    continue
                reason = str(error)
                outcome = Outcome(_account_named(event), FAILED, reason=reason, permanent=True)
            if outcome.status == THROTTLED and outcome.waiting:
                # Waits on a change under way that can take hours (a Region still DISABLING, or every
                # Region request slot in use): what could be applied was; retrying the record would
                # only dead-letter it. The drift check, or the next job, finishes the item.
                LOG.warning(json.dumps({"message": message_id, "account": outcome.account_id, "left": outcome.reason}))
            elif outcome.status == THROTTLED:
                waiting.append(record)
            elif outcome.status == FAILED and outcome.permanent:
                try:
                    report_failure(deps, message_id, name, outcome)
                    reported += 1
                except Exception:  # not reported: delivered again rather than lost
                    LOG.exception("message %s: the failure could not be reported, to be retried", message_id)
                    failures.append({"itemIdentifier": message_id})
            elif outcome.status == FAILED:
                failures.append({"itemIdentifier": message_id})
    if reported:
        _count_failures(deps, reported)
    if waiting:
        LOG.warning(json.dumps({"out_of_time": [record["messageId"] for record in waiting]}))
        failures += [{"itemIdentifier": record["messageId"]} for record in waiting]
    if failures:
        LOG.warning(json.dumps({"retrying": [f["itemIdentifier"] for f in failures]}))
    return {"batchItemFailures": failures}
