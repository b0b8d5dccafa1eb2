"""The deployment pipeline: CDK Pipelines synthesizes the app and deploys it account by account.

Source -> Build (``cdk synth``) -> UpdatePipeline (self-mutation) -> Assets -> Management
(with the manual approval first) -> DelegatedAdministrator (when that account has stacks).

Every deploy action runs as the target account's CDK bootstrap deploy role
(``cdk-hnb659fds-deploy-role-<account>-<region>``), which the pipeline role may assume and which
hands the template to CloudFormation with that account's execution role
(``cdk-hnb659fds-cfn-exec-role-<account>-<region>``). The artifact bucket is encrypted with a KMS
key the target accounts may use (``cross_account_keys``). docs/pipeline.md lists every role.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack, Token, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as codepipeline_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns

from constructs import Construct
from constructs.nag_findings import acknowledge
from constructs.org_provider import logical_id_of
from stacks.config import BootstrapConfig
from stacks.pipeline_config import CodeCommitSource, CodeConnectionsSource, PipelineConfig, S3Source
from stacks.stages import AccountStage, pipeline_stages

ROOT = Path(__file__).resolve().parent.parent
PIPELINE_STACK_NAME = "OrgBootstrapPipeline"
APPROVAL_STEP = "ApproveOrganizationChanges"
# Ubuntu 24.04 with Python 3.10-3.14 and Node.js 22/24:
# https://github.com/aws/aws-codebuild-docker-images/blob/master/ubuntu/standard/8.0/runtimes.yml
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_8_0
RUNTIME_VERSIONS = {"python": "3.13", "nodejs": "24"}
ACCESS_LOG_RETENTION = Duration.days(365)
ACCESS_LOG_PREFIX = "artifacts/"


def pinned_npm_version(package_name: str) -> str:
    """The version package.json pins for one of the CDK's command-line tools."""
    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    return str(package["devDependencies"][package_name])


def pinned_cdk_cli_version() -> str:
    """The CDK CLI version package.json pins: the synth runs it (npm ci), self-mutation installs it."""
    return pinned_npm_version("aws-cdk")


def pinned_cdk_assets_version() -> str:
    """The cdk-assets version package.json pins: the asset project installs it (CDK Pipelines' default is latest)."""
    return pinned_npm_version("cdk-assets")


def synth_install_commands() -> list[str]:
    """Pinned Python requirements into .venv (cdk.json runs .venv/bin/python), the pinned CLI from package-lock."""
    return [
        "python -m venv .venv",
        ".venv/bin/python -m pip install --disable-pip-version-check --requirement requirements.txt",
        "npm ci --no-audit --no-fund",
    ]


def synth_commands(*, config_file: str) -> list[str]:
    """``cdk synth`` with the same config file the pipeline itself was synthesized from."""
    return [f"npx --no-install cdk synth --no-notices -c config={shlex.quote(config_file)}"]


