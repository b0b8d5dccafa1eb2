"""The account-events handler within its Lambda timeout, retries included; failures no retry fixes
reported and acknowledged; Region requests that wait for a slot instead of looping. Against the
strict simulated organization, on a simulated clock that botocore's back-off sleeps move."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest

from org_bootstrap.aws import clients
from org_bootstrap.engine.jobs import Job
from org_bootstrap.engine.pacing import RateLimits
from org_bootstrap.engine.reconcile import CHANGED, FAILED, THROTTLED, AccountApi
from org_bootstrap.engine.stores import S3JobStore
from org_bootstrap.handlers import account_events
from org_bootstrap.handlers.account_events import Dependencies
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec
from org_bootstrap.settings.regions import Request
from org_bootstrap.settings.regions.spec import RegionSpec
from simulation.organization import ApiLog, Organization, Storm
from tests.conftest import LIFTED_QUOTAS
from tests.test_account_events import create_account_result, sqs_batch

CONTACT = {"Name": "Ops", "Title": "Owner", "EmailAddress": "ops@example.com", "PhoneNumber": "+1 206 555 0100"}
CONTACTS = {"BILLING": CONTACT, "OPERATIONS": CONTACT, "SECURITY": CONTACT}
REGIONS = ["ap-east-1", "me-central-1"]
TIMEOUT = 120.0  # the handler's Lambda timeout


class SimulatedClock:
    """Seconds that pass only when someone sleeps (botocore's back-off, the pacing)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        self.slept += max(0.0, seconds)


class Context:
    """The Lambda context, its remaining time read from the simulated clock."""

    def __init__(self, clock: SimulatedClock, timeout: float) -> None:
        self.clock = clock
        self.ends = clock() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return int((self.ends - self.clock()) * 1000)


@dataclass
class World:
    org: Organization
    log: ApiLog
    deps: Dependencies
    clock: SimulatedClock
    sns: Any
    cloudwatch: Any

    @property
    def management(self) -> str:
        return self.org.management_account_id


@pytest.fixture
def world(api_log: ApiLog) -> Iterator[World]:
    org = Organization()
    org.enable_trusted_access()
    clock = SimulatedClock()
    api_log.clock = clock
    s3 = clients.client("s3")
    s3.create_bucket(Bucket="jobs")
    sns, cloudwatch = mock.Mock(), mock.Mock()
    limits = RateLimits(LIFTED_QUOTAS, clock=clock, sleep=clock.sleep)
    deps = Dependencies(
        organizations=clients.client("organizations"),  # with the handlers' retry policy
        api=AccountApi(clients.client("account"), org.management_account_id, limits),
        spec={"alternate_contacts": ContactSpec.parse({"contacts": CONTACTS})},
        management_account_id=org.management_account_id,
        caller_account_id=org.management_account_id,
        jobs=S3JobStore(s3, "jobs"),
        sns=sns,
        cloudwatch=cloudwatch,
        topic_arn="arn:aws:sns:us-east-1:111111111111:settings",
        namespace="Test",
    )
    with (
        mock.patch.object(account_events, "dependencies", lambda: deps),
        mock.patch("botocore.endpoint.time.sleep", clock.sleep),
    ):
        yield World(org, api_log, deps, clock, sns, cloudwatch)


def test_lasting_organizations_throttling_hands_the_record_back_before_the_timeout(world: World) -> None:
    """Organizations throttles every call for longer than the function runs: the back-off (up to
    ten attempts, ~90 s) stops at the handler's deadline, and the record goes back to the queue
    unfinished instead of running past the Lambda timeout."""
    accounts = [world.org.create_account(f"new-{i}", account_id=f"77777777777{i}") for i in range(3)]
    world.log.add_storm(Storm({"DescribeAccount"}, seconds=3600))
    batch = sqs_batch(*(create_account_result(account, world.management) for account in accounts))
    context = Context(world.clock, 31.0 + account_events.BATCH_SAFETY_MARGIN_SECONDS / 2)

    answer = account_events.on_messages(batch, context)

    assert world.clock.slept <= context.ends - 1000.0  # never past the timeout
    assert context.get_remaining_time_in_millis() > 0
    assert answer == {"batchItemFailures": [{"itemIdentifier": f"message-{i}"} for i in range(3)]}
    assert world.log.organizations_calls["DescribeAccount"] >= 2  # it did retry, within the time it had
    assert all(world.org.contacts(account) == {} for account in accounts)
    world.sns.publish.assert_not_called()  # throttling is not a failure to report


def test_the_whole_timeout_is_used_and_no_more_under_a_storm_that_ends(world: World) -> None:
    (account,) = [world.org.create_account("new", account_id="777777777777")]
    world.log.add_storm(Storm({"DescribeAccount"}, calls=3))  # three refusals, then the service answers

    answer = account_events.on_messages(
        sqs_batch(create_account_result(account, world.management)), Context(world.clock, TIMEOUT)
    )

    assert answer == {"batchItemFailures": []}
    assert world.org.contacts(account) == CONTACTS


def test_retries_without_a_deadline_are_bounded_by_attempts_only(world: World) -> None:
    account = world.org.create_account("new", account_id="777777777777")
    world.log.add_storm(Storm({"DescribeAccount"}, calls=clients.MAX_ATTEMPTS - 1))
    assert account_events.handle(create_account_result(account, world.management), world.deps).status == CHANGED


def test_access_denied_is_reported_and_acknowledged_not_redelivered(world: World) -> None:
    good = world.org.create_account("good", account_id="777777777777")
    denied = world.org.create_account("denied", account_id="888888888888")
    world.log.denied_accounts.add(denied)

    answer = account_events.on_messages(
        sqs_batch(*(create_account_result(a, world.management) for a in (good, denied))), Context(world.clock, TIMEOUT)
    )

    assert answer == {"batchItemFailures": []}  # nothing for SQS to deliver again
    assert world.org.contacts(good) == CONTACTS
    (call,) = world.sns.publish.call_args_list
    assert denied in call.kwargs["Subject"] and "AccessDenied" in call.kwargs["Message"]
    assert "ops@example.com" not in call.kwargs["Message"]
    world.cloudwatch.put_metric_data.assert_called_once_with(
        Namespace="Test", MetricData=[{"MetricName": "EventAccountsFailed", "Value": 1.0, "Unit": "Count"}]
    )
    key = "alternate-contacts/reports/event-message-1.json"
    report = json.loads(clients.client("s3").get_object(Bucket="jobs", Key=key)["Body"].read())
    assert report["account"] == denied and report["status"] == FAILED and report["retried"] is False


def test_a_failure_that_cannot_be_reported_is_delivered_again(world: World) -> None:
    denied = world.org.create_account("denied", account_id="888888888888")
    world.log.denied_accounts.add(denied)
    world.sns.publish.side_effect = RuntimeError("SNS is down")
    answer = account_events.on_messages(sqs_batch(create_account_result(denied, world.management)))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}


