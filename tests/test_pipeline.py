"""The deployment pipeline: its config, stages, steps, roles, cdk-nag and cfn-lint.

Three pipelines are synthesized once each (jsii synth costs seconds):
- ``connection``: a CodeConnections source, the pipeline in the management account, manual approval
  with a notification topic, and the delegated-administrator mode (a stage for each account);
- ``codecommit``: a CodeCommit source, no manual approval, no self-mutation, contacts managed from
  the management account (a delegated administrator is registered, but no stack lands there);
- ``s3``: an S3 source, the pipeline in its own account and another region (CodePipeline's
  cross-region support stack), the contacts and their automation in the management account.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from aws_cdk.cx_api import CloudAssembly
from cfnlint.api import ManualArgs, lint_file

from org_bootstrap.validation import InvalidInputError
from stacks.app_builder import build, build_app, build_pipeline, repository_path
from stacks.config import BootstrapConfig, ConfigError
from stacks.pipeline import (
    APPROVAL_STEP,
    PIPELINE_STACK_NAME,
    RUNTIME_VERSIONS,
    PipelineStack,
    pinned_cdk_assets_version,
    pinned_cdk_cli_version,
)
from stacks.pipeline_config import (
    CodeCommitSource,
    CodeConnectionsSource,
    PipelineConfig,
    S3Source,
)
from stacks.stages import DELEGATED_ADMINISTRATOR_STACK_NAME, MANAGEMENT_STACK_NAME

ROOT = Path(__file__).resolve().parent.parent
MANAGEMENT = "111111111111"
DELEGATED = "222222222222"
TOOLING = "333333333333"
REGION = "us-east-1"
CONNECTION_ARN = f"arn:aws:codeconnections:{REGION}:{MANAGEMENT}:connection/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{MANAGEMENT}:org-bootstrap-approvals"
CONFIG = BootstrapConfig(MANAGEMENT, REGION, DELEGATED)
SECURITY_CONTACT = {
    "Name": "Security Operations Center",
    "Title": "Security",
    "EmailAddress": "aws-security@example.com",
    "PhoneNumber": "+1 206 555 0102",
}
# The contacts and their automation, in the management account (the default) ...
MANAGEMENT_MODE = BootstrapConfig.from_mapping(
    {
        "management_account_id": MANAGEMENT,
        "region": REGION,
        "delegated_administrator_account_id": DELEGATED,
        "alternate_contacts": {"contacts": {"SECURITY": SECURITY_CONTACT}},
        "automation": {},
    }
)
# ... or the member accounts' in the delegated administrator account.
DELEGATED_ADMINISTRATOR_MODE = BootstrapConfig.from_mapping(
    {
        "management_account_id": MANAGEMENT,
        "region": REGION,
        "delegated_administrator_account_id": DELEGATED,
        "settings_deployed_in": "delegated_administrator",
        "alternate_contacts": {"contacts": {"SECURITY": SECURITY_CONTACT}},
        "automation": {},
    }
)


@dataclass
class Synthesized:
    app: App
    pipeline: PipelineStack
    assembly: CloudAssembly
    config: BootstrapConfig

    @property
    def template(self) -> Template:
        return Template.from_stack(self.pipeline)

    @property
    def stages(self) -> list[dict[str, Any]]:
        (pipeline,) = self.template.find_resources("AWS::CodePipeline::Pipeline").values()
        return list(pipeline["Properties"]["Stages"])

    def stage(self, name: str) -> dict[str, Any]:
        (stage,) = [stage for stage in self.stages if stage["Name"] == name]
        return stage


def synthesize(config: BootstrapConfig, pipeline_config: PipelineConfig) -> Synthesized:
    """The app as app.py builds it with a [pipeline] section; cdk-nag fails the synth on any finding."""
    with_pipeline = dataclasses.replace(config, pipeline=pipeline_config)
    app = build(with_pipeline, config_file=ROOT / "config" / "example.toml")
    (pipeline,) = [child for child in app.node.children if isinstance(child, PipelineStack)]
    return Synthesized(app, pipeline, app.synth(), config)


def stack_artifacts(assembly: CloudAssembly) -> Iterator[tuple[CloudAssembly, Any]]:
    """Every stack of an assembly and of the stages' nested assemblies, with the assembly that holds it."""
    for stack in assembly.stacks:
        yield assembly, stack
    for nested in assembly.nested_assemblies:
        yield from stack_artifacts(nested.nested_assembly)


