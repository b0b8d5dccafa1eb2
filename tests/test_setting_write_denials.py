"""IAM as a second line of defence: every role that writes a setting is denied the writes the config
rules out (excluded accounts and OUs, anything outside the targets), proven on the synthesized
templates by evaluating their Deny statements for chosen calls, in both deployment modes."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from stacks.app_builder import build_app
from stacks.config import BootstrapConfig
from tests.conftest import US_PRIMARY_CONTACT

MANAGEMENT, DELEGATED = "111111111111", "222222222222"
CONTACT = {"Name": "Ops", "Title": "T", "EmailAddress": "ops@example.com", "PhoneNumber": "+1 555 0100"}
ORG, ROOT = "o-exampleorg1", "r-ex01"
SECURITY, WORKLOADS, SANDBOX = "ou-ex01-security", "ou-ex01-workload", "ou-ex01-sandboxs"
PRODUCTION, DEVELOPMENT = "ou-ex01-prodapps", "ou-ex01-devtests"  # both under WORKLOADS
WRITING_ROLES = (  # every handler that writes contacts, by its role's description
    "Runs org_bootstrap.handlers.account_settings.is_complete",
    "Runs org_bootstrap.handlers.account_events.on_messages",
    "Runs org_bootstrap.handlers.drift.on_schedule",
)
PUT, DELETE, GET = "account:PutAlternateContact", "account:DeleteAlternateContact", "account:GetAlternateContact"


def config(**changes: Any) -> dict[str, Any]:
    contacts = {
        "contacts": {"SECURITY": CONTACT},
        "targets": {
            "organizational_units": [SECURITY, WORKLOADS],
            "exclude_accounts": ["333333333333", MANAGEMENT],
            "exclude_organizational_units": [DEVELOPMENT],
        },
        "overrides": [{"organizational_unit": PRODUCTION, "contacts": {"BILLING": CONTACT}}],
    }
    return {
        "management_account_id": MANAGEMENT,
        "region": "us-east-1",
        "delegated_administrator_account_id": DELEGATED,
        "alternate_contacts": contacts,
        "automation": {"enabled": True},
        **changes,
    }


def synth(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    app, _ = build_app(BootstrapConfig.from_mapping(data))
    assembly = app.synth()  # cdk-nag runs here: an unacknowledged finding fails the synth
    return {stack.stack_name: stack.template for stack in assembly.stacks}


@pytest.fixture(scope="module")
def guarded() -> dict[str, dict[str, Any]]:
    """Retain (the default): every write the config rules out is denied."""
    return synth(config())


@pytest.fixture(scope="module")
def delegated_delete() -> dict[str, dict[str, Any]]:
    """Delegated-administrator mode, removal = delete, targets by account."""
    contacts = {
        "contacts": {"SECURITY": CONTACT},
        "removal": "delete",
        "targets": {"accounts": [DELEGATED, "444444444444", "555555555555"]},
    }
    return synth(config(settings_deployed_in="delegated_administrator", alternate_contacts=contacts))


@dataclass(frozen=True)
class Call:
    action: str
    arn: str
    paths: tuple[str, ...] = ()  # account:AccountResourceOrgPaths of the account (member accounts only)
    tags: tuple[tuple[str, str], ...] = ()  # account:AccountResourceOrgTags/<key> (member accounts only)


def member(account_id: str, *parents: str) -> Call:
    path = "/".join((ORG, ROOT, *parents)) + "/"
    return Call(PUT, f"arn:aws:account::{MANAGEMENT}:account/{ORG}/{account_id}", (path,))


def own(account_id: str) -> Call:
    return Call(PUT, f"arn:aws:account::{account_id}:account")


def with_action(call: Call, action: str) -> Call:
    return Call(action, call.arn, call.paths, call.tags)


def tagged(call: Call, **tags: str) -> Call:
    return Call(call.action, call.arn, call.paths, tuple(tags.items()))


def resolve(value: Any, account: str) -> Any:
    """The few intrinsics an IAM policy of these templates holds, in the aws partition."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(part, account)) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return {"AWS::Partition": "aws", "AWS::AccountId": account}[value["Ref"]]
    if isinstance(value, list):
        return [resolve(item, account) for item in value]
    return value


