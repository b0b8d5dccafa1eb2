"""Keeping the organization's account settings correct after the deploy, as a construct: every
configured setting (alternate contacts, primary contact, Regions) through the same handlers.

Two paths lead to the same engine (:func:`org_bootstrap.engine.reconcile.reconcile_account`):

- **New and moved accounts**: EventBridge rules for Organizations' ``CreateAccountResult``,
  ``AccountJoinedOrganization`` (created and invited accounts) and ``MoveAccount`` and Control
  Tower's ``CreateManagedAccount`` and ``UpdateManagedAccount`` put the events on an SQS queue; a
  Lambda function reads it in batches (partial batch failures) and applies the configured settings
  to the one account each event names (a move out of the targets applies each setting's removal
  mode).
  A message that keeps failing moves to a dead-letter queue, which raises an alarm.
- **Drift**: an EventBridge Scheduler schedule runs a check of every targeted account that fixes
  what drifted (or, report-only, just reports it), publishes CloudWatch metrics and notifies an SNS
  topic when anything drifted or failed.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnRule, CfnRuleAssertion, Duration, Fn, Stack, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from constructs.account_settings import SettingsState, member_accounts_finding
from constructs.job_workflow import JobWorkflow
from constructs.nag_findings import acknowledge
from constructs.notifications import notification_topic
from constructs.org_provider import PYTHON_RUNTIME, RuntimeFunction, logical_id_of
from constructs.setting_permissions import setting_statements
from org_bootstrap.aws.partitions import COMMERCIAL
from org_bootstrap.engine.registry import specs_to_json
from org_bootstrap.engine.stores import JOB_PREFIX
from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.handlers.drift import DEFAULT_NAMESPACE
from org_bootstrap.validation import EVENTS_REGION

SPEC_FILE_NAME = "contact-spec.json"
SPEC_FILE = f"/opt/{SPEC_FILE_NAME}"  # where Lambda unpacks the spec layer
EVENT_HANDLER_TIMEOUT = Duration.minutes(2)
MAX_RECEIVE_COUNT = 5  # deliveries of one message before it moves to the dead-letter queue

ORGANIZATIONS = "aws.organizations"
CONTROL_TOWER = "aws.controltower"
API_CALL = "AWS API Call via CloudTrail"
SERVICE_EVENT = "AWS Service Event via CloudTrail"
SUCCEEDED = ["SUCCEEDED"]


def account_event_patterns() -> dict[str, events.EventPattern]:
    """The rules' event patterns, by rule ID: successful outcomes only, failed API calls excluded."""
    # https://docs.aws.amazon.com/eventbridge/latest/ref/events-ref-organizations.html
    # https://docs.aws.amazon.com/organizations/latest/userguide/orgs_cloudtrail-integration.html
    organizations = {"eventSource": ["organizations.amazonaws.com"]}
    api_call_succeeded = {"errorCode": [{"exists": False}]}
    # https://docs.aws.amazon.com/controltower/latest/userguide/lifecycle-events.html
    control_tower = {"eventSource": ["controltower.amazonaws.com"]}
    return {
        "AccountCreated": events.EventPattern(
            source=[ORGANIZATIONS],
            detail_type=[SERVICE_EVENT],
            detail={
                **organizations,
                "eventName": ["CreateAccountResult"],
                "serviceEventDetails": {"createAccountStatus": {"state": SUCCEEDED}},
            },
        ),
        # Logged in the management account for created and invited accounts; the docs name its
        # fields (joinedMethod, joinedTime), not its CloudTrail category, so the rule takes either.
        # https://docs.aws.amazon.com/organizations/latest/APIReference/API_AcceptHandshake.html
        # (AcceptHandshake itself is logged in the invited account: no rule here would ever see it.)
        "AccountJoined": events.EventPattern(
            source=[ORGANIZATIONS],
            detail_type=[SERVICE_EVENT, API_CALL],
            detail={**organizations, "eventName": ["AccountJoinedOrganization"]},
        ),
        "AccountMoved": events.EventPattern(
            source=[ORGANIZATIONS],
            detail_type=[API_CALL],
            detail={**organizations, "eventName": ["MoveAccount"], **api_call_succeeded},
        ),
        "ManagedAccountCreated": events.EventPattern(
            source=[CONTROL_TOWER],
            detail_type=[SERVICE_EVENT],
            detail={
                **control_tower,
                "eventName": ["CreateManagedAccount"],
                "serviceEventDetails": {"createManagedAccountStatus": {"state": SUCCEEDED}},
            },
        ),
        "ManagedAccountUpdated": events.EventPattern(
            source=[CONTROL_TOWER],
            detail_type=[SERVICE_EVENT],
            detail={
                **control_tower,
                "eventName": ["UpdateManagedAccount"],
                "serviceEventDetails": {"updateManagedAccountStatus": {"state": SUCCEEDED}},
            },
        ),
    }


