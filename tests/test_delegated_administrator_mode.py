"""Delegated-administrator mode: which resources land in which account, and impossible configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from cfnlint.api import ManualArgs, lint_file

from stacks.app_builder import build_app
from stacks.config import BootstrapConfig, ConfigError
from tests.conftest import US_PRIMARY_CONTACT

MANAGEMENT, DELEGATED = "111111111111", "222222222222"
CONTACT = {"Name": "Ops", "Title": "T", "EmailAddress": "ops@example.com", "PhoneNumber": "+1 555 0100"}
CONFIG: dict[str, Any] = {
    "management_account_id": MANAGEMENT,
    "region": "us-east-1",
    "delegated_administrator_account_id": DELEGATED,
    "settings_deployed_in": "delegated_administrator",
    "alternate_contacts": {"contacts": {"BILLING": CONTACT, "SECURITY": CONTACT}},
    "automation": {"enabled": True},
}


@pytest.fixture(scope="module")
def synthesized() -> dict[str, Any]:
    app, _ = build_app(BootstrapConfig.from_mapping(CONFIG))
    assembly = app.synth()  # cdk-nag runs here and fails the synth on any finding
    management = assembly.get_stack_by_name("OrgBootstrapManagement")
    delegated = assembly.get_stack_by_name("OrgBootstrapDelegatedAdministrator")
    return {
        "assembly": assembly,
        "management": Template.from_json(management.template),
        "delegated": Template.from_json(delegated.template),
        "delegated_artifact": delegated,
    }


def spec_of(template: Template) -> dict[str, Any]:
    (resource,) = template.find_resources("Custom::AlternateContacts").values()
    return json.loads(resource["Properties"]["Spec"])


def test_management_account_keeps_trusted_access_registration_and_its_own_contacts(synthesized: dict[str, Any]) -> None:
    management: Template = synthesized["management"]
    management.resource_count_is("Custom::TrustedServiceAccess", 1)
    management.resource_count_is("Custom::DelegatedAdministrator", 1)
    assert spec_of(management)["scope"] == "management_account"
    management.resource_count_is("AWS::Scheduler::Schedule", 0)
    management.resource_count_is("AWS::Lambda::EventSourceMapping", 0)


def test_management_account_forwards_account_events_to_the_delegated_administrator(
    synthesized: dict[str, Any],
) -> None:
    management: Template = synthesized["management"]
    rules = management.find_resources("AWS::Events::Rule")
    assert len(rules) == 6  # one per account-event pattern, tag changes included
    for rule in rules.values():
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == {
            "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":events:us-east-1:{DELEGATED}:event-bus/default"]]
        }
        assert "RoleArn" in target and "DeadLetterConfig" in target
    sources = sorted({rule["Properties"]["EventPattern"]["source"][0] for rule in rules.values()})
    assert sources == ["aws.controltower", "aws.organizations"]
    management.has_resource_properties(
        "AWS::IAM::Policy",
        {"PolicyDocument": {"Statement": Match.array_with([Match.object_like({"Action": "events:PutEvents"})])}},
    )


def test_delegated_administrator_runs_member_contacts_and_automation(synthesized: dict[str, Any]) -> None:
    delegated: Template = synthesized["delegated"]
    delegated.resource_count_is("Custom::TrustedServiceAccess", 0)
    delegated.resource_count_is("Custom::DelegatedAdministrator", 0)
    assert spec_of(delegated)["scope"] == "member_accounts"
    delegated.resource_count_is("AWS::Scheduler::Schedule", 1)
    rules = delegated.find_resources("AWS::Events::Rule")
    assert len(rules) == 6  # one per account-event pattern, tag changes included
    assert all(rule["Properties"]["EventBusName"] == "default" for rule in rules.values())


def test_delegated_administrator_bus_accepts_the_management_account_only(synthesized: dict[str, Any]) -> None:
    delegated: Template = synthesized["delegated"]
    delegated.has_resource_properties(
        "AWS::Events::EventBusPolicy",
        {
            "EventBusName": "default",
            "Statement": {
                "Effect": "Allow",
                "Principal": {
                    "AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":iam::{MANAGEMENT}:root"]]}
                },
                "Action": "events:PutEvents",
                "Resource": Match.any_value(),
            },
        },
    )


def test_cdk_nag_still_checks_the_bus_policy_statement_for_open_access() -> None:
    """StatementBusPolicy answers cdk-nag's read of the deprecated ``principal`` itself; EVB1 must still
    see the statement's principal and fail an open one."""
    from aws_cdk import App, Stack, Validations
    from aws_cdk import aws_events as events
    from cdk_nag import AwsSolutionsChecks

    from constructs.organization_event_forwarding import StatementBusPolicy

    app = App()
    stack = Stack(app, "OpenBus")
    statement = {"Effect": "Allow", "Principal": "*", "Action": "events:PutEvents", "Resource": "*"}
    policy = StatementBusPolicy(stack, "Open", event_bus_name="default", statement_id="Open", statement=statement)
    assert isinstance(policy, events.CfnEventBusPolicy) and policy.principal is None
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="AwsSolutions-EVB1"):
        app.synth()