def matches(patterns: Any, value: str) -> bool:
    # IAM's wildcards: * any characters (slashes included), ? one; fnmatchcase has the same two.
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in _list(patterns))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def condition_holds(condition: Mapping[str, Any], call: Call) -> bool:
    for operator, keys in condition.items():
        for key, patterns in keys.items():
            if key.startswith("account:AccountResourceOrgTags/"):
                # A single-valued String key: a key absent from the request context makes
                # StringEquals false and StringNotEquals true (IAM's condition operators page).
                value = dict(call.tags).get(key.split("/", 1)[1])
                if operator == "StringEquals":
                    holds = value is not None and value in _list(patterns)
                elif operator == "StringNotEquals":
                    holds = value is None or value not in _list(patterns)
                else:
                    raise AssertionError(f"{operator} on the single-valued {key}")
                if not holds:
                    return False
                continue
            assert key == "account:AccountResourceOrgPaths", key
            if operator == "ForAnyValue:StringLike":
                holds = any(matches(patterns, path) for path in call.paths)
            elif operator == "ForAllValues:StringNotLike":
                holds = all(not matches(patterns, path) for path in call.paths)  # true with no paths
            else:
                raise AssertionError(operator)
            if not holds:
                return False
    return True


def denied_by(statements: list[dict[str, Any]], call: Call, account: str) -> list[str]:
    """The Sids of the Deny statements that deny ``call``."""
    found = []
    for statement in statements:
        if statement["Effect"] != "Deny" or call.action not in _list(statement["Action"]):
            continue
        if "Resource" in statement:
            applies = matches(resolve(statement["Resource"], account), call.arn)
        else:
            applies = not matches(resolve(statement["NotResource"], account), call.arn)
        if applies and condition_holds(statement.get("Condition", {}), call):
            found.append(statement["Sid"])
    return found


def role_statements(template: dict[str, Any], description: str) -> list[dict[str, Any]]:
    resources = template["Resources"]
    (role,) = [
        lid
        for lid, r in resources.items()
        if r["Type"] == "AWS::IAM::Role" and r["Properties"].get("Description") == description
    ]
    return [
        statement
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
    ]


GUARDED_CALLS = [
    ("excluded account", member("333333333333", SECURITY), ["DenyAlternateContactsWritesToExcludedAccounts"]),
    (
        "excluded management account, its own contacts",
        own(MANAGEMENT),
        ["DenyAlternateContactsWritesToExcludedAccounts"],
    ),
    (
        "account in an excluded OU nested in a targeted one",
        member("777777777777", WORKLOADS, DEVELOPMENT),
        ["DenyAlternateContactsWritesInExcludedOrganizationalUnits"],
    ),
    (
        "account in an OU that is not targeted",
        member("101010101010", SANDBOX),
        ["DenyAlternateContactsWritesOutsideTargetedOrganizationalUnits"],
    ),
    (
        "account directly under the root",
        member("121212121212"),
        ["DenyAlternateContactsWritesOutsideTargetedOrganizationalUnits"],
    ),
    ("account in a targeted OU", member("444444444444", WORKLOADS), []),
    ("account in a nested targeted OU with an override", member("555555555555", WORKLOADS, PRODUCTION), []),
    (
        "delete in an excluded account",
        with_action(member("333333333333", SECURITY), DELETE),
        ["DenyAlternateContactsWritesToExcludedAccounts"],
    ),
    ("reading an excluded account", with_action(member("333333333333", SECURITY), GET), []),
]


@pytest.mark.parametrize("description", WRITING_ROLES)
@pytest.mark.parametrize(("case", "call", "expected"), GUARDED_CALLS, ids=[case for case, _, _ in GUARDED_CALLS])
def test_each_writing_role_is_denied_what_the_config_rules_out(
    guarded: dict[str, dict[str, Any]], description: str, case: str, call: Call, expected: list[str]
) -> None:
    statements = role_statements(guarded["OrgBootstrapManagement"], description)
    assert sorted(denied_by(statements, call, MANAGEMENT)) == sorted(expected), case


