"""The alternate-contacts construct in the synthesized template: wiring, IAM, state, ordering."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Match, Template

from constructs.account_settings import AccountSettings
from org_bootstrap.settings.alternate_contacts import managed_contact_types
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec
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


def test_the_settings_resource_is_deleted_before_its_continuation_workflow(template: Template) -> None:
    """Found by the chaos run (benchmarks/chaos.py): a stack Delete removed the workflow first, then
    the resource's Delete, which needed a continuation, failed with StateMachineDoesNotExist."""
    machine, _ = continuation_machine(template)
    (resource,) = template.find_resources("Custom::AlternateContacts").values()
    assert machine in resource["DependsOn"]


def test_asynchronous_wiring_provider_polls_is_complete(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "org_bootstrap.handlers.account_settings.is_complete",
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
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Handler": "org_bootstrap.handlers.account_settings.on_event"}
    )
    waiters = [
        machine
        for machine in template.find_resources("AWS::StepFunctions::StateMachine").values()
        if "framework-isComplete-task" in json.dumps(machine["Properties"]["DefinitionString"])
    ]
    assert len(waiters) == 1, "the Provider framework's waiter polls is_complete"
    definition = json.dumps(waiters[0]["Properties"]["DefinitionString"])
    # Every 30 s for 55 minutes: the framework's own timeout answer comes 5 minutes before CloudFormation's limit.
    assert '\\"IntervalSeconds\\":30,\\"MaxAttempts\\":110' in definition
    # No self-invocation any more: a job past the deploy wait goes to its workflow.
    own = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if "AlternateContactsIsCompleteRole" in json.dumps(policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert own and not [s for s in own if "lambda:InvokeFunction" in json.dumps(s["Action"])]


def continuation_machine(template: Template) -> tuple[str, dict[str, Any]]:
    found = template.find_resources(
        "AWS::StepFunctions::StateMachine",
        {"Properties": {"StateMachineName": {"Fn::Join": ["-", [{"Ref": "AWS::StackName"}, "ContactsJobs"]]}}},
    )
    assert len(found) == 1
    ((logical_id, machine),) = found.items()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    definition = json.loads("".join(part if isinstance(part, str) else "FUNCTION" for part in parts))
    assert [p for p in parts if not isinstance(p, str)] == [
        {"Fn::GetAtt": [logical_id_of_function(template, "org_bootstrap.handlers.account_settings.is_complete"), "Arn"]}
    ]
    return logical_id, definition


def logical_id_of_function(template: Template, handler: str) -> str:
    (logical_id,) = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": handler}})
    return str(logical_id)


def test_the_continuation_workflow_loops_over_batches_and_retries_every_error(template: Template) -> None:
    _, definition = continuation_machine(template)
    work = definition["States"]["Work"]
    assert definition["StartAt"] == "Work" and work["Parameters"] == {"ContinueJob.$": "$.Job"}
    assert work["Retry"] == [
        {
            "ErrorEquals": ["States.ALL"],
            "IntervalSeconds": 30,
            "MaxAttempts": 8,
            "BackoffRate": 2,
            "MaxDelaySeconds": 600,
            "JitterStrategy": "FULL",
        }
    ]
    assert work["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.Error", "Next": "RetriesExhausted"}]
    assert definition["States"]["RetriesExhausted"]["Type"] == "Fail"
    choice = definition["States"][work["Next"]]
    assert choice["Default"] == "Work"  # not done: the next batch
    assert [rule["Next"] for rule in choice["Choices"]] == ["OtherWorkerHoldsTheJob", "AccountsFailed", "Done"]
    assert definition["States"]["OtherWorkerHoldsTheJob"] == {"Type": "Wait", "Seconds": 60, "Next": "Work"}
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "StateMachineName": {"Fn::Join": ["-", [{"Ref": "AWS::StackName"}, "ContactsJobs"]]},
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True}),
        },
    )


