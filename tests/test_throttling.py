"""Throttling is never a failure: the deploy-time job and the account-events handler under a
throttling service (the strict simulated organization, its capacity cut or in a storm), with the
published quotas scaled up 20 times on both sides so that minutes of AWS take seconds here."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest

from org_bootstrap.aws import clients
from org_bootstrap.aws.organization import list_accounts
from org_bootstrap.engine import jobs
from org_bootstrap.engine.jobs import DEADLINE_REACHED, Job, plan, run_batch
from org_bootstrap.engine.pacing import ACCOUNT_QUOTAS, Adaptation, Quota, RateLimits
from org_bootstrap.engine.reconcile import CHANGED, FAILED, AccountApi
from org_bootstrap.engine.stores import DynamoDbSnapshots, S3JobStore
from org_bootstrap.handlers import account_events, account_settings
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec
from simulation.organization import ApiLog, Organization, Storm
from tests.conftest import cfn_event, create_snapshot_table
from tests.test_account_events import create_account_result, sqs_batch

SCALE = 20
QUOTAS = {op: Quota(quota.per_second * SCALE, quota.burst) for op, quota in ACCOUNT_QUOTAS.items()}
_DEFAULT = Adaptation()
# The same adaptation on the faster clock: a second of AWS is 1/SCALE of a second here.
ADAPTATION = Adaptation(increase=_DEFAULT.increase * SCALE, hold=_DEFAULT.hold / SCALE)
PUT, GET = "PutAlternateContact", "GetAlternateContact"
MEMBERS = 20


def contact(name: str) -> dict[str, str]:
    return {"Name": name, "Title": "Owner", "EmailAddress": "team@example.com", "PhoneNumber": "+1 206 555 0100"}


CONTACTS = {"BILLING": contact("Billing"), "OPERATIONS": contact("Operations"), "SECURITY": contact("Security")}
SPEC = ContactSpec.parse({"contacts": CONTACTS})


def left(fraction: float) -> dict[str, Quota]:
    """The service's capacity when another caller takes the rest of the (scaled) quota."""
    return {op: Quota(q.per_second * fraction, max(1, round(q.burst * fraction))) for op, q in QUOTAS.items()}