def test_member_account_arns_carry_the_management_account_id(synthesized: dict[str, Any]) -> None:
    delegated: Template = synthesized["delegated"]
    statements = [
        s
        for policy in delegated.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "AlternateContactsOfOrganizationAccounts"
    ]
    assert statements
    for found in statements:
        resources = json.dumps(found["Resource"])
        assert f":account::{MANAGEMENT}:account/o-*/*" in resources
        assert '":account::", {"Ref": "AWS::AccountId"}, ":account"' in resources  # its own contacts


def test_delegated_administrator_stack_deploys_after_the_management_stack(synthesized: dict[str, Any]) -> None:
    dependencies = [artifact.id for artifact in synthesized["delegated_artifact"].dependencies]
    assert "OrgBootstrapManagement" in dependencies
    assert synthesized["delegated_artifact"].environment.account == DELEGATED


def test_cfn_lint_finds_no_errors_in_either_account(synthesized: dict[str, Any]) -> None:
    directory = Path(synthesized["assembly"].directory)
    for name in ("OrgBootstrapManagement", "OrgBootstrapDelegatedAdministrator"):
        matches = lint_file(directory / f"{name}.template.json", config=ManualArgs(regions=["us-east-1"]))
        assert [str(m) for m in matches if m.rule.id.startswith("E")] == [], name


def test_management_account_mode_deploys_nothing_in_the_delegated_administrator_account() -> None:
    config = BootstrapConfig.from_mapping({**CONFIG, "settings_deployed_in": "management_account"})
    app, stack = build_app(config)
    assert [s.stack_name for s in app.node.children if hasattr(s, "stack_name")] == ["OrgBootstrapManagement"]
    assert "scope" not in spec_of(Template.from_stack(stack))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"delegated_administrator_account_id": None},
            "settings_deployed_in: 'delegated_administrator' needs delegated_administrator_account_id",
        ),
        ({"alternate_contacts": None}, "settings_deployed_in: 'delegated_administrator' deploys the member accounts'"),
        (
            {"alternate_contacts": {"contacts": {"BILLING": CONTACT}, "targets": {"accounts": [MANAGEMENT]}}},
            "settings_deployed_in: the only targeted account is the management account",
        ),
        (
            {
                "alternate_contacts": {
                    "contacts": {"BILLING": CONTACT},
                    "overrides": [{"account": DELEGATED, "contacts": {"SECURITY": {"delete": True}}}],
                }
            },
            "alternate_contacts.overrides[0]: deletes contacts of the delegated administrator account",
        ),
        ({"settings_deployed_in": "member_account"}, "settings_deployed_in: 'member_account' is not one of"),
        ({"delegated_administrator_account_id": MANAGEMENT}, "delegated_administrator_account_id: is the management"),
    ],
)
def test_impossible_configs_fail_at_synth(change: dict[str, Any], expected: str) -> None:
    data = {key: value for key, value in {**CONFIG, **change}.items() if value is not None}
    if "alternate_contacts" not in data:
        data.pop("automation")
    with pytest.raises(ConfigError) as caught:
        BootstrapConfig.from_mapping(data)
    assert any(problem.startswith(expected) for problem in caught.value.problems), caught.value.problems


# -- without alternate contacts: the primary contact and the Regions alone -------------------------

