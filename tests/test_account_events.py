"""New and moved accounts: documented Organizations and Control Tower events, through the SQS batch
handler, against the strict simulated organization; the account's contacts are checked afterwards."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest

from org_bootstrap.aws import clients
from org_bootstrap.engine.pacing import RateLimits
from org_bootstrap.engine.reconcile import CHANGED, SKIPPED, UNCHANGED, AccountApi
from org_bootstrap.engine.stores import DynamoDbSnapshots
from org_bootstrap.handlers import account_events
from org_bootstrap.handlers.account_events import Dependencies
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec
from org_bootstrap.settings.primary_contact.spec import PrimaryContactSpec
from org_bootstrap.settings.regions.spec import RegionSpec
from simulation.cloudtrail import (
    account_joined,
    create_account_result,
    envelope,
    managed_account,
    move_account,
)
from simulation.organization import ApiLog, Organization, Storm
from tests.conftest import LIFTED_QUOTAS, US_PRIMARY_CONTACT, create_snapshot_table

FAST = LIFTED_QUOTAS  # every setting's operations


def contact(name: str, email: str = "team@example.com") -> dict[str, str]:
    return {"Name": name, "Title": "Owner", "EmailAddress": email, "PhoneNumber": "+1 206 555 0100"}


BILLING, OPERATIONS, SECURITY = contact("Billing"), contact("Operations"), contact("Security")
PROD_SECURITY = contact("Prod Security", "prod-security@example.com")
DEFAULT = {"BILLING": BILLING, "OPERATIONS": OPERATIONS, "SECURITY": SECURITY}


def sqs_batch(*events: dict[str, Any]) -> dict[str, Any]:
    """What the SQS event source mapping hands the function: the EventBridge events as bodies."""
    return {
        "Records": [
            {
                "messageId": f"message-{i}",
                "receiptHandle": f"handle-{i}",
                "body": json.dumps(event),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795000000000"},
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:111111111111:AccountEvents",
                "awsRegion": "us-east-1",
            }
            for i, event in enumerate(events)
        ]
    }


# -- the organization --------------------------------------------------------------------------


@dataclass
class World:
    org: Organization
    log: ApiLog
    deps: Dependencies
    ous: dict[str, str]

    @property
    def management(self) -> str:
        return self.org.management_account_id

    def contacts(self, account_id: str) -> dict[str, dict[str, str]]:
        return self.org.contacts(account_id)

    def deliver(self, *events: dict[str, Any]) -> dict[str, Any]:
        return account_events.on_messages(sqs_batch(*events))


def make_spec(ous: dict[str, str], **extra: Any) -> ContactSpec:
    data: dict[str, Any] = {
        "contacts": DEFAULT,
        "targets": {"exclude_organizational_units": [ous["excluded"]]},
        "overrides": [{"organizational_unit": ous["prod"], "contacts": {"SECURITY": PROD_SECURITY}}],
    }
    data.update(extra)
    return ContactSpec.parse(data)


@pytest.fixture
def world(api_log: ApiLog) -> Iterator[World]:
    """Trusted access on; OUs Workloads > Prod (SECURITY override), Sandbox, and Excluded."""
    org = Organization()
    org.enable_trusted_access()
    ous = {"workloads": org.create_ou("Workloads")}
    ous["prod"] = org.create_ou("Prod", ous["workloads"])
    ous["sandbox"] = org.create_ou("Sandbox")
    ous["excluded"] = org.create_ou("Excluded")
    deps = Dependencies(
        organizations=org.organizations,
        api=AccountApi(clients.client("account"), org.management_account_id, RateLimits(FAST)),
        spec=make_spec(ous),
        management_account_id=org.management_account_id,
        caller_account_id=org.management_account_id,
    )
    with (
        mock.patch.object(account_events, "dependencies", lambda: deps),
        mock.patch("botocore.endpoint.time.sleep"),
    ):
        yield World(org, api_log, deps, ous)


PROD_CONTACTS = {"BILLING": BILLING, "OPERATIONS": OPERATIONS, "SECURITY": PROD_SECURITY}

EventFactory = Callable[[World, str], dict[str, Any]]
DOCUMENTED_EVENTS: dict[str, tuple[str | None, EventFactory]] = {
    # event name: (the OU the account sits in, the event naming it)
    "CreateAccountResult": (None, lambda w, a: create_account_result(a, w.management)),
    "AccountJoinedOrganization": (None, lambda w, a: account_joined(a, w.management)),
    "MoveAccount": ("prod", lambda w, a: move_account(a, w.org.root_id, w.ous["prod"], w.management)),
    "CreateManagedAccount": (
        "prod",
        lambda w, a: managed_account("CreateManagedAccount", a, w.ous["prod"], w.management),
    ),
    "UpdateManagedAccount": (
        "sandbox",
        lambda w, a: managed_account("UpdateManagedAccount", a, w.ous["sandbox"], w.management),
    ),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED_EVENTS))
def test_each_documented_event_gives_its_account_the_configured_contacts(world: World, name: str) -> None:
    ou, make_event = DOCUMENTED_EVENTS[name]
    account = world.org.create_account("new", parent_id=world.ous[ou] if ou else None, account_id="777777777777")
    assert world.contacts(account) == {}

    answer = world.deliver(make_event(world, account))

    assert answer == {"batchItemFailures": []}
    assert world.contacts(account) == (PROD_CONTACTS if ou == "prod" else DEFAULT)
    assert world.log.writes() == 3


def test_a_moved_account_follows_the_overrides_of_its_new_ou(world: World) -> None:
    account = world.org.create_account("mover", account_id="777777777777")
    world.deliver(create_account_result(account, world.management))
    assert world.contacts(account)["SECURITY"] == SECURITY

    world.org.organizations.move_account(
        AccountId=account, SourceParentId=world.org.root_id, DestinationParentId=world.ous["prod"]
    )
    world.deliver(move_account(account, world.org.root_id, world.ous["prod"], world.management))

    assert world.contacts(account) == PROD_CONTACTS
    assert world.log.writes() == 3 + 1  # only the SECURITY contact changed on the move


def test_an_invited_account_gets_its_contacts_when_it_joins_not_at_the_next_drift_check(world: World) -> None:
    invited = world.org.create_account("invited", parent_id=world.ous["prod"], account_id="777777777777")
    assert account_events.parse_event(account_joined(invited, world.management)).account_id == invited
    world.deliver(account_joined(invited, world.management))
    assert world.contacts(invited) == PROD_CONTACTS
    # The account is also found from the ARN in resources, where a service event names its subject.
    event = account_joined("888888888888", world.management, method="CREATED")
    del event["detail"]["serviceEventDetails"]["accountId"]
    assert account_events.parse_event(event).account_id == "888888888888"


# -- moves out of the targets: the removal mode, as when a config change releases the account ------

BEFORE = contact("Before", "before@example.com")


def with_snapshots(world: World, removal: str, **spec: Any) -> None:
    create_snapshot_table("snapshots")
    world.deps.snapshots = DynamoDbSnapshots(clients.client("dynamodb"), "snapshots")
    world.deps.spec = make_spec(world.ous, removal=removal, **spec)


def configured_account(world: World, ou: str) -> str:
    """An account in ``ou`` that had a BILLING contact of its own before the config gave it all three."""
    account = world.org.create_account("mover", parent_id=world.ous[ou], account_id="777777777777")
    world.org.put_contact(account, "BILLING", BEFORE)
    world.deliver(create_account_result(account, world.management))
    return account


def move(world: World, account: str, source: str, destination: str) -> Any:
    world.org.organizations.move_account(
        AccountId=account, SourceParentId=world.ous[source], DestinationParentId=world.ous[destination]
    )
    return account_events.handle(
        move_account(account, world.ous[source], world.ous[destination], world.management), world.deps
    )


AFTER_RELEASE = {"retain": DEFAULT, "delete": {}, "restore": {"BILLING": BEFORE}}


@pytest.mark.parametrize("removal", sorted(AFTER_RELEASE))
def test_a_move_into_an_excluded_ou_applies_the_removal_mode(world: World, removal: str) -> None:
    with_snapshots(world, removal)
    account = configured_account(world, "workloads")
    assert world.contacts(account) == DEFAULT

    outcome = move(world, account, "workloads", "excluded")

    assert world.contacts(account) == AFTER_RELEASE[removal]
    if removal == "retain":
        assert outcome.status == SKIPPED and "removal retain" in outcome.reason
    else:
        assert outcome.status == CHANGED
        assert outcome.actions == (
            {"BILLING": "delete", "OPERATIONS": "delete", "SECURITY": "delete"}
            if removal == "delete"
            else {"BILLING": "put", "OPERATIONS": "delete", "SECURITY": "delete"}
        )


@pytest.mark.parametrize("removal", sorted(AFTER_RELEASE))
def test_a_move_out_of_the_targeted_ous_applies_the_removal_mode(world: World, removal: str) -> None:
    with_snapshots(world, removal, targets={"organizational_units": [world.ous["workloads"]]})
    account = configured_account(world, "prod")  # nested in Workloads: targeted, with the override
    assert world.contacts(account) == {**PROD_CONTACTS}

    move(world, account, "prod", "sandbox")

    expected = AFTER_RELEASE[removal]
    assert world.contacts(account) == ({**DEFAULT, "SECURITY": PROD_SECURITY} if removal == "retain" else expected)


def test_a_move_between_targeted_ous_releases_nothing_and_follows_the_new_overrides(world: World) -> None:
    with_snapshots(world, "delete")
    account = configured_account(world, "prod")
    outcome = move(world, account, "prod", "workloads")
    assert outcome.actions == {"SECURITY": "put"}
    assert world.contacts(account) == DEFAULT


def test_a_move_between_untargeted_ous_touches_nothing(world: World) -> None:
    with_snapshots(world, "delete", targets={"organizational_units": [world.ous["workloads"]]})
    account = world.org.create_account("outside", parent_id=world.ous["sandbox"], account_id="777777777777")
    world.org.put_contact(account, "BILLING", BEFORE)
    world.log.calls.clear()
    outcome = move(world, account, "sandbox", "excluded")
    assert outcome.status == SKIPPED and outcome.reason == "not targeted by the config"
    assert world.log.calls == {} and world.contacts(account) == {"BILLING": BEFORE}


def test_a_move_naming_a_malformed_source_is_refused_for_the_dead_letter_queue(world: World) -> None:
    event = move_account("777777777777", "not-a-parent", world.ous["prod"], world.management)
    assert world.deliver(event) == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert world.log.calls == {}


def test_a_repeated_event_changes_nothing(world: World) -> None:
    account = world.org.create_account("new", account_id="777777777777")
    event = create_account_result(account, world.management)
    world.deliver(event)
    writes = world.log.writes()

    outcome = account_events.handle(event, world.deps)

    assert outcome.status == UNCHANGED
    assert world.log.writes() == writes


@pytest.mark.parametrize(
    "make_event",
    [
        pytest.param(lambda w, a: create_account_result(None, w.management, state="FAILED"), id="creation-failed"),
        pytest.param(
            lambda w, a: move_account(
                a, w.org.root_id, w.ous["prod"], w.management, errorCode="AccessDenied", errorMessage="denied"
            ),
            id="move-call-failed",
        ),
        pytest.param(
            lambda w, a: managed_account("CreateManagedAccount", a, w.ous["prod"], w.management, state="FAILED"),
            id="control-tower-failed",
        ),
    ],
)
def test_events_that_change_no_membership_are_acknowledged_without_a_call(world: World, make_event: Any) -> None:
    account = world.org.create_account("new", account_id="777777777777")

    answer = world.deliver(make_event(world, account))

    assert answer == {"batchItemFailures": []}
    assert world.log.calls == {}
    assert world.contacts(account) == {}


def test_untargeted_and_suspended_accounts_are_left_alone(world: World) -> None:
    excluded = world.org.create_account("excluded", parent_id=world.ous["excluded"], account_id="777777777777")
    suspended = world.org.create_account("suspended", account_id="888888888888")
    world.org.set_status(suspended, "SUSPENDED")

    answer = world.deliver(
        move_account(excluded, world.org.root_id, world.ous["excluded"], world.management),
        create_account_result(suspended, world.management),
    )

    assert answer == {"batchItemFailures": []}
    assert world.log.calls == {}
    assert account_events.handle(create_account_result(suspended, world.management), world.deps).status == SKIPPED


def test_a_failing_account_is_retried_alone_and_the_others_are_applied(world: World) -> None:
    first = world.org.create_account("first", account_id="777777777777")
    failing = world.org.create_account("failing", account_id="888888888888")
    last = world.org.create_account("last", account_id="999999999999")
    # A 5xx that outlasts the client's retries (the first call of the batch is the failing account's).
    world.log.add_storm(Storm({"GetAlternateContact"}, calls=clients.MAX_ATTEMPTS, code="ServiceUnavailableException"))

    answer = world.deliver(*(create_account_result(a, world.management) for a in (failing, first, last)))

    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}  # a fault a retry may fix
    assert world.contacts(first) == DEFAULT
    assert world.contacts(last) == DEFAULT
    assert world.contacts(failing) == {}


def test_an_account_denied_is_acknowledged_not_retried_and_the_others_are_applied(world: World) -> None:
    first = world.org.create_account("first", account_id="777777777777")
    denied = world.org.create_account("denied", account_id="888888888888")
    world.log.denied_accounts.add(denied)

    answer = world.deliver(*(create_account_result(a, world.management) for a in (first, denied)))

    assert answer == {"batchItemFailures": []}  # reported (tests/test_account_events_deadline.py), not redelivered
    assert world.contacts(first) == DEFAULT
    assert world.contacts(denied) == {}


def test_an_event_naming_no_known_account_is_reported_failed_for_the_dead_letter_queue(world: World) -> None:
    unknown = envelope("aws.organizations", "AWS API Call via CloudTrail", {"eventName": "TagResource"}, "x")
    no_account = move_account("not-an-account", "r-1", "ou-1", world.management)
    answer = world.deliver(unknown, no_account)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-0"}, {"itemIdentifier": "message-1"}]}
    garbage = sqs_batch()
    garbage["Records"] = [{"messageId": "m", "body": "not json"}]
    assert account_events.on_messages(garbage) == {"batchItemFailures": [{"itemIdentifier": "m"}]}
    assert world.log.calls == {}


def test_an_account_that_left_the_organization_is_skipped(world: World) -> None:
    outcome = account_events.handle(create_account_result("123456789012", world.management), world.deps)
    assert outcome.status == SKIPPED
    assert "no longer in the organization" in outcome.reason


def test_a_delegated_administrator_never_addresses_the_management_account(world: World) -> None:
    world.deps.caller_account_id = "222222222222"
    event = move_account(world.management, world.org.root_id, world.ous["sandbox"], world.management)
    outcome = account_events.handle(event, world.deps)
    assert outcome.status == SKIPPED
    assert world.log.calls == {}


def test_the_management_account_is_addressed_without_account_id(world: World) -> None:
    outcome = account_events.handle(
        move_account(world.management, world.org.root_id, world.ous["sandbox"], world.management), world.deps
    )
    assert outcome.status == CHANGED
    assert world.contacts(world.management) == DEFAULT


def test_the_contact_a_fix_replaces_is_remembered_for_restore(world: World) -> None:
    dynamodb = clients.client("dynamodb")
    create_snapshot_table("snapshots")
    world.deps.snapshots = snapshots = DynamoDbSnapshots(dynamodb, "snapshots")
    account = world.org.create_account("new", account_id="777777777777")
    before = contact("Before", "before@example.com")
    world.org.put_contact(account, "BILLING", before)

    world.deliver(create_account_result(account, world.management))

    assert world.contacts(account)["BILLING"] == BILLING
    assert snapshots.recall(account, "BILLING") == (True, before)
    assert snapshots.recall(account, "SECURITY") == (True, None)


def test_logs_never_carry_full_email_addresses_or_phone_numbers(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    account = world.org.create_account("new", account_id="777777777777")
    world.deliver(create_account_result(account, world.management))
    assert "team@example.com" not in caplog.text
    assert "206 555 0100" not in caplog.text
    assert "777777777777" in caplog.text


def test_serviceeventdetails_as_cloudtrail_log_files_carry_it_is_read_too() -> None:
    event = create_account_result("777777777777", "111111111111")
    event["detail"]["serviceEventDetails"] = json.dumps(event["detail"]["serviceEventDetails"])
    assert account_events.parse_event(event).account_id == "777777777777"


# -- every setting: the primary contact and Regions, as the alternate contacts ----------------------

PRIMARY = {**US_PRIMARY_CONTACT, "FullName": "Example Corp Cloud Platform"}
PRIMARY_BEFORE = {**PRIMARY, "FullName": "Jane Doe"}
PROD_REGIONS = ["ap-east-1", "me-central-1"]


def every_setting(world: World) -> dict[str, Any]:
    """Alternate contacts everywhere (but Excluded), the primary contact everywhere, Hong Kong and
    the UAE on the Prod OU's accounts."""
    return {
        "alternate_contacts": make_spec(world.ous),
        "primary_contact": PrimaryContactSpec.parse({"contact": PRIMARY}),
        "regions": RegionSpec.parse({"enable": PROD_REGIONS, "targets": {"organizational_units": [world.ous["prod"]]}}),
    }


