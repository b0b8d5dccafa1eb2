"""The local deploy: the synthesized template's custom resources, run through CloudFormation's
lifecycle with their real handlers, against the strict simulated organization, with the world
saved and restored between runs as separate CLI invocations would."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from rich.console import Console

from local_deploy import views
from local_deploy import world as world_module
from local_deploy.api_calls import ApiCalls, ReadOnlyViolation, writes
from local_deploy.cli import main
from local_deploy.cloudformation import DELETE, UPDATE, LocalCloudFormation, Result
from local_deploy.organization_file import OrganizationFileError, load_organization_file
from local_deploy.plan import CREATE_CONTACT, ENABLE_REGION, IN_SYNC, UPDATE_CONTACT, build_plan
from local_deploy.plan_view import PlanOptions, plan_view
from local_deploy.stack import StackState
from local_deploy.synth import Synthesized
from local_deploy.template import Template, TemplateError, as_sent
from local_deploy.world import StateDir, open_world
from org_bootstrap.aws import clients
from org_bootstrap.engine import jobs
from org_bootstrap.engine.pacing import Quota, RateLimits
from org_bootstrap.engine.reconcile import AccountApi
from org_bootstrap.engine.registry import account_quotas
from org_bootstrap.handlers import account_settings, delegated_administrator
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec
from simulation.organization import ApiLog, Organization, strict_aws
from stacks.config import BootstrapConfig, load_config
from tests.conftest import ROOT, US_PRIMARY_CONTACT, at_simulation_speed

SEED = ROOT / "config" / "example-organization.toml"
STACK = "OrgBootstrapManagement"
MANAGEMENT, SUSPENDED = "111111111111", "131313131313"
SANDBOX = ("101010101010", "121212121212")
PRODUCTION = ("555555555555", "666666666666")
ACTIVE: tuple[str, ...] = ("111111111111", "222222222222", "333333333333", "444444444444", *PRODUCTION)
ACTIVE += ("777777777777", "888888888888", "999999999999", *SANDBOX)


def contact(name: str, email: str, phone: str, title: str) -> dict[str, str]:
    return {"Name": name, "Title": title, "EmailAddress": email, "PhoneNumber": phone}


EXAMPLE = tomllib.loads((ROOT / "config" / "example.toml").read_text())["alternate_contacts"]["contacts"]
NEW_SECURITY = contact("Security Operations Center", "soc@example.com", "+1 206 555 0199", "Security")
PAYMENTS_BILLING = contact("Payments Finance", "payments-finance@example.com", "+1 206 555 0120", "Cost owner")


@pytest.fixture(autouse=True)
def published_quotas_lifted() -> Iterator[None]:
    """The handlers pace themselves at the Account Management quotas; the simulation needs no pacing."""
    with at_simulation_speed():
        yield


@pytest.fixture(scope="module")
def example_template(example_app: dict[str, Any]) -> dict[str, Any]:
    return dict(example_app["assembly"].get_stack_by_name(STACK).template)


@pytest.fixture(scope="module")
def changed_template() -> dict[str, Any]:
    """The example with every kind of change: another delegated administrator, removal undo, a
    changed SECURITY contact, OPERATIONS no longer managed, an override for the nested Production
    OU, the Sandbox OU excluded, and contacts restored to their earlier values on release."""
    from stacks.app_builder import build_app

    data = tomllib.loads((ROOT / "config" / "example.toml").read_text())
    data.pop("automation", None)
    data["delegated_administrator_account_id"] = "333333333333"
    data["removal"] = "undo"
    data["alternate_contacts"] = {
        "removal": "restore",
        "contacts": {"BILLING": EXAMPLE["BILLING"], "SECURITY": NEW_SECURITY},
        "targets": {"exclude_organizational_units": ["ou-ex01-sandboxs"]},
        "overrides": [{"organizational_unit": "ou-ex01-prodapps", "contacts": {"BILLING": PAYMENTS_BILLING}}],
    }
    app, stack = build_app(BootstrapConfig.from_mapping(data))
    return dict(app.synth().get_stack_by_name(stack.stack_name).template)


@dataclass
class Run:
    result: Result
    organization: dict[str, Any]
    stack: StackState | None
    writes: dict[str, int]

    def contacts(self, account_id: str) -> dict[str, dict[str, str]]:
        return next(a["contacts"] for a in self.organization["accounts"] if a["id"] == account_id)

    def operations(self, action: str, resource_type: str) -> list[Any]:
        return [op for op in self.result.operations if op.action == action and op.resource_type == resource_type]


def run(
    state: StateDir,
    template: dict[str, Any] | None,
    *,
    seed: Path = SEED,
    denied: Collection[str] = (),
    rollback: bool = True,
    **options: Any,
) -> Run:
    """One CLI invocation's worth: restore the world, deploy (or destroy with no template), save.
    ``denied``: accounts whose every Account Management call is refused (as by an SCP)."""
    with open_world(state, seed) as world:
        world.api_log.denied_accounts = set(denied)
        stack = world.stack or StackState(STACK, MANAGEMENT, "us-east-1")
        world.stack = stack
        before = world.calls.snapshot()
        engine = LocalCloudFormation(stack, world.session, **options)
        result = engine.deploy(Template(template), rollback=rollback) if template is not None else engine.destroy()
        if template is None and result.ok:
            world.stack = None
        return Run(result, world.organization.to_mapping(), world.stack, writes(world.calls.snapshot() - before))


def seeded_contacts() -> dict[str, dict[str, Any]]:
    return {account["id"]: account.get("contacts", {}) for account in load_organization_file(SEED)["accounts"]}


def test_lifecycle_create_update_destroy(
    tmp_path: Path, example_template: dict[str, Any], changed_template: dict[str, Any]
) -> None:
    state = StateDir(tmp_path / "state")
    original = seeded_contacts()
    default = {t: EXAMPLE[t] for t in ("BILLING", "OPERATIONS", "SECURITY")}

    created = run(state, example_template)
    assert created.result.ok, created.result.failure
    assert created.stack is not None and created.stack.status == "CREATE_COMPLETE"
    organization = created.organization
    assert organization["trusted_access"] == ["account.amazonaws.com"]
    assert organization["delegated_administrators"] == {"account.amazonaws.com": ["222222222222"]}
    for account_id in ACTIVE:  # the management account too, through the call without AccountId
        assert created.contacts(account_id) == default, account_id
    assert created.contacts(SUSPENDED) == original[SUSPENDED]  # skipped, and reported as skipped
    (contacts_op,) = created.operations("Create", "Custom::AlternateContacts")
    assert contacts_op.data["Changed"] == 11 and contacts_op.data["Skipped"] == 1 and contacts_op.data["Failed"] == 0
    assert contacts_op.invocations >= 2  # on-event, then is-complete until complete
    (trusted_op,) = created.operations("Create", "Custom::TrustedServiceAccess")
    assert trusted_op.physical_id.endswith("/adopted")  # it was on before the stack
    assert created.writes == {
        "account:PutAlternateContact": 30,
        "account:PutContactInformation": 10,  # the management account's is already the config's
        "account:EnableRegion": 3,  # the production accounts; Payments Production had ap-east-1 already
        "organizations:RegisterDelegatedAdministrator": 1,
    }

    again = run(state, example_template)
    assert again.result.ok and again.result.operations == [] and again.writes == {}

    spy = mock.patch.object(delegated_administrator, "on_event", wraps=delegated_administrator.on_event)
    with spy as on_event:
        updated = run(state, changed_template)
    assert updated.result.ok, updated.result.failure
    assert updated.organization["delegated_administrators"] == {"account.amazonaws.com": ["333333333333"]}
    assert updated.organization["trusted_access"] == ["account.amazonaws.com"]
    (update_event, cleanup_event) = [call.args[0] for call in on_event.call_args_list]
    assert update_event["RequestType"] == "Update"
    assert update_event["OldResourceProperties"]["AccountId"] == "222222222222"
    assert update_event["ResourceProperties"]["Removal"] == "undo"
    # The new physical ID replaced the old one: CloudFormation deletes the old with its old properties.
    assert cleanup_event["RequestType"] == "Delete"
    assert cleanup_event["PhysicalResourceId"].endswith("/222222222222/created")
    assert cleanup_event["ResourceProperties"]["AccountId"] == "222222222222"
    (cleanup,) = [op for op in updated.result.operations if op.phase == "cleanup"]
    assert cleanup.action == DELETE and cleanup.resource_type == "Custom::DelegatedAdministrator"
    assert updated.result.operations[-1] is cleanup  # after every other change
    # Contacts: SECURITY changed everywhere targeted, the Production override, OPERATIONS released and
    # restored to what was there before the stack (absent for most), the Sandbox OU released too.
    for account_id in ACTIVE:
        contacts = updated.contacts(account_id)
        if account_id in SANDBOX:
            assert contacts == original[account_id] == {}, account_id
            continue
        assert contacts["SECURITY"] == NEW_SECURITY, account_id
        assert contacts["BILLING"] == (PAYMENTS_BILLING if account_id in PRODUCTION else EXAMPLE["BILLING"])
        assert contacts.get("OPERATIONS") == original[account_id].get("OPERATIONS"), account_id
    assert updated.contacts(SUSPENDED) == original[SUSPENDED]

    destroyed = run(state, None)
    assert destroyed.result.ok, destroyed.result.failure
    assert destroyed.stack is None and (state.load() or {})["stack"] is None
    assert destroyed.organization["delegated_administrators"] == {}  # registered by the stack, removal undo
    assert destroyed.organization["trusted_access"] == ["account.amazonaws.com"]  # adopted: left on
    for account_id, contacts in original.items():  # removal restore: every contact as it was seeded
        assert destroyed.contacts(account_id) == contacts, account_id
    deletes = [op.resource_type for op in destroyed.result.operations if op.simulated]
    assert deletes.index("Custom::DelegatedAdministrator") < deletes.index("Custom::TrustedServiceAccess")
    assert deletes.index("Custom::AlternateContacts") < deletes.index("Custom::TrustedServiceAccess")
    assert {op.action for op in destroyed.result.operations if op.resource_type == "AWS::S3::Bucket"} == {"Retain"}
    saved = json.loads(state.state_file.read_text())
    assert len(saved["s3"]) == 1 and len(saved["dynamodb"]) == 1  # retained, as DeletionPolicy says


def without_dependency_on_trusted_access(template: dict[str, Any]) -> dict[str, Any]:
    """The template with the delegated administrator no longer waiting for trusted access."""
    broken = copy.deepcopy(template)
    resources = broken["Resources"]
    (trusted,) = [lid for lid, r in resources.items() if r["Type"] == "Custom::TrustedServiceAccess"]
    (delegated,) = [lid for lid, r in resources.items() if r["Type"] == "Custom::DelegatedAdministrator"]
    trusted_prefix, delegated_prefix = trusted[:-8], delegated[:-8]  # the constructs' paths, without the hash
    for logical_id, resource in resources.items():
        if logical_id.startswith(delegated_prefix) and "DependsOn" in resource:
            resource["DependsOn"] = [d for d in resource["DependsOn"] if not d.startswith(trusted_prefix)]
    return broken


def synthesized(template: dict[str, Any]) -> Any:
    config = load_config()
    return lambda path: Synthesized(str(path), config, STACK, template, 0.0)


def test_wrong_ordering_fails_the_deploy(
    tmp_path: Path, example_template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    seed = tmp_path / "organization.toml"  # trusted access off: the registration must wait for it
    seed.write_text(SEED.read_text().replace('trusted_access = ["account.amazonaws.com"]', "trusted_access = []"))
    broken = without_dependency_on_trusted_access(example_template)
    state = tmp_path / "broken"
    argv = ["deploy", "--organization", str(seed), "--state-dir", str(state)]

    assert main(argv, synthesizer=synthesized(broken)) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ROLLBACK_COMPLETE: DelegatedAdministrator")
    assert "enable trusted access" in error and "\n" not in error
    with open_world(StateDir(state), seed) as world:
        assert world.organization.delegated_administrators() == set()
        assert world.organization.trusted_principals() == set()
        assert world.stack is not None and world.stack.status == "ROLLBACK_COMPLETE"
        assert world.stack.resources == {}  # rolled back: the supporting resources deleted too

    # The same organization with the template as synthesized: trusted access first, then the rest.
    fine = tmp_path / "fine"
    assert (
        main(
            ["deploy", "--organization", str(seed), "--state-dir", str(fine)], synthesizer=synthesized(example_template)
        )
        == 0
    )
    with open_world(StateDir(fine), seed) as world:
        assert world.organization.trusted_principals() == {"account.amazonaws.com"}
        assert world.organization.delegated_administrators() == {"222222222222"}
        assert world.stack is not None
        trusted = [r for r in world.stack.resources.values() if r.type == "Custom::TrustedServiceAccess"]
        assert trusted[0].physical_id.endswith("/created")


# -- rollback, with the real handlers -----------------------------------------------------------

REFUSED = "555555555555"  # a Production account; fault injection refuses its every contact call
NOT_IN_ORGANIZATION = "555555555550"


def recorded(resources: dict[str, Any]) -> dict[str, Any]:
    """What a stack record says of each resource, but the attributes (the rollback's answers)."""
    return {
        lid: (state.physical_id, state.properties, state.depends_on, state.definition)
        for lid, state in resources.items()
    }


def stack_statuses(result: Result) -> list[str]:
    return [event.status for event in result.events if event.of_stack]


def with_delegated_administrator(template: dict[str, Any], account_id: str) -> dict[str, Any]:
    """The template with the delegated administrator's ``AccountId`` changed, but not the
    preflight's (which would refuse an unknown account before anything changes): the registration
    fails after the resources before it have changed, as when the account leaves the organization
    during the deploy."""
    changed = copy.deepcopy(template)
    for resource in changed["Resources"].values():
        if resource["Type"] == "Custom::DelegatedAdministrator":
            resource["Properties"]["AccountId"] = account_id
    return changed


def test_failed_update_rolls_back_trusted_access_and_contacts(
    tmp_path: Path, example_template: dict[str, Any], changed_template: dict[str, Any]
) -> None:
    state = StateDir(tmp_path / "state")
    deployed = run(state, example_template)
    assert deployed.result.ok and deployed.stack is not None
    before, record = deployed.organization, recorded(deployed.stack.resources)

    # The changed config (trusted access's removal, every kind of contact change, another delegated
    # administrator) meets an account that refuses every call: the contacts' Update fails.
    failed = run(state, changed_template, denied={REFUSED})
    result = failed.result
    assert result.status == "UPDATE_ROLLBACK_COMPLETE" and result.failure is not None
    assert result.failure.resource_type == "Custom::AlternateContacts" and REFUSED in result.failure.error
    assert stack_statuses(result) == [
        "UPDATE_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE",
    ]
    back = [(op.action, op.resource_type) for op in result.operations if op.phase == "rollback" and op.custom]
    assert back == [
        ("Update", "Custom::OrganizationPreflight"),  # it checked the new delegated administrator
        ("Update", "Custom::TrustedServiceAccess"),
        ("Update", "Custom::AlternateContacts"),
    ]
    assert all(op.ok for op in result.operations if op.phase != "deploy")
    assert failed.writes["account:PutAlternateContact"] > 0  # the failed update wrote, the rollback undid it
    assert failed.organization == before  # trusted access, delegated administrators, every contact
    assert failed.stack is not None and recorded(failed.stack.resources) == record
    assert failed.stack.status == "UPDATE_ROLLBACK_COMPLETE"

    again = run(state, changed_template)  # the account reachable again: the change goes through
    assert again.result.status == "UPDATE_COMPLETE", again.result.failure
    assert again.organization["delegated_administrators"] == {"account.amazonaws.com": ["333333333333"]}
    assert again.contacts("222222222222")["SECURITY"] == NEW_SECURITY


def test_failed_delegated_administrator_update_rolls_back(tmp_path: Path, example_template: dict[str, Any]) -> None:
    state = StateDir(tmp_path / "state")
    deployed = run(state, example_template)
    assert deployed.stack is not None
    before, record = deployed.organization, recorded(deployed.stack.resources)
    spy = mock.patch.object(delegated_administrator, "on_event", wraps=delegated_administrator.on_event)
    with spy as on_event:
        failed = run(state, with_delegated_administrator(example_template, NOT_IN_ORGANIZATION))
    assert failed.result.status == "UPDATE_ROLLBACK_COMPLETE" and failed.result.failure is not None
    assert failed.result.failure.resource_type == "Custom::DelegatedAdministrator"
    forth, back = [call.args[0] for call in on_event.call_args_list]
    assert back["RequestType"] == "Update" and back["PhysicalResourceId"] == forth["PhysicalResourceId"]
    assert back["ResourceProperties"]["AccountId"] == DELEGATED
    assert back["OldResourceProperties"]["AccountId"] == NOT_IN_ORGANIZATION
    assert failed.organization == before  # 222222222222 is the delegated administrator again
    assert failed.stack is not None and recorded(failed.stack.resources) == record  # .../created, as it was


def adopted_delegated_administrator(tmp_path: Path, example_template: dict[str, Any]) -> tuple[Run, Run]:
    """222222222222 registered before the stack (adopted), then a change to an unknown account."""
    seed = tmp_path / "organization.toml"
    trusted = 'trusted_access = ["account.amazonaws.com"]'
    registered = f'{trusted}\ndelegated_administrators = {{"account.amazonaws.com" = ["{DELEGATED}"]}}'
    seed.write_text(SEED.read_text().replace(trusted, registered))
    state = StateDir(tmp_path / "state")
    deployed = run(state, example_template, seed=seed)
    assert deployed.stack is not None
    (adopted,) = [
        r.physical_id for r in deployed.stack.resources.values() if r.type == "Custom::DelegatedAdministrator"
    ]
    assert adopted.endswith("/222222222222/adopted")
    return deployed, run(state, with_delegated_administrator(example_template, NOT_IN_ORGANIZATION), seed=seed)


def test_failed_update_of_an_adopted_delegated_administrator_rolls_back(
    tmp_path: Path, example_template: dict[str, Any]
) -> None:
    deployed, failed = adopted_delegated_administrator(tmp_path, example_template)
    assert failed.result.status == "UPDATE_ROLLBACK_COMPLETE"
    assert failed.organization == deployed.organization


def test_rollback_keeps_an_adopted_delegated_administrator_adopted(
    tmp_path: Path, example_template: dict[str, Any]
) -> None:
    deployed, failed = adopted_delegated_administrator(tmp_path, example_template)
    assert deployed.stack is not None and failed.stack is not None
    assert recorded(failed.stack.resources) == recorded(deployed.stack.resources)  # still .../adopted


def test_failed_create_rolls_back_and_changes_nothing(tmp_path: Path, example_template: dict[str, Any]) -> None:
    state = StateDir(tmp_path / "state")
    with open_world(state, SEED) as world:
        seeded = world.organization.to_mapping()
    failed = run(state, example_template, denied={REFUSED})
    result = failed.result
    assert result.status == "ROLLBACK_COMPLETE" and result.failure is not None
    assert result.failure.resource_type == "Custom::AlternateContacts"
    assert failed.writes["account:PutAlternateContact"] >= 27  # written, then put back
    assert undeletable_left(failed.organization, seeded) == seeded
    assert failed.stack is not None and failed.stack.resources == {} and failed.stack.status == "ROLLBACK_COMPLETE"
    custom = [(op.action, op.resource_type, op.phase) for op in result.operations if op.custom]
    assert custom == [
        ("Create", "Custom::OrganizationPreflight", "deploy"),
        ("Create", "Custom::TrustedServiceAccess", "deploy"),
        ("Create", "Custom::AlternateContacts", "deploy"),
        ("Delete", "Custom::AlternateContacts", "rollback"),
        ("Delete", "Custom::TrustedServiceAccess", "rollback"),
        ("Delete", "Custom::OrganizationPreflight", "rollback"),
    ]
    kept = {op.resource_type for op in result.operations if op.action == "Retain"}
    assert {"AWS::S3::Bucket", "AWS::DynamoDB::GlobalTable"} <= kept  # DeletionPolicy Retain, as in CloudFormation

    created = run(state, example_template)  # cdk deploy creates a rolled-back stack anew
    assert created.result.status == "CREATE_COMPLETE", created.result.failure
    assert created.contacts(REFUSED) == EXAMPLE


def test_failed_create_after_contacts_and_trusted_access_were_written_changes_nothing(
    tmp_path: Path, example_template: dict[str, Any]
) -> None:
    # Trusted access off, and a delegated administrator that is not in the organization: trusted
    # access is enabled and 30 contacts are written before the registration fails.
    seed = tmp_path / "organization.toml"
    seed.write_text(SEED.read_text().replace('trusted_access = ["account.amazonaws.com"]', "trusted_access = []"))
    state = StateDir(tmp_path / "state")
    with open_world(state, seed) as world:
        seeded = world.organization.to_mapping()
    failed = run(state, with_delegated_administrator(example_template, NOT_IN_ORGANIZATION), seed=seed)
    assert failed.result.status == "ROLLBACK_COMPLETE" and failed.result.failure is not None
    assert failed.result.failure.resource_type == "Custom::DelegatedAdministrator"
    assert failed.writes["account:PutAlternateContact"] >= 30
    assert failed.writes["organizations:EnableAWSServiceAccess"] == 1
    # removal = "retain" keeps what a stack delete leaves; a rollback undoes what the failed deploy did.
    assert undeletable_left(failed.organization, seeded) == seeded


def without_contact_type(template: dict[str, Any], contact_type: str) -> dict[str, Any]:
    """The template of the config without ``alternate_contacts.contacts.<contact_type>``."""
    changed = copy.deepcopy(template)
    for resource in changed["Resources"].values():
        if resource["Type"] == "Custom::AlternateContacts":
            spec = json.loads(resource["Properties"]["Spec"])
            del spec["contacts"][contact_type]
            resource["Properties"]["Spec"] = ContactSpec.parse(spec).to_json()
    return changed


def test_failed_update_after_the_contacts_changed_puts_them_back(
    tmp_path: Path, example_template: dict[str, Any]
) -> None:
    state = StateDir(tmp_path / "state")
    deployed = run(state, without_contact_type(example_template, "OPERATIONS"))  # removal = "retain"
    assert deployed.stack is not None
    before, record = deployed.organization, recorded(deployed.stack.resources)
    # OPERATIONS is added and written everywhere; then the delegated administrator's change fails.
    failed = run(state, with_delegated_administrator(example_template, NOT_IN_ORGANIZATION))
    result = failed.result
    assert result.status == "UPDATE_ROLLBACK_COMPLETE" and result.failure is not None
    assert result.failure.resource_type == "Custom::DelegatedAdministrator"
    (contacts,) = [op for op in result.operations if op.phase == "deploy" and op.custom and "Contacts" in op.logical_id]
    assert contacts.ok and contacts.data["Changed"] == 10  # every ACTIVE account lacking that OPERATIONS contact
    back = [op.resource_type for op in result.operations if op.phase == "rollback" and op.custom]
    assert sorted(back) == ["Custom::AlternateContacts", "Custom::DelegatedAdministrator"]
    # The rollback's Update puts back what was there before OPERATIONS was written, though the
    # removal mode of a config that stops managing a type would leave it ("retain").
    assert failed.organization == before
    assert failed.stack is not None and recorded(failed.stack.resources) == record


def test_no_rollback_keeps_the_failure_and_the_events_come_in_cloudformation_order(
    tmp_path: Path, example_template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    log = ApiLog(denied_accounts={REFUSED})
    strict = world_module.strict_aws
    argv = ["deploy", "--state-dir", str(tmp_path / "kept")]
    with mock.patch.object(world_module, "strict_aws", lambda **kwargs: strict(log, **kwargs)):
        assert main([*argv, "--no-rollback"], synthesizer=synthesized(example_template)) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: CREATE_FAILED: AlternateContacts")
    assert "ROLLBACK" not in captured.out
    with open_world(StateDir(tmp_path / "kept"), SEED) as world:
        assert world.stack is not None and world.stack.status == "CREATE_FAILED"
        assert any(r.type == "Custom::TrustedServiceAccess" for r in world.stack.resources.values())
        assert world.organization.contacts("222222222222") == EXAMPLE  # what was written stays

    argv = ["deploy", "--state-dir", str(tmp_path / "rolled-back")]
    with mock.patch.object(world_module, "strict_aws", lambda **kwargs: strict(log, **kwargs)):
        assert main(argv, synthesizer=synthesized(example_template)) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ROLLBACK_COMPLETE: AlternateContacts")
    out = captured.out
    order = ["CREATE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS", "failed to create:", f"{STACK}: ROLLBACK_COMPLETE"]
    positions = [out.index(text) for text in order]
    assert positions == sorted(positions), out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("Create ", "Delete "))]
    named = [(row[0], row[2] if row[1] == "(rollback)" else row[1]) for row in rows]  # action, logical ID
    shown = [
        (action, name[:-8]) for action, name in named if name.startswith(("TrustedAccessDC", "AlternateContactsFC"))
    ]
    assert shown == [
        ("Create", "TrustedAccess"),
        ("Create", "AlternateContacts"),
        ("Delete", "AlternateContacts"),
        ("Delete", "TrustedAccess"),
    ]
    assert out.index("ROLLBACK_IN_PROGRESS") < out.index("Delete (rollback)")


