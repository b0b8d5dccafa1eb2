"""Custom resource: the alternate contacts of the organization's accounts.

Asynchronous by design (CDK Provider framework with is-complete polling):

- ``on_event`` validates the spec (nothing changes if any field is bad), lists the organization,
  plans the work the request implies and stores the job in S3. It returns at once.
- ``is_complete`` is invoked by the framework every query interval; each call works through the
  job until its time budget runs out and saves the cursor. When the job is done it writes the full
  report to S3 and answers with counts; failed accounts beyond the tolerance fail the resource.
- An organization too big to finish inside the deploy's wait budget (CloudFormation waits at most
  an hour for a custom resource) is not a failed deploy: ``is_complete`` reports the resource
  complete with ``Complete=false`` and hands the rest to ``on_continue``, which carries on in
  background invocations of this same function until the job is done.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from org_bootstrap.background import (
    CONTINUE_JOB,
    DEFAULT_BUDGET_SECONDS,
    MIN_BATCH_SECONDS,
    SAFETY_MARGIN_SECONDS,
    continue_in_background,
    deadline,
    work,
)
from org_bootstrap.contact_spec import ContactSpec
from org_bootstrap.environment import HandlerEnvironment
from org_bootstrap.jobs import Job, JobStore, plan, summary
from org_bootstrap.organization import list_accounts
from org_bootstrap.reconcile import FAILED, ContactsApi
from org_bootstrap.resource import log_event, old_properties, properties
from org_bootstrap.stores import DynamoDbSnapshots
from org_bootstrap.validation import InvalidInputError

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)
PHYSICAL_ID = "org-bootstrap/alternate-contacts"


@dataclass
class Dependencies:
    organizations: Any
    api: ContactsApi  # addressed from the calling account (its own contacts go without AccountId)
    management_account_id: str
    jobs: JobStore
    snapshots: DynamoDbSnapshots
    deploy_wait_seconds: float
    concurrency: int

    @classmethod
    def from_environment(cls, environment: HandlerEnvironment | None = None) -> Dependencies:
        env = environment or HandlerEnvironment()
        return cls(
            organizations=env.organizations,
            api=env.contacts_api(),
            management_account_id=env.management_account_id,
            jobs=env.jobs(),
            snapshots=env.snapshots(),
            deploy_wait_seconds=env.seconds("DEPLOY_WAIT_SECONDS", 2700),
            concurrency=env.concurrency(),
        )


@cache
def dependencies() -> Dependencies:
    """Clients are made once per Lambda container, outside the request path."""
    return Dependencies.from_environment()


def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    log_event(event, redacted=("Spec",))
    request = event["RequestType"]
    if request == "Delete":
        try:
            old: ContactSpec | None = ContactSpec.from_json(properties(event).get("Spec", ""))
        except InvalidInputError:
            old = None  # a Create that failed validation changed nothing: nothing to undo
        new = None
    else:
        new = ContactSpec.from_json(properties(event).get("Spec", ""))  # raises before any change
        old = ContactSpec.from_json(old_properties(event)["Spec"]) if request == "Update" else None
    deps = dependencies()
    if new is None and (old is None or old.removal == "retain"):
        job = Job(event["RequestId"], {}, [])
    else:
        job = plan(
            event["RequestId"],
            list_accounts(deps.organizations),
            new,
            old,
            caller_account_id=deps.api.own_account_id,
            management_account_id=deps.management_account_id,
        )
    deps.jobs.save(job.id, job.to_dict())
    LOG.info(json.dumps({"job": job.id, "accounts_to_reconcile": len(job.items), "skipped": len(job.skipped)}))
    return {"PhysicalResourceId": PHYSICAL_ID, "Data": {"Job": job.id}}


def is_complete(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    if CONTINUE_JOB in event:
        return on_continue(event, context)
    deps = dependencies()
    job = Job.from_dict(deps.jobs.load(event["RequestId"]))
    _work(job, deps, context)
    if not job.done:
        if time.time() - job.started_at < deps.deploy_wait_seconds:
            return {"IsComplete": False}
        _continue_in_background(job.id)
        data = summary(job, "(in progress)")
        LOG.warning("job %s continues in the background after %d of %d accounts", job.id, job.cursor, len(job.items))
        return {"IsComplete": True, "Data": {**data, "Status": "CONTINUING_IN_BACKGROUND"}}
    location = deps.jobs.save_report(job.id, job.report())
    data = summary(job, location)
    failed = data["Failed"]
    if failed > job.failure_tolerance:
        raise RuntimeError(
            f"{failed} account(s) failed, more than the failure_tolerance of {job.failure_tolerance}: "
            f"{data['FailedAccounts']} ({data['FailureReasons']}). Full report: {location}"[:3500]
        )
    return {"IsComplete": True, "Data": {**data, "Status": "COMPLETE"}}


def on_continue(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Background continuation of a job that outlived the deploy's wait budget."""
    deps = dependencies()
    job = Job.from_dict(deps.jobs.load(event[CONTINUE_JOB]))
    _work(job, deps, context)
    if not job.done:
        _continue_in_background(job.id)
        return {"Complete": False}
    location = deps.jobs.save_report(job.id, job.report())
    counts = job.counts()
    level = logging.ERROR if counts[FAILED] > job.failure_tolerance else logging.INFO
    LOG.log(level, json.dumps({"job": job.id, "finished_in_background": True, "counts": counts, "report": location}))
    return {"Complete": True, "Report": location}


def _work(job: Job, deps: Dependencies, context: Any) -> None:
    # The budget's constants are read here, at call time, so that they can be tuned per module.
    until = deadline(
        context,
        safety_margin=SAFETY_MARGIN_SECONDS,
        min_batch=MIN_BATCH_SECONDS,
        default_budget=DEFAULT_BUDGET_SECONDS,
    )
    work(job, deps.api, deps.jobs, snapshots=deps.snapshots, concurrency=deps.concurrency, until=until)


def _continue_in_background(job_id: str) -> None:
    continue_in_background(job_id)