def test_a_new_account_gets_its_primary_contact_and_regions_with_its_contacts(world: World) -> None:
    world.deps.spec = every_setting(world)
    world.log.region_opt_seconds = 3600.0  # ENABLING for an hour: far longer than the handler runs
    account = world.org.create_account("new", parent_id=world.ous["prod"], account_id="777777777777")
    sandbox = world.org.create_account("play", parent_id=world.ous["sandbox"], account_id="888888888888")

    outcome = account_events.handle(create_account_result(account, world.management), world.deps)
    answer = world.deliver(create_account_result(sandbox, world.management))

    assert answer == {"batchItemFailures": []}
    assert outcome.status == CHANGED
    assert world.contacts(account) == PROD_CONTACTS
    assert world.org.primary_contact(account) == PRIMARY
    # The requests are started, not waited for: still ENABLING, and the outcome says they are in progress.
    assert world.org.regions(account, world.log) == {region: "ENABLING" for region in PROD_REGIONS}
    assert outcome.reason == "in progress: regions/ap-east-1, regions/me-central-1"
    # Outside the Prod OU: the contacts and primary contact, no Region.
    assert world.contacts(sandbox) == DEFAULT
    assert world.org.primary_contact(sandbox) == PRIMARY
    assert world.org.regions(sandbox, world.log) == {}


