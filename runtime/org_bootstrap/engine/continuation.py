"""Contact jobs that outlive one invocation: one worker at a time, batches to a deadline, and a
Step Functions workflow that carries the rest.

Shared by the deploy-time custom resource (:mod:`org_bootstrap.handlers.account_settings`) and the drift
check (:mod:`org_bootstrap.handlers.drift`).

- **One worker per job.** A worker takes the job's lease before it touches an account: the lease
  is a field of the job's own S3 object, written with ``If-Match`` on the ETag it was read with, so
  of two invocations that start at once exactly one gets it, and the other backs off having read
  only the job. Every checkpoint is written the same way, so a worker that lost its lease stops.
  The lease runs until the holder's invocation must have ended (its Lambda timeout), which no
  holder outlives: a crashed holder blocks the job for the rest of its own invocation at most.
- **Batches to a deadline.** A batch starts no account after its deadline (for the custom
  resource: the deploy wait as well as the Lambda's remaining time).
- **The continuation workflow.** A job not done in the invocations its caller gives it goes to a
  Step Functions Standard state machine (``constructs.job_workflow.JobWorkflow``), started with
  the job ID as the execution's name: it invokes the function with ``{"ContinueJob": <job id>}``,
  retries any error with backoff, loops until the job is done, and fails (which alarms) when the
  retries run out. Its progress (cursor and count) is in the execution's history. The next deploy
  or drift run resumes a job whose execution failed (:func:`resume`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.aws import clients
from org_bootstrap.engine import clock as clocks
from org_bootstrap.engine.jobs import Job, Standing, run_batch
from org_bootstrap.engine.reconcile import AccountApi, Snapshots
from org_bootstrap.engine.stores import S3JobStore, StaleWrite
from org_bootstrap.handlers.environment import HandlerEnvironment

LOG = logging.getLogger(__name__)

CONTINUE_JOB = "ContinueJob"  # the key of the workflow's event for the function
SAFETY_MARGIN_SECONDS = 60.0  # left for saving the job and answering before the Lambda timeout
MIN_BATCH_SECONDS = 5.0
DEFAULT_BUDGET_SECONDS = 600.0  # without a Lambda context (local runs)
LEASE = "lease"  # the job object's field that holds the lease
STATE_MACHINE_ENV = "JOB_WORKFLOW_ARN"
MAX_RESUMES = 50  # executions per job: the first, then one per resume
OPEN = "RUNNING"  # the one Step Functions execution status that is not closed


class LeaseLost(Exception):
    """Another worker took the job's lease: this one stops without saving."""


@dataclass(frozen=True)
class Budget:
    """When an invocation starts no new account (``until``) and when it must have ended (``ends``),
    on the wall clock that leases are compared on."""

    until: float
    ends: float

    @classmethod
    def of(
        cls,
        context: Any,
        *,
        clock: Callable[[], float] = clocks.time,
        safety_margin: float = SAFETY_MARGIN_SECONDS,
        min_batch: float = MIN_BATCH_SECONDS,
        default_budget: float = DEFAULT_BUDGET_SECONDS,
        not_after: float | None = None,
    ) -> Budget:
        now = clock()
        remaining = context.get_remaining_time_in_millis() / 1000 if context else default_budget
        until = now + max(remaining - safety_margin, min_batch)
        if not_after is not None:
            until = min(until, not_after)
        return cls(until=until, ends=now + remaining)


