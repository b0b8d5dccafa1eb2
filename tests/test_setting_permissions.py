"""The IAM statements of the primary-contact and Regions settings, as synthesized: exact actions,
the settings' condition keys, and the denials of writes outside their targets."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from constructs.setting_permissions import setting_statements
from org_bootstrap.aws.partitions import opt_in_regions
from org_bootstrap.settings.primary_contact.spec import PrimaryContactSpec
from org_bootstrap.settings.regions import managed_regions
from org_bootstrap.settings.regions.spec import RegionSpec
from tests.conftest import US_PRIMARY_CONTACT

PRIMARY = US_PRIMARY_CONTACT
REGIONS = RegionSpec.parse(
    {"enable": ["me-central-1", "ap-east-1"], "overrides": [{"account": "444444444444", "disable": ["il-central-1"]}]}
)


def settings(write: bool, **targets: Any) -> list[iam.PolicyStatement]:
    """The statements of a role for the primary contact and the Regions above, with ``targets``."""
    return setting_statements(
        {
            "primary_contact": PrimaryContactSpec.parse({"contact": PRIMARY, "targets": targets}),
            "regions": RegionSpec.parse({**REGIONS.to_dict(), "targets": targets}),
        },
        write=write,
    )


def statements_of(*statement_lists: list[iam.PolicyStatement]) -> list[dict[str, Any]]:
    """The statements as CloudFormation gets them, from a role in a small stack."""
    stack = Stack(App(), "Permissions", env={"account": "111111111111", "region": "us-east-1"})
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    for statements in statement_lists:
        for statement in statements:
            role.add_to_policy(statement)
    (policy,) = Template.from_stack(stack).find_resources("AWS::IAM::Policy").values()
    found = list(policy["Properties"]["PolicyDocument"]["Statement"])
    for statement in found:  # one action or resource synthesizes as a string
        for key in ("Action", "Resource"):
            statement[key] = statement[key] if isinstance(statement[key], list) else [statement[key]]
        statement["Resource"] = [joined(resource) for resource in statement["Resource"]]
    return found


def joined(value: Any) -> str:
    """An ARN built with Fn::Join, as text: ``arn:${AWS::Partition}:account::...``."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    separator, parts = value["Fn::Join"]
    return separator.join(joined(part) for part in parts)


@pytest.fixture(scope="module")
def synthesized() -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for statement in statements_of(settings(write=True))}


def test_primary_contact_actions_are_exact_and_on_the_organizations_accounts(
    synthesized: dict[str, dict[str, Any]],
) -> None:
    statement = synthesized["PrimaryContactOfOrganizationAccounts"]
    assert statement["Action"] == ["account:GetContactInformation", "account:PutContactInformation"]
    assert statement["Resource"] == [
        "arn:${AWS::Partition}:account::${AWS::AccountId}:account",  # the calling account, without AccountId
        "arn:${AWS::Partition}:account::${AWS::AccountId}:account/o-*/*",
    ]


def test_region_changes_are_conditioned_on_exactly_the_configured_regions(
    synthesized: dict[str, dict[str, Any]],
) -> None:
    write = synthesized["OptInRegionsOfOrganizationAccounts"]
    assert sorted(write["Action"]) == ["account:DisableRegion", "account:EnableRegion"]
    assert write["Condition"] == {
        "StringEquals": {"account:TargetRegion": ["ap-east-1", "il-central-1", "me-central-1"]}
    }
    read = synthesized["RegionStatusOfOrganizationAccounts"]
    assert sorted(read["Action"]) == ["account:GetRegionOptStatus", "account:ListRegions"]
    assert "Condition" not in read


def test_a_read_only_handler_gets_no_write_actions() -> None:
    found = statements_of(settings(write=False, exclude_accounts=["333333333333"]))
    assert all(statement["Effect"] == "Allow" for statement in found)  # nothing to deny a reader
    actions = {action for statement in found for action in statement["Action"]}
    assert actions == {"account:GetContactInformation", "account:GetRegionOptStatus", "account:ListRegions"}


def test_restore_may_touch_any_opt_in_region_a_previous_config_named() -> None:
    assert managed_regions(REGIONS, "aws") == ["ap-east-1", "il-central-1", "me-central-1"]
    restoring = RegionSpec.parse({"enable": ["ap-east-1"], "removal": "restore"})
    assert managed_regions(restoring, "aws") == sorted(opt_in_regions("aws"))