def test_a_move_out_of_the_targets_applies_each_settings_removal_mode(world: World) -> None:
    create_snapshot_table("snapshots")
    world.deps.snapshots = DynamoDbSnapshots(clients.client("dynamodb"), "snapshots")
    world.deps.spec = every_setting(world)
    world.deps.spec["primary_contact"] = PrimaryContactSpec.parse(
        {"contact": PRIMARY, "removal": "restore", "targets": {"organizational_units": [world.ous["prod"]]}}
    )
    account = world.org.create_account("mover", parent_id=world.ous["prod"], account_id="777777777777")
    world.org.set_primary_contact(account, PRIMARY_BEFORE)
    world.deliver(create_account_result(account, world.management))
    assert world.org.primary_contact(account) == PRIMARY
    assert set(world.org.regions(account, world.log)) == set(PROD_REGIONS)

    world.org.organizations.move_account(
        AccountId=account, SourceParentId=world.ous["prod"], DestinationParentId=world.ous["sandbox"]
    )
    outcome = account_events.handle(
        move_account(account, world.ous["prod"], world.ous["sandbox"], world.management), world.deps
    )

    assert outcome.actions == {"SECURITY": "put", "primary_contact/PRIMARY": "put"}
    assert world.org.primary_contact(account) == PRIMARY_BEFORE  # restore: put back what it had
    assert set(world.org.regions(account, world.log)) == set(PROD_REGIONS)  # retain: left enabled
    assert world.contacts(account) == DEFAULT  # the Prod override no longer applies