DELETE_MODE_CALLS = [
    ("put outside the targeted accounts", member("666666666666", WORKLOADS, PRODUCTION), True),
    ("delete outside the targets: the removal mode releases it", with_action(member("666666666666"), DELETE), False),
    ("put in a targeted account", member("444444444444", WORKLOADS), False),
    ("put in the targeted delegated administrator, its own contacts", own(DELEGATED), False),
    ("put in the management account, not targeted", own(MANAGEMENT), True),
]


@pytest.mark.parametrize("description", WRITING_ROLES)
@pytest.mark.parametrize(("case", "call", "denied"), DELETE_MODE_CALLS, ids=[case for case, _, _ in DELETE_MODE_CALLS])
def test_delegated_administrator_roles_deny_puts_outside_the_targeted_accounts_and_leave_releases(
    delegated_delete: dict[str, dict[str, Any]], description: str, case: str, call: Call, denied: bool
) -> None:
    statements = role_statements(delegated_delete["OrgBootstrapDelegatedAdministrator"], description)
    found = denied_by(statements, call, DELEGATED)
    assert found == (["DenyAlternateContactsWritesOutsideTargetedAccounts"] if denied else []), case


def test_the_management_stack_in_delegated_administrator_mode_may_not_write_contacts_it_is_not_given(
    delegated_delete: dict[str, dict[str, Any]],
) -> None:
    """The targeted accounts leave the management account out, so its stack has no contacts
    resource and no role that may write a contact at all (not even one it then denies)."""
    resources = delegated_delete["OrgBootstrapManagement"]["Resources"].values()
    assert [r for r in resources if r["Type"] == "Custom::AlternateContacts"] == []
    allowed = [
        action
        for r in resources
        if r["Type"] == "AWS::IAM::Policy"
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Effect", "Allow") == "Allow"
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    ]
    assert allowed and not [action for action in allowed if action in (PUT, DELETE)]


def test_restore_keeps_every_write_it_may_need_and_a_read_only_role_gets_no_denials() -> None:
    """``restore`` puts earlier values back into released accounts, wherever they are now."""
    from aws_cdk import App, Stack

    from constructs.setting_permissions import setting_statements
    from org_bootstrap.settings.alternate_contacts.spec import ContactSpec

    stack = Stack(App(), "S")
    restore = ContactSpec.parse({**config()["alternate_contacts"], "removal": "restore"})
    retain = ContactSpec.parse(config()["alternate_contacts"])
    for spec, write, effects in (
        (restore, True, ["Allow"]),
        (retain, False, ["Allow"]),
        (retain, True, ["Allow", "Deny", "Deny", "Deny"]),
    ):
        statements = setting_statements({"alternate_contacts": spec}, write=write)
        rendered = [stack.resolve(s.to_statement_json()) for s in statements]
        assert [s.get("Effect", "Allow") for s in rendered] == effects


# -- every setting, not only the contacts ------------------------------------------------------

PRIMARY = US_PRIMARY_CONTACT
ENABLE, PUT_PRIMARY = "account:EnableRegion", "account:PutContactInformation"


@pytest.fixture(scope="module")
def every_setting() -> dict[str, dict[str, Any]]:
    """Primary contact everywhere but one account; Regions only in the production OU."""
    return synth(
        config(
            primary_contact={"contact": PRIMARY, "targets": {"exclude_accounts": ["333333333333"]}},
            regions={"enable": ["ap-east-1"], "targets": {"organizational_units": [PRODUCTION]}},
        )
    )


SETTING_CALLS = [
    ("Region enabled outside the targeted OU", with_action(member("444444444444", WORKLOADS), ENABLE), True),
    ("Region enabled in the targeted OU", with_action(member("555555555555", WORKLOADS, PRODUCTION), ENABLE), False),
    ("primary contact of the excluded account", with_action(member("333333333333", SECURITY), PUT_PRIMARY), True),
    ("primary contact of another account", with_action(member("444444444444", WORKLOADS), PUT_PRIMARY), False),
]


