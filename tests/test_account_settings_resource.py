"""The primary contact and the opt-in Regions through the custom resource, as CloudFormation drives
it (on_event, then is_complete), against the strict simulated organization: create, update, adopt,
delete with each removal mode, re-run without writes, and a Region still ENABLING when the
deploy's wait ends."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest

from org_bootstrap.aws import clients
from org_bootstrap.engine.pacing import RateLimits
from org_bootstrap.engine.quotas import Quota
from org_bootstrap.engine.reconcile import AccountApi
from org_bootstrap.engine.registry import account_quotas
from org_bootstrap.handlers import account_settings
from org_bootstrap.settings.primary_contact.spec import PrimaryContactSpec
from org_bootstrap.settings.regions.spec import RegionSpec
from org_bootstrap.validation import InvalidInputError
from tests.conftest import US_PRIMARY_CONTACT, cfn_event
from tests.test_account_settings_handler import ACTIVE_TARGETS, Context, World
from tests.test_account_settings_handler import world as contacts_world

PRIMARY = US_PRIMARY_CONTACT
PAYMENTS = {**PRIMARY, "FullName": "Payments Cloud Team"}
BEFORE = {**PRIMARY, "FullName": "Jane Doe", "CompanyName": "Doe Consulting"}
world = contacts_world  # the alternate contacts' organization, with every setting's calls fast


@pytest.fixture(autouse=True)
def every_setting_fast(world: World) -> None:
    fast = {operation: Quota(10_000, 10_000) for operation in account_quotas("aws")}
    world.deps.api = AccountApi(clients.client("account"), world.org.management_account_id, RateLimits(fast))
    world.deps.region_follow_seconds = 0.0  # REGION_FOLLOW_SECONDS: Regions enable at once here, read them at once


def primary(**overrides: Any) -> str:
    return PrimaryContactSpec.parse({"contact": PRIMARY, **overrides}).to_json()


def regions(**overrides: Any) -> str:
    return RegionSpec.parse({"enable": ["ap-east-1", "me-central-1"], **overrides}).to_json()


def run(
    world: World,
    request: str,
    new: dict[str, str],
    old: dict[str, str] | None = None,
    *,
    remaining: float = 900,
) -> dict[str, Any]:
    """What the Provider framework does: on_event, then is_complete until complete."""
    event = cfn_event(
        request,
        new,
        physical_id=None if request == "Create" else account_settings.PHYSICAL_ID,
        old_properties=old,
    )
    event["RequestId"] = f"{request}-{sum(world.log.calls.values())}"
    started = account_settings.on_event(event)
    for _ in range(1000):
        answer = account_settings.is_complete({**event, **started}, Context(remaining))
        if answer["IsComplete"]:
            return {**answer, "Job": started["Data"]["Job"]}
    raise AssertionError("never completed")


def report(answer: dict[str, Any]) -> dict[str, Any]:
    key = answer["Data"]["Report"].removeprefix("s3://jobs/")
    found: dict[str, Any] = json.loads(clients.client("s3").get_object(Bucket="jobs", Key=key)["Body"].read())
    return found


def primary_contacts(world: World) -> dict[str, Any]:
    return {name: world.org.primary_contact(world.ids[name]) for name in world.ids}


def test_create_sets_both_settings_on_every_targeted_account_in_one_job(world: World) -> None:
    answer = run(world, "Create", {"PrimaryContactSpec": primary(), "RegionsSpec": regions()})
    data = answer["Data"]
    assert (data["Changed"], data["Skipped"], data["Failed"], data["RegionsInProgress"]) == (6, 1, 0, 0)
    for name in ACTIVE_TARGETS:
        assert world.org.primary_contact(world.ids[name]) == PRIMARY, name
        assert world.org.regions(world.ids[name], world.log) == {"ap-east-1": "ENABLED", "me-central-1": "ENABLED"}
    assert world.org.primary_contact(world.ids["suspended"]) is None
    management = world.org.management_account_id  # its own settings, without AccountId
    assert world.log.callers["PutContactInformation", management, management] == 1
    assert world.log.callers["EnableRegion", management, management] == 2
    assert world.contacts("security") == {}  # no alternate contacts asked for: none touched


def test_a_rerun_adopts_what_is_already_set_and_writes_nothing(world: World) -> None:
    world.org.set_primary_contact(world.ids["prod-a"], PRIMARY)
    world.org.set_regions(world.ids["prod-a"], {"ap-east-1": "ENABLED", "me-central-1": "ENABLED"}, world.log)
    first = run(world, "Create", {"PrimaryContactSpec": primary(), "RegionsSpec": regions()})
    assert first["Data"]["Unchanged"] == 1  # prod-a already had both: adopted
    writes = world.log.writes()
    again = run(world, "Create", {"PrimaryContactSpec": primary(), "RegionsSpec": regions()})
    assert world.log.writes() == writes
    assert (again["Data"]["Changed"], again["Data"]["Unchanged"]) == (0, 6)


def test_an_update_writes_only_what_the_change_implies(world: World) -> None:
    run(world, "Create", {"PrimaryContactSpec": primary()})
    writes = world.log.writes()
    changed = primary(overrides=[{"organizational_unit": world.ous["prod"], "contact": PAYMENTS}])
    answer = run(world, "Update", {"PrimaryContactSpec": changed}, {"PrimaryContactSpec": primary()})
    assert world.log.writes() == writes + 2  # prod-a and prod-b only
    assert answer["Data"]["Changed"] == 2
    assert world.org.primary_contact(world.ids["prod-b"]) == PAYMENTS
    assert world.org.primary_contact(world.ids["workloads-a"]) == PRIMARY


def test_adding_a_setting_to_the_resource_is_a_create_of_that_setting(world: World) -> None:
    run(world, "Create", {"PrimaryContactSpec": primary()})
    both = {"PrimaryContactSpec": primary(), "RegionsSpec": regions()}
    answer = run(world, "Update", both, {"PrimaryContactSpec": primary()})
    assert answer["Data"]["Changed"] == 6
    assert world.log.calls["PutContactInformation"] == 6  # the primary contacts were not written again


def test_delete_with_retain_leaves_everything(world: World) -> None:
    props = {"PrimaryContactSpec": primary(), "RegionsSpec": regions()}
    run(world, "Create", props)
    writes = world.log.writes()
    run(world, "Delete", props)
    assert world.log.writes() == writes
    assert world.org.primary_contact(world.ids["security"]) == PRIMARY
    assert world.org.regions(world.ids["security"], world.log) == {"ap-east-1": "ENABLED", "me-central-1": "ENABLED"}


def test_delete_with_restore_puts_back_the_state_from_before_the_stack(world: World) -> None:
    world.org.set_primary_contact(world.ids["security"], BEFORE)
    world.org.set_regions(world.ids["security"], {"ap-east-1": "ENABLED"}, world.log)
    props = {"PrimaryContactSpec": primary(removal="restore"), "RegionsSpec": regions(removal="restore")}
    run(world, "Create", props)
    run(world, "Delete", props)
    assert world.org.primary_contact(world.ids["security"]) == BEFORE
    assert world.org.regions(world.ids["security"], world.log) == {
        "ap-east-1": "ENABLED"
    }  # me-central-1 disabled again
    # accounts that had no primary contact keep the stack's: the API cannot delete one
    assert world.org.primary_contact(world.ids["sandbox-a"]) == PRIMARY
    assert world.org.regions(world.ids["sandbox-a"], world.log) == {}


def test_a_region_still_enabling_when_the_deploy_wait_ends_does_not_fail_the_deploy(world: World) -> None:
    world.log.region_opt_seconds = 3600.0  # on the log's clock: an hour to enable
    world.deps.deploy_wait_seconds = 3.0
    with mock.patch.object(account_settings, "MIN_BATCH_SECONDS", 1.0):  # two batches of a second
        answer = run(world, "Create", {"RegionsSpec": regions()}, remaining=30)
    data = answer["Data"]
    assert data["Status"] == "CONTINUING_IN_WORKFLOW" and data["Failed"] == 0
    assert data["RegionsInProgress"] == 12  # 6 accounts x 2 Regions, followed on by the workflow
    assert world.workflow.started()  # the job carries on
    world.log.region_opt_seconds = 0.0  # the enabling finishes
    finished = world.workflow.loop(answer["Job"], Context(30))
    assert finished["Complete"] and world.org.regions(world.ids["prod-a"], world.log) == {
        "ap-east-1": "ENABLED",
        "me-central-1": "ENABLED",
    }


def test_region_requests_are_read_again_after_the_follow_interval_the_environment_sets(world: World) -> None:
    """Enabling takes half a second here: read every 0 s (the fixture's REGION_FOLLOW_SECONDS), the
    Regions are seen ENABLED within the deploy's wait; at the jobs' default interval (15 s) they
    would still be in progress when the wait ends."""
    world.log.region_opt_seconds = 0.5  # on the log's clock (real time)
    world.deps.deploy_wait_seconds = 3.0
    with mock.patch.object(account_settings, "MIN_BATCH_SECONDS", 1.0):
        data = run(world, "Create", {"RegionsSpec": regions()}, remaining=30)["Data"]
    assert (data["Status"], data["RegionsInProgress"], data["Failed"]) == ("COMPLETE", 0, 0)
    assert world.org.regions(world.ids["prod-a"], world.log) == {"ap-east-1": "ENABLED", "me-central-1": "ENABLED"}
    assert not world.workflow.started()


def test_a_bad_spec_fails_before_anything_changes(world: World) -> None:
    bad = json.dumps({"enable": ["us-east-1"]})
    with pytest.raises(InvalidInputError, match=r"Spec.enable\[0\]: 'us-east-1' is enabled by default"):
        account_settings.on_event(cfn_event("Create", {"RegionsSpec": bad}))
    assert world.log.writes() == 0