def test_writes_outside_the_targets_are_denied_for_each_setting() -> None:
    """The same second line of defence the alternate contacts have: each setting's writes denied in
    excluded accounts and outside the targeted OUs, its reads left alone."""
    found = statements_of(
        settings(
            write=True,
            organizational_units=["ou-ex01-workload"],
            exclude_accounts=["333333333333"],
            exclude_organizational_units=["ou-ex01-devtests"],
        )
    )
    denials = {s["Sid"]: s for s in found if s["Effect"] == "Deny"}
    assert sorted(denials) == [
        "DenyPrimaryContactWritesInExcludedOrganizationalUnits",
        "DenyPrimaryContactWritesOutsideTargetedOrganizationalUnits",
        "DenyPrimaryContactWritesToExcludedAccounts",
        "DenyRegionsWritesInExcludedOrganizationalUnits",
        "DenyRegionsWritesOutsideTargetedOrganizationalUnits",
        "DenyRegionsWritesToExcludedAccounts",
    ]
    assert denials["DenyPrimaryContactWritesToExcludedAccounts"]["Action"] == ["account:PutContactInformation"]
    assert sorted(denials["DenyRegionsWritesToExcludedAccounts"]["Action"]) == [
        "account:DisableRegion",
        "account:EnableRegion",
    ]
    assert denials["DenyRegionsWritesToExcludedAccounts"]["Resource"] == [
        "arn:${AWS::Partition}:account::${AWS::AccountId}:account/o-*/333333333333",
        "arn:${AWS::Partition}:account::333333333333:account",  # its own, if it were the caller
    ]
    assert denials["DenyRegionsWritesOutsideTargetedOrganizationalUnits"]["Condition"] == {
        "ForAllValues:StringNotLike": {"account:AccountResourceOrgPaths": ["o-*/r-*/ou-ex01-workload/*"]}
    }


def test_restore_keeps_the_writes_it_needs_where_the_stack_let_go() -> None:
    """``restore`` puts earlier values back in accounts no longer targeted: nothing is denied."""
    restoring = setting_statements(
        {
            "primary_contact": PrimaryContactSpec.parse(
                {"contact": PRIMARY, "removal": "restore", "targets": {"exclude_accounts": ["333333333333"]}}
            ),
            "regions": RegionSpec.parse(
                {"enable": ["ap-east-1"], "removal": "restore", "targets": {"exclude_accounts": ["333333333333"]}}
            ),
        },
        write=True,
    )
    assert all(statement["Effect"] == "Allow" for statement in statements_of(restoring))


# -- the whole stack, from a config with every setting -----------------------------------------


@pytest.fixture(scope="module")
def settings_stack() -> Template:
    """The management account's stack for a config with the primary contact and Regions (cdk-nag runs)."""
    from stacks.app_builder import build_app
    from stacks.config import BootstrapConfig

    config = BootstrapConfig.from_mapping(
        {
            "management_account_id": "111111111111",
            "region": "us-east-1",
            "primary_contact": {"contact": PRIMARY, "removal": "restore"},
            "regions": {"enable": ["ap-east-1", "me-central-1"], "disable": ["il-central-1"]},
        }
    )
    app, stack = build_app(config)
    app.synth()
    return Template.from_stack(stack)


def test_one_resource_carries_each_setting_in_its_own_property(settings_stack: Template) -> None:
    (resource,) = settings_stack.find_resources("Custom::AlternateContacts").values()
    properties = resource["Properties"]
    assert "Spec" not in properties  # no alternate contacts asked for
    assert PrimaryContactSpec.from_json(properties["PrimaryContactSpec"]).removal == "restore"
    assert RegionSpec.from_json(properties["RegionsSpec"]).disabled() == {"il-central-1"}


def test_the_applying_role_has_exactly_each_settings_actions(settings_stack: Template) -> None:
    found = [
        statement
        for policy in settings_stack.find_resources("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if any(str(action).startswith("account:") for action in _listed(statement["Action"]))
    ]
    actions = {action for statement in found for action in _listed(statement["Action"])}
    assert actions == {
        "account:GetContactInformation",
        "account:PutContactInformation",
        "account:ListRegions",
        "account:GetRegionOptStatus",
        "account:EnableRegion",
        "account:DisableRegion",
    }
    (changes,) = [s for s in found if "account:EnableRegion" in _listed(s["Action"])]
    assert changes["Condition"] == {
        "StringEquals": {"account:TargetRegion": ["ap-east-1", "il-central-1", "me-central-1"]}
    }


def _listed(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]
