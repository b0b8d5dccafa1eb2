"""Organizations account events, forwarded from the management account to a delegated administrator.

Organizations and Control Tower events arrive only on the management account's default bus in
us-east-1. With the contacts automation running in the delegated administrator account, the
management account forwards the same events (the automation's own patterns) to that account's
default bus, whose resource policy lets the management account put them.
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cross-account.html
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from constructs.nag_findings import acknowledge
from constructs.settings_automation import account_event_patterns

DEFAULT_BUS = "default"


def default_bus_arn(account_id: str, region: str) -> str:
    return f"arn:{Aws.PARTITION}:events:{region}:{account_id}:event-bus/{DEFAULT_BUS}"


class OrganizationEventForwarding(Construct):
    """In the management account: one rule per account-event pattern, targeting the receiving
    account's default bus. Events EventBridge cannot deliver land in a dead-letter queue with an alarm."""

    def __init__(self, scope: Construct, construct_id: str, *, target_account_id: str, target_region: str) -> None:
        super().__init__(scope, construct_id)
        self.target_bus = events.EventBus.from_event_bus_arn(
            self, "TargetBus", default_bus_arn(target_account_id, target_region)
        )
        self.dead_letter_queue = sqs.Queue(
            self,
            "Undelivered",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.rules: dict[str, events.Rule] = {}
        for rule_id, pattern in account_event_patterns().items():
            rule = events.Rule(
                self,
                rule_id,
                event_pattern=pattern,
                description=f"Forwards {rule_id} events to the delegated administrator {target_account_id}",
            )
            rule.add_target(events_targets.EventBus(self.target_bus, dead_letter_queue=self.dead_letter_queue))
            self.rules[rule_id] = rule
        self.alarm = cloudwatch.Alarm(
            self,
            "UndeliveredAlarm",
            alarm_description="Organizations account events could not be forwarded to the delegated administrator",
            metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the forwarding rules' targets "
            "(cdk-nag recognizes only queue-to-queue dead-letter queues).",
        )


class StatementBusPolicy(events.CfnEventBusPolicy):
    """An event-bus policy given as one whole ``statement``, as AWS recommends.

    Its single-field properties (``principal``, ``action``, ``condition``) are deprecated and stay
    unset. cdk-nag's AwsSolutions-EVB1 reads ``principal`` of every bus policy, and jsii warns on
    each read of a deprecated property (or fails the synth with ``JSII_DEPRECATED=fail``); answered
    here, the read never reaches the deprecated getter. The template is unchanged: it is rendered
    from the properties given, and EVB1 still checks the statement's principal.
    """

    @property  # type: ignore[misc]
    def principal(self) -> None:
        return None


class OrganizationEventReceiver(Construct):
    """In the receiving account: its default bus accepts events put by the management account."""

    def __init__(self, scope: Construct, construct_id: str, *, source_account_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus.from_event_bus_name(self, "DefaultBus", DEFAULT_BUS)
        self.policy = StatementBusPolicy(
            self,
            "FromManagementAccount",
            event_bus_name=DEFAULT_BUS,
            statement_id=f"OrgBootstrapFrom{source_account_id}",
            statement={
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{Aws.PARTITION}:iam::{source_account_id}:root"},
                "Action": "events:PutEvents",
                "Resource": default_bus_arn(Aws.ACCOUNT_ID, Aws.REGION),
            },
        )