PRIMARY = {**US_PRIMARY_CONTACT, "FullName": "Example Corp Cloud Platform"}
PRODUCTION_OU = "ou-ex01-prodapps"
SETTINGS_ONLY: dict[str, Any] = {
    "management_account_id": MANAGEMENT,
    "region": "us-east-1",
    "delegated_administrator_account_id": DELEGATED,
    "settings_deployed_in": "delegated_administrator",
    "primary_contact": {"contact": PRIMARY},
    "regions": {
        "enable": ["ap-east-1"],
        "overrides": [{"organizational_unit": PRODUCTION_OU, "enable": ["me-central-1"]}],
    },
    "automation": {"enabled": True},
}
SETTING_SPECS = ("PrimaryContactSpec", "RegionsSpec")


@pytest.fixture(scope="module")
def settings_only() -> dict[str, Any]:
    app, _ = build_app(BootstrapConfig.from_mapping(SETTINGS_ONLY))
    assembly = app.synth()  # cdk-nag runs here and fails the synth on any finding
    return {
        "assembly": assembly,
        "management": Template.from_json(assembly.get_stack_by_name("OrgBootstrapManagement").template),
        "delegated": Template.from_json(assembly.get_stack_by_name("OrgBootstrapDelegatedAdministrator").template),
    }


def setting_specs(template: Template) -> dict[str, dict[str, Any]]:
    """The account-settings resource's specs, by property; it carries no alternate contacts' ``Spec``."""
    (resource,) = template.find_resources("Custom::AlternateContacts").values()
    properties = resource["Properties"]
    assert "Spec" not in properties
    return {name: json.loads(properties[name]) for name in properties if name.endswith("Spec")}


def statements(template: Template) -> list[dict[str, Any]]:
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_without_alternate_contacts_each_stack_runs_its_side_of_every_setting(settings_only: dict[str, Any]) -> None:
    own, members = setting_specs(settings_only["management"]), setting_specs(settings_only["delegated"])
    assert sorted(own) == sorted(members) == sorted(SETTING_SPECS)
    assert {spec["scope"] for spec in own.values()} == {"management_account"}
    assert {spec["scope"] for spec in members.values()} == {"member_accounts"}
    for specs in (own, members):  # the same targets and overrides on both sides
        assert specs["PrimaryContactSpec"]["contact"] == PRIMARY
        assert specs["RegionsSpec"]["enable"] == ["ap-east-1"]
        assert specs["RegionsSpec"]["overrides"] == [{"organizational_unit": PRODUCTION_OU, "enable": ["me-central-1"]}]
    management: Template = settings_only["management"]
    management.resource_count_is("Custom::TrustedServiceAccess", 1)
    management.resource_count_is("Custom::DelegatedAdministrator", 1)
    settings_only["delegated"].resource_count_is("Custom::TrustedServiceAccess", 0)


def test_without_alternate_contacts_the_delegated_administrator_runs_the_automation(
    settings_only: dict[str, Any],
) -> None:
    delegated: Template = settings_only["delegated"]
    delegated.resource_count_is("AWS::Scheduler::Schedule", 1)
    delegated.resource_count_is("AWS::Lambda::EventSourceMapping", 1)
    rules = delegated.find_resources("AWS::Events::Rule")
    assert len(rules) == 6 and all(rule["Properties"]["EventBusName"] == "default" for rule in rules.values())
    management: Template = settings_only["management"]
    management.resource_count_is("AWS::Scheduler::Schedule", 0)
    forwarded = management.find_resources("AWS::Events::Rule").values()
    assert len(forwarded) == 6
    assert all(DELEGATED in json.dumps(rule["Properties"]["Targets"]) for rule in forwarded)


def test_without_alternate_contacts_no_role_may_touch_them(settings_only: dict[str, Any]) -> None:
    for side in ("management", "delegated"):
        actions = json.dumps([statement["Action"] for statement in statements(settings_only[side])])
        assert "AlternateContact" not in actions, side
        assert "account:GetContactInformation" in actions and "account:EnableRegion" in actions, side