def plan_of(world: Any, template: dict[str, Any]) -> Any:
    organizations = clients.client("organizations")
    stack = world.stack or StackState(STACK, MANAGEMENT, "us-east-1")
    api = AccountApi(clients.client("account"), stack.account)
    with world.calls.read_only():
        return build_plan(Template(template), stack, organizations, api)


def test_plan_reads_only_and_shows_every_account_and_type(tmp_path: Path, example_template: dict[str, Any]) -> None:
    state = StateDir(tmp_path / "state")
    with open_world(state, SEED) as world:
        before = world.calls.snapshot()
        plan = plan_of(world, example_template)
        assert writes(world.calls.snapshot() - before, ("organizations", "account", "s3", "dynamodb")) == {}
        assert world.api_log.writes() == 0
    totals = plan.totals()
    assert (totals.accounts, totals.changing, totals.skipped, totals.failed) == (12, 11, 1, 0)
    # alternate contacts 27 create, 3 update, 3 in sync; primary contacts 9 create, 1 update (Payments
    # Production's own), 1 in sync (the management account's); Regions 3 to enable, 1 already enabled
    assert totals.contacts == {CREATE_CONTACT: 36, UPDATE_CONTACT: 4, IN_SYNC: 5, ENABLE_REGION: 3}
    management = next(line for line in plan.accounts if line.account.id == MANAGEMENT)
    actions = {line.contact_type: (line.action, line.fields) for line in management.contacts}
    assert actions == {
        "BILLING": (IN_SYNC, ()),
        "OPERATIONS": (CREATE_CONTACT, ()),
        "SECURITY": (UPDATE_CONTACT, ("Name", "EmailAddress", "PhoneNumber")),
        "primary_contact/PRIMARY": (IN_SYNC, ()),
    }
    payments = next(line for line in plan.accounts if line.account.id == "555555555555")
    assert {line.contact_type: line.action for line in payments.contacts if "/" in line.contact_type} == {
        "primary_contact/PRIMARY": UPDATE_CONTACT,
        "regions/ap-east-1": IN_SYNC,  # enabled by hand before: adopted
        "regions/me-central-1": ENABLE_REGION,
    }
    assert next(line for line in plan.accounts if line.account.id == SUSPENDED).skipped == "SUSPENDED"
    assert [line.change.action for line in plan.resources] == ["Create"] * 4

    def shown(show_values: bool) -> str:
        console = Console(record=True, width=200)
        stack = StackState(STACK, MANAGEMENT, "us-east-1")
        console.print(plan_view(plan, stack, real=False, options=PlanOptions(show_values=show_values)))
        return console.export_text()

    assert "aws-ops@example.com" not in shown(False) and "a***@example.com" in shown(False)
    assert "aws-ops@example.com" in shown(True)

    run(state, example_template)
    with open_world(state, SEED) as world:
        after = plan_of(world, example_template)
    assert [line.change.action for line in after.resources] == ["No change"] * 4
    assert after.totals().contacts == {IN_SYNC: 48}  # 33 contact types, 11 primary contacts, 4 Regions