class Lease:
    """A worker's hold on one job (see the module's description)."""

    def __init__(self, store: S3JobStore, job: Job, etag: str, holder: dict[str, Any]) -> None:
        self.store = store
        self.job = job
        self.etag = etag
        self.holder = holder

    @classmethod
    def take(cls, store: S3JobStore, job_id: str, *, owner: str, until: float, now: float) -> Lease | None:
        """The job's lease, or None when another worker holds it (nothing was written)."""
        data, etag = store.load_versioned(job_id)
        held = data.get(LEASE)
        if held and held["owner"] != owner and held["until"] > now:
            LOG.info(json.dumps({"job": job_id, "busy": True, "lease_until": held["until"]}))
            return None
        holder = {"owner": owner, "until": until, "taken": now}
        try:
            etag = store.save(job_id, {**data, LEASE: holder}, if_match=etag)
        except StaleWrite:
            LOG.info(json.dumps({"job": job_id, "busy": True, "raced": True}))
            return None
        return cls(store, Job.from_dict(data), etag, holder)

    def checkpoint(self, job: Job) -> None:
        """Save the progress, still holding the lease; raise LeaseLost if another worker took it."""
        self._write(job, self.holder)

    def release(self, job: Job) -> None:
        self._write(job, None)

    def _write(self, job: Job, holder: dict[str, Any] | None) -> None:
        data = job.to_dict() if holder is None else {**job.to_dict(), LEASE: holder}
        try:
            self.etag = self.store.save(job.id, data, if_match=self.etag)
        except StaleWrite:
            raise LeaseLost(job.id) from None


def work(
    job_id: str,
    api: AccountApi,
    store: S3JobStore,
    *,
    snapshots: Snapshots | None,
    concurrency: int,
    budget: Budget,
    clock: Callable[[], float] = clocks.time,
    owner: str | None = None,
    region_follow_seconds: float | None = None,
    peers: Callable[[], list[Job]] | None = None,
    standing: Standing | None = None,
) -> Job | None:
    """Under the job's lease, reconcile accounts from its cursor until done or ``budget.until``,
    then save and release. None when another worker holds the lease: no account was touched.
    ``region_follow_seconds``: between two reads of one Region request (the jobs' default if None)."""
    lease = Lease.take(store, job_id, owner=owner or uuid.uuid4().hex, until=budget.ends, now=clock())
    if lease is None:
        return None
    job = lease.job
    if job.done:
        return job if _released(lease, job) else None
    try:
        run_batch(
            job,
            api,
            snapshots=snapshots,
            deadline=budget.until,
            clock=clock,
            concurrency=concurrency,
            checkpoint=lease.checkpoint,
            follow_every=region_follow_seconds,
            peers=peers,
            standing=standing,
        )
    except LeaseLost:
        LOG.warning(json.dumps({"job": job_id, "lease_lost": True}))
        return None
    except Exception:
        try:
            lease.release(job)  # the progress so far, and the lease free for the retry
        except Exception:  # the batch's own error is the one to report; the lease expires anyway
            LOG.exception("job %s: could not release the lease after a failed batch", job_id)
        raise
    return job if _released(lease, job) else None


def _released(lease: Lease, job: Job) -> bool:
    """Save and release; False when another worker took the job meanwhile (a conditional write that
    lost its race): this worker stops, as when it loses the lease mid-batch, and the job is the other's."""
    try:
        lease.release(job)
    except LeaseLost:
        LOG.warning(json.dumps({"job": job.id, "lease_lost": True}))
        return False
    return True


def last_jobs(store: S3JobStore, *pointers: str) -> Callable[[], list[Job]]:
    """The last jobs of these pointers (a resource's logical ID, the drift check's), read at each call:
    the other jobs a job may meet working on the same accounts (``run_batch``'s ``peers``)."""

    def read() -> list[Job]:
        found: list[Job] = []
        for pointer in filter(None, pointers):
            try:
                data = store.last_job(pointer)
            except ClientError as error:
                # Without s3:ListBucket, S3 answers a missing object with 403 AccessDenied, not NoSuchKey
                # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html): no such job.
                if clients.error_code(error) not in ("AccessDenied", "403"):
                    raise
                data = None
            if data:
                found.append(Job.from_dict(data))
        return found

    return read


