# ruff: noqa: F811 (the world fixture is imported by name)
"""Targeting by Organizations tags: the vocabulary (targets, exclusions, tag overrides ranked between
OU and account overrides), the tag events that re-evaluate one account, and the preflight's view of
which accounts a tag selects."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from org_bootstrap.aws import clients
from org_bootstrap.aws.organization import Account, list_accounts
from org_bootstrap.engine.jobs import plan
from org_bootstrap.engine.reconcile import CHANGED, SKIPPED
from org_bootstrap.engine.stores import DynamoDbSnapshots
from org_bootstrap.engine.targeting import TagsNotRead
from org_bootstrap.handlers import account_events
from org_bootstrap.handlers.preflight import ConfigIds, check
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec
from org_bootstrap.validation import InvalidInputError
from simulation.cloudtrail import api_call
from tests.conftest import create_snapshot_table
from tests.test_account_events import DEFAULT, SECURITY, World, contact, world  # noqa: F401 (the fixture)

PAYMENTS_SECURITY = contact("Payments Security", "payments-security@example.com")
PROD_SECURITY = contact("Prod Security", "prod-security@example.com")
OWN = contact("Own Security", "own@example.com")
ROOT, PROD = "r-ex01", "ou-ex01-prodapps"


def spec(**data: Any) -> ContactSpec:
    return ContactSpec.parse({"contacts": DEFAULT, **data})


def test_every_key_must_match_and_a_list_means_any_of_its_values() -> None:
    s = spec(targets={"tags": {"environment": "production", "team": ["payments", "orders"]}})
    path = (ROOT,)
    assert s.targets("555555555555", path, tags={"environment": "production", "team": "orders"})
    assert not s.targets("555555555555", path, tags={"environment": "production", "team": "data"})
    assert not s.targets("555555555555", path, tags={"team": "payments"})  # a key missing
    assert not s.targets("555555555555", path, tags={"environment": "Production", "team": "orders"})  # case counts
    with pytest.raises(TagsNotRead):
        s.targets("555555555555", path)  # a job that did not read the tags cannot decide


def test_tags_narrow_the_ous_and_exclusions_win() -> None:
    s = spec(
        targets={
            "organizational_units": [PROD],
            "tags": {"environment": "production"},
            "exclude_tags": {"lifecycle": ["sandbox", "closing"]},
        }
    )
    production = {"environment": "production"}
    assert s.targets("1" * 12, (ROOT, PROD), tags=production)
    assert not s.targets("1" * 12, (ROOT,), tags=production)  # tagged, outside the OU
    assert not s.targets("1" * 12, (ROOT, PROD), tags={**production, "lifecycle": "closing"})
    assert ContactSpec.from_json(s.to_json()) == s  # the vocabulary round-trips through the resource property


def test_an_account_override_beats_a_tag_override_which_beats_an_ou_override() -> None:
    s = spec(
        overrides=[
            {"organizational_unit": PROD, "contacts": {"SECURITY": PROD_SECURITY, "BILLING": PROD_SECURITY}},
            {"tags": {"team": "payments"}, "contacts": {"SECURITY": PAYMENTS_SECURITY}},
            {"account": "555555555555", "contacts": {"BILLING": OWN}},
        ]
    )
    payments = {"team": "payments"}
    got = s.desired("555555555555", (ROOT, PROD), payments)
    assert got["SECURITY"] == PAYMENTS_SECURITY  # tags over the OU
    assert got["BILLING"] == OWN  # the account over everything
    assert s.desired("666666666666", (ROOT, PROD), {})["SECURITY"] == PROD_SECURITY
    assert s.desired("666666666666", (ROOT,), payments)["SECURITY"] == PAYMENTS_SECURITY


def test_of_two_matching_tag_overrides_the_one_naming_more_keys_wins() -> None:
    s = spec(
        overrides=[
            {"tags": {"team": "payments", "environment": "production"}, "contacts": {"SECURITY": PROD_SECURITY}},
            {"tags": {"team": "payments"}, "contacts": {"SECURITY": PAYMENTS_SECURITY}},
        ]
    )
    assert s.desired("1" * 12, (ROOT,), {"team": "payments", "environment": "production"})["SECURITY"] == PROD_SECURITY
    assert s.desired("1" * 12, (ROOT,), {"team": "payments"})["SECURITY"] == PAYMENTS_SECURITY


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        ({"tags": {}}, "alternate_contacts.targets.tags: is empty"),
        ({"accounts": []}, "alternate_contacts.targets.accounts: is empty"),
        ({"tags": {"team": []}}, "alternate_contacts.targets.tags.team: is an empty list"),
        ({"tags": {"": "x"}}, "alternate_contacts.targets.tags key: '' must be 1-128 characters long"),
        ({"tags": {"k" * 129: "x"}}, "must be 1-128 characters long"),
        ({"tags": {"team": "a|b"}}, "alternate_contacts.targets.tags.team: 'a|b' has '|'"),
        ({"exclude_tags": {"team": 3}}, "alternate_contacts.targets.exclude_tags.team: 3 must be a string"),
    ],
)
def test_malformed_tags_name_the_field_and_the_rule(targets: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        ContactSpec.parse({"contacts": DEFAULT, "targets": targets}, "alternate_contacts")
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_organizations_tag_characters_are_unicode_letters_digits_spaces_and_the_listed_signs() -> None:
    ok = spec(targets={"tags": {"Kostenstelle Ü-1:2/3=4+5@6_7.8": "東京 ٣"}})  # \p{L}, \p{N}, \p{Z}
    assert ok.targeting.tags


def test_a_job_reads_the_tags_once_per_account_and_targets_by_them(world: World) -> None:
    tagged = world.org.create_account("tagged", account_id="777777777777")
    world.org.create_account("untagged", account_id="888888888888")
    world.org.organizations.tag_resource(ResourceId=tagged, Tags=[{"Key": "environment", "Value": "production"}])
    s = spec(targets={"tags": {"environment": "production"}})
    organizations = world.org.organizations
    with mock.patch.object(organizations, "list_tags_for_resource", wraps=organizations.list_tags_for_resource) as read:
        accounts = list_accounts(organizations, tags=True)
    job = plan("job", accounts, s, management_account_id=world.management)
    assert [account for account, _ in job.items] == [tagged]
    assert {a.id: a.tags for a in accounts}[tagged] == {"environment": "production"}
    assert sorted(c.kwargs["ResourceId"] for c in read.call_args_list) == sorted(a.id for a in accounts)  # once each
    assert all(isinstance(a, Account) and a.tags is not None for a in accounts)


# -- events ------------------------------------------------------------------------------------


def tag_event(world: World, account: str, **tags: str) -> dict[str, Any]:
    request = {"resourceId": account, "tags": [{"key": k, "value": v} for k, v in tags.items()]}
    return api_call("TagResource", world.management, request, None, world.management)


def untag_event(world: World, account: str, *keys: str) -> dict[str, Any]:
    return api_call(
        "UntagResource", world.management, {"resourceId": account, "tagKeys": list(keys)}, None, world.management
    )


def by_tags(world: World, removal: str) -> None:
    create_snapshot_table("snapshots")
    world.deps.snapshots = DynamoDbSnapshots(clients.client("dynamodb"), "snapshots")
    world.deps.spec = spec(targets={"tags": {"environment": "production"}}, removal=removal)


def test_an_account_tagged_into_the_targets_gets_every_setting(world: World) -> None:
    by_tags(world, "delete")
    account = world.org.create_account("later", account_id="777777777777")
    world.org.organizations.tag_resource(ResourceId=account, Tags=[{"Key": "environment", "Value": "production"}])

    answer = world.deliver(tag_event(world, account, environment="production"))

    assert answer == {"batchItemFailures": []}
    assert world.contacts(account) == DEFAULT


@pytest.mark.parametrize("removal", ["retain", "delete"])
def test_an_account_untagged_out_of_the_targets_is_released_by_the_removal_mode(world: World, removal: str) -> None:
    by_tags(world, removal)
    account = world.org.create_account("leaving", account_id="777777777777")
    world.org.organizations.tag_resource(ResourceId=account, Tags=[{"Key": "environment", "Value": "production"}])
    world.deliver(tag_event(world, account, environment="production"))
    assert world.contacts(account) == DEFAULT

    world.org.organizations.untag_resource(ResourceId=account, TagKeys=["environment"])
    outcome = account_events.handle(untag_event(world, account, "environment"), world.deps)

    if removal == "retain":
        assert outcome.status == SKIPPED and "tagged out of the targets" in outcome.reason
        assert world.contacts(account) == DEFAULT
    else:
        assert outcome.status == CHANGED
        assert world.contacts(account) == {}


def test_a_retag_never_releases_what_the_stack_did_not_write_there(world: World) -> None:
    """TagResource does not carry the old value: an account that was never targeted (its contacts
    are its own) keeps them when its tag changes, even under removal = delete."""
    by_tags(world, "delete")
    account = world.org.create_account("dev", account_id="777777777777")
    world.org.put_contact(account, "SECURITY", SECURITY)
    world.org.organizations.tag_resource(ResourceId=account, Tags=[{"Key": "environment", "Value": "staging"}])

    outcome = account_events.handle(tag_event(world, account, environment="staging"), world.deps)

    assert outcome.status == SKIPPED
    assert world.contacts(account) == {"SECURITY": SECURITY}


def test_tags_of_an_ou_are_acknowledged_without_a_call(world: World) -> None:
    found = account_events.parse_event(tag_event(world, world.ous["prod"], environment="production"))
    assert found.account_id is None and "not of an account" in found.reason


# -- preflight ---------------------------------------------------------------------------------


def test_the_preflight_shows_which_accounts_a_tag_selects_and_warns_about_tags_no_account_has(
    world: World,
) -> None:
    account = world.org.create_account("prod", account_id="777777777777")
    world.org.organizations.tag_resource(ResourceId=account, Tags=[{"Key": "environment", "Value": "production"}])
    s = spec(targets={"tags": {"environment": ["production", "prodution"]}, "exclude_tags": {"lifecycle": "sandbox"}})
    ids = ConfigIds.of(management_account_id=world.management, spec=s)
    assert ConfigIds.from_properties(ids.to_properties()) == ids

    found = check(world.org.organizations, ids)

    assert found.problems == []  # tags change: never a reason to stop a deploy
    assert found.selected == {
        "alternate_contacts.targets.tags": [account],
        "alternate_contacts.targets.exclude_tags": [],
    }
    assert any("'prodution'" in w for w in found.warnings)
    assert any("no account carries the tag key 'lifecycle'" in w for w in found.warnings)
