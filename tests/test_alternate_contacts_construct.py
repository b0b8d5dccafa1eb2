"""The alternate-contacts construct in the synthesized template: wiring, IAM, state, ordering."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template

from constructs.alternate_contacts import AlternateContacts, managed_contact_types
from org_bootstrap.contact_spec import ContactSpec
from stacks.config import load_config


@pytest.fixture(scope="module")
def template(example_app: dict[str, Any]) -> Template:
    return Template.from_stack(example_app["stack"])


def statement(template: Template, sid: str) -> dict[str, Any]:
    found = [
        s
        for policy in template.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == sid
    ]
    assert found, sid
    return found[0]


def test_spec_property_is_the_validated_config(template: Template) -> None:
    (resource,) = template.find_resources("Custom::AlternateContacts").values()
    spec = ContactSpec.from_json(resource["Properties"]["Spec"])
    assert spec == load_config().alternate_contacts


def test_contacts_resource_waits_for_trusted_access(template: Template) -> None:
    (trusted,) = template.find_resources("Custom::TrustedServiceAccess")
    (resource,) = template.find_resources("Custom::AlternateContacts").values()
    assert trusted in resource["DependsOn"]


def test_asynchronous_wiring_provider_polls_is_complete(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "org_bootstrap.alternate_contacts.is_complete",
            "Timeout": 900,
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "DEPLOY_WAIT_SECONDS": "2700",
                        "JOB_BUCKET": Match.any_value(),
                        "SNAPSHOT_TABLE": Match.any_value(),
                    }
                )
            },
        },
    )
    template.has_resource_properties("AWS::Lambda::Function", {"Handler": "org_bootstrap.alternate_contacts.on_event"})
    machines = template.find_resources("AWS::StepFunctions::StateMachine")
    assert len(machines) == 1, "the Provider framework's waiter polls is_complete"
    (machine,) = machines.values()
    definition = json.dumps(machine["Properties"]["DefinitionString"])
    assert '\\"IntervalSeconds\\":30' in definition
    # The is-complete function may invoke itself to continue a job in the background.
    invoke = [
        s
        for p in template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Action"] == "lambda:InvokeFunction" and "Sid" not in s and "Fn::GetAtt" in json.dumps(s["Resource"])
    ]
    assert any("AlternateContactsIsComplete" in json.dumps(s["Resource"]) for s in invoke)


def test_account_actions_scoped_to_organization_and_contact_types(template: Template) -> None:
    found = statement(template, "AlternateContactsOfOrganizationAccounts")
    assert sorted(found["Action"]) == [
        "account:DeleteAlternateContact",
        "account:GetAlternateContact",
        "account:PutAlternateContact",
    ]
    assert found["Condition"] == {
        "ForAllValues:StringEquals": {"account:AlternateContactTypes": ["BILLING", "OPERATIONS", "SECURITY"]}
    }
    resources = json.dumps(found["Resource"])
    assert ':account::", {"Ref": "AWS::AccountId"}, ":account"' in resources
    assert ':account::", {"Ref": "AWS::AccountId"}, ":account/o-*/*"' in resources


def test_only_the_organizations_reads_the_handler_uses(template: Template) -> None:
    found = statement(template, "ReadOrganization")
    assert sorted(found["Action"]) == [
        "organizations:DescribeOrganization",
        "organizations:ListAccountsForParent",
        "organizations:ListOrganizationalUnitsForParent",
        "organizations:ListRoots",
    ]


def test_job_state_and_snapshots_are_durable_and_exactly_granted(template: Template) -> None:
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})
    template.has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {"Replicas": [Match.object_like({"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}})]},
    )
    template.has_resource("AWS::DynamoDB::GlobalTable", {"DeletionPolicy": "Retain"})
    assert sorted(statement(template, "ContactSnapshots")["Action"]) == [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    ]
    assert sorted(statement(template, "JobStateAndReports")["Action"]) == ["s3:GetObject", "s3:PutObject"]


def test_waiter_logs_omit_execution_data(template: Template) -> None:
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {"LoggingConfiguration": Match.object_like({"IncludeExecutionData": False, "Level": "ALL"})},
    )


def test_contact_types_condition_follows_the_spec() -> None:
    retain = ContactSpec.parse(
        {"contacts": {"SECURITY": {"Name": "a", "Title": "b", "EmailAddress": "a@b.co", "PhoneNumber": "1"}}}
    )
    assert managed_contact_types(retain) == ["SECURITY"]
    restore = ContactSpec.parse({**retain.to_dict(), "removal": "restore"})
    assert managed_contact_types(restore) == ["BILLING", "OPERATIONS", "SECURITY"]
    stack = Stack(App(), "Only")
    AlternateContacts(stack, "Contacts", spec=retain)
    Template.from_stack(stack).has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Condition": {
                                    "ForAllValues:StringEquals": {"account:AlternateContactTypes": ["SECURITY"]}
                                }
                            }
                        )
                    ]
                )
            }
        },
    )