def test_a_continuation_that_does_not_succeed_alarms_to_the_jobs_topic(template: Template) -> None:
    machine, _ = continuation_machine(template)
    (topic,) = template.find_resources("AWS::SNS::Topic", {"Properties": {"DisplayName": "Account settings"}})
    alarms = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"AlarmActions": [{"Ref": topic}]}}
    ).values()
    (alarm,) = alarms
    props = alarm["Properties"]
    assert (props["Threshold"], props["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert [m["Expression"] for m in props["Metrics"] if "Expression" in m] == ["failed + timedOut + aborted"]
    named = {
        m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"]["Metric"]["Dimensions"]
        for m in props["Metrics"]
        if "MetricStat" in m
    }
    assert sorted(named) == ["ExecutionsAborted", "ExecutionsFailed", "ExecutionsTimedOut"]
    assert all(d == [{"Name": "StateMachineArn", "Value": {"Ref": machine}}] for d in named.values())


def test_the_handler_may_start_only_its_own_workflow(template: Template) -> None:
    own = [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if "AlternateContactsIsCompleteRole" in json.dumps(policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    (start,) = [s for s in own if s.get("Sid") == "StartJobContinuation"]
    assert start["Action"] == "states:StartExecution"
    assert "stateMachine:" in json.dumps(start["Resource"]) and "ContactsJobs" in json.dumps(start["Resource"])
    assert "*" not in json.dumps(start["Resource"])
    (describe,) = [s for s in own if s.get("Sid") == "ReadJobContinuations"]
    assert describe["Action"] == "states:DescribeExecution" and "execution:" in json.dumps(describe["Resource"])
    # The workflow's role invokes the is-complete function, and nothing else.
    (machine_role,) = [
        policy
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if "ContinuationStateMachineRole" in json.dumps(policy["Properties"]["Roles"])
    ]
    invoked = [
        s for s in machine_role["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "lambda:InvokeFunction"
    ]
    assert "AlternateContactsIsComplete" in json.dumps(invoked) and "OnEvent" not in json.dumps(invoked)


def test_every_custom_resource_has_a_service_timeout_with_room_for_the_answer(template: Template) -> None:
    timeouts = {
        resource["Type"]: resource["Properties"].get("ServiceTimeout")
        for resource in template.to_json()["Resources"].values()
        if resource["Type"].startswith("Custom::")
    }
    # Handlers that answer within their 5-minute timeout get 10 minutes (the preflight too); the contacts resource,
    # whose waiter gives up after 55 minutes, gets CloudFormation's hour.
    assert timeouts == {
        "Custom::OrganizationPreflight": "600",
        "Custom::TrustedServiceAccess": "600",
        "Custom::DelegatedAdministrator": "600",
        "Custom::AlternateContacts": "3600",
    }


def test_a_deploy_wait_that_leaves_no_room_for_the_answer_is_refused() -> None:
    from aws_cdk import Duration

    with pytest.raises(ValueError, match=r"deploy_wait is 3000 s; at most 2970 s"):
        AccountSettings(
            Stack(App(), "S"),
            "Contacts",
            spec=ContactSpec.parse({"contacts": {"BILLING": {"delete": True}}}),
            deploy_wait=Duration.minutes(50),
        )


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
        "organizations:ListTagsForResource",  # the accounts' tags, for tag targets
    ]


def test_job_state_and_snapshots_are_durable_and_exactly_granted(template: Template) -> None:
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})
    template.has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {"Replicas": [Match.object_like({"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}})]},
    )
    template.has_resource("AWS::DynamoDB::GlobalTable", {"DeletionPolicy": "Retain"})
    assert sorted(statement(template, "SettingSnapshots")["Action"]) == [
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
    AccountSettings(stack, "Contacts", spec=retain)
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


def test_the_reconcile_context_is_a_property_only_when_given(template: Template) -> None:
    """``cdk deploy -c reconcile=<new value>`` changes the resource (an Update of an unchanged
    config); without it the template is the same as ever, so a plain re-deploy changes nothing."""
    (plain,) = template.find_resources("Custom::AlternateContacts").values()
    assert "Reconcile" not in plain["Properties"]
    app = App(context={"reconcile": "1764590000"})
    stack = Stack(app, "S")
    AccountSettings(stack, "Contacts", spec=ContactSpec.parse({"contacts": {"BILLING": {"delete": True}}}))
    (given,) = Template.from_stack(stack).find_resources("Custom::AlternateContacts").values()
    assert given["Properties"]["Reconcile"] == "1764590000"