def test_the_delegated_administrators_setting_roles_reach_member_accounts_and_the_configured_regions(
    settings_only: dict[str, Any],
) -> None:
    """The deploy-time job, the account events and the drift check each get the settings' actions on
    the member accounts (ARNs with the management account's ID) and the calling account's own; the
    Region writes only for the configured Regions."""
    found = statements(settings_only["delegated"])
    for sid in ("PrimaryContactOfOrganizationAccounts", "RegionStatusOfOrganizationAccounts"):
        named = [statement for statement in found if statement.get("Sid") == sid]
        assert len(named) == 3, sid  # the deploy-time job, the account events, the drift check
        for statement in named:
            resources = json.dumps(statement["Resource"])
            assert f":account::{MANAGEMENT}:account/o-*/*" in resources
            assert '":account::", {"Ref": "AWS::AccountId"}, ":account"' in resources
    writes = [statement for statement in found if statement.get("Sid") == "OptInRegionsOfOrganizationAccounts"]
    assert len(writes) == 3
    for statement in writes:
        assert sorted(statement["Action"]) == ["account:DisableRegion", "account:EnableRegion"]
        assert statement["Condition"] == {"StringEquals": {"account:TargetRegion": ["ap-east-1", "me-central-1"]}}


def test_cfn_lint_finds_no_errors_without_alternate_contacts(settings_only: dict[str, Any]) -> None:
    directory = Path(settings_only["assembly"].directory)
    for name in ("OrgBootstrapManagement", "OrgBootstrapDelegatedAdministrator"):
        matches = lint_file(directory / f"{name}.template.json", config=ManualArgs(regions=["us-east-1"]))
        assert [str(m) for m in matches if m.rule.id.startswith("E")] == [], name


def test_each_stack_gets_only_the_settings_whose_targets_reach_its_side() -> None:
    """Built, not synthesized: which stack carries which setting is known before the synth."""
    from stacks.delegated_administrator_account import DelegatedAdministratorStack
    from stacks.management_account import ManagementAccountStack

    data = {**SETTINGS_ONLY, "primary_contact": {"contact": PRIMARY, "targets": {"accounts": [MANAGEMENT]}}}
    app, management = build_app(BootstrapConfig.from_mapping(data))
    (delegated,) = [child for child in app.node.children if isinstance(child, DelegatedAdministratorStack)]
    assert isinstance(management, ManagementAccountStack) and management.account_settings is not None
    assert sorted(management.account_settings.specs) == ["primary_contact", "regions"]
    assert sorted(delegated.account_settings.specs) == ["regions"]  # a delegated administrator cannot change it

    # The other way round: Regions for the Production OU only never reach the management account
    # (it sits in the root), so its stack gets no Region permission.
    data = {**SETTINGS_ONLY, "regions": {"enable": ["ap-east-1"], "targets": {"organizational_units": [PRODUCTION_OU]}}}
    app, management = build_app(BootstrapConfig.from_mapping(data))
    (delegated,) = [child for child in app.node.children if isinstance(child, DelegatedAdministratorStack)]
    assert management.account_settings is not None
    assert sorted(management.account_settings.specs) == ["primary_contact"]
    assert sorted(delegated.account_settings.specs) == ["primary_contact", "regions"]
    data["primary_contact"] = {"contact": PRIMARY, "targets": {"exclude_accounts": [MANAGEMENT]}}
    _, management = build_app(BootstrapConfig.from_mapping(data))
    assert management.account_settings is None  # nothing of its own to set


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"primary_contact": None, "regions": None, "automation": None},
            "settings_deployed_in: 'delegated_administrator' deploys the member accounts' settings there, but "
            "there is no setting section",
        ),
        (
            {
                "primary_contact": {"contact": PRIMARY, "targets": {"accounts": [MANAGEMENT]}},
                "regions": {"enable": ["ap-east-1"], "targets": {"accounts": [MANAGEMENT]}},
            },
            "settings_deployed_in: the only targeted account is the management account (primary_contact, regions)",
        ),
    ],
)
def test_impossible_configs_without_alternate_contacts_fail_at_synth(change: dict[str, Any], expected: str) -> None:
    data = {key: value for key, value in {**SETTINGS_ONLY, **change}.items() if value is not None}
    with pytest.raises(ConfigError) as caught:
        BootstrapConfig.from_mapping(data)
    assert any(problem.startswith(expected) for problem in caught.value.problems), caught.value.problems