def spec_layer_folder(settings: Mapping[str, SettingSpec[Any]]) -> Path:
    """Every setting's spec as a layer's content (``/opt/contact-spec.json``, each setting in its
    own property as the deploy-time resource carries it): no 4 KB environment limit, and a changed
    spec is a new layer version, so the functions always run the config of the last deploy."""
    text = specs_to_json(settings)
    folder = Path(tempfile.gettempdir()) / f"org-bootstrap-spec-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    folder.mkdir(exist_ok=True)
    (folder / SPEC_FILE_NAME).write_text(text, encoding="utf-8")
    return folder


class SettingsAutomation(Construct):
    """Applies every setting's spec to new and moved accounts as their events arrive, and checks
    every targeted account for drift on a schedule. ``settings``: the specs by setting name.

    Reusable outside the management account: give the ``management_account_id`` (a delegated
    administrator cannot change it and skips it), and an ``event_bus`` that receives the
    Organizations events when they are forwarded from the management account. Without one the rules
    sit on this stack's default bus, which must be in us-east-1, where the events arrive.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Mapping[str, SettingSpec[Any]],
        management_account_id: str,
        event_bus: events.IEventBus | None = None,
        drift_interval: Duration | None = None,
        report_only: bool = False,
        notification_email: str | None = None,
        state: SettingsState | None = None,
        notifications: tuple[kms.IKey, sns.ITopic] | None = None,
        deploy_job_pointer: str | None = None,
        metric_namespace: str = DEFAULT_NAMESPACE,
        concurrency: int = 8,
        partition: str = COMMERCIAL,
    ) -> None:
        super().__init__(scope, construct_id)
        self.partition = partition
        self.settings = list(settings)  # the names of the settings it keeps correct
        self.metric_namespace = metric_namespace
        if event_bus is None:
            self._require_events_region()
        self.state = state or SettingsState(self, "State")
        self.spec_layer = lambda_.LayerVersion(
            self,
            "Spec",
            code=lambda_.Code.from_asset(str(spec_layer_folder(settings))),
            compatible_architectures=[lambda_.Architecture.ARM_64],
            compatible_runtimes=[PYTHON_RUNTIME],
            description="The account settings' specs of the last deploy",
        )
        common = {
            "SPEC_FILE": SPEC_FILE,
            "MANAGEMENT_ACCOUNT_ID": management_account_id,
            "CALLER_ACCOUNT_ID": Aws.ACCOUNT_ID,
        }
        self._notifications(notification_email, notifications)
        # Where failures end, whichever part failed: events, deliveries and drift checks.
        self.dead_letter_queue = sqs.Queue(
            self,
            "FailedEvents",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self._account_event_delivery(
            event_bus=event_bus,
            environment=common,
            settings=settings,
            management_account_id=management_account_id,
            metric_namespace=metric_namespace,
            deploy_job_pointer=deploy_job_pointer,
        )
        self._drift_schedule(
            environment=common,
            settings=settings,
            management_account_id=management_account_id,
            drift_interval=drift_interval or Duration.days(1),
            report_only=report_only,
            metric_namespace=metric_namespace,
            concurrency=concurrency,
            deploy_job_pointer=deploy_job_pointer,
        )
        self._failure_alarms()

    def _notifications(self, notification_email: str | None, shared: tuple[kms.IKey, sns.ITopic] | None) -> None:
        """The encrypted SNS topic that drift reports and alarms go to, and its e-mail subscription:
        ``shared`` (the deploy-time settings' own topic, so that one subscription hears everything),
        or a topic of its own."""
        if shared is not None:
            self.topic_key, self.topic = shared
            return
        self.topic_key, self.topic = notification_topic(
            self,
            display_name="Account settings automation",
            key_description="Encrypts the account-settings automation topic",
            notification_email=notification_email,
        )

    def _account_event_delivery(
        self,
        *,
        event_bus: events.IEventBus | None,
        environment: dict[str, str],
        settings: Mapping[str, SettingSpec[Any]],
        management_account_id: str,
        metric_namespace: str,
        deploy_job_pointer: str | None,
    ) -> None:
        """New and moved accounts: the rules put their events on a queue, which a function drains.
        A record that fails for a reason no retry fixes is reported (metric, report in the job
        bucket, topic); the jobs' records there give the Region requests in flight it counts with."""
        self.queue = sqs.Queue(
            self,
            "AccountEvents",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # Lambda's guidance: six times the function timeout, so that retries never overlap.
            visibility_timeout=Duration.seconds(EVENT_HANDLER_TIMEOUT.to_seconds() * 6),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVE_COUNT),
        )
        self.rules: dict[str, events.Rule] = {}
        for rule_id, pattern in account_event_patterns().items():
            rule = events.Rule(
                self,
                rule_id,
                event_bus=event_bus,
                event_pattern=pattern,
                description=f"Account settings for accounts: {rule_id}",
            )
            # Events EventBridge cannot deliver to the queue go to the dead-letter queue too.
            rule.add_target(
                events_targets.SqsQueue(
                    self.queue,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=185,
                    max_event_age=Duration.hours(24),
                )
            )
            self.rules[rule_id] = rule
        self.account_events = RuntimeFunction(
            self,
            "AccountEventsHandler",
            handler="org_bootstrap.handlers.account_events.on_messages",
            description="Applies the account settings to accounts that are created, invited or moved",
            timeout=EVENT_HANDLER_TIMEOUT,
            environment={
                **environment,
                "SNAPSHOT_TABLE": self.state.table.table_name,
                "JOB_BUCKET": self.state.bucket.bucket_name,
                "TOPIC_ARN": self.topic.topic_arn,
                "METRIC_NAMESPACE": metric_namespace,
                **({"DEPLOY_JOB_POINTER": deploy_job_pointer} if deploy_job_pointer else {}),
            },
        )
        self.account_events.function.add_layers(self.spec_layer)
        self.account_events.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=10,
                report_batch_item_failures=True,
                # Two concurrent batches at most: together they stay within the per-account quotas.
                max_concurrency=2,
            )
        )
        role = self.account_events.role
        for statement in setting_statements(
            settings, write=True, management_account_id=management_account_id, partition=self.partition
        ):
            role.add_to_principal_policy(statement)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="DescribeOrganizationAccount",
                actions=["organizations:DescribeAccount"],
                resources=[f"arn:{Aws.PARTITION}:organizations::{management_account_id}:account/o-*/*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="ReadAccountParents", actions=["organizations:ListParents"], resources=["*"])
        )
        self.state.grant_snapshots(role)
        self.state.grant_jobs(role)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishEventFailureMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": metric_namespace}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="NotifyEventFailures", actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EncryptNotifications",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[self.topic_key.key_arn],
            )
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{logical_id_of(self.state.bucket)}.Arn>/{JOB_PREFIX}/*]",
            "Reports of failed events, and the jobs' records it reads: the objects under the app's own prefix.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:organizations::{management_account_id}:account/o-*/*]",
            "DescribeAccount on the accounts of the organization whose management account is given "
            "(the organization ID is unknown at synth). Read only.",
        )
        _acknowledge_member_accounts(role, management_account_id)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "organizations:ListParents and cloudwatch:PutMetricData have no resource type (IAM accepts only '*'); "
            "ListParents only reads, and PutMetricData is conditioned on cloudwatch:namespace.",
        )

    def _drift_schedule(
        self,
        *,
        environment: dict[str, str],
        settings: Mapping[str, SettingSpec[Any]],
        management_account_id: str,
        drift_interval: Duration,
        report_only: bool,
        metric_namespace: str,
        concurrency: int,
        deploy_job_pointer: str | None,
    ) -> None:
        """Drift: a schedule runs the check of every targeted account, which fixes or only reports.
        ``deploy_job_pointer``: the logical ID of the deploy-time settings resource sharing ``state``,
        whose finished job's failed releases (deletes, restores) a fixing check takes on."""
        drift_environment = {
            **environment,
            "JOB_BUCKET": self.state.bucket.bucket_name,
            "TOPIC_ARN": self.topic.topic_arn,
            "METRIC_NAMESPACE": metric_namespace,
            "REPORT_ONLY": "true" if report_only else "false",
            "CONCURRENCY": str(concurrency),
        }
        if not report_only:  # the snapshots record what a fix replaces; a report changes nothing
            drift_environment["SNAPSHOT_TABLE"] = self.state.table.table_name
            if deploy_job_pointer:
                drift_environment["DEPLOY_JOB_POINTER"] = deploy_job_pointer
        self.drift = RuntimeFunction(
            self,
            "DriftCheck",
            handler="org_bootstrap.handlers.drift.on_schedule",
            description="Reports account settings that drifted from the config"
            + ("" if report_only else " and fixes them"),
            timeout=Duration.minutes(15),
            environment=drift_environment,
        )
        self.drift.function.add_layers(self.spec_layer)
        role = self.drift.role
        for statement in setting_statements(
            settings, write=not report_only, management_account_id=management_account_id, partition=self.partition
        ):
            role.add_to_principal_policy(statement)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListOrganization",
                actions=[
                    "organizations:ListRoots",
                    "organizations:ListAccountsForParent",
                    "organizations:ListOrganizationalUnitsForParent",
                ],
                resources=["*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishDriftMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": metric_namespace}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(sid="NotifyDrift", actions=["sns:Publish"], resources=[self.topic.topic_arn])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="EncryptNotifications",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[self.topic_key.key_arn],
            )
        )
        self.state.grant_jobs(role)
        if not report_only:
            self.state.grant_snapshots(role)
        self.workflow = JobWorkflow(
            self,
            "DriftContinuation",
            function=self.drift,
            name_suffix="DriftChecks",
            topic=self.topic,
            description="Continues account-settings drift checks too big for one invocation",
        )
        # A scheduled check that fails even after Lambda's retries is kept.
        self.drift.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Organizations' list actions and cloudwatch:PutMetricData have no resource type (IAM accepts only '*'); "
            "the lists only read, and PutMetricData is conditioned on cloudwatch:namespace.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::<{logical_id_of(self.state.bucket)}.Arn>/{JOB_PREFIX}/*]",
            "Drift jobs and reports: the objects under the app's own prefix of its own bucket.",
        )
        _acknowledge_member_accounts(role, management_account_id)
        # The schedule's own role, inside this construct: the one the target would make is a stack singleton.
        schedule_role = iam.Role(
            self,
            "DriftScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}
            ),
            description="EventBridge Scheduler starts the account-settings drift check",
        )
        acknowledge(
            schedule_role,
            f"AwsSolutions-IAM5[Resource::<{self.drift.logical_id}.Arn>:*]",
            "The schedule invokes the drift-check function; the scheduler target grants any version ('<arn>:*') of it.",
        )
        self.schedule = scheduler.Schedule(
            self,
            "DriftSchedule",
            schedule=scheduler.ScheduleExpression.rate(drift_interval),
            description="Checks every targeted account's settings against the config",
            target=scheduler_targets.LambdaInvoke(
                self.drift.function,
                role=schedule_role,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=3,
                max_event_age=Duration.hours(1),
                input=scheduler.ScheduleTargetInput.from_object(
                    {"Source": "drift-schedule", "ScheduledTime": scheduler.ContextAttribute.scheduled_time}
                ),
            ),
        )

    def _failure_alarms(self) -> None:
        """Notifications of what no report carries: failures after every retry, and events left waiting."""
        self.failed_events_alarm = cloudwatch.Alarm(
            self,
            "FailedEventsAlarm",
            alarm_description="Account events or drift checks failed after every retry: see the dead-letter queue",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.stuck_events_alarm = cloudwatch.Alarm(
            self,
            "StuckEventsAlarm",
            alarm_description="An account event has waited over an hour: is the handler or its trigger broken?",
            metric=self.queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(5), statistic="Maximum"),
            threshold=Duration.hours(1).to_seconds(),
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (self.failed_events_alarm, self.stuck_events_alarm):
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))

    def _require_events_region(self) -> None:
        """The rules must sit where the events arrive; a region known at synth is checked now."""
        region = Stack.of(self).region
        message = (
            f"SettingsAutomation: Organizations and Control Tower account events arrive on the default event "
            f"bus in {EVENTS_REGION} only; deploy this stack to {EVENTS_REGION} or pass the event_bus that "
            "receives them"
        )
        if not Token.is_unresolved(region):
            if region != EVENTS_REGION:
                raise ValueError(f"{message} (this stack is in {region})")
            return
        CfnRule(
            self,
            "EventsRegion",
            assertions=[
                CfnRuleAssertion(assert_=Fn.condition_equals(Aws.REGION, EVENTS_REGION), assert_description=message)
            ],
        )


def _acknowledge_member_accounts(role: iam.IRole, management_account_id: str) -> None:
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::{member_accounts_finding(management_account_id)}]",
        "Member accounts of the organization managed from this account (its ID is unknown at synth), "
        "limited by each setting's condition keys (account:AlternateContactTypes, account:TargetRegion).",
    )
