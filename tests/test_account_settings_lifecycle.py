"""Every lifecycle path of the primary contact and the Regions through the one reconcile loop,
against the strict simulated organization: create, update, adopt, restore, re-run without writes;
and the alternate contacts through the same loop as through their own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from org_bootstrap.aws import clients
from org_bootstrap.engine.pacing import RateLimits
from org_bootstrap.engine.quotas import Quota, RegionOptLimits
from org_bootstrap.engine.reconcile import (
    CHANGED,
    RESTORE,
    THROTTLED,
    UNCHANGED,
    AccountApi,
    reconcile_account,
)
from org_bootstrap.engine.stores import DynamoDbSnapshots
from org_bootstrap.settings.regions import RegionRequests
from org_bootstrap.settings.regions.spec import DISABLED, ENABLED
from simulation.organization import ApiLog, Organization, strict_aws
from tests.conftest import US_PRIMARY_CONTACT, create_snapshot_table

OPT_SECONDS = 300.0
PRIMARY = US_PRIMARY_CONTACT
BEFORE = {**PRIMARY, "FullName": "Jane Doe", "CompanyName": "Doe Consulting"}
KEY = "primary_contact/PRIMARY"
A, B, C = "222222222222", "333333333333", "444444444444"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    org: Organization
    log: ApiLog
    api: AccountApi
    snapshots: DynamoDbSnapshots
    clock: Clock

    def writes(self) -> int:
        return self.log.writes()


@pytest.fixture
def world() -> Iterator[World]:
    clock = Clock()
    with strict_aws(ApiLog(clock=clock, region_opt_seconds=OPT_SECONDS)) as log:
        org = Organization()
        org.enable_trusted_access()
        for account_id in (A, B, C):
            org.create_account(f"member-{account_id}", account_id=account_id)
        create_snapshot_table("snapshots")
        limits = RateLimits({op: Quota(10_000, 10_000) for op in _OPERATIONS})
        api = AccountApi(clients.client("account"), org.management_account_id, limits)
        yield World(org, log, api, DynamoDbSnapshots(clients.client("dynamodb"), "snapshots"), clock)


_OPERATIONS = (
    "GetAlternateContact",
    "PutAlternateContact",
    "DeleteAlternateContact",
    "GetContactInformation",
    "PutContactInformation",
    "ListRegions",
    "GetRegionOptStatus",
    "EnableRegion",
    "DisableRegion",
)


def run(world: World, account_id: str, targets: Mapping[str, Any], *, apply: bool = True) -> str:
    return reconcile_account(world.api, account_id, targets, snapshots=world.snapshots, apply=apply).status


# -- primary contact ---------------------------------------------------------------------------


def test_primary_contact_create_update_adopt_and_rerun_without_writes(world: World) -> None:
    world.org.set_primary_contact(B, BEFORE)
    world.org.set_primary_contact(C, PRIMARY)
    assert run(world, A, {KEY: PRIMARY}) == CHANGED  # create: the account had none
    assert run(world, B, {KEY: PRIMARY}) == CHANGED  # update
    assert run(world, C, {KEY: PRIMARY}) == UNCHANGED  # adopt: already what the config says
    assert {world.org.primary_contact(account) == PRIMARY for account in (A, B, C)} == {True}
    writes = world.writes()
    assert [run(world, account, {KEY: PRIMARY}) for account in (A, B, C)] == [UNCHANGED] * 3
    assert world.writes() == writes == 2  # a re-run reads and writes nothing
    assert world.snapshots.recall(C, KEY) == (False, None)  # adopted: nothing of it to restore


def test_primary_contact_management_account_is_addressed_without_account_id(world: World) -> None:
    management = world.org.management_account_id
    assert run(world, management, {KEY: PRIMARY}) == CHANGED
    assert world.org.primary_contact(management) == PRIMARY
    assert world.log.callers["PutContactInformation", management, management] == 1


def test_primary_contact_restore_puts_back_what_was_there_and_leaves_what_it_cannot_delete(world: World) -> None:
    world.org.set_primary_contact(B, BEFORE)
    world.org.set_primary_contact(C, PRIMARY)
    for account in (A, B, C):
        run(world, account, {KEY: PRIMARY})
    assert [run(world, account, {KEY: RESTORE}) for account in (A, B, C)] == [UNCHANGED, CHANGED, UNCHANGED]
    assert world.org.primary_contact(B) == BEFORE  # put back, CompanyName included
    assert world.org.primary_contact(A) == PRIMARY  # had none: the API cannot delete one, so it stays
    assert world.org.primary_contact(C) == PRIMARY  # adopted: never the stack's to restore
    assert all(world.snapshots.recall(account, KEY) == (False, None) for account in (A, B, C))
    writes = world.writes()
    assert [run(world, account, {KEY: RESTORE}) for account in (A, B, C)] == [UNCHANGED] * 3
    assert world.writes() == writes


def test_primary_contact_drift_is_reported_without_writing(world: World) -> None:
    world.org.set_primary_contact(A, BEFORE)
    assert run(world, A, {KEY: PRIMARY}, apply=False) == "drifted"
    assert world.writes() == 0 and world.org.primary_contact(A) == BEFORE


# -- Regions -----------------------------------------------------------------------------------


AWS_LIMITS = RegionOptLimits(per_account=6, per_organization=50)


def regions(world: World, limits: RegionOptLimits = AWS_LIMITS) -> RegionRequests:
    world.api.region_requests = RegionRequests(limits, clock=world.clock, follow_every=0.0)
    return world.api.region_requests


def settle(world: World, requests: RegionRequests) -> None:
    world.clock.now += OPT_SECONDS
    requests.follow(world.api, until=float("inf"))
    assert requests.in_flight() == []


def test_regions_create_follow_adopt_and_rerun_without_writes(world: World) -> None:
    requests = regions(world)
    world.org.set_regions(B, {"ap-east-1": "ENABLED"}, world.log)
    world.org.set_regions(C, {"ap-east-1": "ENABLING"}, world.log)  # already on its way (by hand)
    targets = {"regions/ap-east-1": ENABLED, "regions/me-central-1": ENABLED}
    assert run(world, A, targets) == CHANGED
    assert world.org.regions(A, world.log) == {"ap-east-1": "ENABLING", "me-central-1": "ENABLING"}
    assert run(world, B, {"regions/ap-east-1": ENABLED}) == UNCHANGED  # adopt: already enabled
    assert run(world, C, {"regions/ap-east-1": ENABLED}) == UNCHANGED  # ENABLING: no second request...
    assert requests.is_following(C, "ap-east-1")  # ...but followed to the end like the stack's own
    assert world.log.calls["EnableRegion"] == 2
    settle(world, requests)
    assert world.org.regions(A, world.log) == {"ap-east-1": "ENABLED", "me-central-1": "ENABLED"}
    writes = world.writes()
    assert run(world, A, targets) == UNCHANGED
    assert world.writes() == writes


def test_regions_are_disabled_only_where_the_config_says_so_and_restored_to_their_state_before(world: World) -> None:
    requests = regions(world)
    world.org.set_regions(A, {"ap-east-1": "ENABLED", "me-central-1": "ENABLED"}, world.log)
    assert run(world, A, {"regions/me-central-1": DISABLED, "regions/il-central-1": ENABLED}) == CHANGED
    settle(world, requests)
    assert world.org.regions(A, world.log) == {"ap-east-1": "ENABLED", "il-central-1": "ENABLED"}
    # restore: me-central-1 was ENABLED before the stack, il-central-1 DISABLED; ap-east-1 never changed
    restore = {"regions/me-central-1": RESTORE, "regions/il-central-1": RESTORE, "regions/ap-east-1": RESTORE}
    assert run(world, A, restore) == CHANGED
    settle(world, requests)
    assert world.org.regions(A, world.log) == {"ap-east-1": "ENABLED", "me-central-1": "ENABLED"}
    writes = world.writes()
    assert run(world, A, restore) == UNCHANGED and world.writes() == writes


def test_a_region_being_disabled_is_enabled_later_not_failed(world: World) -> None:
    requests = regions(world)
    world.org.set_regions(A, {"ap-east-1": "DISABLING"}, world.log)
    outcome = reconcile_account(world.api, A, {"regions/ap-east-1": ENABLED}, snapshots=world.snapshots)
    assert outcome.status == THROTTLED and "DISABLING" in outcome.reason
    assert world.log.calls["EnableRegion"] == 0  # AWS would refuse it (ConflictException): not asked
    assert requests.in_flight() == [] and requests.reserve(A, until=world.clock.now)  # the slot was given back
    requests.cancel(A)
    world.clock.now += OPT_SECONDS  # the disabling finishes
    assert run(world, A, {"regions/ap-east-1": ENABLED}) == CHANGED


def test_no_more_than_the_limit_of_requests_start_and_the_rest_waits(world: World) -> None:
    regions(world, RegionOptLimits(per_account=6, per_organization=50))
    world.api.deadline = world.clock.now  # no waiting for a slot
    wanted = ["af-south-1", "ap-east-1", "ap-south-2", "ap-southeast-3", "ca-west-1", "eu-south-1", "me-central-1"]
    outcome = reconcile_account(world.api, A, {f"regions/{r}": ENABLED for r in wanted}, snapshots=world.snapshots)
    assert outcome.status == THROTTLED and len(outcome.actions) == 6  # six started, the seventh waits
    assert world.log.calls["EnableRegion"] == 6 and world.log.peak_in_progress[A] == 6


# -- alternate contacts: the same loop as their own --------------------------------------------


def test_alternate_contacts_through_the_one_loop_as_through_their_own(world: World) -> None:
    contact = {"Name": "Ops", "Title": "Ops", "EmailAddress": "ops@example.com", "PhoneNumber": "+1 206 555 0100"}
    world.org.set_contacts(A, {"BILLING": {**contact, "Name": "Old"}})
    world.org.set_contacts(B, {"BILLING": {**contact, "Name": "Old"}})
    targets: dict[str, Any] = {"BILLING": contact, "SECURITY": contact, "OPERATIONS": "DELETE"}
    own = reconcile_account(AccountApi(clients.client("account"), world.org.management_account_id), A, targets)
    shared = reconcile_account(world.api, B, targets)
    assert own.to_dict() | {"account": "x"} == shared.to_dict() | {"account": "x"}
    assert world.org.contacts(A) == world.org.contacts(B)
