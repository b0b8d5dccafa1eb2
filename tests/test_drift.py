"""Drift reconciliation against the strict simulated organization: contacts edited behind the app's
back are fixed (or, report-only, only reported); metrics and notifications say what happened."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest

from org_bootstrap.aws import clients
from org_bootstrap.aws.organization import list_accounts
from org_bootstrap.engine import jobs
from org_bootstrap.engine.jobs import MANAGEMENT_ACCOUNT, Job
from org_bootstrap.engine.pacing import Quota, RateLimits
from org_bootstrap.engine.reconcile import AccountApi
from org_bootstrap.engine.registry import account_quotas
from org_bootstrap.engine.stores import S3JobStore
from org_bootstrap.handlers import drift
from org_bootstrap.handlers.drift import METRIC_NAMES, Dependencies
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec
from org_bootstrap.settings.primary_contact.spec import PrimaryContactSpec
from org_bootstrap.settings.regions.spec import RegionSpec
from simulation.organization import ApiLog, Organization
from tests.conftest import LIFTED_QUOTAS, US_PRIMARY_CONTACT

FAST = LIFTED_QUOTAS  # every setting's operations
NAMESPACE = "Test/AlternateContacts"
SCHEDULED = {"Source": "drift-schedule", "ScheduledTime": "2026-11-21T00:00:00Z"}
WORKFLOW = "arn:aws:states:us-east-1:111111111111:stateMachine:OrgBootstrapManagement-DriftChecks"


def contact(name: str, email: str = "team@example.com") -> dict[str, str]:
    return {"Name": name, "Title": "Owner", "EmailAddress": email, "PhoneNumber": "+1 206 555 0100"}


BILLING, OPERATIONS, SECURITY = contact("Billing"), contact("Operations"), contact("Security")
DEFAULT = {"BILLING": BILLING, "OPERATIONS": OPERATIONS, "SECURITY": SECURITY}
EDITED = contact("Someone In The Console", "someone@example.org")


class Context:
    def __init__(self, remaining_seconds: float) -> None:
        self.remaining = remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining * 1000)


@dataclass
class World:
    org: Organization
    log: ApiLog
    deps: Dependencies
    ids: dict[str, str]
    inbox: str  # an SQS queue subscribed to the notification topic
    continued: list[str] = field(default_factory=list)  # executions of the continuation workflow run so far

    def run(self, context: Context | None = None) -> dict[str, Any]:
        """A scheduled check, and its continuation workflow's batches until it is done."""
        answer = drift.on_schedule(SCHEDULED, context)
        if not answer["Complete"]:
            names = self.executions()
            assert names and names[-1] not in self.continued, "an incomplete check must start its workflow"
            self.continued.append(names[-1])
        while not answer["Complete"]:
            answer = drift.on_schedule({"ContinueJob": answer["Job"]}, context)
        return answer

    def executions(self) -> list[str]:
        listed = clients.client("stepfunctions").list_executions(stateMachineArn=WORKFLOW)["executions"]
        return [execution["name"] for execution in sorted(listed, key=lambda e: e["startDate"])]

    def notifications(self) -> list[dict[str, str]]:
        sqs = clients.client("sqs")
        found = sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10).get("Messages", [])
        for message in found:
            sqs.delete_message(QueueUrl=self.inbox, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(message["Body"]) for message in found]

    def metric(self, name: str, setting: str | None = None) -> list[float]:
        """Every value published for a metric (one per finished check), oldest first: the total
        (no dimension), or one setting's (``Setting`` dimension); read from the simulated
        CloudWatch's store, since checks seconds apart share one statistics period."""
        from moto.cloudwatch.models import cloudwatch_backends

        backend = cloudwatch_backends[os.environ["MOTO_ACCOUNT_ID"]]["us-east-1"]
        wanted = [] if setting is None else [("Setting", setting)]
        points = [
            d
            for d in backend.get_all_metrics()
            if d.namespace == NAMESPACE
            and d.name == name
            and [(dimension.name, dimension.value) for dimension in d.dimensions] == wanted
        ]
        assert all(point.unit == "Count" for point in points)
        return [point.value for point in sorted(points, key=lambda point: point.timestamp)]  # type: ignore[attr-defined]

    def last_metrics(self, setting: str | None = None) -> dict[str, float]:
        return {name: self.metric(name, setting)[-1] for name in METRIC_NAMES}