def test_plan_against_a_real_organization_uses_the_default_session_and_only_reads(
    example_template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with strict_aws():  # moto answers for AWS here: --aws only differs in where the session points
        Organization.from_mapping(load_organization_file(SEED))
        assert main(["plan", "--aws"], synthesizer=synthesized(example_template)) == 0
        calls = ApiCalls(boto3.Session(region_name="us-east-1"))
        account = calls.session.client("account")
        with calls.read_only(), pytest.raises(ReadOnlyViolation, match="account:PutAlternateContact"):
            account.put_alternate_contact(AlternateContactType="BILLING", **EXAMPLE["BILLING"])
    out = capsys.readouterr().out
    assert "AWS Organization o-exampleorg1" in out and "not deployed (no stack record read)" in out
    assert "43 writes" in out and "; writes: 0" in out


@pytest.mark.parametrize("deploy_wait", ["2700", "0"])
def test_long_jobs_poll_and_continue_in_their_workflow(
    tmp_path: Path, example_template: dict[str, Any], deploy_wait: str
) -> None:
    """One account per invocation (30 s is less than the handler's safety margin, and the minimum
    batch is lifted): is-complete is polled until done (within the deploy wait), or the job carries
    on in its continuation workflow (past it), whose definition from the template runs here with
    the real handler."""
    template = copy.deepcopy(example_template)
    for resource in template["Resources"].values():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if "DEPLOY_WAIT_SECONDS" in variables:
            variables["DEPLOY_WAIT_SECONDS"] = deploy_wait
    with mock.patch.object(account_settings, "MIN_BATCH_SECONDS", 0.0):
        done = run(StateDir(tmp_path / "state"), template, invocation_seconds=30.0)
    assert done.result.ok, done.result.failure
    (operation,) = done.operations("Create", "Custom::AlternateContacts")
    if deploy_wait == "0":
        assert operation.data["Status"] == "CONTINUING_IN_WORKFLOW"
        (note,) = [note for note in operation.notes if note.startswith("continued in its workflow: ")]
        batches = int(re.findall(r" SUCCEEDED after (\d+) batch\(es\)", note)[0])
        # On the simulated clock no time has passed since on-event when the first poll comes: with
        # the minimum batch lifted, that poll works one account before it hands over.
        assert batches in (10, 11)
        assert operation.invocations == 1 + 1 + batches  # on-event, the poll that hands over, the batches
    else:
        assert operation.data["Status"] == "COMPLETE" and operation.invocations == 1 + 11
    assert all(done.contacts(account_id) == {t: EXAMPLE[t] for t in EXAMPLE} for account_id in ACTIVE)


# -- the Provider framework contract, with handlers defined here -----------------------------

EVENTS: list[dict[str, Any]] = []
POLLS_BEFORE_COMPLETE = {"value": 2}


def fake_on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    EVENTS.append(event)
    props = event["ResourceProperties"]
    refused = props.get(f"Refuse{event['RequestType']}s") == "true"  # RefuseUpdates, RefuseDeletes
    if props.get("Fail") == "true" or refused:
        raise RuntimeError("refused\nsecond line")
    if props.get("Big") == "true":
        return {"Data": {"Value": "x" * 5000}}
    physical = f"thing-{props['Name']}"
    return {"PhysicalResourceId": physical, "Data": {"Value": f"value-of-{props['Name']}"}}


def fake_is_complete(event: dict[str, Any], context: Any) -> dict[str, Any]:
    EVENTS.append({"IsComplete?": event["LogicalResourceId"], "Data": event.get("Data")})
    polls = sum(1 for e in EVENTS if e.get("IsComplete?") == event["LogicalResourceId"])
    if polls <= POLLS_BEFORE_COMPLETE["value"]:
        return {"IsComplete": False}
    return {"IsComplete": True, "Data": {"Polls": polls}}


def provider_template(**things: dict[str, Any]) -> dict[str, Any]:
    def function(handler: str, environment: dict[str, Any] | None = None) -> dict[str, Any]:
        properties: dict[str, Any] = {"Handler": handler, "Runtime": "python3.14", "Timeout": 60}
        if environment:
            properties["Environment"] = {"Variables": environment}
        return {"Type": "AWS::Lambda::Function", "Properties": properties}

    resources: dict[str, Any] = {
        "OnEvent": function(f"{__name__}.fake_on_event"),
        "IsComplete": function(f"{__name__}.fake_is_complete"),
        "Waiter": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {"DefinitionString": '{"Retry":[{"ErrorEquals":["States.ALL"],"MaxAttempts":4}]}'},
        },
        "Framework": function(
            "framework.onEvent",
            {
                "USER_ON_EVENT_FUNCTION_ARN": {"Fn::GetAtt": ["OnEvent", "Arn"]},
                "USER_IS_COMPLETE_FUNCTION_ARN": {"Fn::GetAtt": ["IsComplete", "Arn"]},
                "WAITER_STATE_MACHINE_ARN": {"Ref": "Waiter"},
            },
        ),
    }
    for name, properties in things.items():
        resources[name] = {
            "Type": "Custom::Thing",
            "Properties": {"ServiceToken": {"Fn::GetAtt": ["Framework", "Arn"]}, **properties},
        }
    return {"Resources": resources}