def supersede(store: S3JobStore, job_id: str, by: str, *, until: float, now: float) -> bool:
    """Close ``job_id`` for ``by``, which has taken over its unfinished accounts, so that its
    workflow stops at its next batch. False while the job's worker still holds its lease."""
    try:
        previous = Job.from_dict(store.load(job_id))
    except ClientError as error:
        if clients.error_code(error) == "NoSuchKey":
            return True  # expired by the bucket's lifecycle: nothing left to stop
        raise
    if previous.done:
        return True
    lease = Lease.take(store, job_id, owner=f"superseded-by-{by}", until=until, now=now)
    if lease is None:
        return False
    lease.job.superseded_by = by
    try:
        lease.release(lease.job)
    except LeaseLost:  # another writer came first (its worker, resumed): not closed yet, try again later
        LOG.info(json.dumps({"job": job_id, "busy": True, "raced": True}))
        return False
    LOG.info(json.dumps({"job": job_id, "superseded_by": by}))
    return True


def progress(job: Job, **extra: Any) -> dict[str, Any]:
    """What the workflow's Choice reads (``Complete``, ``Busy``) and its history shows: how far the
    job got, and how many Region requests it still follows (in progress at AWS, not failed)."""
    found = {"Job": job.id, "Complete": job.done, "Busy": False, "FailedBeyondTolerance": False}
    counts = {"Cursor": job.cursor, "Of": len(job.items), "RegionsInProgress": len(job.region_requests)}
    return {**found, **counts, **extra}


def busy(job_id: str) -> dict[str, Any]:
    return {"Job": job_id, "Complete": False, "Busy": True}


# -- the workflow ------------------------------------------------------------------------------


def _arn() -> str:
    return HandlerEnvironment().text(STATE_MACHINE_ENV)


def _execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def execution_name(job_id: str, attempt: int) -> str:
    """The job's own name for its first execution, then ``<job>-r<N>`` for the Nth resume."""
    return (job_id if attempt == 0 else f"{job_id}-r{attempt}")[:80]


def continue_in_workflow(job_id: str, *, attempt: int = 0) -> str:
    """Start the job's execution of the continuation workflow; return its name.

    Starting it again while it runs is harmless: Step Functions answers a StartExecution with the
    name and input of a running execution with that execution.
    """
    name = execution_name(job_id, attempt)
    try:
        clients.client("stepfunctions").start_execution(
            stateMachineArn=_arn(), name=name, input=json.dumps({"Job": job_id})
        )
    except ClientError as error:
        if clients.error_code(error) != "ExecutionAlreadyExists":
            raise
        LOG.info(json.dumps({"job": job_id, "execution": name, "already_started": True}))
    LOG.info(json.dumps({"job": job_id, "execution": name, "started": True}))
    return name


def execution_status(job_id: str) -> tuple[int, str | None]:
    """The job's latest execution (its attempt number) and status, or (-1, None) if it never had one."""
    sfn = clients.client("stepfunctions")
    latest: tuple[int, str | None] = (-1, None)
    for attempt in range(MAX_RESUMES):
        try:
            found = sfn.describe_execution(executionArn=_execution_arn(_arn(), execution_name(job_id, attempt)))
        except ClientError as error:
            if clients.error_code(error) == "ExecutionDoesNotExist":
                return latest
            raise
        latest = (attempt, str(found["status"]))
    return latest


def resume(job_id: str) -> str | None:
    """Carry on with a job that is not done: start a new execution unless one is running.

    Returns the name of the execution started, or None when one is already running.
    """
    attempt, status = execution_status(job_id)
    if status == OPEN:
        return None
    if attempt + 1 >= MAX_RESUMES:
        raise RuntimeError(f"job {job_id} was resumed {MAX_RESUMES - 1} times; see its executions' history")
    LOG.warning(json.dumps({"job": job_id, "resumed": True, "last_execution_status": status}))
    return continue_in_workflow(job_id, attempt=attempt + 1)
