"""Two jobs at once do the work once: a deploy job and a drift check working the same accounts leave
each account to one of them, through the records both keep in the job store; the other reports the
account with that job's outcome, and works it itself when that job fails it or ends without it.
Against the strict simulated organization; each job's record is read as the other would read it."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from org_bootstrap.aws import clients
from org_bootstrap.aws.organization import list_accounts
from org_bootstrap.engine.jobs import DEPLOY, DRIFT, Job, leaves_to, plan, run_batch
from org_bootstrap.engine.pacing import RateLimits
from org_bootstrap.engine.reconcile import CHANGED, FAILED, RESTORE, SKIPPED, AccountApi
from org_bootstrap.engine.stores import DynamoDbSnapshots
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec
from simulation.organization import ApiLog, Organization
from tests.conftest import LIFTED_QUOTAS, create_snapshot_table

MEMBERS = 6


def contact(name: str) -> dict[str, str]:
    return {"Name": name, "Title": "Owner", "EmailAddress": "team@example.com", "PhoneNumber": "+1 206 555 0100"}


CONTACTS = {"BILLING": contact("Billing"), "OPERATIONS": contact("Operations"), "SECURITY": contact("Security")}
SPEC = ContactSpec.parse({"contacts": CONTACTS})
NEW_SPEC = ContactSpec.parse({"contacts": {**CONTACTS, "SECURITY": contact("New Security")}})


@dataclass
class World:
    org: Organization
    log: ApiLog
    api: AccountApi
    store: dict[str, str]  # the job store: job ID -> its record as last saved

    def plan(self, job_id: str, spec: ContactSpec, kind: str, started_at: float) -> Job:
        job = plan(job_id, list_accounts(self.org.organizations), spec)
        job.kind, job.started_at = kind, started_at
        self.save(job)
        return job

    def save(self, job: Job) -> None:
        self.store[job.id] = json.dumps(job.to_dict())

    def batch(self, job: Job, other: Job, snapshots: DynamoDbSnapshots | None = None) -> None:
        """One invocation of ``job``, reading ``other`` as the store has it, then saving its own record."""

        def peers() -> list[Job]:
            return [Job.from_dict(json.loads(self.store[other.id]))]

        run_batch(
            job,
            self.api,
            snapshots=snapshots,
            deadline=time.monotonic() + 2,  # what it left to the other job stays left at the end
            concurrency=2,
            checkpoint=self.save,
            peers=peers,
            sleep=lambda seconds: time.sleep(0.05),
        )
        self.save(job)


@pytest.fixture
def world(api_log: ApiLog) -> Iterator[World]:
    org = Organization()
    org.enable_trusted_access()
    for i in range(MEMBERS):
        org.create_account(f"member-{i}", account_id=f"{200000000000 + i:012d}")
    api = AccountApi(clients.client("account"), org.management_account_id, RateLimits(LIFTED_QUOTAS))
    yield World(org, api_log, api, {})


def one_outcome_each(job: Job) -> dict[str, dict[str, Any]]:
    accounts = [outcome["account"] for outcome in job.outcomes]
    assert sorted(accounts) == sorted(account for account, _ in job.items), "one outcome for every account"
    return {outcome["account"]: outcome for outcome in job.outcomes}


def test_a_drift_check_leaves_a_running_deploys_accounts_to_it_and_reports_its_outcome(world: World) -> None:
    deploy = world.plan("deploy-1", SPEC, DEPLOY, started_at=100.0)
    drift = world.plan("drift-1", SPEC, DRIFT, started_at=200.0)

    world.batch(drift, deploy)  # the deploy has not started an account: every one is left to it
    assert world.log.writes() == 0 and not drift.done
    assert sorted(account for account, _, _ in drift.left) == sorted(account for account, _ in drift.items)
    world.batch(deploy, drift)
    world.batch(drift, deploy)

    assert deploy.done and drift.done
    assert world.log.writes() == 3 * len(deploy.items)  # each contact type written once
    assert all(outcome["status"] == CHANGED and "by" not in outcome for outcome in one_outcome_each(deploy).values())
    for outcome in one_outcome_each(drift).values():
        assert outcome["status"] == SKIPPED and outcome["by"] == "deploy-1"
        assert outcome["reason"] == "left to job deploy-1, which changed it"
    assert drift.report()["left_to_other_jobs"] == []


def test_a_deploy_leaves_a_running_drift_checks_accounts_to_it_when_the_work_is_the_same(world: World) -> None:
    drift = world.plan("drift-1", SPEC, DRIFT, started_at=100.0)
    deploy = world.plan("deploy-1", SPEC, DEPLOY, started_at=200.0)

    world.batch(deploy, drift)
    assert world.log.writes() == 0 and len(deploy.left) == len(deploy.items)
    world.batch(drift, deploy)
    world.batch(deploy, drift)

    assert world.log.writes() == 3 * len(deploy.items)
    for outcome in one_outcome_each(deploy).values():  # what the check did there, as the deploy's own
        assert outcome["status"] == CHANGED and outcome["by"] == "drift-1" and len(outcome["actions"]) == 3
    assert deploy.counts()[CHANGED] == len(deploy.items) and not deploy.failed


def test_a_deploy_never_reports_success_for_an_account_the_drift_check_then_failed(world: World) -> None:
    """The check fails an account the deploy left to it: the deploy takes it back and works it
    itself, so its report says what it found there: failed while the account still refuses, and
    changed once it does not."""
    drift = world.plan("drift-1", SPEC, DRIFT, started_at=100.0)
    deploy = world.plan("deploy-1", SPEC, DEPLOY, started_at=200.0)
    denied, healed = [account for account, _ in drift.items if account != world.org.management_account_id][:2]
    world.batch(deploy, drift)
    world.log.denied_accounts |= {denied, healed}
    world.batch(drift, deploy)
    assert one_outcome_each(drift)[denied]["status"] == FAILED
    world.log.denied_accounts.discard(healed)  # a fault that passed: the deploy's own try succeeds

    world.batch(deploy, drift)

    outcomes = one_outcome_each(deploy)
    assert outcomes[denied]["status"] == FAILED and "by" not in outcomes[denied]
    assert outcomes[healed]["status"] == CHANGED and "by" not in outcomes[healed]
    assert world.org.contacts(healed) == CONTACTS
    assert deploy.failed  # the deploy fails its request: one account more than the tolerance of 0


def test_a_new_config_is_the_deploys_to_apply_whoever_started_first(world: World) -> None:
    """The check started first but with the config the deploy is replacing: the deploy works every
    account itself, and the check leaves them to it, so the old values never overwrite the new."""
    drift = world.plan("drift-1", SPEC, DRIFT, started_at=100.0)
    deploy = world.plan("deploy-1", NEW_SPEC, DEPLOY, started_at=200.0)

    world.batch(drift, deploy)
    world.batch(deploy, drift)
    world.batch(drift, deploy)

    assert all(world.org.contacts(account)["SECURITY"] == contact("New Security") for account, _ in deploy.items)
    assert world.log.writes() == 3 * len(deploy.items)
    assert all(outcome["status"] == SKIPPED for outcome in one_outcome_each(drift).values())
    assert all("by" not in outcome for outcome in one_outcome_each(deploy).values())


def test_an_account_left_to_a_job_that_ends_without_it_is_worked_here(world: World) -> None:
    deploy = world.plan("deploy-1", SPEC, DEPLOY, started_at=100.0)
    drift = world.plan("drift-1", SPEC, DRIFT, started_at=200.0)
    world.batch(drift, deploy)
    deploy.superseded_by = "deploy-2"  # the next deploy took over: this one does nothing more
    world.save(deploy)

    world.batch(drift, deploy)

    assert drift.done
    assert all(outcome["status"] == CHANGED and "by" not in outcome for outcome in one_outcome_each(drift).values())


def test_an_account_a_job_finished_before_is_no_answer_for_a_new_job(world: World) -> None:
    """A check that already did an account before the deploy reached it: the deploy works it itself
    (the check's result is older than the deploy), and the check does not do it again."""
    drift = world.plan("drift-1", SPEC, DRIFT, started_at=100.0)
    deploy = world.plan("deploy-1", SPEC, DEPLOY, started_at=200.0)
    world.batch(drift, deploy)  # the deploy has not reached one: the check does them all
    assert drift.done and world.log.writes() == 3 * MEMBERS + 3

    world.batch(deploy, drift)

    assert all(outcome["status"] != SKIPPED and "by" not in outcome for outcome in one_outcome_each(deploy).values())
    assert world.log.writes() == 3 * MEMBERS + 3  # read, found in sync: nothing written again


def test_a_check_planned_before_an_update_never_writes_its_old_targets_after_the_update(world: World) -> None:
    """The check started with the config an Update then replaced (its invocation killed, its job
    resumed after the Update finished): the accounts the Update worked are the Update's, whatever the
    order the two jobs reached them in. Here the Update excludes an OU with ``removal = "restore"``:
    the check must not put the stack's contacts back on the accounts the Update released, or they keep
    them for good (nothing targets them any more, so no later restore puts the owners' back)."""
    team = world.org.create_ou("team")
    released = [
        world.org.create_account(f"team-{i}", parent_id=team, account_id=f"{210000000000 + i:012d}") for i in (1, 2)
    ]
    own = contact("Team security")
    for account in released:
        world.org.put_contact(account, "SECURITY", own)
    create_snapshot_table("snapshots")
    snapshots = DynamoDbSnapshots(clients.client("dynamodb"), "snapshots")
    created = ContactSpec.parse({"contacts": CONTACTS, "removal": "restore"})
    updated = ContactSpec.parse(
        {"contacts": CONTACTS, "removal": "restore", "targets": {"exclude_organizational_units": [team]}}
    )
    create = world.plan("deploy-1", created, DEPLOY, started_at=100.0)
    drift = world.plan("drift-1", created, DRIFT, started_at=200.0)  # killed before it reached an account
    world.batch(create, drift, snapshots)
    assert create.done and all(world.org.contacts(account) == CONTACTS for account in released)
    update = plan("deploy-2", list_accounts(world.org.organizations), updated, created)
    update.kind, update.started_at = DEPLOY, 300.0
    assert {account: set(update.target_sets[key].values()) for account, key in update.items} == {
        account: {RESTORE} for account in released
    }
    world.save(update)
    world.batch(update, drift, snapshots)  # the Update runs to the end before the check is resumed
    assert update.done and all(world.org.contacts(account) == {"SECURITY": own} for account in released)

    world.batch(drift, update, snapshots)

    assert drift.done
    assert all(world.org.contacts(account) == {"SECURITY": own} for account in released)
    for account in released:
        outcome = one_outcome_each(drift)[account]
        assert outcome["status"] == SKIPPED and outcome["by"] == "deploy-2"


def test_two_jobs_never_leave_an_account_to_each_other() -> None:
    """Whatever the two jobs' kinds, modes, start times and targets, at most one leaves the account."""
    same, other = {"BILLING": contact("A")}, {"BILLING": contact("B")}
    wider = {**same, "SECURITY": contact("S")}
    for (kind_a, kind_b), (apply_a, apply_b), (start_a, start_b), (targets_a, targets_b) in itertools.product(
        itertools.product((DEPLOY, DRIFT), repeat=2),
        itertools.product((True, False), repeat=2),
        ((1.0, 2.0), (2.0, 1.0), (1.0, 1.0)),
        itertools.product((same, other, wider), repeat=2),
    ):
        a = Job("job-a", {}, [], started_at=start_a, apply=apply_a, kind=kind_a)
        b = Job("job-b", {}, [], started_at=start_b, apply=apply_b, kind=kind_b)
        assert not (leaves_to(a, b, targets_a, targets_b) and leaves_to(b, a, targets_b, targets_a))
        if apply_a and apply_b and kind_a != kind_b:  # exactly one works it
            assert leaves_to(a, b, targets_a, targets_b) != leaves_to(b, a, targets_b, targets_a)