@pytest.fixture
def engine() -> Iterator[LocalCloudFormation]:
    EVENTS.clear()
    POLLS_BEFORE_COMPLETE["value"] = 2
    yield LocalCloudFormation(StackState("Things", MANAGEMENT, "us-east-1"), boto3.Session(region_name="us-east-1"))


def requests(kind: str | None = None) -> list[tuple[str, str, str | None]]:
    found = [
        (e["RequestType"], e["LogicalResourceId"], e.get("PhysicalResourceId")) for e in EVENTS if "RequestType" in e
    ]
    return [request for request in found if kind is None or request[0] == kind]


def test_provider_contract_strings_order_polls_data_and_replacement(engine: LocalCloudFormation) -> None:
    first = provider_template(
        A={"Name": "a", "Count": 3, "Enabled": True, "Nested": {"N": 1, "L": [2, False]}},
        B={"Name": "b", "FromA": {"Fn::GetAtt": ["A", "Value"]}},
        C={"Name": "c"},
    )
    result = engine.deploy(Template(first))
    assert result.ok, result.failure
    creates = [e for e in EVENTS if e.get("RequestType") == "Create"]
    assert [e["LogicalResourceId"] for e in creates] == ["C", "A", "B"]  # B waits for A; C declared last
    a = next(e for e in creates if e["LogicalResourceId"] == "A")["ResourceProperties"]
    assert a["Count"] == "3" and a["Enabled"] == "true" and a["Nested"] == {"N": "1", "L": ["2", "false"]}
    b = next(e for e in creates if e["LogicalResourceId"] == "B")["ResourceProperties"]
    assert b["FromA"] == "value-of-a"  # Fn::GetAtt of a custom resource's Data
    polls = [e for e in EVENTS if e.get("IsComplete?") == "A"]
    assert len(polls) == 3 and polls[0]["Data"] == {"Value": "value-of-a"}  # on-event's result merged in
    assert engine.stack.resources["A"].attributes == {"Value": "value-of-a", "Polls": 3}

    EVENTS.clear()
    POLLS_BEFORE_COMPLETE["value"] = 0
    second = provider_template(A={"Name": "a2", "Count": 3}, B={"Name": "b", "FromA": {"Fn::GetAtt": ["A", "Value"]}})
    result = engine.deploy(Template(second))
    assert result.ok, result.failure
    # A is replaced (new physical ID) and B updated with A's new value; then the cleanup phase
    # deletes the removed C and the old A, with its old properties.
    assert requests() == [
        ("Update", "A", "thing-a"),
        ("Update", "B", "thing-b"),
        ("Delete", "C", "thing-c"),
        ("Delete", "A", "thing-a"),
    ]
    old_a = next(e for e in EVENTS if e.get("RequestType") == "Delete" and e["LogicalResourceId"] == "A")
    assert old_a["ResourceProperties"]["Name"] == "a" and "Enabled" in old_a["ResourceProperties"]
    update_b = next(e for e in EVENTS if e.get("RequestType") == UPDATE and e["LogicalResourceId"] == "B")
    assert update_b["OldResourceProperties"]["FromA"] == "value-of-a"
    assert update_b["ResourceProperties"]["FromA"] == "value-of-a2"

    EVENTS.clear()
    result = engine.destroy()
    assert result.ok and result.status == "DELETE_COMPLETE"
    assert requests() == [("Delete", "B", "thing-b"), ("Delete", "A", "thing-a2")]  # reverse order