@pytest.fixture(scope="module")
def connection() -> Synthesized:
    pipeline_config = PipelineConfig(
        source=CodeConnectionsSource(connection_arn=CONNECTION_ARN, repository="my-org/org-bootstrap", branch="main"),
        approval_topic_arn=TOPIC_ARN,
    )
    return synthesize(DELEGATED_ADMINISTRATOR_MODE, pipeline_config)


@pytest.fixture(scope="module")
def codecommit() -> Synthesized:
    pipeline_config = PipelineConfig(
        source=CodeCommitSource(repository="org-bootstrap", branch="release"),
        name="OrgBootstrapRelease",
        manual_approval=False,
        self_mutation=False,
    )
    return synthesize(CONFIG, pipeline_config)


@pytest.fixture(scope="module")
def s3() -> Synthesized:
    pipeline_config = PipelineConfig(
        source=S3Source(bucket="org-bootstrap-source", object_key="org-bootstrap/main.zip"),
        account_id=TOOLING,
        region="eu-west-1",
    )
    return synthesize(MANAGEMENT_MODE, pipeline_config)


def join(value: Any) -> str:
    """A CloudFormation string as it reads in the aws partition ({"Fn::Join": ["", ["arn:", Partition, ...]]})."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return {"AWS::Partition": "aws"}.get(value["Ref"], f"<{value['Ref']}>")
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if "Fn::Sub" in value:
        return str(value["Fn::Sub"]).replace("${AWS::Partition}", "aws")
    delimiter, parts = value["Fn::Join"]
    return str(delimiter).join(join(part) for part in parts)


def deploy_role(account: str) -> str:
    return f"arn:aws:iam::{account}:role/cdk-hnb659fds-deploy-role-{account}-{REGION}"


def statements(template: Template, role_logical_id_prefix: str) -> list[dict[str, Any]]:
    found = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = [role["Ref"] for role in policy["Properties"]["Roles"]]
        if any(role.startswith(role_logical_id_prefix) for role in roles):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def buildspec(template: Template, description_suffix: str) -> dict[str, Any]:
    for project in template.find_resources("AWS::CodeBuild::Project").values():
        if project["Properties"]["Description"].endswith(description_suffix):
            return dict(json.loads(project["Properties"]["Source"]["BuildSpec"]))
    raise AssertionError(f"no CodeBuild project for {description_suffix}")


# -- stages, steps and their order -------------------------------------------------------------


def test_stages_deploy_the_management_account_before_the_delegated_administrator(connection: Synthesized) -> None:
    names = [stage["Name"] for stage in connection.stages]
    assert names == ["Source", "Build", "UpdatePipeline", "Assets", "Management", "DelegatedAdministrator"]


def test_each_stage_deploys_its_accounts_stacks_with_its_deploy_role(connection: Synthesized) -> None:
    for stage_name, account, stack_name in (
        ("Management", MANAGEMENT, MANAGEMENT_STACK_NAME),
        ("DelegatedAdministrator", DELEGATED, DELEGATED_ADMINISTRATOR_STACK_NAME),
    ):
        deploys = [
            action
            for action in connection.stage(stage_name)["Actions"]
            if action["ActionTypeId"]["Provider"] == "CloudFormation"
        ]
        assert [action["Configuration"]["ActionMode"] for action in deploys] == [
            "CHANGE_SET_REPLACE",
            "CHANGE_SET_EXECUTE",
        ]
        for action in deploys:
            assert action["Configuration"]["StackName"] == stack_name
            assert join(action["RoleArn"]) == deploy_role(account)
        prepare = deploys[0]["Configuration"]
        assert join(prepare["RoleArn"]) == f"arn:aws:iam::{account}:role/cdk-hnb659fds-cfn-exec-role-{account}-{REGION}"


def test_stage_stacks_come_from_the_shared_stack_functions_with_the_cdk_deploy_names(connection: Synthesized) -> None:
    management, delegated = connection.pipeline.stages
    assert [stack.stack_name for stack in management.stacks] == [MANAGEMENT_STACK_NAME]
    assert (management.account_id, management.stacks[0].account, management.stacks[0].region) == (
        MANAGEMENT,
        MANAGEMENT,
        REGION,
    )
    assert [stack.stack_name for stack in delegated.stacks] == [DELEGATED_ADMINISTRATOR_STACK_NAME]
    assert delegated.stacks[0].account == DELEGATED


@pytest.mark.parametrize("name", ["connection", "codecommit", "s3"])
def test_with_a_pipeline_each_stack_is_built_once_at_one_construct_path(
    name: str, request: pytest.FixtureRequest
) -> None:
    """With [pipeline] the app holds the pipeline and its stages' stacks, no top-level copies: `cdk deploy
    --all` deploys the pipeline alone, and a deploy by hand picks the very construct the pipeline deploys."""
    synthesized: Synthesized = request.getfixturevalue(name)
    artifacts = list(stack_artifacts(synthesized.assembly))
    names = [stack.stack_name for _, stack in artifacts]
    assert len(names) == len(set(names)), names
    top_level = {stack.stack_name for stack in synthesized.assembly.stacks}
    assert PIPELINE_STACK_NAME in top_level and not top_level & {
        MANAGEMENT_STACK_NAME,
        DELEGATED_ADMINISTRATOR_STACK_NAME,
    }
    staged = {stack.stack_name: stack for stage in synthesized.pipeline.stages for stack in stage.stacks}
    for holder, artifact in artifacts:
        if artifact.stack_name in staged:
            # What the CLI selects by hierarchical ID is the template the pipeline's deploy action reads.
            assert artifact.hierarchical_id == staged[artifact.stack_name].node.path
            assert artifact.template == Template.from_stack(staged[artifact.stack_name]).to_json()
            deploys = [
                action["Configuration"]
                for stage in synthesized.stages
                for action in stage["Actions"]
                if action["ActionTypeId"]["Provider"] == "CloudFormation"
                and action["Configuration"].get("StackName") == artifact.stack_name
                and "TemplatePath" in action["Configuration"]
            ]
            assert deploys and all(
                deploy["TemplatePath"].endswith(f"::{Path(holder.directory).name}/{artifact.template_file}")
                for deploy in deploys
            ), deploys


@pytest.mark.parametrize("name", ["connection", "s3"])
def test_the_pipeline_deploys_the_same_templates_as_cdk_deploy(name: str, request: pytest.FixtureRequest) -> None:
    """Moving from cdk deploy (no [pipeline] section) to the pipeline updates the same stacks; only
    construct-path names differ."""
    synthesized: Synthesized = request.getfixturevalue(name)
    without_pipeline = build_app(synthesized.config)[0].synth()
    staged_stacks = [(stage.node.id, stack) for stage in synthesized.pipeline.stages for stack in stage.stacks]
    assert staged_stacks
    for stage, stack in staged_stacks:
        top_level = without_pipeline.get_stack_by_name(stack.stack_name).template
        staged = Template.from_stack(stack).to_json()

        def normalized(template: Mapping[str, Any], stage: str = stage, stack_name: str = stack.stack_name) -> Any:
            resources = {
                logical_id: {key: value for key, value in resource.items() if key != "Metadata"}
                for logical_id, resource in template["Resources"].items()
                if resource["Type"] != "AWS::CDK::Metadata"
            }
            text = json.dumps(resources).replace(f"{PIPELINE_STACK_NAME}/{stage}/", "")
            text = text.replace(f"{PIPELINE_STACK_NAME}{stage}{stack_name}", stack_name)
            # Names CDK derives from the construct path (Names.unique_id) end in a hash of that path.
            return json.loads(re.sub(rf"({stack_name}[A-Za-z0-9]*?)[0-9A-F]{{8,16}}\b", r"\1#", text))

        assert normalized(staged) == normalized(top_level), stack.stack_name
        replaced = set(top_level["Resources"]) ^ set(staged["Resources"])
        assert all(stack.stack_name in logical_id for logical_id in replaced), replaced


def test_without_delegated_administrator_stacks_there_is_no_delegated_administrator_stage(
    codecommit: Synthesized,
) -> None:
    # CONFIG registers a delegated administrator but deploys nothing there: no empty stage.
    assert [stage["Name"] for stage in codecommit.stages][-1] == "Management"
    assert [stage.node.id for stage in codecommit.pipeline.stages] == ["Management"]
    assert codecommit.pipeline.node.try_find_child("DelegatedAdministrator") is None


def test_manual_approval_runs_first_in_the_first_stage_with_its_topic(connection: Synthesized) -> None:
    first = connection.stage("Management")["Actions"]
    approval = min(first, key=lambda action: action["RunOrder"])
    assert approval["Name"] == APPROVAL_STEP
    assert approval["ActionTypeId"] == {"Category": "Approval", "Owner": "AWS", "Provider": "Manual", "Version": "1"}
    assert approval["Configuration"]["NotificationArn"] == TOPIC_ARN
    assert all(action["RunOrder"] > approval["RunOrder"] for action in first if action is not approval)
    later = connection.stage("DelegatedAdministrator")["Actions"]
    assert all(action["ActionTypeId"]["Provider"] != "Manual" for action in later)


def test_manual_approval_is_absent_when_the_config_turns_it_off(codecommit: Synthesized) -> None:
    providers = [action["ActionTypeId"]["Provider"] for stage in codecommit.stages for action in stage["Actions"]]
    assert "Manual" not in providers


def test_synth_step_installs_the_pinned_tools_and_synthesizes_with_the_config(connection: Synthesized) -> None:
    spec = buildspec(connection.template, "/Build/Synth")
    assert spec["phases"]["install"]["runtime-versions"] == RUNTIME_VERSIONS
    assert spec["phases"]["install"]["commands"] == [
        "python -m venv .venv",
        ".venv/bin/python -m pip install --disable-pip-version-check --requirement requirements.txt",
        "npm ci --no-audit --no-fund",
    ]
    assert spec["phases"]["build"]["commands"] == [
        "npx --no-install cdk synth --no-notices -c config=config/example.toml"
    ]
    assert spec["artifacts"]["base-directory"] == "cdk.out"


def test_self_mutation_installs_the_cli_version_package_json_pins(connection: Synthesized) -> None:
    assert pinned_cdk_cli_version() == json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    spec = buildspec(connection.template, "/UpdatePipeline/SelfMutate")
    assert spec["phases"]["install"]["commands"] == [f"npm install -g aws-cdk@{pinned_cdk_cli_version()}"]
    assert spec["phases"]["build"]["commands"] == [
        f"cdk -a . deploy {PIPELINE_STACK_NAME} --require-approval=never --verbose"
    ]


def test_asset_publishing_installs_the_cdk_assets_version_package_json_pins(
    connection: Synthesized, s3: Synthesized
) -> None:
    """CDK Pipelines installs cdk-assets@latest unless told; the pin is package.json's (and its lock file's)."""
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = pinned_cdk_assets_version()
    assert pinned == package["devDependencies"]["cdk-assets"] == lock["packages"]["node_modules/cdk-assets"]["version"]
    for synthesized in (connection, s3):
        projects = synthesized.template.find_resources("AWS::CodeBuild::Project").values()
        texts = [join(project["Properties"]["Source"]["BuildSpec"]) for project in projects]
        # A long buildspec (the asset project's) is written beside the template and named in its place.
        directory = Path(synthesized.assembly.directory)
        specs = [
            json.loads((directory / text).read_text() if text.startswith("buildspec-") else text) for text in texts
        ]
        installs = [command for spec in specs for command in spec["phases"].get("install", {}).get("commands", [])]
        assert f"npm install -g cdk-assets@{pinned}" in installs
        assert not [command for command in installs if "@latest" in command], installs


def test_self_mutation_can_be_turned_off(codecommit: Synthesized) -> None:
    assert "UpdatePipeline" not in [stage["Name"] for stage in codecommit.stages]


def test_pipeline_is_v2_with_the_configured_name(connection: Synthesized, codecommit: Synthesized) -> None:
    connection.template.has_resource_properties(
        "AWS::CodePipeline::Pipeline", {"Name": "OrgBootstrap", "PipelineType": "V2"}
    )
    codecommit.template.has_resource_properties("AWS::CodePipeline::Pipeline", {"Name": "OrgBootstrapRelease"})


# -- sources -----------------------------------------------------------------------------------


def source_action(synthesized: Synthesized) -> dict[str, Any]:
    (action,) = synthesized.stage("Source")["Actions"]
    return dict(action)


def test_codeconnections_source(connection: Synthesized) -> None:
    action = source_action(connection)
    assert action["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert action["Configuration"] == {
        "ConnectionArn": CONNECTION_ARN,
        "FullRepositoryId": "my-org/org-bootstrap",
        "BranchName": "main",
    }
    use = [
        s
        for s in statements(connection.template, "PipelineSource")
        if s["Action"] == "codestar-connections:UseConnection"
    ]
    assert [s["Resource"] for s in use] == [CONNECTION_ARN]


def test_codecommit_source(codecommit: Synthesized) -> None:
    action = source_action(codecommit)
    assert action["ActionTypeId"]["Provider"] == "CodeCommit"
    assert action["Configuration"]["RepositoryName"] == "org-bootstrap"
    assert action["Configuration"]["BranchName"] == "release"
    assert action["Configuration"]["PollForSourceChanges"] is False  # an EventBridge rule starts the pipeline
    codecommit.template.resource_count_is("AWS::Events::Rule", 1)


def test_s3_source(s3: Synthesized) -> None:
    action = source_action(s3)
    assert action["ActionTypeId"]["Provider"] == "S3"
    assert action["Configuration"] == {
        "S3Bucket": "org-bootstrap-source",
        "S3ObjectKey": "org-bootstrap/main.zip",
        "PollForSourceChanges": True,
    }


# -- roles, keys and buckets -------------------------------------------------------------------


def test_pipeline_role_may_assume_the_deploy_roles_of_the_target_accounts(connection: Synthesized) -> None:
    assumed = {
        join(resource)
        for statement in statements(connection.template, "PipelineRole")
        if statement["Action"] == "sts:AssumeRole"
        for resource in (statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]])
    }
    assert {deploy_role(MANAGEMENT), deploy_role(DELEGATED)} <= assumed
    # Nothing else outside the pipeline account: the stacks deploy only through the bootstrap roles.
    assert {role for role in assumed if not role.startswith("<")} == {deploy_role(MANAGEMENT), deploy_role(DELEGATED)}


def test_pipeline_role_is_assumed_only_by_codepipeline(connection: Synthesized) -> None:
    roles = connection.template.find_resources("AWS::IAM::Role")
    (pipeline_role,) = [role for name, role in roles.items() if name.startswith("PipelineRole")]
    assert pipeline_role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}}
    ]


def test_cross_account_key_lets_the_target_deploy_roles_read_the_artifacts(connection: Synthesized) -> None:
    (key,) = connection.template.find_resources("AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    readers = {
        join(principal)
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if "kms:Decrypt" in statement["Action"] and "AWS" in statement["Principal"]
        # One principal, or several merged into a list (@aws-cdk/aws-iam:minimizePolicies).
        for principal in (
            statement["Principal"]["AWS"]
            if isinstance(statement["Principal"]["AWS"], list)
            else [statement["Principal"]["AWS"]]
        )
    }
    assert {deploy_role(MANAGEMENT), deploy_role(DELEGATED)} <= readers


def test_artifact_bucket_is_kms_encrypted_ssl_only_and_access_logged(connection: Synthesized) -> None:
    buckets = connection.template.find_resources("AWS::S3::Bucket")
    (artifacts,) = [bucket for name, bucket in buckets.items() if name.startswith("PipelineArtifactsBucket")]
    (access_logs_name,) = [name for name in buckets if name.startswith("ArtifactAccessLogs")]
    encryption = artifacts["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert artifacts["Properties"]["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": access_logs_name},
        "LogFilePrefix": "artifacts/",
    }
    for policy in connection.template.find_resources("AWS::S3::BucketPolicy").values():
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_access_log_delivery_is_limited_to_the_artifact_bucket(connection: Synthesized) -> None:
    (delivery,) = [
        statement
        for policy in connection.template.find_resources("AWS::S3::BucketPolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "S3ServerAccessLogDelivery"
    ]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == "s3:PutObject"
    assert join(delivery["Condition"]["ArnLike"]["aws:SourceArn"]).startswith("<PipelineArtifactsBucket")
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": MANAGEMENT}


def test_codebuild_projects_encrypt_with_the_artifact_key(connection: Synthesized) -> None:
    for project in connection.template.find_resources("AWS::CodeBuild::Project").values():
        assert join(project["Properties"]["EncryptionKey"]).startswith("<PipelineArtifactsBucketEncryptionKey")
        assert project["Properties"]["Environment"]["PrivilegedMode"] is False


def test_pipeline_lands_in_its_own_account_and_region(s3: Synthesized, connection: Synthesized) -> None:
    assert (s3.pipeline.account, s3.pipeline.region) == (TOOLING, "eu-west-1")
    assert (connection.pipeline.account, connection.pipeline.region) == (MANAGEMENT, REGION)


def test_another_region_adds_codepipelines_replication_stack_with_access_logs(s3: Synthesized) -> None:
    supports = s3.pipeline.pipeline.pipeline.cross_region_support
    assert sorted(supports) == ["eu-west-1", REGION]  # the pipeline's own region is its own stack
    assert supports["eu-west-1"].stack is s3.pipeline
    support = supports[REGION]
    assert (support.stack.account, support.stack.region) == (TOOLING, REGION)
    template = Template.from_stack(support.stack)
    buckets = template.find_resources("AWS::S3::Bucket")
    (replication,) = [b for name, b in buckets.items() if name.startswith("CrossRegionCodePipelineReplicationBucket")]
    assert "LoggingConfiguration" in replication["Properties"]
    (replication_logs,) = [name for name in buckets if name.startswith("ReplicationAccessLogs")]
    assert replication["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": replication_logs}
    # The pipeline's own region keeps the one artifact bucket, logged once.
    in_pipeline_stack = s3.template.find_resources("AWS::S3::Bucket")
    assert sorted(name[:-8] for name in in_pipeline_stack) == [  # the names without their hash
        "ArtifactAccessLogs",
        "PipelineArtifactsBucket",
    ]


def test_approval_may_publish_to_its_topic_only(connection: Synthesized) -> None:
    publish = [s for s in statements(connection.template, "PipelineManagementApprove") if s["Action"] == "sns:Publish"]
    assert [s["Resource"] for s in publish] == [TOPIC_ARN]


def test_assets_are_published_through_the_target_file_publishing_roles(connection: Synthesized) -> None:
    assumed = {
        join(resource)
        for statement in statements(connection.template, "PipelineAssetsFileRole")
        if statement["Action"] == "sts:AssumeRole"
        for resource in (statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]])
    }
    assert assumed == {
        f"arn:aws:iam::{account}:role/cdk-hnb659fds-file-publishing-role-{account}-{REGION}"
        for account in (MANAGEMENT, DELEGATED)
    }


# -- cdk-nag and cfn-lint ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["connection", "codecommit", "s3"])
def test_pipeline_synthesizes_with_no_unacknowledged_nag_findings(name: str, request: pytest.FixtureRequest) -> None:
    # build_app registers AwsSolutionsChecks on the app; the module's synth raised on any finding,
    # in the pipeline stack, the support stack and the stages' stacks alike.
    synthesized: Synthesized = request.getfixturevalue(name)
    assert synthesized.assembly.get_stack_by_name(PIPELINE_STACK_NAME).template


# cfn-lint 1.58 re-raises its informational I1022 ("Prefer using Fn::Sub over Fn::Join", which it
# skips for CDK templates) under E3703 when it checks a CloudFormation action's RoleArn format; the
# Fn::Join is CDK's own ARN for the cfn-exec role and valid CloudFormation.
def lint_errors(path: Path, regions: list[str]) -> list[str]:
    matches = lint_file(path, config=ManualArgs(regions=regions))
    return [
        str(match)
        for match in matches
        if match.rule.id.startswith("E")
        and not (match.rule.id == "E3703" and match.message.startswith("Prefer using Fn::Sub over Fn::Join"))
    ]


@pytest.mark.parametrize("name", ["connection", "codecommit", "s3"])
def test_cfn_lint_finds_no_errors_in_the_pipeline_templates(name: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(name)
    directory = Path(synthesized.assembly.directory)
    templates = sorted(directory.rglob("*.template.json"))  # the stages' templates too
    assert f"{PIPELINE_STACK_NAME}.template.json" in [path.name for path in templates]
    for path in templates:
        assert lint_errors(path, ["us-east-1", "eu-west-1"]) == [], path.name


# -- the [pipeline] section --------------------------------------------------------------------

CONNECTION = {"connection_arn": CONNECTION_ARN, "repository": "my-org/org-bootstrap", "branch": "main"}


def problems_of(data: object, **kwargs: Any) -> list[str]:
    with pytest.raises(InvalidInputError) as caught:
        PipelineConfig.parse(data, **kwargs)
    return caught.value.problems


def test_minimal_section_takes_the_defaults() -> None:
    config = PipelineConfig.parse({"codeconnections": CONNECTION})
    assert config == PipelineConfig(
        source=CodeConnectionsSource(connection_arn=CONNECTION_ARN, repository="my-org/org-bootstrap", branch="main")
    )
    assert (config.name, config.account_id, config.region) == ("OrgBootstrap", None, None)
    assert (config.manual_approval, config.self_mutation, config.approval_topic_arn) == (True, True, None)
    assert config.account_and_region(management_account_id=MANAGEMENT, region=REGION) == (MANAGEMENT, REGION)


def test_full_section_is_typed() -> None:
    config = PipelineConfig.parse(
        {
            "name": "OrgBootstrap.prod",
            "account_id": TOOLING,
            "region": "eu-west-1",
            "manual_approval": True,
            "approval_topic_arn": f"arn:aws:sns:eu-west-1:{TOOLING}:approvals",
            "self_mutation": False,
            "s3": {"bucket": "org-bootstrap-source", "object_key": "main.zip", "trigger": "events"},
        }
    )
    assert config.source == S3Source(bucket="org-bootstrap-source", object_key="main.zip", trigger="events")
    assert config.account_and_region(management_account_id=MANAGEMENT, region=REGION) == (TOOLING, "eu-west-1")
    assert PipelineConfig.parse({"codecommit": {"repository": "org-bootstrap", "branch": "feature/x"}}).source == (
        CodeCommitSource(repository="org-bootstrap", branch="feature/x")
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"account_id": "12345"}, "pipeline.account_id: '12345' is not an AWS account ID"),
        ({"account_id": 333333333333}, "pipeline.account_id: 333333333333 must be a quoted string"),
        ({"region": "eu-west"}, "pipeline.region: 'eu-west' is not an AWS Region name"),
        ({"name": "org bootstrap"}, "pipeline.name: 'org bootstrap' is not a pipeline name"),
        ({"manual_approval": "yes"}, "pipeline.manual_approval: 'yes' must be true or false"),
        ({"self_mutation": 1}, "pipeline.self_mutation: 1 must be true or false"),
        ({"approval_topic_arn": "approvals"}, "pipeline.approval_topic_arn: 'approvals' is not an SNS topic ARN"),
        (
            {"manual_approval": False, "approval_topic_arn": TOPIC_ARN},
            "pipeline.approval_topic_arn: needs manual_approval = true",
        ),
        ({"approve": True}, "pipeline.approve: unknown key"),
        ({"codecommit": {"repository": "r", "branch": "main"}}, "pipeline: give exactly one source"),
    ],
)
def test_bad_pipeline_values_name_the_field_and_rule(change: dict[str, object], expected: str) -> None:
    found = problems_of({"codeconnections": CONNECTION, **change})
    assert any(problem.startswith(expected) for problem in found), found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"codeconnections": {**CONNECTION, "connection_arn": "arn:aws:codeconnections:us-east-1:111:connection/x"}},
            "pipeline.codeconnections.connection_arn: 'arn:aws:codeconnections:us-east-1:111:connection/x' is not "
            "a CodeConnections connection ARN",
        ),
        (
            {"codeconnections": {**CONNECTION, "connection_arn": CONNECTION_ARN.replace("connection/", "host/")}},
            "pipeline.codeconnections.connection_arn:",
        ),
        ({"codeconnections": {**CONNECTION, "repository": "org-bootstrap"}}, "pipeline.codeconnections.repository:"),
        ({"codeconnections": {**CONNECTION, "branch": "main..x"}}, "pipeline.codeconnections.branch: 'main..x'"),
        ({"codeconnections": {**CONNECTION, "branch": "-x"}}, "pipeline.codeconnections.branch: '-x'"),
        (
            {"codeconnections": {"connection_arn": CONNECTION_ARN, "repository": "a/b"}},
            "pipeline.codeconnections.branch: is required",
        ),
        ({"codeconnections": {**CONNECTION, "owner": "me"}}, "pipeline.codeconnections.owner: unknown key"),
        ({"codeconnections": "my-org/org-bootstrap"}, "pipeline.codeconnections: must be a table"),
        (
            {"codecommit": {"repository": "org-bootstrap.git", "branch": "main"}},
            "pipeline.codecommit.repository: 'org-bootstrap.git' is not a CodeCommit repository name",
        ),
        ({"s3": {"bucket": "Org_Source", "object_key": "a.zip"}}, "pipeline.s3.bucket: 'Org_Source'"),
        ({"s3": {"bucket": "org-source", "object_key": "a.tar"}}, "pipeline.s3.object_key: 'a.tar' must be the key"),
        ({"s3": {"bucket": "org-source", "object_key": "a.zip", "trigger": "push"}}, "pipeline.s3.trigger: 'push'"),
        ({}, "pipeline: give exactly one source: codeconnections, codecommit or s3 (found none)"),
        (
            {"codeconnections": CONNECTION, "s3": {"bucket": "org-source", "object_key": "a.zip"}},
            "pipeline: give exactly one source: codeconnections, codecommit or s3 (found codeconnections and s3)",
        ),
    ],
)
def test_bad_sources_name_the_field_and_rule(source: dict[str, object], expected: str) -> None:
    found = problems_of(source)
    assert any(problem.startswith(expected) for problem in found), found


def test_a_connection_of_another_account_is_refused() -> None:
    expected = (
        f"pipeline.codeconnections.connection_arn: belongs to account {MANAGEMENT}, but the pipeline is in {TOOLING}"
    )
    assert any(p.startswith(expected) for p in problems_of({"account_id": TOOLING, "codeconnections": CONNECTION}))
    # Without account_id the pipeline lands in the management account, which the config may pass in.
    assert any(p.startswith(expected) for p in problems_of({"codeconnections": CONNECTION}, default_account_id=TOOLING))
    assert PipelineConfig.parse({"codeconnections": CONNECTION}, default_account_id=MANAGEMENT)


def test_every_pipeline_problem_is_reported_at_once() -> None:
    found = problems_of({"account_id": "1", "region": "x", "name": "", "extra": 1, "s3": {"bucket": "B"}})
    assert len(found) == 6, found  # account_id, region, name, extra, s3.bucket, s3.object_key


def test_section_must_be_a_table() -> None:
    assert problems_of("codecommit") == ["pipeline: must be a table"]
    assert problems_of([], where="deploy.pipeline") == ["deploy.pipeline: must be a table"]


def test_build_pipeline_refuses_a_connection_outside_the_pipeline_account() -> None:
    pipeline_config = PipelineConfig(source=CodeConnectionsSource(CONNECTION_ARN, "a/b", "main"), account_id=TOOLING)
    with pytest.raises(ConfigError, match="belongs to account 111111111111, but the pipeline is in 333333333333"):
        build_pipeline(App(), config=CONFIG, pipeline_config=pipeline_config, config_file=ROOT / "config/example.toml")


def test_the_config_file_must_be_inside_the_repository(tmp_path: Path) -> None:
    assert repository_path(ROOT / "config" / "example.toml") == "config/example.toml"
    pipeline_config = PipelineConfig(source=CodeCommitSource("org-bootstrap", "main"))
    with pytest.raises(ConfigError, match="is outside the repository"):
        build_pipeline(App(), config=CONFIG, pipeline_config=pipeline_config, config_file=tmp_path / "org.toml")


# -- the documentation's policies and workflow -------------------------------------------------

DOCS = ROOT / "docs"
# CloudFormation's service names where IAM's action prefix differs.
IAM_PREFIX = {"StepFunctions": "states"}


def test_execution_policy_covers_every_service_the_stacks_are_made_of(connection: Synthesized, s3: Synthesized) -> None:
    policy = json.loads((DOCS / "cloudformation-execution-policy.json").read_text(encoding="utf-8"))
    allowed = {
        action.split(":")[0]
        for statement in policy["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    # The pipeline stacks and every account stack of both modes.
    account_stacks = [stack for each in (connection, s3) for stage in each.pipeline.stages for stack in stage.stacks]
    templates = [connection.template, s3.template, *(Template.from_stack(stack) for stack in account_stacks)]
    types = {resource["Type"] for template in templates for resource in template.to_json()["Resources"].values()}
    needed = {
        "lambda" if kind.startswith("Custom::") else IAM_PREFIX.get(kind.split("::")[1], kind.split("::")[1].lower())
        for kind in types
        if kind != "AWS::CDK::Metadata"
    }
    assert needed - allowed == set(), sorted(types)


def json_blocks(markdown: str) -> list[Any]:
    blocks = markdown.split("```json")[1:]
    return [json.loads(block.split("```")[0]) for block in blocks]


