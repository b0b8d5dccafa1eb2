"""The account settings of the organization's accounts (every setting in one custom resource), as a construct."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from constructs import Construct
from constructs.job_workflow import JobWorkflow
from constructs.nag_findings import acknowledge
from constructs.notifications import notification_topic
from constructs.org_provider import ANSWER_MARGIN, MAX_SERVICE_TIMEOUT, OrgProvider, RuntimeFunction, logical_id_of
from constructs.setting_permissions import setting_statements
from org_bootstrap.aws.partitions import COMMERCIAL
from org_bootstrap.engine.registry import spec_properties
from org_bootstrap.engine.stores import JOB_PREFIX
from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.handlers.account_settings import RECONCILE_PROPERTY
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec

RESOURCE_TYPE = "Custom::AlternateContacts"
# ``cdk deploy -c reconcile=<a new value>``: an Update even when the config is unchanged (CloudFormation
# sends nothing for an unchanged resource), so every targeted account is compared and put right.
RECONCILE_CONTEXT = "reconcile"
# CloudFormation waits at most an hour for a custom resource; work beyond this continues in the
# job's workflow (see org_bootstrap.handlers.account_settings).
DEFAULT_DEPLOY_WAIT = Duration.minutes(45)
# The Provider framework gives up (and answers FAILED) this long after the request: still
# ANSWER_MARGIN before CloudFormation's limit.
TOTAL_TIMEOUT = MAX_SERVICE_TIMEOUT.minus(ANSWER_MARGIN)
# What the last batch may take past the deploy wait: accounts in flight finishing, the report, the answer.
IN_FLIGHT_ALLOWANCE = Duration.minutes(5)
ORGANIZATIONS_READ_ACTIONS = [
    "organizations:DescribeOrganization",
    "organizations:ListRoots",
    "organizations:ListAccountsForParent",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListTagsForResource",  # the accounts' tags, for tag targets
]


def member_accounts_finding(management_account_id: str | None) -> str:
    """How cdk-nag prints the member-accounts ARN of ``setting_permissions.account_resources``."""
    management = management_account_id or "<AWS::AccountId>"
    return f"arn:<AWS::Partition>:account::{management}:account/o-*/*"


class SettingsState(Construct):
    """Where contact jobs keep their progress and reports (S3) and the pre-change snapshots that
    ``removal = "restore"`` puts back (DynamoDB). Both are retained: they outlive the stack."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Jobs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(prefix=f"{JOB_PREFIX}/jobs/", expiration=Duration.days(30)),
                s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30)),
            ],
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "Only this app's handlers read and write job state and reports; CloudTrail records the "
            "management account's API calls. A server-access-log bucket would add cost without an audit need.",
        )
        self.table = dynamodb.TableV2(
            self,
            "Snapshots",
            partition_key=dynamodb.Attribute(name="AccountId", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="ContactType", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )

    def grant_jobs(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="JobStateAndReports",
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{JOB_PREFIX}/*")],
            )
        )

    def grant_snapshots(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="SettingSnapshots",
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
                resources=[self.table.table_arn],
            )
        )


class AccountSettings(Construct):
    """The account settings of the accounts each spec targets: the BILLING, OPERATIONS and SECURITY
    contacts (``spec``) and any other account setting (``settings``, by setting name: the primary
    contact, the opt-in Regions), all in one job of one asynchronous custom resource (Provider
    framework is-complete polling, with a Step Functions workflow carrying a job past
    ``deploy_wait``, which alarms to ``self.topic`` when it fails). Each setting's spec is its own
    resource property; the is-complete role gets each setting's actions only. Depend on trusted
    access for ``account.amazonaws.com``: ``contacts.node.add_dependency(trusted_access)``.

    The context value ``reconcile`` (``cdk deploy -c reconcile=$(date +%s)``), when set, is the
    resource's ``Reconcile`` property: a new value makes an Update of an unchanged config, which
    compares every targeted account and puts right what drifted or failed before.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: ContactSpec | None = None,
        settings: Mapping[str, SettingSpec[Any]] | None = None,
        partition: str = COMMERCIAL,
        management_account_id: str | None = None,
        deploy_wait: Duration = DEFAULT_DEPLOY_WAIT,
        concurrency: int = 8,
        query_interval: Duration | None = None,
        notification_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        query_interval = query_interval or Duration.seconds(30)
        latest = TOTAL_TIMEOUT.to_seconds() - query_interval.to_seconds() - IN_FLIGHT_ALLOWANCE.to_seconds()
        if deploy_wait.to_seconds() > latest:
            raise ValueError(
                f"AccountSettings: deploy_wait is {deploy_wait.to_seconds():.0f} s; at most {latest:.0f} s, so that "
                f"CloudFormation has its answer {ANSWER_MARGIN.to_minutes():.0f} minutes before its one-hour limit"
            )
        specs = {**(settings or {}), **({"alternate_contacts": spec} if spec is not None else {})}
        assert specs, "AccountSettings needs at least one setting's spec"
        self.specs = specs
        self.state = SettingsState(self, "State")
        environment = {
            "JOB_BUCKET": self.state.bucket.bucket_name,
            "SNAPSHOT_TABLE": self.state.table.table_name,
            "DEPLOY_WAIT_SECONDS": str(int(deploy_wait.to_seconds())),
            # The account the functions run in: its own contacts are set without AccountId.
            "CALLER_ACCOUNT_ID": Aws.ACCOUNT_ID,
            "CONCURRENCY": str(concurrency),
        }
        self.on_event = RuntimeFunction(
            self,
            "OnEvent",
            handler="org_bootstrap.handlers.account_settings.on_event",
            description="Validates the account settings' specs and plans the work",
            timeout=Duration.minutes(15),
            environment=environment,
        )
        self.is_complete = RuntimeFunction(
            self,
            "IsComplete",
            handler="org_bootstrap.handlers.account_settings.is_complete",
            description="Applies the account settings in batches at the Account Management quotas",
            timeout=Duration.minutes(15),
            environment=environment,
        )
        for function in (self.on_event, self.is_complete):
            function.role.add_to_policy(
                iam.PolicyStatement(sid="ReadOrganization", actions=ORGANIZATIONS_READ_ACTIONS, resources=["*"])
            )
            self.state.grant_jobs(function.role)
            acknowledge(
                function.role,
                "AwsSolutions-IAM5[Resource::*]",
                "Organizations' list and describe actions have no resource type; IAM accepts only '*'. Read only.",
            )
            acknowledge(
                function.role,
                f"AwsSolutions-IAM5[Resource::<{logical_id_of(self.state.bucket)}.Arn>/{JOB_PREFIX}/*]",
                "Job state and reports: the objects under the app's own prefix of its own bucket.",
            )
        writes = setting_statements(specs, write=True, management_account_id=management_account_id, partition=partition)
        for statement in writes:
            self.is_complete.role.add_to_policy(statement)
        acknowledge(
            self.is_complete.role,
            f"AwsSolutions-IAM5[Resource::{member_accounts_finding(management_account_id)}]",
            "Member accounts of the organization whose management account is given (the organization ID is "
            "unknown at synth), limited by each setting's condition keys (account:AlternateContactTypes, "
            "account:TargetRegion).",
        )
        self.state.grant_snapshots(self.is_complete.role)
        self.topic_key, self.topic = notification_topic(
            self,
            display_name="Account settings",
            key_description="Encrypts the account settings' notifications: job alarms, drift reports",
            notification_email=notification_email,
        )
        self.workflow = JobWorkflow(
            self,
            "Continuation",
            function=self.is_complete,
            name_suffix="ContactsJobs",  # the state machine's name: a physical name, kept
            topic=self.topic,
            description="Continues account-settings deploy jobs past the deploy wait",
        )
        provider = OrgProvider(
            self,
            "Provider",
            on_event=self.on_event,
            is_complete=self.is_complete,
            query_interval=query_interval,
            total_timeout=TOTAL_TIMEOUT,
        )
        reconcile = self.node.try_get_context(RECONCILE_CONTEXT)
        self.resource = provider.custom_resource(
            self,
            "Resource",
            resource_type=RESOURCE_TYPE,
            properties={**spec_properties(specs), **({RECONCILE_PROPERTY: str(reconcile)} if reconcile else {})},
        )
        self.node.default_child = self.resource
        # The handler names its continuation workflow by name (no reference, which would be a
        # cycle): without this, a stack's Delete may delete the workflow first, and a Delete of the
        # resource that needs a continuation fails (StateMachineDoesNotExist). Created before, deleted after.
        self.resource.node.add_dependency(self.workflow.state_machine)