def test_provider_failures_stop_the_deploy_with_one_reason(engine: LocalCloudFormation) -> None:
    template = Template(provider_template(A={"Name": "a"}, B={"Name": "b", "Fail": True}))
    result = engine.deploy(template, rollback=False)
    assert not result.ok and result.status == "CREATE_FAILED"
    assert result.failure is not None and result.failure.logical_id == "B"
    assert result.failure.error.startswith("RuntimeError: refused")
    assert "A" not in engine.stack.resources and requests() == [("Create", "B", None)]  # stopped at B
    assert [event.status for event in result.events if event.of_stack] == ["CREATE_IN_PROGRESS", "CREATE_FAILED"]

    big = LocalCloudFormation(StackState("Big", MANAGEMENT, "us-east-1"), boto3.Session(region_name="us-east-1"))
    result = big.deploy(Template(provider_template(A={"Name": "a", "Big": True})))
    assert result.failure is not None and "Response object is too long" in result.failure.error

    POLLS_BEFORE_COMPLETE["value"] = 100
    slow = LocalCloudFormation(StackState("Slow", MANAGEMENT, "us-east-1"), boto3.Session(region_name="us-east-1"))
    result = slow.deploy(Template(provider_template(A={"Name": "a"})))
    assert result.failure is not None and result.failure.error.startswith("Operation timed out")
    assert result.failure.invocations == 1 + 5  # on-event, then the first poll and MaxAttempts retries


def statuses(result: Result) -> list[str]:
    return [f"{event.logical_id} {event.status}" for event in result.events if event.logical_id != "Framework"]


def test_failed_create_rolls_back_deleting_what_was_created_in_reverse_order(engine: LocalCloudFormation) -> None:
    template = provider_template(
        A={"Name": "a"}, B={"Name": "b", "FromA": {"Fn::GetAtt": ["A", "Value"]}, "Fail": True}
    )
    result = engine.deploy(Template(template))
    assert result.status == "ROLLBACK_COMPLETE" and engine.stack.status == "ROLLBACK_COMPLETE"
    assert result.failure is not None and result.failure.logical_id == "B"
    assert "B: RuntimeError: refused" in engine.stack.status_reason
    # B's Delete carries the Provider framework's marker, which the framework answers itself.
    assert requests() == [("Create", "A", None), ("Create", "B", None), ("Delete", "A", "thing-a")]
    shown = [line for line in statuses(result) if line.split()[0] in ("Things", "A", "B")]
    assert shown == [
        "Things CREATE_IN_PROGRESS",
        "A CREATE_IN_PROGRESS",
        "A CREATE_COMPLETE",
        "B CREATE_IN_PROGRESS",
        "B CREATE_FAILED",
        "Things ROLLBACK_IN_PROGRESS",
        "B DELETE_IN_PROGRESS",
        "B DELETE_COMPLETE",
        "A DELETE_IN_PROGRESS",
        "A DELETE_COMPLETE",
        "Things ROLLBACK_COMPLETE",
    ]
    rolling_back = next(event for event in result.events if event.status == "ROLLBACK_IN_PROGRESS")
    assert rolling_back.reason == "The following resource(s) failed to create: [B]."
    assert engine.stack.resources == {}
    first_stack = engine.stack.stack_id
    EVENTS.clear()
    again = engine.deploy(Template(provider_template(A={"Name": "a"})))  # cdk deploy creates it anew
    assert again.status == "CREATE_COMPLETE" and engine.stack.stack_id != first_stack


