"""The local deploy: the synthesized template's custom resources, run through CloudFormation's
lifecycle with their real handlers, against the strict simulated organization, with the world
saved and restored between runs as separate CLI invocations would."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from rich.console import Console

from local_deploy import world as world_module
from local_deploy.api_calls import ApiCalls, ReadOnlyViolation, writes
from local_deploy.cli import main
from local_deploy.cloudformation import DELETE, UPDATE, LocalCloudFormation, Result
from local_deploy.organization_file import OrganizationFileError, load_organization_file
from local_deploy.plan import CREATE_CONTACT, IN_SYNC, UPDATE_CONTACT, build_plan
from local_deploy.stack import StackState
from local_deploy.synth import Synthesized
from local_deploy.template import Template, TemplateError, as_sent
from local_deploy.views import plan_view
from local_deploy.world import StateDir, open_world
from org_bootstrap import alternate_contacts, clients, delegated_administrator
from org_bootstrap.pacing import Quota, RateLimits
from org_bootstrap.reconcile import ContactsApi
from simulation.organization import ApiLog, Organization, strict_aws
from stacks.config import BootstrapConfig, load_config
from tests.conftest import ROOT

SEED = ROOT / "config" / "example-organization.toml"
STACK = "OrgBootstrapManagement"
MANAGEMENT, SUSPENDED = "111111111111", "131313131313"
SANDBOX = ("101010101010", "121212121212")
PRODUCTION = ("555555555555", "666666666666")
ACTIVE: tuple[str, ...] = ("111111111111", "222222222222", "333333333333", "444444444444", *PRODUCTION)
ACTIVE += ("777777777777", "888888888888", "999999999999", *SANDBOX)
FAST = {op: Quota(10_000, 10_000) for op in ("PutAlternateContact", "GetAlternateContact", "DeleteAlternateContact")}


def contact(name: str, email: str, phone: str, title: str) -> dict[str, str]:
    return {"Name": name, "Title": title, "EmailAddress": email, "PhoneNumber": phone}


EXAMPLE = tomllib.loads((ROOT / "config" / "example.toml").read_text())["alternate_contacts"]["contacts"]
NEW_SECURITY = contact("Security Operations Center", "soc@example.com", "+1 206 555 0199", "Security")
PAYMENTS_BILLING = contact("Payments Finance", "payments-finance@example.com", "+1 206 555 0120", "Cost owner")


@pytest.fixture(autouse=True)
def published_quotas_lifted() -> Iterator[None]:
    """The handlers pace themselves at the Account Management quotas; the simulation needs no pacing."""
    with mock.patch("org_bootstrap.reconcile.shared_limits", lambda caller: RateLimits(FAST)):
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


def run(state: StateDir, template: dict[str, Any] | None, *, seed: Path = SEED, **options: Any) -> Run:
    """One CLI invocation's worth: restore the world, deploy (or destroy with no template), save."""
    with open_world(state, seed) as world:
        stack = world.stack or StackState(STACK, MANAGEMENT, "us-east-1")
        world.stack = stack
        before = world.calls.snapshot()
        engine = LocalCloudFormation(stack, world.session, **options)
        result = engine.deploy(Template(template)) if template is not None else engine.destroy()
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
    assert created.writes == {"account:PutAlternateContact": 30, "organizations:RegisterDelegatedAdministrator": 1}

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
    assert destroyed.stack is None and not state.stack_file.exists()
    assert destroyed.organization["delegated_administrators"] == {}  # registered by the stack, removal undo
    assert destroyed.organization["trusted_access"] == ["account.amazonaws.com"]  # adopted: left on
    for account_id, contacts in original.items():  # removal restore: every contact as it was seeded
        assert destroyed.contacts(account_id) == contacts, account_id
    deletes = [op.resource_type for op in destroyed.result.operations if op.simulated]
    assert deletes.index("Custom::DelegatedAdministrator") < deletes.index("Custom::TrustedServiceAccess")
    assert deletes.index("Custom::AlternateContacts") < deletes.index("Custom::TrustedServiceAccess")
    assert {op.action for op in destroyed.result.operations if op.resource_type == "AWS::S3::Bucket"} == {"Retain"}
    saved = json.loads(state.world_file.read_text())
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
    assert error.startswith("error: CREATE_FAILED: DelegatedAdministrator")
    assert "enable trusted access" in error and "\n" not in error
    with open_world(StateDir(state), seed) as world:
        assert world.organization.delegated_administrators() == set()
        assert world.stack is not None and world.stack.status == "CREATE_FAILED"

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


