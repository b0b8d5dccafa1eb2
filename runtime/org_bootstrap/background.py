"""Contact jobs that outlive one Lambda invocation: work to a deadline, then continue in the background.

Shared by the deploy-time custom resource (:mod:`org_bootstrap.alternate_contacts`) and the drift
schedule (:mod:`org_bootstrap.drift`). Each invocation works through the job until its time budget
runs out and saves the cursor; when there is more to do, the function invokes itself
asynchronously with ``{"ContinueJob": <job id>}`` and the next invocation picks up at the cursor.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from org_bootstrap import clients
from org_bootstrap.jobs import Job, JobStore, run_batch
from org_bootstrap.reconcile import ContactsApi, Snapshots

CONTINUE_JOB = "ContinueJob"  # the key of a background continuation's event
SAFETY_MARGIN_SECONDS = 60.0  # left for saving the job and answering before the Lambda timeout
MIN_BATCH_SECONDS = 5.0
DEFAULT_BUDGET_SECONDS = 600.0  # without a Lambda context (local runs)


def deadline(
    context: Any,
    *,
    safety_margin: float = SAFETY_MARGIN_SECONDS,
    min_batch: float = MIN_BATCH_SECONDS,
    default_budget: float = DEFAULT_BUDGET_SECONDS,
) -> float:
    """The ``time.monotonic()`` after which this invocation starts no new account."""
    remaining = context.get_remaining_time_in_millis() / 1000 if context else default_budget
    return time.monotonic() + max(remaining - safety_margin, min_batch)


def work(
    job: Job,
    api: ContactsApi,
    store: JobStore,
    *,
    snapshots: Snapshots | None,
    concurrency: int,
    until: float,
) -> None:
    """Reconcile accounts from the job's cursor until done or ``until``, then save the job."""
    if job.done:
        return

    def save(progress: Job) -> None:
        store.save(progress.id, progress.to_dict())

    run_batch(job, api, snapshots=snapshots, deadline=until, concurrency=concurrency, checkpoint=save)
    save(job)


def continue_in_background(job_id: str, function_name: str | None = None) -> None:
    """Invoke this function (or ``function_name``) asynchronously to carry on with the job."""
    clients.client("lambda").invoke(
        FunctionName=function_name or os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        InvocationType="Event",
        Payload=json.dumps({CONTINUE_JOB: job_id}).encode(),
    )
