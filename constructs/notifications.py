"""An encrypted SNS topic that CloudWatch alarms can publish to: the one way the app notifies people."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns

from constructs import Construct


def notification_topic(
    scope: Construct,
    *,
    display_name: str,
    key_description: str,
    notification_email: str | None = None,
    key_id: str = "TopicKey",
    topic_id: str = "Notifications",
) -> tuple[kms.Key, sns.Topic]:
    """A customer-managed key and a topic encrypted with it, both open to this account's alarms."""
    key = kms.Key(
        scope,
        key_id,
        description=key_description,
        enable_key_rotation=True,
        # It protects messages in flight only, none at rest: it goes with the topic.
        removal_policy=RemovalPolicy.DESTROY,
        pending_window=Duration.days(7),
    )
    # CloudWatch alarms publish to an encrypted topic only when the key and the topic let them
    # (the AWS managed key aws/sns does not): https://repost.aws/knowledge-center/cloudwatch-configure-alarm-sns
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=["*"],
        )
    )
    topic = sns.Topic(scope, topic_id, display_name=display_name, master_key=key, enforce_ssl=True)
    alarms_of_this_account = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:*"
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={"ArnLike": {"aws:SourceArn": alarms_of_this_account}},
        )
    )
    if notification_email:
        # Named by its role: EmailSubscription would name the construct (so the logical ID) after the address.
        sns.Subscription(
            topic,
            "NotificationEmail",
            topic=topic,
            protocol=sns.SubscriptionProtocol.EMAIL,
            endpoint=notification_email,
        )
    return key, topic