def test_github_oidc_trust_policy_is_limited_to_the_repository_and_branch() -> None:
    documents = json_blocks((DOCS / "pipeline.md").read_text(encoding="utf-8"))
    (trust,) = [doc for doc in documents if doc["Statement"][0]["Action"] == "sts:AssumeRoleWithWebIdentity"]
    (statement,) = trust["Statement"]
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:my-org/org-bootstrap:ref:refs/heads/main",
        }
    }
    (permissions,) = [doc for doc in documents if doc["Statement"][0]["Action"] == "sts:AssumeRole"]
    (allowed,) = permissions["Statement"]
    assert all(":role/cdk-hnb659fds-" in resource for resource in allowed["Resource"])


def test_github_workflow_assumes_the_role_with_oidc_and_no_stored_keys() -> None:
    import yaml

    text = (DOCS / "github-actions-deploy.yml").read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    assert workflow["permissions"] == {"contents": "read"}
    deploy = workflow["jobs"]["deploy"]
    assert deploy["permissions"] == {"contents": "read", "id-token": "write"}
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    (credentials,) = [step for step in deploy["steps"] if "configure-aws-credentials" in step.get("uses", "")]
    assert credentials["with"]["role-to-assume"] == "${{ env.DEPLOY_ROLE }}"
    assert workflow["env"]["DEPLOY_ROLE"].startswith("arn:aws:iam::")
    assert "aws-access-key-id" not in text and "secrets." not in text
    commands = "\n".join(step.get("run", "") for step in deploy["steps"])
    assert "--requirement requirements.txt" in commands and "npm ci" in commands
    assert 'cdk deploy --all --require-approval never --no-notices -c config="$CONFIG"' in commands