def plan_of(world: Any, template: dict[str, Any]) -> Any:
    organizations = clients.client("organizations")
    stack = world.stack or StackState(STACK, MANAGEMENT, "us-east-1")
    api = ContactsApi(clients.client("account"), stack.account)
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
    assert totals.contacts == {CREATE_CONTACT: 27, UPDATE_CONTACT: 3, IN_SYNC: 3}
    management = next(line for line in plan.accounts if line.account.id == MANAGEMENT)
    actions = {line.contact_type: (line.action, line.fields) for line in management.contacts}
    assert actions == {
        "BILLING": (IN_SYNC, ()),
        "OPERATIONS": (CREATE_CONTACT, ()),
        "SECURITY": (UPDATE_CONTACT, ("Name", "EmailAddress", "PhoneNumber")),
    }
    assert next(line for line in plan.accounts if line.account.id == SUSPENDED).skipped == "SUSPENDED"
    assert [line.change.action for line in plan.resources] == ["Create"] * 4

    def shown(show_values: bool) -> str:
        console = Console(record=True, width=200)
        console.print(plan_view(plan, StackState(STACK, MANAGEMENT, "us-east-1"), show_values=show_values, real=False))
        return console.export_text()

    assert "aws-ops@example.com" not in shown(False) and "a***@example.com" in shown(False)
    assert "aws-ops@example.com" in shown(True)

    run(state, example_template)
    with open_world(state, SEED) as world:
        after = plan_of(world, example_template)
    assert [line.change.action for line in after.resources] == ["No change"] * 4
    assert after.totals().contacts == {IN_SYNC: 33}


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
    assert "30 contact writes" in out and "; writes: 0" in out


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
    with mock.patch.object(alternate_contacts, "MIN_BATCH_SECONDS", 0.0):
        done = run(StateDir(tmp_path / "state"), template, invocation_seconds=30.0)
    assert done.result.ok, done.result.failure
    (operation,) = done.operations("Create", "Custom::AlternateContacts")
    if deploy_wait == "0":
        assert operation.data["Status"] == "CONTINUING_IN_WORKFLOW"
        (note,) = [note for note in operation.notes if note.startswith("continued in its workflow: ")]
        assert " SUCCEEDED after 11 batch(es)" in note
        assert operation.invocations == 1 + 1 + 11  # on-event, the poll that hands over, the batches
    else:
        assert operation.data["Status"] == "COMPLETE" and operation.invocations == 1 + 11
    assert all(done.contacts(account_id) == {t: EXAMPLE[t] for t in EXAMPLE} for account_id in ACTIVE)


# -- the Provider framework contract, with handlers defined here -----------------------------

EVENTS: list[dict[str, Any]] = []
POLLS_BEFORE_COMPLETE = {"value": 2}


def fake_on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    EVENTS.append(event)
    props = event["ResourceProperties"]
    if props.get("Fail") == "true":
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
    result = engine.deploy(Template(provider_template(A={"Name": "a"}, B={"Name": "b", "Fail": True})))
    assert not result.ok and result.status == "CREATE_FAILED"
    assert result.failure is not None and result.failure.logical_id == "B"
    assert result.failure.error.startswith("RuntimeError: refused")
    assert "A" not in engine.stack.resources and requests() == [("Create", "B", None)]  # stopped at B

    big = LocalCloudFormation(StackState("Big", MANAGEMENT, "us-east-1"), boto3.Session(region_name="us-east-1"))
    result = big.deploy(Template(provider_template(A={"Name": "a", "Big": True})))
    assert result.failure is not None and "Response object is too long" in result.failure.error

    POLLS_BEFORE_COMPLETE["value"] = 100
    slow = LocalCloudFormation(StackState("Slow", MANAGEMENT, "us-east-1"), boto3.Session(region_name="us-east-1"))
    result = slow.deploy(Template(provider_template(A={"Name": "a"})))
    assert result.failure is not None and result.failure.error.startswith("Operation timed out")
    assert result.failure.invocations == 1 + 5  # on-event, then the first poll and MaxAttempts retries


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
    for expected in ("1. Plan", "30 contact writes", "CREATE_COMPLETE", "No changes", "Demo complete"):
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
    config.write_text('contacts_deployed_in = "delegated_administrator"\n' + example)
    from local_deploy.synth import synthesize

    return synthesize(config)


def test_delegated_administrator_mode_deploys_both_stacks_each_as_its_account(
    tmp_path: Path, delegated_mode: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    assert delegated_mode.delegated_administrator is not None
    assert delegated_mode.delegated_administrator.account == DELEGATED
    state = tmp_path / "state"
    argv = ["--state-dir", str(state)]
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
    saved = json.loads(StateDir(state).world_file.read_text())
    storage = [*saved["s3"].values(), *saved["dynamodb"].values()]
    assert {item["account"] for item in storage} == {MANAGEMENT, DELEGATED}
    assert (StateDir(state).delegated_stack_file).exists()

    assert main(["deploy", *argv], synthesizer=lambda path: delegated_mode) == 0  # nothing to do in either
    assert capsys.readouterr().out.count("No changes") == 2

    assert main(["destroy", *argv]) == 0  # the delegated administrator's stack first
    out = capsys.readouterr().out
    assert out.count("DELETE_COMPLETE") == 2 and out.index(f"{DELEGATED_STACK}:") < out.index(f"{STACK}:")
    assert not StateDir(state).stack_file.exists() and not StateDir(state).delegated_stack_file.exists()
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
        result = LocalCloudFormation(stack, world.session).deploy(Template(delegated.template))
        failure = result.failure
        assert result.status == "CREATE_FAILED" and failure is not None
        assert f"{DELEGATED} is not the management or delegated administrator account" in failure.error
        assert {caller for (_, caller, _) in log.callers} == {DELEGATED}
        # Only its own account (named by no AccountId) was open to it; every other account refused it.
        assert {target for (operation, _, target) in log.callers if operation == "PutAlternateContact"} <= {DELEGATED}
        assert {account: world.organization.contacts(account) for account in others} == before