class Clock:
    """The simulation's clock, moved by the test: when a storm ends, whatever the engine does."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Context:
    """The part of the Lambda context the handlers read; each read may return the next value."""

    def __init__(self, *remaining_seconds: float) -> None:
        self.remaining = list(remaining_seconds)

    def get_remaining_time_in_millis(self) -> int:
        value = self.remaining.pop(0) if len(self.remaining) > 1 else self.remaining[0]
        return int(value * 1000)


@dataclass
class World:
    org: Organization
    log: ApiLog
    deps: account_settings.Dependencies
    members: list[str]

    def all_set(self) -> bool:
        accounts = [self.org.management_account_id, *self.members]
        return all(self.org.contacts(account) == CONTACTS for account in accounts)


@pytest.fixture
def world(api_log: ApiLog) -> Iterator[World]:
    org = Organization()
    org.enable_trusted_access()
    members = [org.create_account(f"member-{i}", account_id=f"{200000000000 + i:012d}") for i in range(MEMBERS)]
    s3 = clients.client("s3")
    s3.create_bucket(Bucket="jobs")
    create_snapshot_table("snapshots")
    limits = RateLimits(QUOTAS, adaptation=ADAPTATION)
    deps = account_settings.Dependencies(
        organizations=org.organizations,
        api=AccountApi(clients.client("account"), org.management_account_id, limits),
        management_account_id=org.management_account_id,
        jobs=S3JobStore(s3, "jobs"),
        snapshots=DynamoDbSnapshots(clients.client("dynamodb"), "snapshots"),
        deploy_wait_seconds=3600,
        concurrency=4,
    )
    with (
        mock.patch.object(account_settings, "dependencies", lambda: deps),
        mock.patch.object(account_settings, "MIN_BATCH_SECONDS", 0.0),
        mock.patch.object(jobs, "IN_FLIGHT_GRACE_SECONDS", 20.0 / SCALE),
        mock.patch("botocore.endpoint.time.sleep"),
    ):
        yield World(org, api_log, deps, members)


def create(world: World) -> dict[str, Any]:
    event = cfn_event("Create", {"Spec": SPEC.to_json()})
    return {**event, **account_settings.on_event(event)}


def stored(world: World, event: dict[str, Any]) -> Job:
    return Job.from_dict(world.deps.jobs.load(event["RequestId"]))


def test_a_throttling_storm_at_a_quarter_of_the_quota_converges_with_nothing_failed(world: World) -> None:
    world.log.capacity = left(0.25)
    event = create(world)
    for _ in range(20):
        answer = account_settings.is_complete(event, Context(600))
        if answer["IsComplete"]:
            break

    assert answer["Data"]["Status"] == "COMPLETE"
    assert answer["Data"]["Failed"] == 0
    assert answer["Data"]["Changed"] == MEMBERS + 1
    assert world.all_set()
    assert world.log.throttled[PUT] > 0, "the service did throttle"
    # The pacing slowed down to what is left instead of sending at the quota: a client that kept
    # to the quota would have had three of every four calls refused.
    calls = world.log.calls[PUT]
    assert world.log.throttled[PUT] < 0.5 * calls
    assert world.deps.api.limits.rate(PUT) < QUOTAS[PUT].per_second


def test_a_throttle_that_outlasts_an_invocation_is_carried_to_the_next_one(world: World) -> None:
    clock = Clock()
    world.log.clock = clock
    world.log.add_storm(Storm({PUT}, seconds=60))  # every write refused for a simulated minute
    event = create(world)
    # Two seconds of work on the machine's clock: enough for half the accounts even while the other
    # test worker keeps a core busy (half a second was not, in CI); the storm outlasts it on its own clock.
    short = Context(account_settings.SAFETY_MARGIN_SECONDS + 2.0)

    first = account_settings.is_complete(event, short)

    assert first == {"IsComplete": False}
    job = stored(world, event)
    assert job.retrying, "throttled accounts are kept for a retry, in the stored job"
    assert job.outcomes == [], "none finished, none failed"
    assert job.cursor + len(job.retrying) >= len(job.items) // 2
    assert world.org.contacts(world.members[0]) == {}

    clock.now = 61  # the storm is over
    second = account_settings.is_complete(event, Context(600))

    assert second["IsComplete"] is True
    assert (second["Data"]["Changed"], second["Data"]["Failed"]) == (MEMBERS + 1, 0)
    assert world.all_set()
    assert stored(world, event).throttles[world.members[0]] >= 1


def test_access_denied_still_fails_the_account_at_once_while_others_are_throttled(world: World) -> None:
    denied = world.members[3]
    world.log.denied_accounts = {denied}
    world.log.capacity = left(0.25)
    job = plan("j", list_accounts(world.org.organizations), SPEC)

    run_batch(job, world.deps.api, snapshots=None, deadline=time.monotonic() + 60, concurrency=4)

    assert job.done
    assert [(o["account"], o["status"]) for o in job.outcomes if o["status"] == FAILED] == [(denied, FAILED)]
    assert "AccessDeniedException" in job.failures()[0]["reason"]
    tried = sum(count for (_, _, target), count in world.log.callers.items() if target == denied)
    assert tried == 1, "not retried: a retry cannot fix it"
    # (Its calls may have been throttled before that one reached the service: the first calls
    # spend the service's burst, which others share here. Those were retried, the denial was not.)


def test_the_job_deadline_fails_what_is_still_throttled_and_says_why(world: World) -> None:
    world.log.add_storm(Storm({PUT}))  # never ends
    job = plan("j", list_accounts(world.org.organizations), SPEC)
    job.deadline_at = job.started_at + 0.5

    run_batch(job, world.deps.api, snapshots=None, deadline=time.monotonic() + 60, concurrency=4)

    assert job.done
    assert job.counts()[FAILED] == MEMBERS + 1
    reasons = [o["reason"] for o in job.failures()]
    assert all(reason.startswith(f"{DEADLINE_REACHED}: ") for reason in reasons), reasons
    assert any("still throttled after" in reason for reason in reasons), reasons
    assert job.report()["complete"] is True


# -- the account-events handler ------------------------------------------------------------------


@pytest.fixture
def events(world: World) -> Iterator[account_events.Dependencies]:
    deps = account_events.Dependencies(
        organizations=world.org.organizations,
        api=world.deps.api,
        spec=SPEC,
        management_account_id=world.org.management_account_id,
        caller_account_id=world.org.management_account_id,
    )
    with mock.patch.object(account_events, "dependencies", lambda: deps):
        yield deps


def new_accounts(world: World, count: int) -> list[str]:
    return [world.org.create_account(f"new-{i}", account_id=f"{300000000000 + i:012d}") for i in range(count)]


def test_an_event_batch_that_runs_out_of_time_returns_its_unfinished_records(
    world: World, events: account_events.Dependencies
) -> None:
    accounts = new_accounts(world, 5)
    batch = sqs_batch(*(create_account_result(a, world.org.management_account_id) for a in accounts))
    margin = account_events.BATCH_SAFETY_MARGIN_SECONDS
    # The batch's deadline, then enough time for two records, then less than the margin: the
    # handler must stop starting records.
    context = Context(margin + 60, margin + 60, margin + 30, margin - 1)

    answer = account_events.on_messages(batch, context)

    assert answer == {"batchItemFailures": [{"itemIdentifier": f"message-{i}"} for i in (2, 3, 4)]}
    assert [world.org.contacts(a) == CONTACTS for a in accounts] == [True, True, False, False, False]


def test_a_throttled_event_is_retried_within_its_batch_not_failed(
    world: World, events: account_events.Dependencies
) -> None:
    accounts = new_accounts(world, 3)
    world.log.add_storm(Storm({PUT}, calls=12))  # more than one account's in-place retries can absorb
    batch = sqs_batch(*(create_account_result(a, world.org.management_account_id) for a in accounts))

    answer = account_events.on_messages(batch, Context(120))

    assert answer == {"batchItemFailures": []}
    assert all(world.org.contacts(a) == CONTACTS for a in accounts)
    assert world.log.throttled[PUT] == 12


def test_an_event_batch_with_no_context_has_no_deadline(world: World, events: account_events.Dependencies) -> None:
    (account,) = new_accounts(world, 1)
    answer = account_events.on_messages(sqs_batch(create_account_result(account, world.org.management_account_id)))
    assert answer == {"batchItemFailures": []}
    assert world.org.contacts(account) == CONTACTS
    assert json.dumps(answer)  # what SQS receives


def test_outcome_of_a_throttled_account_is_not_a_status_the_report_counts(world: World) -> None:
    world.log.add_storm(Storm({PUT}, calls=3))  # one account's three in-place tries
    job = plan("j", list_accounts(world.org.organizations), SPEC)
    run_batch(job, world.deps.api, snapshots=None, deadline=time.monotonic() + 60, concurrency=1)
    assert job.done
    assert job.counts()[CHANGED] == MEMBERS + 1
    assert sum(job.counts().values()) == MEMBERS + 1
    assert list(job.throttles.values()) == [1]


def test_accounts_waiting_for_a_retry_are_unfinished_for_the_next_deploy(world: World) -> None:
    world.log.add_storm(Storm({PUT}, calls=3))  # the first account's three in-place tries
    job = plan("j", list_accounts(world.org.organizations), SPEC)
    run_batch(job, world.deps.api, snapshots=None, deadline=0.0, concurrency=1)  # one account, then stop
    assert job.retrying == [job.items[0]]
    assert job.items[0][0] in job.unfinished(), "a redeploy heals it, as it heals the accounts not reached"
    assert not job.done
