"""Custom resource: every account setting of the organization's accounts, each spec in its own property, in one job.

``on_event`` validates (nothing changes if a field is bad) and plans the job; ``is_complete`` works it
under its lease at the quotas and hands what outlives the deploy wait to the continuation workflow;
a rollback puts back only what the failed deploy wrote. How, step by step: docs/operations.md
("How settings are applied, at any size").
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.aws.clients import error_code, until_invocation_ends
from org_bootstrap.aws.organization import list_accounts
from org_bootstrap.engine import clock as clocks
from org_bootstrap.engine.continuation import (
    CONTINUE_JOB,
    DEFAULT_BUDGET_SECONDS,
    MIN_BATCH_SECONDS,
    SAFETY_MARGIN_SECONDS,
    Budget,
    busy,
    continue_in_workflow,
    last_jobs,
    progress,
    supersede,
    work,
)
from org_bootstrap.engine.jobs import DRIFT_JOB_POINTER, Job, plan, summary, uses_tags
from org_bootstrap.engine.metrics import emit_batch
from org_bootstrap.engine.reconcile import FAILED, AccountApi
from org_bootstrap.engine.registry import SETTINGS, specs_of
from org_bootstrap.engine.stores import DynamoDbSnapshots, S3JobStore
from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.handlers.environment import HandlerEnvironment
from org_bootstrap.handlers.resource import log_event, old_properties, properties, rolling_back

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)
PHYSICAL_ID = "org-bootstrap/alternate-contacts"
# A property whose new value (``cdk deploy -c reconcile=...``) makes an Update of an unchanged
# config compare every targeted account (CloudFormation sends nothing for an unchanged resource).
RECONCILE_PROPERTY = "Reconcile"


@dataclass
class Dependencies:
    organizations: Any
    api: AccountApi  # addressed from the calling account (its own contacts go without AccountId)
    management_account_id: str
    jobs: S3JobStore
    snapshots: DynamoDbSnapshots
    deploy_wait_seconds: float  # after this, from the job's start, the rest goes to the workflow
    concurrency: int
    clock: Callable[[], float] = field(default=clocks.time)  # the wall clock: deadlines and leases
    region_follow_seconds: float | None = None  # between two reads of a Region request (None: the jobs')

    @classmethod
    def from_environment(cls, environment: HandlerEnvironment | None = None) -> Dependencies:
        env = environment or HandlerEnvironment()
        return cls(
            organizations=env.organizations,
            api=env.account_api(),
            management_account_id=env.management_account_id,
            jobs=env.jobs(),
            snapshots=env.snapshots(),
            deploy_wait_seconds=env.seconds("DEPLOY_WAIT_SECONDS", 2700),
            concurrency=env.concurrency(),
            region_follow_seconds=env.region_follow_seconds(),
        )


@cache
def dependencies() -> Dependencies:
    """Clients are made once per Lambda container, outside the request path."""
    return Dependencies.from_environment()


@dataclass(frozen=True)
class Request:
    """A CloudFormation request to this resource, read once: the specs it brings and leaves."""

    event: dict[str, Any]
    kind: str  # Create, Update or Delete
    new_properties: Mapping[str, Any]
    old_properties: Mapping[str, Any]
    new: dict[str, SettingSpec[Any]]  # validated: a bad field raises before any change
    old: dict[str, SettingSpec[Any]]  # the specs the request leaves (none for a Create)

    @classmethod
    def of(cls, event: dict[str, Any]) -> Request:
        kind = event["RequestType"]
        new_properties = properties(event)
        old_properties_ = new_properties if kind == "Delete" else old_properties(event)
        return cls(
            event=event,
            kind=kind,
            new_properties=new_properties,
            old_properties=old_properties_,
            new={} if kind == "Delete" else specs_of(new_properties),
            old=_applied(old_properties_, kind) if kind != "Create" else {},
        )

    @property
    def reconciling(self) -> bool:
        """A new ``Reconcile`` value (``cdk deploy -c reconcile=...``): every targeted account is compared."""
        wanted = self.new_properties.get(RECONCILE_PROPERTY)
        return self.kind == "Update" and wanted not in (None, self.old_properties.get(RECONCILE_PROPERTY))


@until_invocation_ends
def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    log_event(event, redacted=tuple(setting.resource_property for setting in SETTINGS))
    request = Request.of(event)
    deps = dependencies()
    last = deps.jobs.last_job(event["LogicalResourceId"])
    previous = Job.from_dict(last) if last else None
    undone = _failed_job(deps.jobs, event, _spec_text(request.old_properties)) if request.old else None
    rollback = bool(request.old) and rolling_back(event)
    unfinished = None
    # A forward Update after a failed one (kept with --no-rollback) applies its own spec in full;
    # only CloudFormation's rollback, or a Delete leaving a failed job, undoes that job.
    if request.old and (rollback or (request.kind == "Delete" and undone is not None)):
        job = _undoing(request, deps, undone, rollback=rollback)
    elif not request.new and all(spec.removal == "retain" for spec in request.old.values()):
        job = Job(event["RequestId"], {}, [])  # nothing to write or release
    else:
        # Accounts the previous job failed or did not reach are worked again by a Create or Update.
        unfinished = previous.unfinished() if previous is not None and request.kind != "Delete" else None
        job = _plan(event, deps, request.new, request.old, unfinished=unfinished, everywhere=request.reconciling)
    _start(job, request, deps, previous)
    LOG.info(
        json.dumps(
            {
                "job": job.id,
                "accounts_to_reconcile": len(job.items),
                "skipped": len(job.skipped),
                "previous_job": previous.id if previous else None,
                "healed": len(unfinished or {}),
            }
        )
    )
    return {"PhysicalResourceId": PHYSICAL_ID, "Data": {"Job": job.id}}


def _undoing(request: Request, deps: Dependencies, undone: Job | None, *, rollback: bool) -> Job:
    """The job that puts back what the failed deploy wrote (an item no longer wanted gets what was
    there); after a failed job, only what that job wrote, and nothing healed."""
    if undone is not None:
        LOG.warning("job %s failed: this %s undoes what it wrote, and nothing else", undone.id, request.kind)
    only = undone.changed() if undone is not None else None
    job = _plan(request.event, deps, _restoring(request.new), _restoring(request.old), only=only)
    if rollback:
        # A failed rollback strands the stack in UPDATE_ROLLBACK_FAILED (or ROLLBACK_FAILED), which
        # is worse than what it could not put back; an account the rolled-back role may no longer
        # write (the previous config excluded it) is reported in the answer and the report instead.
        job.failure_tolerance = len(job.items)
    return job


def _start(job: Job, request: Request, deps: Dependencies, previous: Job | None) -> None:
    """Store the job for is_complete, point the resource at it, and record which job applies the new specs."""
    job.started_at = deps.clock()
    job.previous = previous.id if previous is not None and not previous.done else ""
    deps.jobs.save(job.id, job.to_dict())
    deps.jobs.set_last_job(request.event["LogicalResourceId"], job.id)
    if request.new:
        deps.jobs.save(_attempt_key(request.event, _spec_text(request.new_properties)), {"job": job.id})


def _spec_text(props: Mapping[str, Any]) -> str:
    """The resource's specs as one text (the alternate contacts' ``Spec`` alone when that is all,
    as before there were other settings), for the record of the job that applied them."""
    given = [
        (setting.resource_property, str(props[setting.resource_property]))
        for setting in SETTINGS
        if setting.resource_property in props
    ]
    if [name for name, _ in given] == ["Spec"]:
        return given[0][1]
    return "\n".join(f"{name}={text}" for name, text in given)


def _applied(props: Mapping[str, Any], request: str) -> dict[str, SettingSpec[Any]]:
    """The specs an Update or Delete leaves. One that is not valid was never applied: the request
    that carried it failed validation and changed nothing (this is CloudFormation rolling it back,
    or deleting it), so there is nothing of it to release or undo."""
    found = specs_of(props, lenient=True)
    if len(found) < sum(1 for setting in SETTINGS if setting.resource_property in props):
        LOG.warning("a previous spec was never applied: this %s starts from nothing for it", request)
    return found


def _plan(
    event: dict[str, Any],
    deps: Dependencies,
    new: Mapping[str, SettingSpec[Any]],
    old: Mapping[str, SettingSpec[Any]],
    *,
    unfinished: dict[str, dict[str, Any]] | None = None,
    only: dict[str, set[str]] | None = None,
    everywhere: bool = False,
) -> Job:
    return plan(
        event["RequestId"],
        list_accounts(deps.organizations, tags=uses_tags(new) or uses_tags(old)),
        dict(new) or None,
        dict(old) or None,
        caller_account_id=deps.api.own_account_id,
        management_account_id=deps.management_account_id,
        unfinished=unfinished,
        only=only,
        everywhere=everywhere,
    )


def _restoring(specs: Mapping[str, SettingSpec[Any]]) -> dict[str, SettingSpec[Any]]:
    """Undoing a failed job: an item it wrote that is no longer wanted gets back what was there."""
    return {name: dataclasses.replace(spec, removal="restore") for name, spec in specs.items()}


def _attempt_key(event: dict[str, Any], spec_text: str) -> str:
    """Where the job that applied a spec to this resource is recorded (under the jobs' prefix)."""
    digest = hashlib.sha256(spec_text.encode()).hexdigest()[:32]
    return f"attempts/{event.get('LogicalResourceId', 'resource')}/{digest}"


def _failed_job(jobs: S3JobStore, event: dict[str, Any], spec_text: str) -> Job | None:
    """The job that applied ``spec_text``, if it failed its request."""
    try:
        job_id = jobs.load(_attempt_key(event, spec_text))["job"]
        job = Job.from_dict(jobs.load(job_id))
    except ClientError as error:
        # Without s3:ListBucket, S3 answers a missing object with 403 AccessDenied, not NoSuchKey
        # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html): no record.
        if error_code(error) not in ("NoSuchKey", "AccessDenied", "404", "403"):
            raise
        return None
    return job if job.failed else None


@until_invocation_ends
def is_complete(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    if CONTINUE_JOB in event:
        return on_continue(event, context)
    deps = dependencies()
    job_id = event["RequestId"]
    job = Job.from_dict(deps.jobs.load(job_id))
    wait_ends = job.started_at + deps.deploy_wait_seconds
    # No account starts after the deploy wait: the batch deadline is the earlier of the two.
    budget = _budget(context, deps, not_after=wait_ends)
    if not job.done and wait_ends - deps.clock() >= MIN_BATCH_SECONDS:  # time for a batch before the wait ends
        worked = _work(job, deps, budget, context)
        if worked is None and deps.clock() < wait_ends:
            return {"IsComplete": False}  # another worker holds the job: poll again
        job = worked or Job.from_dict(deps.jobs.load(job_id))
        if not job.done and deps.clock() < wait_ends - MIN_BATCH_SECONDS:
            return {"IsComplete": False}
    if job.done:
        return _complete(job, deps)
    continue_in_workflow(job.id)
    LOG.warning("job %s continues in its workflow after %d of %d accounts", job.id, job.cursor, len(job.items))
    data = summary(job, "(in progress)")
    return {"IsComplete": True, "Data": {**data, "Status": "CONTINUING_IN_WORKFLOW"}}


def on_continue(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """A step of the continuation workflow: one batch of a job that outlived the deploy wait."""
    deps = dependencies()
    job_id = event[CONTINUE_JOB]
    job = _work(Job.from_dict(deps.jobs.load(job_id)), deps, _budget(context, deps), context)
    if job is None:
        return busy(job_id)
    if not job.done:
        return progress(job)
    location = deps.jobs.save_report(job.id, job.report())
    counts = job.counts()
    beyond = counts[FAILED] > job.failure_tolerance
    level = logging.ERROR if beyond else logging.INFO
    LOG.log(level, json.dumps({"job": job.id, "finished_in_workflow": True, "counts": counts, "report": location}))
    return progress(job, Report=location, Failed=counts[FAILED], FailedBeyondTolerance=beyond)


def _complete(job: Job, deps: Dependencies) -> dict[str, Any]:
    location = deps.jobs.save_report(job.id, job.report())
    data = summary(job, location)
    failed = data["Failed"]
    if failed > job.failure_tolerance:
        raise RuntimeError(
            f"{failed} account(s) failed, more than the failure_tolerance of {job.failure_tolerance}: "
            f"{data['FailedAccounts']} ({data['FailureReasons']}). Full report: {location}"[:3500]
        )
    return {"IsComplete": True, "Data": {**data, "Status": "COMPLETE"}}


def _budget(context: Any, deps: Dependencies, *, not_after: float | None = None) -> Budget:
    # The budget's constants are read here, at call time, so that they can be tuned per module.
    return Budget.of(
        context,
        clock=deps.clock,
        safety_margin=SAFETY_MARGIN_SECONDS,
        min_batch=MIN_BATCH_SECONDS,
        default_budget=DEFAULT_BUDGET_SECONDS,
        not_after=not_after,
    )


def _work(job: Job, deps: Dependencies, budget: Budget, context: Any) -> Job | None:
    """A batch of ``job`` (as read) under its lease, after closing the job it supersedes; None while
    either is busy. The batch works the job as the lease reads it, never the copy given."""
    if job.previous and not supersede(deps.jobs, job.previous, job.id, until=budget.ends, now=deps.clock()):
        return None
    worked = work(
        job.id,
        deps.api,
        deps.jobs,
        snapshots=deps.snapshots,
        concurrency=deps.concurrency,
        budget=budget,
        clock=deps.clock,
        owner=getattr(context, "aws_request_id", None),
        region_follow_seconds=deps.region_follow_seconds,
        # a drift check working on the same accounts (where it shares the job bucket): each account
        # is worked by one of the two
        peers=last_jobs(deps.jobs, DRIFT_JOB_POINTER),
    )
    if worked is not None:
        emit_batch(worked, deps.api.limits, kind="deploy")
    return worked