class PipelineStack(Stack):
    """A CDK Pipelines pipeline that deploys the app's stacks to the organization, account by account."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: BootstrapConfig,
        pipeline_config: PipelineConfig,
        config_file: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.source = self._source(pipeline_config)
        self.synth = pipelines.ShellStep(
            "Synth",
            input=self.source,
            install_commands=synth_install_commands(),
            commands=synth_commands(config_file=config_file),
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline_config.name,
            synth=self.synth,
            # A KMS-encrypted artifact bucket whose key the target accounts' deploy roles may use.
            cross_account_keys=True,
            enable_key_rotation=True,
            pipeline_type=codepipeline.PipelineType.V2,
            self_mutation=pipeline_config.self_mutation,
            cli_version=pinned_cdk_cli_version(),
            cdk_assets_cli_version=pinned_cdk_assets_version(),
            # One asset project instead of one per asset: fewer resources, same publishing roles.
            publish_assets_in_parallel=False,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE),
                partial_build_spec=codebuild.BuildSpec.from_object(
                    {"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}}
                ),
            ),
        )
        self.stages: list[AccountStage] = pipeline_stages(self, config=config)
        for index, stage in enumerate(self.stages):
            first = index == 0
            pre = [self._approval(pipeline_config)] if first and pipeline_config.manual_approval else []
            self.pipeline.add_stage(stage, pre=pre)
        self.pipeline.build_pipeline()
        self.access_logs: list[s3.Bucket] = self._log_artifact_access()
        self._acknowledge_generated_wildcards()

    def _source(self, pipeline_config: PipelineConfig) -> pipelines.CodePipelineSource:
        source = pipeline_config.source
        if isinstance(source, CodeConnectionsSource):
            return pipelines.CodePipelineSource.connection(
                source.repository, source.branch, connection_arn=source.connection_arn
            )
        if isinstance(source, CodeCommitSource):
            repository = codecommit.Repository.from_repository_name(self, "SourceRepository", source.repository)
            return pipelines.CodePipelineSource.code_commit(repository, source.branch)
        assert isinstance(source, S3Source)
        bucket = s3.Bucket.from_bucket_name(self, "SourceBucket", source.bucket)
        trigger = {"events": codepipeline_actions.S3Trigger.EVENTS, "poll": codepipeline_actions.S3Trigger.POLL}
        return pipelines.CodePipelineSource.s3(bucket, source.object_key, trigger=trigger[source.trigger])

    def _approval(self, pipeline_config: PipelineConfig) -> pipelines.ManualApprovalStep:
        topic = (
            sns.Topic.from_topic_arn(self, "ApprovalTopic", pipeline_config.approval_topic_arn)
            if pipeline_config.approval_topic_arn
            else None
        )
        return pipelines.ManualApprovalStep(
            APPROVAL_STEP,
            comment=(
                "Approve to deploy this commit to the organization: trusted access, the delegated administrator "
                "and the alternate contacts of its accounts."
            ),
            notification_topic=topic,
        )

    def _log_artifact_access(self) -> list[s3.Bucket]:
        """Server access logs for the artifact buckets, which CDK Pipelines creates without them.

        The artifact bucket is in this stack; with stages in another region, CodePipeline also keeps a
        replication bucket in that region, in a support stack CDK adds to the app.
        """
        pipeline = self.pipeline.pipeline
        logged = [access_logs_for(pipeline.artifact_bucket, scope=self, construct_id="ArtifactAccessLogs")]
        for support in self._replication_regions().values():
            logged.append(
                access_logs_for(support.replication_bucket, scope=support.stack, construct_id="ReplicationAccessLogs")
            )
        return logged

    def _replication_regions(self) -> dict[str, codepipeline.CrossRegionSupport]:
        """The other regions' support stacks and replication buckets (the pipeline's own region maps to itself)."""
        support = self.pipeline.pipeline.cross_region_support
        return {region: each for region, each in support.items() if each.stack is not self}

    def _acknowledge_generated_wildcards(self) -> None:
        """The wildcards CDK Pipelines writes into its own roles, each named exactly with its reason."""
        bucket = logical_id_of(self.pipeline.pipeline.artifact_bucket)
        for finding in (
            "Action::s3:GetObject*",
            "Action::s3:GetBucket*",
            "Action::s3:List*",
            "Action::s3:DeleteObject*",
            "Action::s3:Abort*",
            f"Resource::<{bucket}.Arn>/*",
        ):
            acknowledge(
                self.pipeline,
                f"AwsSolutions-IAM5[{finding}]",
                "CDK's grant_read/grant_read_write on the pipeline's own artifact bucket: the wildcards cover "
                "the object-level actions of that one bucket and its objects, nothing else.",
            )
        for finding in ("Action::kms:ReEncrypt*", "Action::kms:GenerateDataKey*"):
            acknowledge(
                self.pipeline,
                f"AwsSolutions-IAM5[{finding}]",
                "CDK's key grant for the artifact bucket's KMS key: the statement's resource is that one key.",
            )
        pipeline = self.pipeline.pipeline
        # The ARNs CDK writes itself carry the partition as a literal where the stack's region is known
        # (@aws-cdk/core:enablePartitionLiterals), and cdk-nag names them as written.
        partition = "<AWS::Partition>" if Token.is_unresolved(self.partition) else self.partition
        replication_regions = self._replication_regions()
        for region, support in replication_regions.items():
            # The replication bucket has a generated physical name, which this stack sees as a literal.
            replication = self.resolve(support.replication_bucket.bucket_name)
            assert isinstance(replication, str), replication
            acknowledge(
                pipeline.role,
                f"AwsSolutions-IAM5[Resource::arn:{partition}:s3:::{replication}/*]",
                f"CDK's grant_read_write on CodePipeline's replication bucket for {region}: the objects of that "
                "one bucket.",
            )
        if replication_regions:
            acknowledge(
                pipeline.role,
                "AwsSolutions-IAM5[Resource::*]",
                "kms:Decrypt/DescribeKey/Encrypt/ReEncrypt*/GenerateDataKey* for the replication buckets' keys in "
                f"{', '.join(sorted(replication_regions))}: CodePipeline references each by an alias in "
                "another region's support stack, so CDK writes the grant on '*'. Only codepipeline.amazonaws.com "
                "assumes this role; keep the pipeline in the stacks' region to avoid it.",
            )
        prefix = f"arn:{partition}:{{service}}:{self.region}:{self.account}"
        for project in self.pipeline.node.find_all():
            if isinstance(project, codebuild.CfnProject):
                name = logical_id_of(project)
                logs = prefix.format(service="logs")
                reports = prefix.format(service="codebuild")
                acknowledge(
                    self.pipeline,
                    f"AwsSolutions-IAM5[Resource::{logs}:log-group:/aws/codebuild/<{name}>:*]",
                    "The log streams of this CodeBuild project's own log group.",
                )
                acknowledge(
                    self.pipeline,
                    f"AwsSolutions-IAM5[Resource::{reports}:report-group/<{name}>-*]",
                    "The test report groups of this CodeBuild project, which CodeBuild names after it.",
                )
        assets = self.pipeline.node.try_find_child("Assets")
        file_role = assets.node.try_find_child("FileRole") if assets is not None else None
        if file_role is not None:
            acknowledge(
                file_role,
                f"AwsSolutions-IAM5[Resource::{prefix.format(service='logs')}:log-group:/aws/codebuild/*]",
                "CDK Pipelines shares one asset-publishing role between its asset projects, so it may write to "
                "the log groups of CodeBuild projects in this account and region.",
            )
            acknowledge(
                file_role,
                f"AwsSolutions-IAM5[Resource::{prefix.format(service='codebuild')}:report-group/*]",
                "CDK Pipelines shares one asset-publishing role between its asset projects (their report groups).",
            )
            acknowledge(
                file_role,
                "AwsSolutions-IAM5[Resource::*]",
                "CDK Pipelines' asset role keeps codebuild:StartBuild/StopBuild/BatchGetBuilds on '*' from when it "
                "was also the pipeline's action role; only codebuild.amazonaws.com may assume it now "
                "(@aws-cdk/pipelines:reduceAssetRoleTrustScope), and the asset build only runs cdk-assets.",
            )
        update = self.pipeline.node.try_find_child("UpdatePipeline")
        self_mutation = update.node.try_find_child("SelfMutation") if update is not None else None
        if self_mutation is not None:
            acknowledge(
                self_mutation,
                f"AwsSolutions-IAM5[Resource::arn:*:iam::{self.account}:role/*]",
                "Self-mutation assumes the CDK bootstrap roles of the pipeline account only, conditioned on their "
                "aws-cdk:bootstrap-role tag (deploy, file-publishing, image-publishing).",
            )
            acknowledge(
                self_mutation,
                "AwsSolutions-IAM5[Resource::*]",
                "Self-mutation's cdk deploy reads stack status (cloudformation:DescribeStacks) and lists the "
                "bootstrap bucket (s3:ListBucket), neither of which has a narrower resource the CLI can name first.",
            )


def access_logs_for(bucket: s3.IBucket, *, scope: Construct, construct_id: str) -> s3.Bucket:
    """A bucket in ``scope`` that receives ``bucket``'s server access logs (S3 delivers them with SSE-S3 only)."""
    stack = Stack.of(scope)
    access_logs = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        lifecycle_rules=[s3.LifecycleRule(expiration=ACCESS_LOG_RETENTION)],
    )
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html#grant-log-delivery-permissions-general
    access_logs.add_to_resource_policy(
        iam.PolicyStatement(
            sid="S3ServerAccessLogDelivery",
            principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[access_logs.arn_for_objects(f"{ACCESS_LOG_PREFIX}*")],
            conditions={
                "ArnLike": {"aws:SourceArn": bucket.bucket_arn},
                "StringEquals": {"aws:SourceAccount": stack.account},
            },
        )
    )
    logged = bucket.node.default_child
    assert isinstance(logged, s3.CfnBucket), bucket.node.path
    logged.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
        destination_bucket_name=access_logs.bucket_name, log_file_prefix=ACCESS_LOG_PREFIX
    )
    acknowledge(
        access_logs,
        "AwsSolutions-S1",
        "This bucket receives another bucket's server access logs; logging it in turn would only loop.",
    )
    return access_logs
