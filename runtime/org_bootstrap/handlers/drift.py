"""Drift reconciliation: compare every targeted account with the config; fix what differs, or report it.

An EventBridge Scheduler schedule invokes :func:`on_schedule`. It plans a job exactly as the
deploy-time apply plans a Create (:func:`org_bootstrap.engine.jobs.plan`: every targeted ACTIVE account,
the items of every setting the config manages there: alternate contacts, primary contact,
Regions), and works through it with
:func:`org_bootstrap.engine.jobs.run_batch`, that is :func:`org_bootstrap.engine.reconcile.reconcile_account` at the
Account Management quotas. In report-only mode the job reads and compares but writes nothing.

An organization too big for one invocation is carried on by the check's continuation workflow,
whose steps invoke this same function (:mod:`org_bootstrap.engine.continuation`); a scheduled run that
finds the last check unfinished and its workflow failed resumes it instead of starting another,
and waits while it still runs. When the job is done the full report goes to S3, the
counts go to CloudWatch (``AccountsChecked``, ``AccountsDrifted``, ``AccountsFixed``,
``AccountsFailed``: the totals without a dimension, and each setting's with the ``Setting``
dimension) and, when any account drifted or failed, a summary goes to the SNS topic: account IDs
and item keys only, never the contacts themselves. A Region the check starts enabling is
``fixed`` once the request is accepted; the job follows it while the invocation lasts, and the
next check sees it through.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from org_bootstrap.aws.clients import until_invocation_ends
from org_bootstrap.aws.organization import read_tree
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
    resume,
    work,
)
from org_bootstrap.engine.coverage import REPORT_KEY, organization_snapshot
from org_bootstrap.engine.jobs import DRIFT, DRIFT_JOB_POINTER, Job, Specs, plan, uses_tags
from org_bootstrap.engine.metrics import NAMESPACE, emit_batch
from org_bootstrap.engine.reconcile import CHANGED, DRIFTED, FAILED, SKIPPED, AccountApi, Snapshots
from org_bootstrap.engine.registry import SETTINGS, setting_of
from org_bootstrap.engine.stores import S3JobStore
from org_bootstrap.handlers.environment import HandlerEnvironment

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

METRIC_NAMES = ("AccountsChecked", "AccountsDrifted", "AccountsFixed", "AccountsFailed")
# Named when alternate contacts were the only setting; kept, since alarms and dashboards outside the
# stack read these metrics (docs/operations.md).
DEFAULT_NAMESPACE = NAMESPACE
LISTED = 50  # accounts named in a notification; the report in S3 has all of them
SETTING_DIMENSION = "Setting"  # the per-setting metrics' dimension: alternate_contacts, primary_contact, regions
LAST_JOB = DRIFT_JOB_POINTER  # the name of the drift check's pointer to its last job
# The organization as the check found it (every account, its OU, the settings that target it), kept
# beside the job until the report takes it in: the coverage view reads it (engine.coverage).
ORGANIZATION_SUFFIX = ".organization"


@dataclass(frozen=True)
class DriftResult:
    job_id: str
    report_only: bool
    checked: int
    drifted: int
    fixed: int
    failed: int
    skipped: int
    report: str
    drifted_accounts: tuple[tuple[str, Mapping[str, str]], ...]  # (account, {engine key: action})
    failed_accounts: tuple[tuple[str, str], ...]  # (account, reason)
    # Each setting's counts (checked, drifted, fixed, failed), by setting name.
    by_setting: Mapping[str, tuple[int, int, int, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, job: Job, report: str) -> DriftResult:
        counts = job.counts()
        drifted = [o for o in job.outcomes if o["status"] in (CHANGED, DRIFTED)]
        return cls(
            job_id=job.id,
            report_only=not job.apply,
            checked=len(job.outcomes),
            drifted=len(drifted),
            fixed=counts[CHANGED],
            failed=counts[FAILED],
            skipped=counts[SKIPPED],
            report=report,
            drifted_accounts=tuple((o["account"], o.get("actions", {})) for o in drifted),
            failed_accounts=tuple((o["account"], o.get("reason", "")) for o in job.failures()),
            by_setting=_setting_counts(job),
        )

    @property
    def metrics(self) -> dict[str, int]:
        return dict(zip(METRIC_NAMES, (self.checked, self.drifted, self.fixed, self.failed), strict=True))

    def setting_metrics(self, setting: str) -> dict[str, int]:
        return dict(zip(METRIC_NAMES, self.by_setting[setting], strict=True))

    @property
    def needs_attention(self) -> bool:
        return self.drifted > 0 or self.failed > 0

    def message(self) -> tuple[str, str]:
        """An SNS subject (at most 100 characters) and body."""
        mode = "report-only" if self.report_only else "fix"
        subject = f"Account settings drift: {self.drifted} drifted, {self.fixed} fixed, {self.failed} failed"
        lines = [
            f"The account settings drift check ({mode} mode, job {self.job_id}) is done.",
            f"Accounts checked: {self.checked}; drifted: {self.drifted}; fixed: {self.fixed}; "
            f"failed: {self.failed}; skipped (not ACTIVE or not changeable from here): {self.skipped}.",
        ]
        lines += [
            f"  {name}: checked {checked}, drifted {drifted}, fixed {fixed}, failed {failed}"
            for name, (checked, drifted, fixed, failed) in self.by_setting.items()
        ]
        if self.drifted_accounts:
            verb = "differ from the config" if self.report_only else "were brought back to the config"
            lines += ["", f"Accounts whose settings {verb} (item: action):"]
            lines += [
                f"  {account}: " + ", ".join(f"{t} {a}" for t, a in sorted(actions.items()))
                for account, actions in self.drifted_accounts[:LISTED]
            ]
            if len(self.drifted_accounts) > LISTED:
                lines.append(f"  ... and {len(self.drifted_accounts) - LISTED} more")
        if self.failed_accounts:
            lines += ["", "Accounts that failed:"]
            lines += [f"  {account}: {reason[:200]}" for account, reason in self.failed_accounts[:LISTED]]
            if len(self.failed_accounts) > LISTED:
                lines.append(f"  ... and {len(self.failed_accounts) - LISTED} more")
        lines += ["", f"Full report: {self.report}"]
        return subject[:100], "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "Job": self.job_id,
            "Complete": True,
            "ReportOnly": self.report_only,
            **self.metrics,
            "Settings": {name: self.setting_metrics(name) for name in self.by_setting},
            "Report": self.report,
        }


def _setting_counts(job: Job) -> dict[str, tuple[int, int, int, int]]:
    """Each setting's (checked, drifted, fixed, failed) accounts: an account counts for every
    setting the job had items of there, and drifted or fixed for the settings its actions touched."""
    planned = {account: job.target_sets.get(key, {}) for account, key in job.items}
    counts: dict[str, list[int]] = {}
    for outcome in job.outcomes:
        names = {setting_of(key)[0].name for key in planned.get(outcome["account"], {})}
        touched = {setting_of(key)[0].name for key in outcome.get("actions", {})}
        for name in names | touched:
            found = counts.setdefault(name, [0, 0, 0, 0])
            found[0] += 1
            found[1] += name in touched and outcome["status"] in (CHANGED, DRIFTED)
            found[2] += name in touched and outcome["status"] == CHANGED
            found[3] += outcome["status"] == FAILED
    order = [setting.name for setting in SETTINGS]
    return {name: (c[0], c[1], c[2], c[3]) for name, c in sorted(counts.items(), key=lambda i: order.index(i[0]))}


@dataclass
class Dependencies:
    organizations: Any
    api: AccountApi  # addressed from the calling account (its own contacts go without AccountId)
    jobs: S3JobStore
    spec: Specs  # every setting's, by name (or one setting's spec)
    cloudwatch: Any
    sns: Any
    topic_arn: str
    management_account_id: str
    caller_account_id: str
    report_only: bool = False
    namespace: str = DEFAULT_NAMESPACE
    snapshots: Snapshots | None = None
    concurrency: int = 8
    region_follow_seconds: float | None = None  # between two reads of a Region request (None: the jobs')
    # The deploy-time settings resource's logical ID, whose last job's owed releases a fixing check takes on.
    deploy_job_pointer: str = ""

    @classmethod
    def from_environment(cls, environment: HandlerEnvironment | None = None) -> Dependencies:
        env = environment or HandlerEnvironment()
        return cls(
            organizations=env.organizations,
            api=env.account_api(),
            jobs=env.jobs(),
            spec=env.specs(),
            cloudwatch=env.client("cloudwatch"),
            sns=env.client("sns"),
            topic_arn=env.text("TOPIC_ARN"),
            management_account_id=env.management_account_id,
            caller_account_id=env.caller_account_id,
            report_only=env.flag("REPORT_ONLY"),
            namespace=env.text("METRIC_NAMESPACE", DEFAULT_NAMESPACE),
            snapshots=env.optional_snapshots(),
            concurrency=env.concurrency(),
            region_follow_seconds=env.region_follow_seconds(),
            deploy_job_pointer=env.text("DEPLOY_JOB_POINTER", ""),
        )


@cache
def dependencies() -> Dependencies:
    """Clients and the spec are made once per Lambda container, outside the request path."""
    return Dependencies.from_environment()


def start(deps: Dependencies, job_id: str | None = None, scheduled_time: str | None = None) -> Job:
    """Plan a drift check of every targeted account and store it."""
    job_id = job_id or f"drift-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(clocks.time()))}-{uuid.uuid4().hex[:8]}"
    owed = owed_releases(deps)
    tree = read_tree(deps.organizations, tags=uses_tags(deps.spec))  # tags re-read on every check
    job = plan(
        job_id,
        tree.accounts,
        deps.spec,
        apply=not deps.report_only,
        caller_account_id=deps.caller_account_id,
        management_account_id=deps.management_account_id,
        unfinished=owed or None,
    )
    job.kind = DRIFT
    snapshot = organization_snapshot(tree, deps.spec, deps.management_account_id)
    deps.jobs.save_report(job.id + ORGANIZATION_SUFFIX, snapshot)
    deps.jobs.save(job.id, job.to_dict())
    deps.jobs.set_last_job(LAST_JOB, job.id)
    LOG.info(
        json.dumps(
            {"job": job.id, "scheduled": scheduled_time, "report_only": deps.report_only, "accounts": len(job.items)}
        )
    )
    return job


def owed_releases(deps: Dependencies) -> dict[str, dict[str, Any]]:
    """What the last deploy job left unfinished, once that job is over, for the plan to take its
    owed releases from (a delete or a restore that failed in an account the config let go of;
    :func:`org_bootstrap.engine.jobs.plan` keeps only those, the rest a check plans anyway): a drift check
    compares only the accounts the config targets, so without this those items would wait for the
    next deploy. Only a fixing check takes them on, and only from a finished job (one still running
    works its own accounts)."""
    if deps.report_only or not deps.deploy_job_pointer:
        return {}
    last = deps.jobs.last_job(deps.deploy_job_pointer)
    if last is None:
        return {}
    job = Job.from_dict(last)
    return {} if not job.done or job.superseded_by else job.unfinished()


def finish(job: Job, deps: Dependencies) -> DriftResult:
    """Store the report, publish the metrics and, when anything drifted or failed, notify."""
    result = DriftResult.of(job, deps.jobs.save_report(job.id, report_of(job, deps)))
    deps.cloudwatch.put_metric_data(
        Namespace=deps.namespace,
        MetricData=[
            {"MetricName": name, "Value": float(value), "Unit": "Count"} for name, value in result.metrics.items()
        ]
        + [
            {
                "MetricName": name,
                "Dimensions": [{"Name": SETTING_DIMENSION, "Value": setting}],
                "Value": float(value),
                "Unit": "Count",
            }
            for setting in result.by_setting
            for name, value in result.setting_metrics(setting).items()
        ],
    )
    if result.needs_attention:
        subject, body = result.message()
        deps.sns.publish(TopicArn=deps.topic_arn, Subject=subject, Message=body)
    level = logging.WARNING if result.needs_attention else logging.INFO
    LOG.log(level, json.dumps({"job": job.id, "report_only": result.report_only, **result.metrics}))
    return result


def report_of(job: Job, deps: Dependencies) -> dict[str, Any]:
    """The job's report, with the organization as the check found it (every account's OU and
    targeting: what a coverage view needs beside the outcomes) when it was kept."""
    report = job.report()
    snapshot = deps.jobs.load_report(job.id + ORGANIZATION_SUFFIX)
    if snapshot is not None:
        report[REPORT_KEY] = snapshot
    return report


@until_invocation_ends
def on_schedule(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    """The schedule's target, and each step of the continuation workflow of a check too big for one
    invocation (``{"ContinueJob": <job id>}``)."""
    deps = dependencies()
    budget = Budget.of(
        context,
        safety_margin=SAFETY_MARGIN_SECONDS,
        min_batch=MIN_BATCH_SECONDS,
        default_budget=DEFAULT_BUDGET_SECONDS,
    )
    owner = getattr(context, "aws_request_id", None)
    if CONTINUE_JOB in event:
        job_id = event[CONTINUE_JOB]
    else:
        unfinished = _unfinished_check(deps)
        if unfinished is not None:
            execution = resume(unfinished.id)
            status = "RESUMED" if execution else "PREVIOUS_CHECK_RUNNING"
            LOG.warning(json.dumps({"job": unfinished.id, "status": status, "execution": execution}))
            return {"Job": unfinished.id, "Complete": False, "Status": status}
        job_id = start(deps, scheduled_time=event.get("ScheduledTime")).id
    job = work(
        job_id,
        deps.api,
        deps.jobs,
        snapshots=deps.snapshots,
        concurrency=deps.concurrency,
        budget=budget,
        owner=owner,
        region_follow_seconds=deps.region_follow_seconds,
        # a deploy job working on the same accounts: each account is worked by one of the two
        peers=last_jobs(deps.jobs, deps.deploy_job_pointer) if deps.deploy_job_pointer else None,
    )
    if job is None:
        return busy(job_id)
    emit_batch(job, deps.api.limits, kind="drift", namespace=deps.namespace)
    if not job.done:
        if CONTINUE_JOB not in event:  # the first batch did not finish: the workflow carries the rest
            continue_in_workflow(job.id)
            LOG.info("job %s continues in its workflow after %d of %d accounts", job.id, job.cursor, len(job.items))
        return progress(job)
    return {**progress(job), **finish(job, deps).to_dict()}


def _unfinished_check(deps: Dependencies) -> Job | None:
    """The last check, when it has not finished (its workflow failed, or still runs)."""
    last = deps.jobs.last_job(LAST_JOB)
    job = Job.from_dict(last) if last else None
    return job if job is not None and not job.done else None
