"""The management-account stack's template: resources, ordering, IAM, cdk-nag and cfn-lint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Match, Template
from cfnlint.api import ManualArgs, lint_file

from stacks.app_builder import build_app
from stacks.config import BootstrapConfig


@pytest.fixture(scope="module")
def template(example_app: dict[str, Any]) -> Template:
    return Template.from_stack(example_app["stack"])


def logical_id(template: Template, resource_type: str) -> str:
    found = template.find_resources(resource_type)
    assert len(found) == 1, found
    return next(iter(found))


def policy_of(template: Template, sid: str) -> dict[str, Any]:
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Sid") == sid:
                return statement
    raise AssertionError(f"no statement {sid}")


def test_custom_resources_and_their_properties(template: Template) -> None:
    template.has_resource_properties(
        "Custom::TrustedServiceAccess", {"ServicePrincipal": "account.amazonaws.com", "Removal": "retain"}
    )
    template.has_resource_properties(
        "Custom::DelegatedAdministrator",
        {"ServicePrincipal": "account.amazonaws.com", "AccountId": "222222222222", "Removal": "retain"},
    )


def test_delegated_administrator_depends_on_trusted_access(template: Template) -> None:
    trusted = logical_id(template, "Custom::TrustedServiceAccess")
    delegated = template.find_resources("Custom::DelegatedAdministrator")
    (resource,) = delegated.values()
    assert trusted in resource["DependsOn"]


def test_handlers_run_newest_python_on_arm64_with_json_logs(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.14",
            "Architectures": ["arm64"],
            "Handler": "org_bootstrap.handlers.trusted_access.on_event",
            "LoggingConfig": Match.object_like({"LogFormat": "JSON", "ApplicationLogLevel": "INFO"}),
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "org_bootstrap.handlers.delegated_administrator.on_event", "Runtime": "python3.14"},
    )


def test_trusted_access_role_is_conditioned_on_the_service_principal(template: Template) -> None:
    statement = policy_of(template, "ChangeTrustedAccessForThisPrincipalOnly")
    assert sorted(statement["Action"]) == [
        "organizations:DisableAWSServiceAccess",
        "organizations:EnableAWSServiceAccess",
    ]
    assert statement["Condition"] == {"StringEquals": {"organizations:ServicePrincipal": "account.amazonaws.com"}}


def test_registration_is_scoped_to_organization_accounts_and_principal(template: Template) -> None:
    statement = policy_of(template, "RegisterForThisPrincipalOnly")
    assert sorted(statement["Action"]) == [
        "organizations:DeregisterDelegatedAdministrator",
        "organizations:RegisterDelegatedAdministrator",
    ]
    assert statement["Condition"] == {"StringEquals": {"organizations:ServicePrincipal": "account.amazonaws.com"}}
    assert statement["Resource"] == {
        "Fn::Join": [
            "",
            ["arn:", {"Ref": "AWS::Partition"}, ":organizations::", {"Ref": "AWS::AccountId"}, ":account/o-*/*"],
        ]
    }


def test_on_event_handlers_read_only_their_own_stack_status(template: Template) -> None:
    found = [
        (name, statement)
        for name, policy in template.find_resources("AWS::IAM::Policy").items()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "ReadOwnStackStatus"
    ]
    assert len(found) == 4  # one per custom resource: its rollback requests are told by the stack's status
    for name, statement in found:
        assert "OnEvent" in name or "Handler" in name, name
        assert statement["Action"] == "cloudformation:DescribeStacks"
        assert statement["Resource"] == {"Ref": "AWS::StackId"}


def test_no_wildcard_actions_and_no_managed_policies_on_handler_roles(template: Template) -> None:
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in action for action in actions), actions
    handler_roles = {
        name: role
        for name, role in template.find_resources("AWS::IAM::Role").items()
        if role["Properties"].get("Description", "").startswith("Runs org_bootstrap.")
    }
    assert len(handler_roles) == 5  # preflight, trusted access, delegated administrator, contacts x2
    assert all("ManagedPolicyArns" not in role["Properties"] for role in handler_roles.values())


def test_without_delegated_administrator_only_trusted_access_is_deployed() -> None:
    _app, stack = build_app(BootstrapConfig("111111111111", "us-east-1"))
    template = Template.from_stack(stack)
    template.resource_count_is("Custom::TrustedServiceAccess", 1)
    template.resource_count_is("Custom::DelegatedAdministrator", 0)


def test_cdk_nag_is_live_and_fails_an_unjustified_wildcard() -> None:
    from aws_cdk import Validations
    from cdk_nag import AwsSolutionsChecks

    app = App()
    stack = Stack(app, "Wildcard")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    role.add_to_policy(iam.PolicyStatement(actions=["organizations:List*"], resources=["*"]))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match=r"AwsSolutions-IAM5\[Action::organizations:List\*\]"):
        app.synth()


def test_example_app_synthesizes_with_no_unacknowledged_nag_findings(example_app: dict[str, Any]) -> None:
    # build_app registers AwsSolutionsChecks; the session synth would have raised on a finding.
    assert example_app["assembly"].get_stack_by_name("OrgBootstrapManagement").template


def test_cfn_lint_finds_no_errors_in_any_template(example_app: dict[str, Any]) -> None:
    directory = Path(example_app["assembly"].directory)
    templates = sorted(directory.glob("*.template.json"))
    assert templates
    for path in templates:
        matches = lint_file(path, config=ManualArgs(regions=["us-east-1"]))
        errors = [str(match) for match in matches if match.rule.id.startswith("E")]
        assert errors == [], path.name