@pytest.fixture
def world(api_log: ApiLog) -> Iterator[World]:
    """Root: management, security, a suspended account. Workloads OU: workloads-a, workloads-b.
    Excluded OU: excluded-a (not targeted)."""
    org = Organization()
    org.enable_trusted_access()
    workloads, excluded = org.create_ou("Workloads"), org.create_ou("Excluded")
    ids = {
        "management": org.management_account_id,
        "security": org.create_account("security", account_id="222222222222"),
        "suspended": org.create_account("suspended", account_id="999999999999"),
        "workloads-a": org.create_account("workloads-a", parent_id=workloads, account_id="333333333333"),
        "workloads-b": org.create_account("workloads-b", parent_id=workloads, account_id="444444444444"),
        "excluded-a": org.create_account("excluded-a", parent_id=excluded, account_id="555555555555"),
    }
    org.set_status(ids["suspended"], "SUSPENDED")
    s3 = clients.client("s3")
    s3.create_bucket(Bucket="jobs")
    sns, sqs = clients.client("sns"), clients.client("sqs")
    topic = sns.create_topic(Name="notifications")["TopicArn"]
    inbox = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    spec = ContactSpec.parse({"contacts": DEFAULT, "targets": {"exclude_organizational_units": [excluded]}})
    deps = Dependencies(
        organizations=org.organizations,
        api=AccountApi(clients.client("account"), org.management_account_id, RateLimits(FAST)),
        jobs=S3JobStore(s3, "jobs"),
        spec=spec,
        cloudwatch=clients.client("cloudwatch"),
        sns=sns,
        topic_arn=topic,
        management_account_id=org.management_account_id,
        caller_account_id=org.management_account_id,
        namespace=NAMESPACE,
        concurrency=2,
    )
    clients.client("stepfunctions").create_state_machine(
        name=WORKFLOW.rsplit(":", 1)[-1],
        definition=json.dumps({"StartAt": "Work", "States": {"Work": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::111111111111:role/workflow",
    )
    world = World(org, api_log, deps, ids, inbox)
    with (
        mock.patch.object(drift, "dependencies", lambda: deps),
        mock.patch.dict(os.environ, {"JOB_WORKFLOW_ARN": WORKFLOW}),
        mock.patch("botocore.endpoint.time.sleep"),
    ):
        yield world


CHECKED = ["management", "security", "workloads-a", "workloads-b"]  # targeted and ACTIVE


def converged(world: World) -> World:
    """Every targeted account at the config, and the first check's notification read."""
    world.run()
    world.notifications()
    return world


def test_the_first_check_brings_every_targeted_account_to_the_config(world: World) -> None:
    answer = world.run()

    for name in CHECKED:
        assert world.org.contacts(world.ids[name]) == DEFAULT, name
    assert world.org.contacts(world.ids["excluded-a"]) == {}
    assert world.org.contacts(world.ids["suspended"]) == {}
    assert answer["AccountsChecked"] == 4
    assert world.last_metrics() == {
        "AccountsChecked": 4,
        "AccountsDrifted": 4,
        "AccountsFixed": 4,
        "AccountsFailed": 0,
    }
    (notification,) = world.notifications()
    assert notification["Subject"] == "Account settings drift: 4 drifted, 4 fixed, 0 failed"


def test_a_contact_edited_behind_the_apps_back_is_fixed_and_reported(world: World) -> None:
    converged(world)
    account = world.ids["workloads-a"]
    world.org.put_contact(account, "SECURITY", EDITED)
    writes = world.log.writes()

    answer = world.run()

    assert world.org.contacts(account) == DEFAULT
    assert world.log.writes() == writes + 1
    assert world.last_metrics() == {
        "AccountsChecked": 4,
        "AccountsDrifted": 1,
        "AccountsFixed": 1,
        "AccountsFailed": 0,
    }
    (notification,) = world.notifications()
    assert notification["Subject"] == "Account settings drift: 1 drifted, 1 fixed, 0 failed"
    body = notification["Message"]
    assert "fix mode" in body
    assert f"{account}: SECURITY put" in body
    assert "were brought back to the config" in body
    assert "someone@example.org" not in body and "team@example.com" not in body  # people's data stays out
    report = json.loads(
        clients.client("s3").get_object(Bucket="jobs", Key=answer["Report"].removeprefix("s3://jobs/"))["Body"].read()
    )
    assert report["counts"]["changed"] == 1
    assert report["complete"] is True


def test_report_only_reports_the_drift_and_changes_nothing(world: World) -> None:
    converged(world)
    account = world.ids["workloads-b"]
    world.org.put_contact(account, "BILLING", EDITED)
    world.org.put_contact(world.ids["management"], "OPERATIONS", EDITED)
    writes = world.log.writes()
    world.deps.report_only = True

    answer = world.run()

    assert world.org.contacts(account)["BILLING"] == EDITED
    assert world.org.contacts(world.ids["management"])["OPERATIONS"] == EDITED
    assert world.log.writes() == writes
    assert answer["ReportOnly"] is True
    assert world.last_metrics() == {
        "AccountsChecked": 4,
        "AccountsDrifted": 2,
        "AccountsFixed": 0,
        "AccountsFailed": 0,
    }
    (notification,) = world.notifications()
    assert notification["Subject"] == "Account settings drift: 2 drifted, 0 fixed, 0 failed"
    assert "report-only mode" in notification["Message"]
    assert f"{account}: BILLING put" in notification["Message"]
    assert f"{world.ids['management']}: OPERATIONS put" in notification["Message"]
    assert "differ from the config" in notification["Message"]


def test_the_report_carries_every_account_with_its_ou_and_the_settings_that_target_it(world: World) -> None:
    converged(world)
    world.org.put_contact(world.ids["workloads-a"], "SECURITY", EDITED)
    world.deps.report_only = True

    answer = world.run()

    report = json.loads(
        clients.client("s3").get_object(Bucket="jobs", Key=answer["Report"].removeprefix("s3://jobs/"))["Body"].read()
    )
    organization = report["organization"]
    assert organization["format"] == 1
    assert organization["settings"] == ["alternate_contacts"]
    rows = {row[0]: row for row in organization["accounts"]}
    assert set(rows) == set(world.ids.values())  # the untargeted and the suspended too, not only those checked
    (workloads,) = [unit for unit, (name, _) in organization["units"].items() if name == "Workloads"]
    root = organization["units"][workloads][1]
    assert organization["units"][root] == ["Root", ""]
    assert rows[world.ids["workloads-a"]] == [world.ids["workloads-a"], "workloads-a", workloads, "ACTIVE", 1]
    assert rows[world.ids["excluded-a"]][4] == 0  # in the excluded OU: no setting targets it
    assert rows[world.ids["suspended"]][3] == "SUSPENDED"
    statuses = {outcome["account"]: outcome["status"] for outcome in report["outcomes"]}
    assert statuses[world.ids["workloads-a"]] == "drifted"
    assert "someone@example.org" not in json.dumps(report)  # people's data stays out of the report


# -- every setting: the primary contact beside the alternate contacts ------------------------------

PRIMARY = {**US_PRIMARY_CONTACT, "FullName": "Example Corp Cloud Platform"}
PRIMARY_EDITED = {**PRIMARY, "FullName": "Someone In The Console", "PhoneNumber": "+1 206 555 0199"}


def with_primary_contact(world: World) -> World:
    """The alternate contacts as before, and the primary contact on the two workloads accounts."""
    assert isinstance(world.deps.spec, ContactSpec)
    primary = PrimaryContactSpec.parse(
        {"contact": PRIMARY, "targets": {"accounts": [world.ids["workloads-a"], world.ids["workloads-b"]]}}
    )
    world.deps.spec = {"alternate_contacts": world.deps.spec, "primary_contact": primary}
    return converged(world)


def test_a_primary_contact_changed_by_hand_is_fixed_and_counted_as_its_setting(world: World) -> None:
    with_primary_contact(world)
    assert world.org.primary_contact(world.ids["workloads-b"]) == PRIMARY
    account = world.ids["workloads-a"]
    world.org.set_primary_contact(account, PRIMARY_EDITED)
    writes = world.log.writes()

    answer = world.run()

    assert world.org.primary_contact(account) == PRIMARY
    assert world.log.writes() == writes + 1
    assert world.last_metrics() == {"AccountsChecked": 4, "AccountsDrifted": 1, "AccountsFixed": 1, "AccountsFailed": 0}
    assert world.last_metrics("primary_contact") == {
        "AccountsChecked": 2,
        "AccountsDrifted": 1,
        "AccountsFixed": 1,
        "AccountsFailed": 0,
    }
    assert world.last_metrics("alternate_contacts") == {
        "AccountsChecked": 4,
        "AccountsDrifted": 0,
        "AccountsFixed": 0,
        "AccountsFailed": 0,
    }
    assert answer["Settings"]["primary_contact"]["AccountsFixed"] == 1
    (notification,) = world.notifications()
    body = notification["Message"]
    assert f"{account}: primary_contact/PRIMARY put" in body
    assert "primary_contact: checked 2, drifted 1, fixed 1, failed 0" in body
    assert "Someone In The Console" not in body and "555 0199" not in body  # people's data stays out


def test_report_only_reports_a_changed_primary_contact_and_leaves_it(world: World) -> None:
    with_primary_contact(world)
    account = world.ids["workloads-b"]
    world.org.set_primary_contact(account, PRIMARY_EDITED)
    world.org.put_contact(world.ids["security"], "BILLING", EDITED)
    writes = world.log.writes()
    world.deps.report_only = True

    world.run()

    assert world.org.primary_contact(account) == PRIMARY_EDITED
    assert world.log.writes() == writes
    assert world.last_metrics("primary_contact") == {
        "AccountsChecked": 2,
        "AccountsDrifted": 1,
        "AccountsFixed": 0,
        "AccountsFailed": 0,
    }
    assert world.last_metrics("alternate_contacts")["AccountsDrifted"] == 1
    assert world.last_metrics()["AccountsDrifted"] == 2
    (notification,) = world.notifications()
    assert f"{account}: primary_contact/PRIMARY put" in notification["Message"]
    assert "differ from the config" in notification["Message"]


# -- every setting: opt-in Regions, whose requests AWS finishes later --------------------------------

HONG_KONG, UAE, BAHRAIN = "ap-east-1", "me-central-1", "me-south-1"
REGIONS_WANTED = {HONG_KONG: "ENABLED", UAE: "ENABLED"}  # as Organization.regions shows them; Bahrain DISABLED


@pytest.fixture
def regions_world(world: World) -> Iterator[World]:
    """The alternate contacts as before, and on the management account and the two workloads
    accounts Hong Kong and the UAE enabled and Bahrain disabled (listed under ``disable``); every
    call fast and a Region request's status read as soon as it is due."""
    assert isinstance(world.deps.spec, ContactSpec)
    fast = {operation: Quota(10_000, 10_000) for operation in account_quotas("aws")}
    world.deps.api = AccountApi(clients.client("account"), world.org.management_account_id, RateLimits(fast))
    targeted = [world.ids[name] for name in REGION_ACCOUNTS]
    spec = RegionSpec.parse({"enable": [HONG_KONG, UAE], "disable": [BAHRAIN], "targets": {"accounts": targeted}})
    world.deps.spec = {"alternate_contacts": world.deps.spec, "regions": spec}
    world.org.set_regions(world.ids["workloads-b"], {BAHRAIN: "ENABLED"}, world.log)  # the first check disables it
    with mock.patch.object(jobs, "FOLLOW_EVERY_SECONDS", 0.0), mock.patch.object(jobs, "FOLLOW_PAUSE_SECONDS", 0.01):
        converged(world)
        for name in REGION_ACCOUNTS:
            assert world.org.regions(world.ids[name], world.log) == REGIONS_WANTED, name
        yield world


REGION_ACCOUNTS = ["management", "workloads-a", "workloads-b"]


def by_hand(world: World, account: str, region: str, *, enable: bool) -> None:
    """Someone enables or disables a Region in the console: the same API call, outside the stack."""
    target = {} if account == world.org.management_account_id else {"AccountId": account}
    call = world.org.account.enable_region if enable else world.org.account.disable_region
    call(RegionName=region, **target)


def test_report_only_reports_a_region_disabled_by_hand_and_leaves_it(regions_world: World) -> None:
    world = regions_world
    account = world.ids["workloads-a"]
    by_hand(world, account, HONG_KONG, enable=False)
    writes = world.log.writes()
    world.deps.report_only = True

    answer = world.run()

    assert world.org.regions(account, world.log) == {UAE: "ENABLED"}
    assert world.log.writes() == writes
    assert answer["Settings"]["regions"] == {
        "AccountsChecked": 3,
        "AccountsDrifted": 1,
        "AccountsFixed": 0,
        "AccountsFailed": 0,
    }
    assert world.last_metrics("regions") == answer["Settings"]["regions"]
    assert world.last_metrics("alternate_contacts")["AccountsDrifted"] == 0
    assert world.last_metrics() == {"AccountsChecked": 4, "AccountsDrifted": 1, "AccountsFixed": 0, "AccountsFailed": 0}
    (notification,) = world.notifications()
    body = notification["Message"]
    assert f"{account}: regions/{HONG_KONG} enable" in body
    assert "regions: checked 3, drifted 1, fixed 0, failed 0" in body
    assert "differ from the config" in body


def test_a_region_disabled_by_hand_is_enabled_again_and_followed_to_enabled(regions_world: World) -> None:
    world = regions_world
    management, account = world.ids["management"], world.ids["workloads-a"]
    for disabled in (management, account):
        by_hand(world, disabled, HONG_KONG, enable=False)
    writes, enabled = world.log.writes(), world.log.calls["EnableRegion"]
    own = world.log.callers["EnableRegion", management, management]

    answer = world.run()

    for name in REGION_ACCOUNTS:
        assert world.org.regions(world.ids[name], world.log) == REGIONS_WANTED, name
    assert world.log.writes() == writes + 2 and world.log.calls["EnableRegion"] == enabled + 2
    assert world.log.callers["EnableRegion", management, management] == own + 1  # its own, without AccountId
    assert world.last_metrics("regions") == {
        "AccountsChecked": 3,
        "AccountsDrifted": 2,
        "AccountsFixed": 2,
        "AccountsFailed": 0,
    }
    assert world.last_metrics()["AccountsFixed"] == 2
    report = json.loads(
        clients.client("s3").get_object(Bucket="jobs", Key=answer["Report"].removeprefix("s3://jobs/"))["Body"].read()
    )
    assert report["complete"] is True and report["regions_in_progress"] == []
    (notification,) = world.notifications()
    assert f"{account}: regions/{HONG_KONG} enable" in notification["Message"]
    assert "were brought back to the config" in notification["Message"]


def test_a_region_still_disabling_is_waited_for_then_enabled_without_conflicting_calls(regions_world: World) -> None:
    world = regions_world
    account = world.ids["workloads-a"]
    world.log.region_opt_seconds = 1.0  # a Region takes a second to disable (and to enable)
    by_hand(world, account, HONG_KONG, enable=False)
    assert world.org.regions(account, world.log)[HONG_KONG] == "DISABLING"
    enabled = world.log.calls["EnableRegion"]

    answer = world.run()

    assert world.org.regions(account, world.log) == REGIONS_WANTED
    # Enabling a Region that is DISABLING is refused (ConflictException) and spends the 1/s quota:
    # the check waits for the disabling to end, then makes the one request.
    assert world.log.calls["EnableRegion"] == enabled + 1
    assert answer["Settings"]["regions"] == {
        "AccountsChecked": 3,
        "AccountsDrifted": 1,
        "AccountsFixed": 1,
        "AccountsFailed": 0,
    }


def test_a_region_still_enabling_when_the_run_ends_is_carried_on_not_failed(regions_world: World) -> None:
    world = regions_world
    account = world.ids["workloads-a"]
    by_hand(world, account, HONG_KONG, enable=False)
    world.log.region_opt_seconds = 3600.0  # from now on a Region takes an hour to enable
    enabled = world.log.calls["EnableRegion"]

    # An invocation with one second of work in it: the request starts, the Region stays ENABLING.
    with mock.patch.object(drift, "MIN_BATCH_SECONDS", 1.0):
        first = drift.on_schedule(SCHEDULED, Context(drift.SAFETY_MARGIN_SECONDS))
        assert first["Complete"] is False and first["FailedBeyondTolerance"] is False
        assert first["RegionsInProgress"] == 1
        assert world.org.regions(account, world.log)[HONG_KONG] == "ENABLING"
        job = Job.from_dict(world.deps.jobs.load(first["Job"]))
        assert [(r["account_id"], r["region"], r["wanted"]) for r in job.region_requests] == [
            (account, HONG_KONG, "ENABLED")
        ]
        assert job.counts()["failed"] == 0
        assert world.executions() == [first["Job"]]  # the check's workflow carries it on
        assert world.notifications() == []  # nothing to say until the check is done

        # The next scheduled run finds the check still under way: it starts nothing of its own.
        again = drift.on_schedule(SCHEDULED, Context(drift.SAFETY_MARGIN_SECONDS))
        assert (again["Job"], again["Status"]) == (first["Job"], "PREVIOUS_CHECK_RUNNING")

        world.log.region_opt_seconds = 0.0  # AWS finishes the enabling
        done = drift.on_schedule({"ContinueJob": first["Job"]}, Context(drift.SAFETY_MARGIN_SECONDS))

    assert done["Complete"] is True and done["RegionsInProgress"] == 0
    assert world.org.regions(account, world.log) == REGIONS_WANTED
    assert world.log.calls["EnableRegion"] == enabled + 1  # one request, followed, never repeated
    assert world.last_metrics("regions") == {
        "AccountsChecked": 3,
        "AccountsDrifted": 1,
        "AccountsFixed": 1,
        "AccountsFailed": 0,
    }


def test_a_region_the_config_disables_enabled_by_hand_is_reported_then_disabled(regions_world: World) -> None:
    world = regions_world
    account = world.ids["workloads-b"]
    by_hand(world, account, BAHRAIN, enable=True)
    assert world.org.regions(account, world.log) == {**REGIONS_WANTED, BAHRAIN: "ENABLED"}
    writes = world.log.writes()

    world.deps.report_only = True
    world.run()

    assert world.log.writes() == writes and BAHRAIN in world.org.regions(account, world.log)
    assert world.last_metrics("regions")["AccountsDrifted"] == 1
    (reported,) = world.notifications()
    assert f"{account}: regions/{BAHRAIN} disable" in reported["Message"]

    world.deps.report_only = False
    world.run()

    assert world.org.regions(account, world.log) == REGIONS_WANTED  # Bahrain DISABLED again
    assert world.log.writes() == writes + 1 and world.log.callers["DisableRegion", world.ids["management"], account]
    assert world.last_metrics("regions") == {
        "AccountsChecked": 3,
        "AccountsDrifted": 1,
        "AccountsFixed": 1,
        "AccountsFailed": 0,
    }
    (fixed,) = world.notifications()
    assert f"{account}: regions/{BAHRAIN} disable" in fixed["Message"]


def test_report_only_does_not_wait_for_a_region_someone_else_is_enabling(regions_world: World) -> None:
    world = regions_world
    account = world.ids["workloads-a"]
    by_hand(world, account, HONG_KONG, enable=False)
    world.log.region_opt_seconds = 3600.0
    by_hand(world, account, HONG_KONG, enable=True)  # ENABLING for an hour: on its way, not drift
    world.deps.report_only = True

    with mock.patch.object(drift, "MIN_BATCH_SECONDS", 1.0):
        answer = drift.on_schedule(SCHEDULED, Context(drift.SAFETY_MARGIN_SECONDS))

    assert answer["Complete"] is True  # a report-only check reads and is done: it has no request to follow
    assert world.last_metrics("regions")["AccountsDrifted"] == 0
    assert world.executions() == []


def test_a_check_with_nothing_drifted_makes_no_writes(regions_world: World) -> None:
    world = regions_world
    writes = world.log.writes()

    world.run()

    assert world.log.writes() == writes
    assert world.last_metrics("regions") == {
        "AccountsChecked": 3,
        "AccountsDrifted": 0,
        "AccountsFixed": 0,
        "AccountsFailed": 0,
    }
    assert world.last_metrics()["AccountsDrifted"] == 0
    assert world.notifications() == []


def test_when_nothing_drifted_the_metrics_say_so_and_nobody_is_paged(world: World) -> None:
    converged(world)

    world.run()

    assert world.last_metrics() == {
        "AccountsChecked": 4,
        "AccountsDrifted": 0,
        "AccountsFixed": 0,
        "AccountsFailed": 0,
    }
    assert world.notifications() == []
    assert world.metric("AccountsChecked") == [4, 4]


def test_a_failing_account_is_counted_and_reported_and_the_rest_are_fixed(world: World) -> None:
    denied = world.ids["workloads-a"]
    world.log.denied_accounts.add(denied)

    world.run()

    assert world.org.contacts(world.ids["workloads-b"]) == DEFAULT
    assert world.org.contacts(denied) == {}
    assert world.last_metrics() == {
        "AccountsChecked": 4,
        "AccountsDrifted": 3,
        "AccountsFixed": 3,
        "AccountsFailed": 1,
    }
    (notification,) = world.notifications()
    assert f"{denied}: AccessDeniedException" in notification["Message"]


def test_a_fixing_check_finishes_the_releases_a_finished_deploy_job_failed(world: World) -> None:
    """The deploy that excluded an OU (removal = delete) could not delete there (an SCP, since
    lifted): a drift check compares only targeted accounts, yet a fixing one takes on those owed
    deletes from the last deploy job, once that job is over. Report-only leaves them."""
    excluded = world.ids["excluded-a"]
    for contact_type, value in DEFAULT.items():
        world.org.put_contact(excluded, contact_type, value)
    everywhere = ContactSpec.parse({"contacts": DEFAULT, "removal": "delete"})
    excluding = ContactSpec.parse(
        {"contacts": DEFAULT, "removal": "delete", "targets": {"exclude_accounts": [excluded]}}
    )
    world.log.denied_accounts.add(excluded)
    deploy = jobs.plan("deploy-1", list_accounts(world.org.organizations), excluding, everywhere)
    jobs.run_batch(deploy, world.deps.api, snapshots=None, deadline=time.monotonic() + 60, concurrency=2)
    assert deploy.done and [o["account"] for o in deploy.failures()] == [excluded]
    world.log.denied_accounts.discard(excluded)
    world.deps.jobs.save(deploy.id, deploy.to_dict())
    world.deps.jobs.set_last_job("AlternateContactsFCA20FBF", deploy.id)
    world.deps.spec = excluding

    world.deps.report_only, world.deps.deploy_job_pointer = True, "AlternateContactsFCA20FBF"
    world.run()
    assert world.org.contacts(excluded) == DEFAULT  # a report changes nothing

    world.deps.report_only, world.deps.deploy_job_pointer = False, ""
    world.run()
    assert world.org.contacts(excluded) == DEFAULT  # without the pointer: not a targeted account

    world.deps.deploy_job_pointer = "AlternateContactsFCA20FBF"
    world.run()
    assert world.org.contacts(excluded) == {}  # the deletes the deploy owed
    assert world.log.calls["DeleteAlternateContact"] == 3


def test_a_deploy_job_still_running_keeps_its_own_releases(world: World) -> None:
    excluded = world.ids["excluded-a"]
    world.org.put_contact(excluded, "SECURITY", SECURITY)
    excluding = ContactSpec.parse(
        {"contacts": DEFAULT, "removal": "delete", "targets": {"exclude_accounts": [excluded]}}
    )
    everywhere = ContactSpec.parse({"contacts": DEFAULT, "removal": "delete"})
    deploy = jobs.plan("deploy-2", list_accounts(world.org.organizations), excluding, everywhere)
    assert not deploy.done  # planned, not yet run: its continuation works it
    world.deps.jobs.save(deploy.id, deploy.to_dict())
    world.deps.jobs.set_last_job("AlternateContactsFCA20FBF", deploy.id)
    world.deps.spec, world.deps.deploy_job_pointer = excluding, "AlternateContactsFCA20FBF"

    world.run()

    assert world.org.contacts(excluded) == {"SECURITY": SECURITY}
    assert world.log.calls["DeleteAlternateContact"] == 0


def test_a_check_too_big_for_one_invocation_continues_in_its_workflow(world: World) -> None:
    converged(world)
    for name in CHECKED:
        world.org.put_contact(world.ids[name], "SECURITY", EDITED)
    world.deps.concurrency = 1
    invocations = []
    real = drift.on_schedule

    def counted(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        invocations.append(event)
        return real(event, context)

    # No time left in any invocation: each one reconciles a single account, then hands over.
    with mock.patch.object(drift, "MIN_BATCH_SECONDS", 0.0), mock.patch.object(drift, "on_schedule", counted):
        answer = world.run(Context(drift.SAFETY_MARGIN_SECONDS))

    assert len(invocations) == 4
    assert [sorted(event) for event in invocations[1:]] == [["ContinueJob"]] * 3
    assert answer["Complete"] is True
    assert world.continued == [answer["Job"]]  # one execution, named after the job
    for name in CHECKED:
        assert world.org.contacts(world.ids[name]) == DEFAULT, name
    assert world.metric("AccountsFixed") == [4, 4]  # one data point per finished check, not per invocation
    (notification,) = world.notifications()
    assert notification["Subject"] == "Account settings drift: 4 drifted, 4 fixed, 0 failed"


def test_a_delegated_administrator_leaves_the_management_account_out(world: World) -> None:
    world.deps.caller_account_id = world.ids["security"]
    world.deps.api = AccountApi(clients.client("account"), world.ids["security"], RateLimits(FAST))
    job = drift.start(world.deps)
    assert world.ids["management"] not in [account for account, _ in job.items]
    assert (world.ids["management"], MANAGEMENT_ACCOUNT) in job.skipped


def test_notifications_name_a_bounded_number_of_accounts() -> None:
    from org_bootstrap.engine.jobs import Job

    job = Job("drift-x", {}, [("x", "k")] * 80, cursor=80)
    job.outcomes = [{"account": f"{i:012d}", "status": "changed", "actions": {"SECURITY": "put"}} for i in range(80)]
    subject, body = drift.DriftResult.of(job, "s3://jobs/report.json").message()
    assert len(subject) <= 100
    assert "... and 30 more" in body
    assert body.count("SECURITY put") == drift.LISTED