def test_a_region_still_changing_the_other_way_is_left_to_the_drift_check_not_retried(world: World) -> None:
    """A moved account's Region is DISABLING (hours, maybe) while the new OU wants it enabled: the
    account's other settings are applied, the Region is not requested (AWS refuses it until then),
    and the record is done: neither retried in a loop nor handed back for SQS to dead-letter."""
    world.deps.spec = every_setting(world)
    world.log.region_opt_seconds = 3600.0
    account = world.org.create_account("mover", parent_id=world.ous["sandbox"], account_id="777777777777")
    world.org.set_regions(account, {"ap-east-1": "DISABLING", "me-central-1": "DISABLED"}, world.log)
    world.org.organizations.move_account(
        AccountId=account, SourceParentId=world.ous["sandbox"], DestinationParentId=world.ous["prod"]
    )
    before = world.log.calls["EnableRegion"]

    answer = world.deliver(move_account(account, world.ous["sandbox"], world.ous["prod"], world.management))

    assert answer == {"batchItemFailures": []}
    assert world.contacts(account) == PROD_CONTACTS and world.org.primary_contact(account) == PRIMARY
    assert world.log.calls["EnableRegion"] - before <= 1  # me-central-1 at most; never the one still DISABLING
    assert world.org.regions(account, world.log)["ap-east-1"] == "DISABLING"
    outcome = account_events.handle(
        move_account(account, world.ous["sandbox"], world.ous["prod"], world.management), world.deps
    )
    assert outcome.waiting and "ap-east-1" in outcome.reason