def test_a_service_fault_is_still_delivered_again(world: World) -> None:
    account = world.org.create_account("new", account_id="777777777777")
    world.log.add_storm(Storm({"PutAlternateContact"}, calls=100, code="ServiceUnavailableException"))
    answer = account_events.on_messages(
        sqs_batch(create_account_result(account, world.management)), Context(world.clock, TIMEOUT)
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    world.sns.publish.assert_not_called()


# -- Region requests ---------------------------------------------------------------------------


def with_regions(world: World) -> None:
    world.deps.spec = {
        "alternate_contacts": ContactSpec.parse({"contacts": CONTACTS}),
        "regions": RegionSpec.parse({"enable": REGIONS}),
    }
    world.log.region_opt_seconds = 3600.0


def test_the_organizations_50_requests_in_use_are_a_wait_not_an_error(world: World) -> None:
    """Every one of the organization's 50 region-opt requests is in progress (a job holds them for
    hours): the new account gets its contacts; its Region is asked for once, refused, and left to
    the drift check; the record is done, neither looped on nor sent back to the queue."""
    with_regions(world)
    busy = [world.org.create_account(f"busy-{i}", account_id=f"{500000000000 + i}") for i in range(25)]
    for account in busy:
        world.org.set_regions(account, dict.fromkeys(REGIONS, "ENABLING"), world.log)
    account = world.org.create_account("new", account_id="777777777777")

    answer = account_events.on_messages(
        sqs_batch(create_account_result(account, world.management)), Context(world.clock, TIMEOUT)
    )

    assert answer == {"batchItemFailures": []}
    assert world.org.contacts(account) == CONTACTS
    assert world.log.calls["EnableRegion"] <= 1  # the one AWS refused; never again in a loop
    assert world.org.regions(account, world.log) == {}  # neither requested
    outcome = account_events.handle(create_account_result(account, world.management), world.deps)
    assert outcome.status == THROTTLED and outcome.waiting and "slot" in outcome.reason
    world.sns.publish.assert_not_called()


def test_the_requests_running_jobs_hold_count_against_the_same_limits(world: World) -> None:
    """A drift job has 49 requests in flight: the handler starts one, for the 50th slot, and leaves
    the other Region waiting without asking AWS."""
    with_regions(world)
    in_flight = [Request(f"{500000000000 + i}", "ap-east-1", "ENABLED", 0.0).to_dict() for i in range(49)]
    job = Job("drift-1", {}, [], region_requests=in_flight)
    world.deps.jobs.save(job.id, job.to_dict())  # type: ignore[union-attr]
    world.deps.jobs.set_last_job("drift", job.id)  # type: ignore[union-attr]
    account = world.org.create_account("new", account_id="777777777777")

    outcome = account_events.handle(create_account_result(account, world.management), world.deps)

    assert world.log.calls["EnableRegion"] == 1
    assert world.org.regions(account, world.log) == {"ap-east-1": "ENABLING"}  # me-central-1 still DISABLED
    assert outcome.waiting and world.org.contacts(account) == CONTACTS

    job.superseded_by = "another"  # a job that is over holds nothing
    world.deps.jobs.save(job.id, job.to_dict())  # type: ignore[union-attr]
    assert account_events.jobs_region_requests(world.deps) == []