@pytest.mark.parametrize("description", WRITING_ROLES)
@pytest.mark.parametrize(("case", "call", "denied"), SETTING_CALLS, ids=[case for case, _, _ in SETTING_CALLS])
def test_each_writing_role_denies_every_settings_writes_outside_its_own_targets(
    every_setting: dict[str, dict[str, Any]], description: str, case: str, call: Call, denied: bool
) -> None:
    """Each setting is guarded by its own section's targets: the Regions' OU target denies Region
    writes elsewhere but not contact writes, and the primary contact's exclusion only its own."""
    statements = role_statements(every_setting["OrgBootstrapManagement"], description)
    found = denied_by(statements, call, MANAGEMENT)
    assert bool(found) == denied, (case, found)
    assert all(sid.startswith("DenyRegions" if call.action == ENABLE else "DenyPrimaryContact") for sid in found)


# -- tag targets ---------------------------------------------------------------------------------

TAG_DENIALS = "DenyRegionsWrites"


@pytest.fixture(scope="module")
def by_tags() -> dict[str, dict[str, Any]]:
    """Regions only in production accounts of the payments or orders teams, never in a sandbox."""
    regions = {
        "enable": ["ap-east-1"],
        "targets": {
            "tags": {"environment": "production", "team": ["payments", "orders"]},
            "exclude_tags": {"lifecycle": "sandbox"},
        },
    }
    return synth(config(regions=regions))


TAG_CALLS = [
    (
        "production payments account",
        tagged(member("555555555555", WORKLOADS), environment="production", team="payments"),
        [],
    ),
    (
        "production orders account",
        tagged(member("666666666666", WORKLOADS), environment="production", team="orders"),
        [],
    ),
    (
        "production account of another team",
        tagged(member("444444444444", WORKLOADS), environment="production", team="data"),
        ["WithoutTargetedTag2"],
    ),
    (
        "development payments account",
        tagged(member("777777777777", WORKLOADS), environment="development", team="payments"),
        ["WithoutTargetedTag1"],
    ),
    ("untagged account", member("888888888888", WORKLOADS), ["WithoutTargetedTag1", "WithoutTargetedTag2"]),
    (
        "production payments sandbox",
        tagged(member("999999999999"), environment="production", team="payments", lifecycle="sandbox"),
        ["WithExcludedTags"],
    ),
    (
        "a tag value differing only in case",
        tagged(member("101010101010"), environment="Production", team="payments"),
        ["WithoutTargetedTag1"],
    ),
]


@pytest.mark.parametrize("description", WRITING_ROLES)
@pytest.mark.parametrize(("case", "call", "expected"), TAG_CALLS, ids=[case for case, _, _ in TAG_CALLS])
def test_each_writing_role_denies_writes_outside_the_targeted_tags(
    by_tags: dict[str, dict[str, Any]], description: str, case: str, call: Call, expected: list[str]
) -> None:
    statements = role_statements(by_tags["OrgBootstrapManagement"], description)
    found = denied_by(statements, with_action(call, ENABLE), MANAGEMENT)
    assert sorted(found) == sorted(f"{TAG_DENIALS}{sid}" for sid in expected), case


def test_tag_denials_use_the_single_valued_operators_and_spare_the_management_account(
    by_tags: dict[str, dict[str, Any]],
) -> None:
    """account:AccountResourceOrgTags/<key> is a String key: no ForAnyValue/ForAllValues; and the
    management account calling for itself has no organization tags, so tag denials reach members only."""
    statements = role_statements(by_tags["OrgBootstrapManagement"], WRITING_ROLES[0])
    tag_statements = [s for s in statements if "Tag" in s.get("Sid", "") and s["Effect"] == "Deny"]
    assert len(tag_statements) == 3
    for statement in tag_statements:
        assert set(statement["Condition"]) <= {"StringEquals", "StringNotEquals"}
        assert resolve(statement["Resource"], MANAGEMENT) == f"arn:aws:account::{MANAGEMENT}:account/o-*/*"
    assert denied_by(statements, with_action(own(MANAGEMENT), ENABLE), MANAGEMENT) == []