def test_failed_update_rolls_back_with_the_old_properties_then_cleans_up(engine: LocalCloudFormation) -> None:
    POLLS_BEFORE_COMPLETE["value"] = 0
    first = provider_template(
        A={"Name": "a"}, B={"Name": "b", "FromA": {"Fn::GetAtt": ["A", "Value"]}}, C={"Name": "c"}
    )
    assert engine.deploy(Template(first)).ok
    before = copy.deepcopy(engine.stack.resources)
    EVENTS.clear()
    # A is replaced, B updated in place with A's new value, C removed (a cleanup, never reached), D
    # new, E new and failing after them.
    second = provider_template(
        A={"Name": "a2"},
        B={"Name": "b", "FromA": {"Fn::GetAtt": ["A", "Value"]}},
        D={"Name": "d"},
        E={"Name": "e", "FromB": {"Fn::GetAtt": ["B", "Value"]}, "Fail": True},
    )
    result = engine.deploy(Template(second))
    assert result.status == "UPDATE_ROLLBACK_COMPLETE", result.failure
    assert requests() == [
        ("Create", "D", None),
        ("Update", "A", "thing-a"),
        ("Update", "B", "thing-b"),
        ("Create", "E", None),
        # the rollback: B back to its old properties; A's old physical resource is still there
        ("Update", "B", "thing-b"),
        # the rollback's cleanup: what the update created, in reverse order (E's Delete is answered
        # by the framework)
        ("Delete", "A", "thing-a2"),
        ("Delete", "D", "thing-d"),
    ]
    back = [e for e in EVENTS if e.get("RequestType") == "Update" and e["LogicalResourceId"] == "B"][1]
    assert (
        back["ResourceProperties"]["FromA"] == "value-of-a" and back["OldResourceProperties"]["FromA"] == "value-of-a2"
    )
    replaced = next(e for e in EVENTS if e.get("RequestType") == "Delete" and e["LogicalResourceId"] == "A")
    assert replaced["ResourceProperties"]["Name"] == "a2"
    stack_events = [(e.status, e.reason) for e in result.events if e.of_stack]
    assert stack_events == [
        ("UPDATE_IN_PROGRESS", "User Initiated"),
        ("UPDATE_ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [E]."),
        ("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", ""),
        ("UPDATE_ROLLBACK_COMPLETE", ""),
    ]
    phases = [(op.action, op.logical_id, op.phase) for op in result.operations if op.custom]
    assert phases[-4:] == [
        ("Update", "B", "rollback"),
        ("Delete", "E", "rollback cleanup"),
        ("Delete", "A", "rollback cleanup"),
        ("Delete", "D", "rollback cleanup"),
    ]
    assert recorded(engine.stack.resources) == recorded(before)  # the previous stack again, C included
    assert engine.stack.status == "UPDATE_ROLLBACK_COMPLETE" and engine.stack.status_reason.startswith("E: ")

    EVENTS.clear()  # the failed resource itself: an Update back, the physical ID it has
    result = engine.deploy(Template(provider_template(A={"Name": "a"}, B={"Name": "b", "Fail": True}, C={"Name": "c"})))
    assert result.status == "UPDATE_ROLLBACK_COMPLETE"
    assert requests() == [("Update", "B", "thing-b"), ("Update", "B", "thing-b")]
    forth, back = [e for e in EVENTS if "RequestType" in e]
    assert back["ResourceProperties"] == before["B"].properties
    assert (
        back["OldResourceProperties"] == forth["ResourceProperties"] and back["OldResourceProperties"]["Fail"] == "true"
    )
    assert recorded(engine.stack.resources) == recorded(before)


def test_a_failed_rollback_step_ends_in_rollback_failed(engine: LocalCloudFormation) -> None:
    POLLS_BEFORE_COMPLETE["value"] = 0
    assert engine.deploy(Template(provider_template(X={"Name": "x", "RefuseUpdates": True}))).ok
    # The Update in place works; the rollback's Update carries the old properties, which refuse it.
    failing = provider_template(
        X={"Name": "x", "Size": 2}, Y={"Name": "y", "FromX": {"Fn::GetAtt": ["X", "Value"]}, "Fail": True}
    )
    result = engine.deploy(Template(failing))
    assert result.status == "UPDATE_ROLLBACK_FAILED" and engine.stack.status == "UPDATE_ROLLBACK_FAILED"
    assert [op.logical_id for op in result.operations if not op.ok] == ["Y", "X"] and result.failure.logical_id == "Y"  # type: ignore[union-attr]
    assert engine.stack.status_reason.startswith("X: RuntimeError: refused")
    with pytest.raises(TemplateError, match=r"UPDATE_ROLLBACK_FAILED .* destroy it"):
        engine.deploy(Template(failing))
    assert engine.destroy().status == "DELETE_COMPLETE"

    stack = LocalCloudFormation(StackState("Undeletable", MANAGEMENT, "us-east-1"), engine.session)
    EVENTS.clear()
    y = {"Name": "y", "FromX": {"Fn::GetAtt": ["X", "Value"]}, "Fail": True}
    result = stack.deploy(Template(provider_template(X={"Name": "x", "RefuseDeletes": True}, Y=y)))
    assert result.status == "ROLLBACK_FAILED" and stack.stack.status_reason.startswith("X: RuntimeError: refused")
    assert set(stack.stack.resources) == {"OnEvent", "IsComplete", "Waiter", "Framework", "X"}  # left to destroy
    with pytest.raises(TemplateError, match="ROLLBACK_FAILED"):
        stack.deploy(Template(provider_template(X={"Name": "x"})))


def test_template_reading() -> None:
    assert as_sent({"a": 1, "b": [True, 2.5], "c": "x"}) == {"a": "1", "b": ["true", "2.5"], "c": "x"}
    with pytest.raises(TemplateError, match="circular"):
        Template(
            {"Resources": {"A": {"Type": "T", "DependsOn": "B"}, "B": {"Type": "T", "DependsOn": ["A"]}}}
        ).creation_order()
    with pytest.raises(TemplateError, match="conditions are not supported"):
        Template({"Conditions": {"X": {}}, "Resources": {}})


# -- the command line ----------------------------------------------------------------------


def test_bad_config_and_organization_file_exit_2_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('management_account_id = "1234"\nregion = "mars"\n')
    assert main(["deploy", "--config", str(config), "--state-dir", str(tmp_path / "s")]) == 2
    error = capsys.readouterr().err
    assert "management_account_id: '1234' is not an AWS account ID" in error and "region: 'mars'" in error

    organization = tmp_path / "organization.toml"
    organization.write_text('management_account_id = "111111111111"\n[[accounts]]\nid = "42"\nname = "x"\n')
    assert main(["state", "--organization", str(organization), "--state-dir", str(tmp_path / "s")]) == 2
    assert "accounts[0].id: '42' is not an AWS account ID" in capsys.readouterr().err
    with pytest.raises(OrganizationFileError, match="does not exist"):
        load_organization_file(tmp_path / "missing.toml")
    assert main(["reset", "--state-dir", str(tmp_path)]) == 1  # a mistyped --state-dir is never deleted
    assert "not a local-deploy state directory" in capsys.readouterr().err and config.exists()


