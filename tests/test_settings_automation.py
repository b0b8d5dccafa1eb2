"""Contact automation: the config section, and the construct in the synthesized template (exact
event patterns, queue and dead-letter queue, schedule, alarms, topic, IAM), cdk-nag and cfn-lint."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Environment, Stack
from aws_cdk import aws_events as events
from aws_cdk.assertions import Match, Template
from cfnlint.api import ManualArgs, lint_file
from moto.events.models import EventPattern

from constructs.settings_automation import SettingsAutomation, spec_layer_folder
from org_bootstrap.engine.registry import specs_from_json
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec
from simulation import cloudtrail as samples
from stacks.app_builder import build_app
from stacks.config import DEFAULT_CONFIG, AutomationConfig, BootstrapConfig, ConfigError

ROOT = Path(__file__).resolve().parent.parent
MANAGEMENT = "111111111111"
# The example, with all three settings: the automation keeps every one of them correct.
EXAMPLE = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
SPEC = ContactSpec.parse(EXAMPLE["alternate_contacts"])
SETTINGS = BootstrapConfig.from_mapping(EXAMPLE).settings


def config_with(**automation: Any) -> dict[str, Any]:
    return {**EXAMPLE, "automation": automation}


def synth(config: dict[str, Any]) -> tuple[Template, Any]:
    """The whole app as ``cdk synth`` builds it; cdk-nag fails the synth on any finding."""
    app, stack = build_app(BootstrapConfig.from_mapping(config))
    assembly = app.synth()
    return Template.from_stack(stack), assembly


@pytest.fixture(scope="module")
def automation_app() -> tuple[Template, Any]:
    return synth(config_with(drift_schedule="rate(12 hours)", notification_email="aws-platform@example.com"))


@pytest.fixture(scope="module")
def template(automation_app: tuple[Template, Any]) -> Template:
    return automation_app[0]


AUTOMATION_KEY = "Encrypts the account settings' notifications: job alarms, drift reports"


def resource(template: Template, resource_type: str, **properties: Any) -> tuple[str, Any]:
    found = template.find_resources(resource_type, {"Properties": Match.object_like(properties)})
    assert len(found) == 1, (resource_type, properties, list(found))
    return next(iter(found.items()))


def statements(template: Template, role_logical_prefix: str) -> list[dict[str, Any]]:
    return [
        statement
        for name, policy in template.find_resources("AWS::IAM::Policy").items()
        if name.startswith(role_logical_prefix)
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def by_sid(found: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    (statement,) = [s for s in found if s.get("Sid") == sid]
    return statement


# -- config -----------------------------------------------------------------------------------


def problems_of(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        BootstrapConfig.from_mapping(config)
    return caught.value.problems


def test_the_section_is_typed_with_safe_defaults() -> None:
    config = BootstrapConfig.from_mapping(config_with())
    assert config.automation == AutomationConfig(
        enabled=True, drift_schedule="rate(1 day)", report_only=False, notification_email=None
    )
    assert config.automation.drift_interval_minutes == 1440
    full = BootstrapConfig.from_mapping(
        config_with(enabled=True, drift_schedule="rate(6 hours)", report_only=True, notification_email="a@b.example")
    )
    assert full.automation == AutomationConfig(True, "rate(6 hours)", True, "a@b.example")
    assert full.automation.drift_interval_minutes == 360
    assert BootstrapConfig.from_mapping(EXAMPLE).automation is None  # commented out in the example


@pytest.mark.parametrize(
    ("automation", "expected"),
    [
        ({"enable": True}, "automation.enable: unknown key (allowed: enabled, drift_schedule, report_only,"),
        ({"enabled": "yes"}, "automation.enabled: 'yes' must be true or false"),
        ({"report_only": 1}, "automation.report_only: 1 must be true or false"),
        ({"drift_schedule": "daily"}, "automation.drift_schedule: 'daily' is not a rate expression"),
        ({"drift_schedule": "cron(0 3 * * ? *)"}, "automation.drift_schedule: 'cron(0 3 * * ? *)' is not a rate"),
        ({"drift_schedule": "rate(2 day)"}, "automation.drift_schedule: 'rate(2 day)': write the unit singular"),
        ({"drift_schedule": "rate(1 hours)"}, "automation.drift_schedule: 'rate(1 hours)': write the unit singular"),
        ({"drift_schedule": "rate(30 minutes)"}, "automation.drift_schedule: 'rate(30 minutes)' is more often than"),
        ({"notification_email": "ops at example"}, "automation.notification_email: 'ops at example' is not an e-mail"),
        ({"notification_email": 7}, "automation.notification_email: 7 is not an e-mail address"),
    ],
)
def test_bad_values_name_the_field_and_rule(automation: dict[str, Any], expected: str) -> None:
    found = problems_of(config_with(**automation))
    assert any(problem.startswith(expected) for problem in found), found


def test_the_section_must_be_a_table() -> None:
    assert problems_of({**EXAMPLE, "automation": True}) == ["automation: must be a table"]


def test_automation_needs_a_setting_it_keeps_correct() -> None:
    sections = ("alternate_contacts", "primary_contact", "regions")
    config = {key: value for key, value in config_with().items() if key not in sections}
    (problem,) = problems_of(config)
    assert problem.startswith("automation.enabled: needs a setting to keep correct")
    # any one of them is enough
    BootstrapConfig.from_mapping({key: value for key, value in config_with().items() if key != "alternate_contacts"})


def test_automation_outside_us_east_1_is_refused_at_synth_naming_the_region() -> None:
    (problem,) = problems_of({**config_with(), "region": "eu-west-1"})
    assert problem == (
        "automation.enabled: Organizations and Control Tower account events arrive only in us-east-1, "
        "but region is 'eu-west-1' (deploy to us-east-1, or set enabled = false)"
    )
    disabled = BootstrapConfig.from_mapping({**config_with(enabled=False), "region": "eu-west-1"})
    assert disabled.automation is not None and not disabled.automation_enabled


def test_the_app_refuses_to_synth_automation_in_another_region(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace('region = "us-east-1"', 'region = "eu-west-1"')
    bad = tmp_path / "bad.toml"
    bad.write_text(text + "\n[automation]\nenabled = true\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")],
        env={"CDK_CONTEXT_JSON": json.dumps({"config": str(bad)}), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "automation.enabled: Organizations and Control Tower account events arrive only in us-east-1" in (
        result.stderr
    )


def test_the_commented_example_is_valid_once_uncommented() -> None:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    start = text.index("# [automation]")
    end = text.find("\n# ----", start)
    section = text[start : end if end != -1 else None]
    uncommented = "\n".join(line.removeprefix("# ") for line in section.splitlines())
    data = {**EXAMPLE, **tomllib.loads(uncommented)}
    config = BootstrapConfig.from_mapping(data)
    assert config.automation == AutomationConfig(True, "rate(1 day)", False, "aws-platform@example.com")


# -- event rules ------------------------------------------------------------------------------

DOCUMENTED_PATTERNS = {
    "AccountCreated": {
        "source": ["aws.organizations"],
        "detail-type": ["AWS Service Event via CloudTrail"],
        "detail": {
            "eventSource": ["organizations.amazonaws.com"],
            "eventName": ["CreateAccountResult"],
            "serviceEventDetails": {"createAccountStatus": {"state": ["SUCCEEDED"]}},
        },
    },
    "AccountJoined": {
        "source": ["aws.organizations"],
        "detail-type": ["AWS Service Event via CloudTrail", "AWS API Call via CloudTrail"],
        "detail": {"eventSource": ["organizations.amazonaws.com"], "eventName": ["AccountJoinedOrganization"]},
    },
    "AccountMoved": {
        "source": ["aws.organizations"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["organizations.amazonaws.com"],
            "eventName": ["MoveAccount"],
            "errorCode": [{"exists": False}],
        },
    },
    "AccountTagsChanged": {
        "source": ["aws.organizations"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["organizations.amazonaws.com"],
            "eventName": ["TagResource", "UntagResource"],
            "errorCode": [{"exists": False}],
        },
    },
    "ManagedAccountCreated": {
        "source": ["aws.controltower"],
        "detail-type": ["AWS Service Event via CloudTrail"],
        "detail": {
            "eventSource": ["controltower.amazonaws.com"],
            "eventName": ["CreateManagedAccount"],
            "serviceEventDetails": {"createManagedAccountStatus": {"state": ["SUCCEEDED"]}},
        },
    },
    "ManagedAccountUpdated": {
        "source": ["aws.controltower"],
        "detail-type": ["AWS Service Event via CloudTrail"],
        "detail": {
            "eventSource": ["controltower.amazonaws.com"],
            "eventName": ["UpdateManagedAccount"],
            "serviceEventDetails": {"updateManagedAccountStatus": {"state": ["SUCCEEDED"]}},
        },
    },
}


def test_six_rules_on_the_default_bus_with_exactly_the_documented_patterns(template: Template) -> None:
    template.resource_count_is("AWS::Events::Rule", 6)
    (queue, _), (dead_letter_queue, _) = (
        resource(template, "AWS::SQS::Queue", VisibilityTimeout=720),
        resource(template, "AWS::SQS::Queue", MessageRetentionPeriod=1209600),
    )
    for pattern in DOCUMENTED_PATTERNS.values():
        _, rule = resource(template, "AWS::Events::Rule", EventPattern=pattern)
        assert "EventBusName" not in rule["Properties"]  # the default bus
        assert rule["Properties"]["State"] == "ENABLED"
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [queue, "Arn"]}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dead_letter_queue, "Arn"]}}
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


def documented_events(management: str = MANAGEMENT) -> dict[str, list[dict[str, Any]]]:
    """For each rule, the events AWS documents for it (tests/test_account_events.py builds them)."""
    account, ou = "777777777777", "ou-abcd-12345678"
    return {
        "AccountCreated": [samples.create_account_result(account, management)],
        "AccountJoined": [
            samples.account_joined(account, management, method="INVITED"),
            samples.account_joined(account, management, method="CREATED"),
        ],
        "AccountMoved": [samples.move_account(account, "r-abcd", ou, management)],
        "AccountTagsChanged": [
            samples.api_call(
                "TagResource",
                management,
                {"resourceId": account, "tags": [{"key": "environment", "value": "production"}]},
                None,
                management,
            ),
            samples.api_call(
                "UntagResource", management, {"resourceId": account, "tagKeys": ["environment"]}, None, management
            ),
        ],
        "ManagedAccountCreated": [samples.managed_account("CreateManagedAccount", account, ou, management)],
        "ManagedAccountUpdated": [samples.managed_account("UpdateManagedAccount", account, ou, management)],
    }


def failed_events(management: str = MANAGEMENT) -> list[dict[str, Any]]:
    account, ou = "777777777777", "ou-abcd-12345678"
    return [
        samples.create_account_result(None, management, state="FAILED"),
        samples.move_account(account, "r-abcd", ou, management, errorCode="AccessDenied"),
        samples.api_call(
            "TagResource", management, {"resourceId": account}, None, management, errorCode="AccessDenied"
        ),
        samples.managed_account("CreateManagedAccount", account, ou, management, state="FAILED"),
        samples.managed_account("UpdateManagedAccount", account, ou, management, state="FAILED"),
        samples.api_call("InviteAccountToOrganization", management, {}, {}, management),
        # Logged in the invited account, never on this bus; AccountJoinedOrganization stands for it.
        samples.accept_handshake(account, management),
    ]


def matching_rules(event: dict[str, Any]) -> list[str]:
    """The rules an event matches, by EventBridge's matching as moto implements it, over the
    patterns the template carries (asserted above)."""
    return [
        rule_id
        for rule_id, pattern in DOCUMENTED_PATTERNS.items()
        if EventPattern.load(json.dumps(pattern)).matches_event(event)  # type: ignore[arg-type]
    ]


def test_each_documented_event_matches_its_own_rule_only_and_failures_match_none() -> None:
    for rule_id, sample_events in documented_events().items():
        for event in sample_events:
            assert matching_rules(event) == [rule_id]
    for event in failed_events():
        assert matching_rules(event) == []


# -- delivery: queue, dead-letter queue, handler ------------------------------------------------


def test_the_queue_retries_then_moves_a_message_to_the_dead_letter_queue(template: Template) -> None:
    dead_letter_queue, _ = resource(template, "AWS::SQS::Queue", MessageRetentionPeriod=1209600)
    _, queue = resource(template, "AWS::SQS::Queue", VisibilityTimeout=720)
    assert queue["Properties"] == {
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dead_letter_queue, "Arn"]}, "maxReceiveCount": 5},
        "SqsManagedSseEnabled": True,
        "VisibilityTimeout": 720,  # six times the handler's two-minute timeout
    }
    template.has_resource_properties(
        "AWS::SQS::Queue", {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True}
    )


def test_both_queues_refuse_unencrypted_transport_and_accept_only_their_rules(template: Template) -> None:
    rules = set(template.find_resources("AWS::Events::Rule"))
    policies = template.find_resources("AWS::SQS::QueuePolicy")
    assert len(policies) == 2
    for policy in policies.values():
        deny, *allows = policy["Properties"]["PolicyDocument"]["Statement"]
        (queue,) = policy["Properties"]["Queues"]
        assert deny == {
            "Action": "sqs:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": {"Fn::GetAtt": [queue["Ref"], "Arn"]},
        }
        # EventBridge may send, and only on behalf of this construct's rules.
        assert {allow["Principal"]["Service"] for allow in allows} == {"events.amazonaws.com"}
        assert {allow["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0] for allow in allows} == rules


def test_the_handler_reads_the_queue_in_batches_reporting_item_failures(template: Template) -> None:
    function, _ = resource(
        template, "AWS::Lambda::Function", Handler="org_bootstrap.handlers.account_events.on_messages", Timeout=120
    )
    queue, _ = resource(template, "AWS::SQS::Queue", VisibilityTimeout=720)
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [queue, "Arn"]},
            "FunctionName": {"Ref": function},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": 10,
            "ScalingConfig": {"MaximumConcurrency": 2},
        },
    )


def test_handlers_run_the_spec_of_the_last_deploy_from_a_layer(template: Template) -> None:
    layer, _ = resource(template, "AWS::Lambda::LayerVersion", CompatibleRuntimes=["python3.14"])
    for handler in ("org_bootstrap.handlers.account_events.on_messages", "org_bootstrap.handlers.drift.on_schedule"):
        _, function = resource(template, "AWS::Lambda::Function", Handler=handler)
        properties = function["Properties"]
        assert properties["Layers"] == [{"Ref": layer}]
        assert properties["Runtime"] == "python3.14" and properties["Architectures"] == ["arm64"]
        variables = properties["Environment"]["Variables"]
        assert variables["SPEC_FILE"] == "/opt/contact-spec.json"
        assert variables["MANAGEMENT_ACCOUNT_ID"] == MANAGEMENT
        assert variables["CALLER_ACCOUNT_ID"] == {"Ref": "AWS::AccountId"}
    written = spec_layer_folder(SETTINGS) / "contact-spec.json"
    assert set(SETTINGS) == {"alternate_contacts", "primary_contact", "regions"}
    assert specs_from_json(written.read_text(encoding="utf-8")) == SETTINGS


# -- drift: schedule, metrics, topic, alarms ------------------------------------------------------


def test_the_drift_schedule_runs_at_the_configured_rate_with_retries_and_dead_letter_queue(
    template: Template,
) -> None:
    function, _ = resource(
        template, "AWS::Lambda::Function", Handler="org_bootstrap.handlers.drift.on_schedule", Timeout=900
    )
    dead_letter_queue, _ = resource(template, "AWS::SQS::Queue", MessageRetentionPeriod=1209600)
    _, schedule = resource(template, "AWS::Scheduler::Schedule", ScheduleExpression="rate(12 hours)")
    target = schedule["Properties"]["Target"]
    assert schedule["Properties"]["State"] == "ENABLED"
    assert target["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dead_letter_queue, "Arn"]}}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}
    assert json.loads(target["Input"])["Source"] == "drift-schedule"
    # A check that still fails after Lambda's own retries lands in the same dead-letter queue.
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": function},
            "MaximumRetryAttempts": 2,
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [dead_letter_queue, "Arn"]}}},
        },
    )


def test_the_drift_check_is_configured_for_fixing_and_publishing(template: Template) -> None:
    _, function = resource(template, "AWS::Lambda::Function", Handler="org_bootstrap.handlers.drift.on_schedule")
    topic, _ = resource(template, "AWS::SNS::Topic", DisplayName="Account settings")
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["REPORT_ONLY"] == "false"
    assert variables["METRIC_NAMESPACE"] == "OrgBootstrap/AlternateContacts"
    assert variables["TOPIC_ARN"] == {"Ref": topic}
    assert "SNAPSHOT_TABLE" in variables and "JOB_BUCKET" in variables


def test_the_topic_is_encrypted_refuses_plain_transport_and_mails_the_configured_address(
    template: Template,
) -> None:
    key, key_resource = resource(template, "AWS::KMS::Key", EnableKeyRotation=True, Description=AUTOMATION_KEY)
    topic, _ = resource(template, "AWS::SNS::Topic", KmsMasterKeyId={"Fn::GetAtt": [key, "Arn"]})
    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "email", "Endpoint": "aws-platform@example.com", "TopicArn": {"Ref": topic}},
    )
    (policy,) = template.find_resources("AWS::SNS::TopicPolicy", {"Properties": {"Topics": [{"Ref": topic}]}}).values()
    deny, allow = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and allow["Action"] == "sns:Publish"
    key_statements = key_resource["Properties"]["KeyPolicy"]["Statement"]
    assert {
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Resource": "*",
        "Sid": "CloudWatchAlarmsPublish",
    } in key_statements


def test_one_topic_and_one_subscription_hear_every_job_alarm_and_drift_report(template: Template) -> None:
    """The deploy-time jobs and the automation share one topic: one e-mail to confirm, not two."""
    template.resource_count_is("AWS::SNS::Topic", 1)
    template.resource_count_is("AWS::SNS::Subscription", 1)
    topic, _ = resource(template, "AWS::SNS::Topic", DisplayName="Account settings")
    for alarm in template.find_resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic}]


def test_alarms_on_the_dead_letter_queue_depth_and_stuck_events_notify_the_topic(template: Template) -> None:
    topic, _ = resource(template, "AWS::SNS::Topic", DisplayName="Account settings")
    dead_letter_queue, _ = resource(template, "AWS::SQS::Queue", MessageRetentionPeriod=1209600)
    queue, _ = resource(template, "AWS::SQS::Queue", VisibilityTimeout=720)
    # Two here, and one per continuation workflow (the deploy's and the drift check's).
    template.resource_count_is("AWS::CloudWatch::Alarm", 4)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letter_queue, "QueueName"]}}],
            "Statistic": "Maximum",
            "Period": 300,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "EvaluationPeriods": 1,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": topic}],
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
            "Threshold": 3600,
            "ComparisonOperator": "GreaterThanThreshold",
            "AlarmActions": [{"Ref": topic}],
        },
    )


# -- IAM --------------------------------------------------------------------------------------


def test_the_event_handler_role_has_exactly_what_it_calls(template: Template) -> None:
    found = statements(template, "ContactAutomationAccountEventsHandlerRole")
    contacts = by_sid(found, "AlternateContactsOfOrganizationAccounts")
    assert sorted(contacts["Action"]) == [
        "account:DeleteAlternateContact",
        "account:GetAlternateContact",
        "account:PutAlternateContact",
    ]
    assert contacts["Condition"] == {
        "ForAllValues:StringEquals": {"account:AlternateContactTypes": ["BILLING", "OPERATIONS", "SECURITY"]}
    }
    describe = by_sid(found, "DescribeOrganizationAccount")
    assert describe["Action"] == ["organizations:DescribeAccount", "organizations:ListTagsForResource"]
    assert describe["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":organizations::{MANAGEMENT}:account/o-*/*"]]
    }
    assert by_sid(found, "ReadAccountParents")["Action"] == "organizations:ListParents"
    consume = [s for s in found if "sqs:ReceiveMessage" in s["Action"]]
    assert len(consume) == 1 and "*" not in json.dumps(consume[0]["Resource"])


@pytest.mark.parametrize("role", ["ContactAutomationAccountEventsHandlerRole", "ContactAutomationDriftCheckRole"])
def test_the_automation_roles_write_the_primary_contact_and_only_the_configured_regions(
    template: Template, role: str
) -> None:
    found = statements(template, role)
    assert sorted(by_sid(found, "PrimaryContactOfOrganizationAccounts")["Action"]) == [
        "account:GetContactInformation",
        "account:PutContactInformation",
    ]
    assert sorted(by_sid(found, "RegionStatusOfOrganizationAccounts")["Action"]) == [
        "account:GetRegionOptStatus",
        "account:ListRegions",
    ]
    opt_in = by_sid(found, "OptInRegionsOfOrganizationAccounts")
    assert sorted(opt_in["Action"]) == ["account:DisableRegion", "account:EnableRegion"]
    # the example's removal is retain: exactly the Regions it names
    assert opt_in["Condition"] == {"StringEquals": {"account:TargetRegion": ["ap-east-1", "me-central-1"]}}


def test_a_report_only_drift_check_reads_every_setting_and_writes_none(report_only_template: Template) -> None:
    found = statements(report_only_template, "ContactAutomationDriftCheckRole")
    actions = {a for s in found for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"account:GetContactInformation", "account:ListRegions", "account:GetRegionOptStatus"} <= actions
    written = {"account:PutContactInformation", "account:EnableRegion", "account:DisableRegion"}
    assert not actions & {*written, "account:PutAlternateContact", "account:DeleteAlternateContact"}
    _, function = resource(
        report_only_template, "AWS::Lambda::Function", Handler="org_bootstrap.handlers.drift.on_schedule"
    )
    assert "DEPLOY_JOB_POINTER" not in function["Properties"]["Environment"]["Variables"]  # it releases nothing


def test_the_drift_role_publishes_only_its_namespace_and_topic(template: Template) -> None:
    found = statements(template, "ContactAutomationDriftCheckRole")
    metrics = by_sid(found, "PublishDriftMetrics")
    assert metrics["Action"] == "cloudwatch:PutMetricData"
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "OrgBootstrap/AlternateContacts"}}
    topic, _ = resource(template, "AWS::SNS::Topic", DisplayName="Account settings")
    assert by_sid(found, "NotifyDrift") == {
        "Action": "sns:Publish",
        "Effect": "Allow",
        "Resource": {"Ref": topic},
        "Sid": "NotifyDrift",
    }
    assert sorted(by_sid(found, "ListOrganization")["Action"]) == [
        "organizations:ListAccountsForParent",
        "organizations:ListOrganizationalUnitsForParent",
        "organizations:ListRoots",
        "organizations:ListTagsForResource",  # tags are re-read on every check
    ]
    key, _ = resource(template, "AWS::KMS::Key", EnableKeyRotation=True, Description=AUTOMATION_KEY)
    assert by_sid(found, "EncryptNotifications")["Resource"] == {"Fn::GetAtt": [key, "Arn"]}


def test_a_drift_check_too_big_for_one_invocation_goes_to_its_own_workflow(template: Template) -> None:
    found = statements(template, "ContactAutomationDriftCheckRole")
    start = by_sid(found, "StartJobContinuation")
    assert start["Action"] == "states:StartExecution"
    assert "DriftChecks" in json.dumps(start["Resource"]) and "*" not in json.dumps(start["Resource"])
    assert "execution:" in json.dumps(by_sid(found, "ReadJobContinuations")["Resource"])
    assert not [s for s in found if "lambda:InvokeFunction" in json.dumps(s["Action"])]  # no self-invocation
    (drift,) = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "org_bootstrap.handlers.drift.on_schedule"}}
    ).values()
    assert "DriftChecks" in json.dumps(drift["Properties"]["Environment"]["Variables"]["JOB_WORKFLOW_ARN"])
    topic, _ = resource(template, "AWS::SNS::Topic", DisplayName="Account settings")
    (alarm,) = [
        alarm
        for alarm in template.find_resources("AWS::CloudWatch::Alarm").values()
        if "Continues account-settings drift checks" in alarm["Properties"]["AlarmDescription"]
    ]
    assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic}]


def test_no_wildcard_actions_and_no_managed_policies_anywhere(template: Template) -> None:
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in action for action in actions), actions
    for name, role in template.find_resources("AWS::IAM::Role").items():
        if name.startswith("ContactAutomation"):
            assert "ManagedPolicyArns" not in role["Properties"], name


@pytest.fixture(scope="module")
def report_only_template() -> Template:
    return synth(config_with(report_only=True, drift_schedule="rate(1 day)"))[0]


def test_report_only_can_read_contacts_and_change_none(report_only_template: Template) -> None:
    found = statements(report_only_template, "ContactAutomationDriftCheckRole")
    assert by_sid(found, "AlternateContactsOfOrganizationAccounts")["Action"] == "account:GetAlternateContact"
    assert not [s for s in found if s.get("Sid") == "SettingSnapshots"]
    _, function = resource(
        report_only_template, "AWS::Lambda::Function", Handler="org_bootstrap.handlers.drift.on_schedule"
    )
    variables = function["Properties"]["Environment"]["Variables"]
    assert variables["REPORT_ONLY"] == "true" and "SNAPSHOT_TABLE" not in variables
    resource(report_only_template, "AWS::Scheduler::Schedule", ScheduleExpression="rate(1 day)")
    report_only_template.resource_count_is("AWS::SNS::Subscription", 0)  # no e-mail configured


# -- the app around it ------------------------------------------------------------------------


def test_automation_shares_the_snapshots_and_starts_after_the_deploy_time_apply(template: Template) -> None:
    table, _ = resource(template, "AWS::DynamoDB::GlobalTable", KeySchema=Match.any_value())
    (contacts,) = template.find_resources("Custom::AlternateContacts")
    _, function = resource(
        template, "AWS::Lambda::Function", Handler="org_bootstrap.handlers.account_events.on_messages"
    )
    assert function["Properties"]["Environment"]["Variables"]["SNAPSHOT_TABLE"] == {"Ref": table}
    _, schedule = resource(template, "AWS::Scheduler::Schedule", ScheduleExpression=Match.any_value())
    assert contacts in schedule["DependsOn"]
    template.resource_count_is("AWS::S3::Bucket", 1)


def test_the_whole_app_with_automation_passes_cdk_nag_and_cfn_lint(automation_app: tuple[Template, Any]) -> None:
    _, assembly = automation_app  # the synth would have raised on an unacknowledged cdk-nag finding
    templates = sorted(Path(assembly.directory).glob("*.template.json"))
    assert templates
    for path in templates:
        matches = lint_file(path, config=ManualArgs(regions=["us-east-1"]))
        assert [str(m) for m in matches if m.rule.id.startswith("E")] == [], path.name


# -- the construct on its own -----------------------------------------------------------------


def construct_stack(region: str | None = "us-east-1", **kwargs: Any) -> Stack:
    app = App()
    env = Environment(account="222222222222", region=region) if region else None
    stack = Stack(app, "Automation", env=env)
    SettingsAutomation(
        stack, "ContactAutomation", settings={"alternate_contacts": SPEC}, management_account_id=MANAGEMENT, **kwargs
    )
    return stack


def test_the_construct_refuses_a_default_bus_where_the_events_never_arrive() -> None:
    with pytest.raises(
        ValueError, match=r"arrive on the default event bus in us-east-1 only.*this stack is in eu-west-1"
    ):
        construct_stack("eu-west-1")


def test_a_forwarded_event_bus_may_be_anywhere() -> None:
    app = App()
    stack = Stack(app, "Delegated", env=Environment(account="222222222222", region="eu-west-1"))
    bus = events.EventBus(stack, "Forwarded")
    SettingsAutomation(
        stack,
        "ContactAutomation",
        settings={"alternate_contacts": SPEC},
        management_account_id=MANAGEMENT,
        event_bus=bus,
        drift_interval=Duration.hours(6),
    )
    template = Template.from_stack(stack)
    for rule in template.find_resources("AWS::Events::Rule").values():
        assert rule["Properties"]["EventBusName"] == {
            "Ref": next(iter(template.find_resources("AWS::Events::EventBus")))
        }
    template.has_resource_properties("AWS::Scheduler::Schedule", {"ScheduleExpression": "rate(6 hours)"})
    # Its own state when none is shared; the management account's ID scopes DescribeAccount.
    template.resource_count_is("AWS::S3::Bucket", 1)


def test_an_environment_agnostic_stack_checks_the_region_at_deploy(tmp_path: Path) -> None:
    stack = construct_stack(None)
    template = Template.from_stack(stack)
    rules = template.to_json()["Rules"]
    (assertion,) = next(rule for name, rule in rules.items() if name.startswith("ContactAutomationEventsRegion"))[
        "Assertions"
    ]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    assert "us-east-1" in assertion["AssertDescription"]
    path = tmp_path / "agnostic.template.json"
    path.write_text(json.dumps(template.to_json()), encoding="utf-8")
    matches = lint_file(path, config=ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches if m.rule.id.startswith("E")] == []
    template.resource_count_is("AWS::Scheduler::Schedule", 1)
    template.has_resource_properties("AWS::Scheduler::Schedule", {"ScheduleExpression": "rate(1 day)"})


def test_a_fixing_drift_check_knows_the_deploy_resource_whose_owed_releases_it_finishes(template: Template) -> None:
    _, function = resource(template, "AWS::Lambda::Function", Handler="org_bootstrap.handlers.drift.on_schedule")
    (settings,) = template.find_resources("Custom::AlternateContacts")
    assert function["Properties"]["Environment"]["Variables"]["DEPLOY_JOB_POINTER"] == settings