def test_demo_plans_deploys_redeploys_nothing_and_shows_the_state(
    tmp_path: Path, example_template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    assert main(["demo", "--state-dir", str(state)], synthesizer=synthesized(example_template)) == 0
    out = capsys.readouterr().out
    for expected in ("1. Plan", "43 writes", "CREATE_COMPLETE", "No changes", "Demo complete"):
        assert expected in out, expected
    assert "aws-billing@example.com" not in out  # masked
    assert main(["destroy", "--state-dir", str(state)]) == 0  # a separate invocation finds the stack
    assert "DELETE_COMPLETE" in capsys.readouterr().out
    assert main(["destroy", "--state-dir", str(state)]) == 0
    assert "Nothing to destroy" in capsys.readouterr().out


DELEGATED, DELEGATED_STACK = "222222222222", "OrgBootstrapDelegatedAdministrator"


@pytest.fixture(scope="module")
def delegated_mode(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The example config with the member accounts' contacts run from the delegated administrator."""
    config = tmp_path_factory.mktemp("config") / "delegated.toml"
    example = (ROOT / "config" / "example.toml").read_text()
    config.write_text('settings_deployed_in = "delegated_administrator"\n' + example)
    from local_deploy.synth import synthesize

    return synthesize(config)


def test_delegated_administrator_mode_deploys_both_stacks_each_as_its_account(
    tmp_path: Path, delegated_mode: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    assert delegated_mode.delegated_administrator is not None
    assert delegated_mode.delegated_administrator.account == DELEGATED
    state = tmp_path / "state"
    argv = ["--state-dir", str(state)]
    # The plan shows both stacks: the management account's changes its own account only, the
    # delegated administrator's every other ACTIVE account.
    assert main(["plan", "--output", "json", *argv], synthesizer=lambda path: delegated_mode) == 0
    management_plan, delegated_plan = json.loads(capsys.readouterr().out)["stacks"]
    assert (management_plan["name"], management_plan["status"]) == (STACK, "not deployed")
    assert (delegated_plan["name"], delegated_plan["status"]) == (DELEGATED_STACK, "not deployed")
    assert [a["id"] for a in management_plan["accounts"] if a["status"] == "changing"] == [MANAGEMENT]
    changing = {a["id"] for a in delegated_plan["accounts"] if a["status"] == "changing"}
    assert changing == set(ACTIVE) - {MANAGEMENT}
    left = {a["id"] for a in delegated_plan["accounts"] if a["status"] == "not targeted"}
    assert left == {MANAGEMENT}  # the management account's own stack sets it
    log = ApiLog()
    strict = world_module.strict_aws
    with mock.patch.object(world_module, "strict_aws", lambda **kwargs: strict(log, **kwargs)):
        assert main(["deploy", *argv], synthesizer=lambda path: delegated_mode) == 0
    out = capsys.readouterr().out
    assert STACK in out and DELEGATED_STACK in out and out.count("CREATE_COMPLETE") == 2

    with open_world(StateDir(state), SEED) as world:
        assert world.organization.delegated_administrators() == {DELEGATED}
        assert world.stack is not None and world.stack.account == MANAGEMENT
        assert world.delegated_stack is not None and world.delegated_stack.account == DELEGATED
        assert world.delegated_stack.status == "CREATE_COMPLETE"
        for account in ACTIVE:
            assert world.organization.contacts(account) == EXAMPLE, account
    # The management stack changed only its own account; the delegated administrator every other
    # ACTIVE account, never the management account (nor the SUSPENDED one).
    puts = {(caller, target) for (operation, caller, target) in log.callers if operation == "PutAlternateContact"}
    assert {target for caller, target in puts if caller == MANAGEMENT} == {MANAGEMENT}
    assert {target for caller, target in puts if caller == DELEGATED} <= set(ACTIVE) - {MANAGEMENT}
    checked = {target for (operation, caller, target) in log.callers if caller == DELEGATED}
    assert checked == set(ACTIVE) - {MANAGEMENT}
    # Each stack's bucket and table are in its own account, and come back from the state directory.
    saved = json.loads(StateDir(state).state_file.read_text())
    storage = [*saved["s3"].values(), *saved["dynamodb"].values()]
    assert {item["account"] for item in storage} == {MANAGEMENT, DELEGATED}
    assert saved["stack"]["account"] == MANAGEMENT and saved["delegated_stack"]["account"] == DELEGATED

    assert main(["deploy", *argv], synthesizer=lambda path: delegated_mode) == 0  # nothing to do in either
    assert capsys.readouterr().out.count("No changes") == 2

    assert main(["destroy", *argv]) == 0  # the delegated administrator's stack first
    out = capsys.readouterr().out
    assert out.count("DELETE_COMPLETE") == 2 and out.index(f"{DELEGATED_STACK}:") < out.index(f"{STACK}:")
    saved = json.loads(StateDir(state).state_file.read_text())
    assert saved["stack"] is None and saved["delegated_stack"] is None
    with open_world(StateDir(state), SEED) as world:
        for account in ACTIVE:  # removal = "retain"
            assert world.organization.contacts(account) == EXAMPLE, account
    assert main(["destroy", *argv]) == 0
    assert "Nothing to destroy" in capsys.readouterr().out


def test_delegated_administrator_stack_is_refused_before_its_registration(
    tmp_path: Path, delegated_mode: Synthesized
) -> None:
    delegated = delegated_mode.delegated_administrator
    assert delegated is not None
    log = ApiLog()
    strict = world_module.strict_aws
    with (
        mock.patch.object(world_module, "strict_aws", lambda **kwargs: strict(log, **kwargs)),
        open_world(StateDir(tmp_path / "state"), SEED) as world,
    ):
        assert world.organization.delegated_administrators() == set()
        others = [account for account in ACTIVE if account != DELEGATED]
        before = {account: world.organization.contacts(account) for account in others}
        stack = StackState(delegated.name, delegated.account, "us-east-1")
        result = LocalCloudFormation(stack, world.session).deploy(Template(delegated.template), rollback=False)
        failure = result.failure
        assert result.status == "CREATE_FAILED" and failure is not None
        assert f"{DELEGATED} is not the management or delegated administrator account" in failure.error
        assert {caller for (_, caller, _) in log.callers} == {DELEGATED}
        # Only its own account (named by no AccountId) was open to it; every other account refused it.
        assert {target for (operation, _, target) in log.callers if operation == "PutAlternateContact"} <= {DELEGATED}
        assert {account: world.organization.contacts(account) for account in others} == before


# -- delegated-administrator mode without alternate contacts ------------------------------------

SETTINGS_ONLY_CONFIG = """
management_account_id = "111111111111"
region = "us-east-1"
delegated_administrator_account_id = "222222222222"
settings_deployed_in = "delegated_administrator"

[primary_contact.contact]
FullName = "Example Corp Platform Team"
AddressLine1 = "410 Terry Ave N"
City = "Seattle"
StateOrRegion = "WA"
PostalCode = "98109"
CountryCode = "US"
PhoneNumber = "+1 206 555 0100"

[regions]
enable = ["ap-east-1"]

[[regions.overrides]]
organizational_unit = "ou-ex01-prodapps"
enable = ["me-central-1"]

[automation]
"""
SETTINGS_ONLY_PRIMARY = {**US_PRIMARY_CONTACT, "FullName": "Example Corp Platform Team"}
ALL_FAST = {operation: Quota(10_000, 10_000) for operation in account_quotas("aws")}


def expected_regions(account: str) -> dict[str, str]:
    return {"ap-east-1": "ENABLED", **({"me-central-1": "ENABLED"} if account in PRODUCTION else {})}


def test_delegated_administrator_mode_with_only_the_primary_contact_and_regions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No [alternate_contacts]: the delegated administrator's stack sets every member account's
    primary contact and Regions, the management account's stack its own (called without
    AccountId); a redeploy changes nothing; the delegated administrator's automation gives a new
    account its settings and its drift check enables a Region disabled by hand."""
    from local_deploy.synth import synthesize

    config = tmp_path / "settings-only.toml"
    config.write_text(SETTINGS_ONLY_CONFIG)
    synthesized_once: dict[str, Synthesized] = {}

    def synthesizer(path: str) -> Synthesized:  # the CLI's own synth, once for both deploys
        assert Path(path) == config
        return synthesized_once.setdefault("found", synthesize(path))

    state = tmp_path / "state"
    argv = ["--state-dir", str(state)]
    log = ApiLog()
    strict = world_module.strict_aws
    with (
        mock.patch.object(world_module, "strict_aws", lambda **kwargs: strict(log, **kwargs)),
        mock.patch("org_bootstrap.engine.reconcile.shared_limits", lambda caller: RateLimits(ALL_FAST)),
        mock.patch("org_bootstrap.engine.reconcile.RateLimits", lambda: RateLimits(ALL_FAST)),
        mock.patch.object(jobs, "FOLLOW_EVERY_SECONDS", 0.0),
        mock.patch.object(jobs, "FOLLOW_PAUSE_SECONDS", 0.01),
    ):
        assert main(["deploy", "--config", str(config), *argv], synthesizer=synthesizer) == 0
        out = capsys.readouterr().out
        assert out.count("CREATE_COMPLETE") == 2 and DELEGATED_STACK in out

        with open_world(StateDir(state), SEED) as world:
            assert world.delegated_stack is not None and world.delegated_stack.status == "CREATE_COMPLETE"
            for account in ACTIVE:
                assert world.organization.primary_contact(account) == SETTINGS_ONLY_PRIMARY, account
                assert world.organization.regions(account, world.api_log) == expected_regions(account), account
            assert world.organization.primary_contact(SUSPENDED) != SETTINGS_ONLY_PRIMARY
        # The management account's own settings from its own stack, every other account's from the
        # delegated administrator's; no alternate contact read or written anywhere.
        for operation in ("PutContactInformation", "EnableRegion"):
            by = {
                caller: {target for (op, who, target) in log.callers if op == operation and who == caller}
                for caller in (MANAGEMENT, DELEGATED)
            }
            assert by[MANAGEMENT] == {MANAGEMENT}, operation
            assert by[DELEGATED] and by[DELEGATED] <= set(ACTIVE) - {MANAGEMENT}, operation
        assert {target for (op, who, target) in log.callers if who == DELEGATED} == set(ACTIVE) - {MANAGEMENT}
        assert not [op for (op, _, _) in log.callers if "AlternateContact" in op]

        writes_before = log.writes()
        assert main(["deploy", "--config", str(config), *argv], synthesizer=synthesizer) == 0
        assert capsys.readouterr().out.count("No changes") == 2
        assert log.writes() == writes_before

        new = "141414141414"
        assert main(["create-account", "Payments Staging", "--ou", "Production", "--account-id", new, *argv]) == 0
        capsys.readouterr()
        with open_world(StateDir(state), SEED) as world:
            assert world.organization.primary_contact(new) == SETTINGS_ONLY_PRIMARY
            assert set(world.organization.regions(new, world.api_log)) == {"ap-east-1", "me-central-1"}
            world.organization.set_regions(PRODUCTION[1], {"ap-east-1": "ENABLED"}, world.api_log)  # by hand
        assert log.callers["PutContactInformation", DELEGATED, new] == 1

        assert main(["drift", *argv]) == 0
        out = capsys.readouterr().out
        assert f"{PRODUCTION[1]}" in out and "regions/me-central-1 enable" in out
        with open_world(StateDir(state), SEED) as world:
            assert world.organization.regions(PRODUCTION[1], world.api_log) == expected_regions(PRODUCTION[1])
        assert log.callers["EnableRegion", DELEGATED, PRODUCTION[1]] == 3  # both Regions at the deploy, one again


# -- what a newcomer tripped on ----------------------------------------------------------------


def with_contacts_removal(template: dict[str, Any], removal: str) -> dict[str, Any]:
    """The template with the contacts resource's removal mode changed (its Spec is a JSON string)."""
    changed = copy.deepcopy(template)
    for resource in changed["Resources"].values():
        if resource["Type"] == "Custom::AlternateContacts":
            spec = json.loads(resource["Properties"]["Spec"])
            resource["Properties"]["Spec"] = json.dumps({**spec, "removal": removal})
    return changed


def test_destroy_takes_the_config_says_how_it_paces_and_reports_the_contacts_result(
    tmp_path: Path, example_template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    assert main(["deploy", *state], synthesizer=synthesized(with_contacts_removal(example_template, "delete"))) == 0
    capsys.readouterr()

    with mock.patch.object(views, "PROGRESS_LINE_SECONDS", 0.0):
        assert main(["destroy", "--config", str(ROOT / "config" / "example.toml"), *state]) == 0
    out = capsys.readouterr().out

    # Before the paced deletes: what they are, by setting and operation, and how long the quotas make
    # them take (DeleteAlternateContact: 1/s after a burst of 6).
    assert "11 accounts · alternate contacts: 33 GetAlternateContact (then up to 33 DeleteAlternateContact)" in out
    assert "at most 27.0 s (if every item is written)" in out
    # Without a terminal (as here) a line now and then, since no bar shows; the reads reach their total.
    assert "... 33 of 33 reads (and 33 DeleteAlternateContact)" in out
    # The contacts resource's result: the job's counts, as for a deploy.
    row = out[out.index("Delete (destroy)") : out.index("DELETE_COMPLETE")]
    assert "Changed 11" in row and "Skipped 1" in row and "Failed 0" in row
    assert out.index("alternate contacts: 33 GetAlternateContact") < out.index("Delete (destroy)")


def test_destroy_refuses_a_config_of_another_organization(
    tmp_path: Path, example_template: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    assert main(["deploy", *state], synthesizer=synthesized(example_template)) == 0
    other = tmp_path / "other.toml"
    other.write_text((ROOT / "config" / "example.toml").read_text().replace('"111111111111"', '"999999999998"'))
    capsys.readouterr()
    assert main(["destroy", "--config", str(other), *state]) == 1
    assert "management_account_id is 999999999998" in capsys.readouterr().err
    with open_world(StateDir(tmp_path / "state"), SEED) as world:
        assert world.stack is not None and world.stack.status == "CREATE_COMPLETE"  # nothing deleted


def test_a_missing_organization_file_is_an_error_even_once_the_world_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    with open_world(StateDir(tmp_path / "state"), SEED):
        pass  # seeds the world
    assert main(["state", *state]) == 0
    capsys.readouterr()
    missing = tmp_path / "my-org.toml"
    for command in (["state"], ["destroy"], ["reset"]):
        assert main([*command, "--organization", str(missing), *state]) == 2, command
        assert f"invalid organization file {missing}" in capsys.readouterr().err
    assert StateDir(tmp_path / "state").state_file.exists()


def test_an_organization_file_may_tag_accounts_and_the_tags_are_checked(tmp_path: Path) -> None:
    tagged = tmp_path / "tagged.toml"
    data_tags = 'tags = { team = "data" }'
    assert data_tags in SEED.read_text()
    tagged.write_text(SEED.read_text().replace(data_tags, 'tags = { team = "analytics", "cost:center" = "" }'))
    with open_world(StateDir(tmp_path / "state"), tagged) as world:
        accounts = {a["id"]: a for a in world.organization.to_mapping()["accounts"]}
    assert accounts["999999999999"]["tags"] == {"team": "analytics", "cost:center": ""}
    bad = tmp_path / "bad.toml"
    bad.write_text(SEED.read_text().replace(data_tags, "tags = { team = 1 }"))
    with pytest.raises(OrganizationFileError, match=r"accounts\[8\]\.tags: must be a table"):
        load_organization_file(bad)
    bad.write_text(SEED.read_text().replace(data_tags, 'tags = { "team#1" = "data" }'))  # Organizations' rules
    with pytest.raises(OrganizationFileError, match=r"accounts\[8\]\.tags key: 'team#1' has '#'"):
        load_organization_file(bad)


def undeletable_left(organization: dict[str, Any], seeded: dict[str, Any]) -> dict[str, Any]:
    """The organization without the primary contacts the stack set where there was none: the API
    cannot delete a primary contact, so a rollback leaves those (everything else goes back)."""
    had = {account["id"] for account in seeded["accounts"] if "primary_contact" in account}
    primary = ("primary_contact", "phone_verification")
    accounts = [
        {key: value for key, value in account.items() if key not in primary or account["id"] in had}
        for account in organization["accounts"]
    ]
    return {**organization, "accounts": accounts}
