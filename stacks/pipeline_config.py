"""The ``[pipeline]`` config section: where the deployment pipeline lives and what it deploys from.

Parsed like every other section: each problem names the field and the rule it breaks, every problem
is reported at once, and unknown keys are errors. The section is optional; without it the app has
no pipeline and is deployed with ``cdk deploy`` (or from another CI system, see docs/pipeline.md).

```toml
[pipeline]
name = "OrgBootstrap"            # the CodePipeline pipeline's name
account_id = "111111111111"      # default: management_account_id
region = "us-east-1"             # default: the config's region
manual_approval = true           # approve before any change reaches the organization

[pipeline.codeconnections]       # exactly one source: codeconnections, codecommit or s3
connection_arn = "arn:aws:codeconnections:us-east-1:111111111111:connection/<uuid>"
repository = "my-org/org-bootstrap"
branch = "main"
```
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from org_bootstrap.validation import (
    ACCOUNT_ID_SCHEMA,
    REGION_PATTERN,
    REGION_SCHEMA,
    Field,
    InvalidInputError,
    account_id_problem,
    choice_schema,
    field_names,
    region_problem,
    string_schema,
)

DEFAULT_PIPELINE_NAME = "OrgBootstrap"
S3_TRIGGERS = ("poll", "events")


_PARTITION = r"aws(-cn|-us-gov|-iso|-iso-[a-z])?"
# https://docs.aws.amazon.com/codepipeline/latest/APIReference/API_PipelineDeclaration.html (name)
_PIPELINE_NAME = re.compile(r"^[A-Za-z0-9.@_-]{1,100}$")
# CodeConnections kept the ARN service prefix codestar-connections for connections made before the rename.
_CONNECTION_ARN = re.compile(
    rf"^arn:{_PARTITION}:(codeconnections|codestar-connections):{REGION_PATTERN}:(?P<account>\d{{12}}):"
    r"connection/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    re.ASCII,
)
# owner/name on GitHub and Bitbucket; GitLab adds subgroups (group/subgroup/name).
_FULL_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
# https://docs.aws.amazon.com/codecommit/latest/APIReference/API_CreateRepository.html
_CODECOMMIT_REPOSITORY = re.compile(r"^[\w.-]{1,100}$", re.ASCII)
# The parts of git's check-ref-format rules a config can break.
_BRANCH = re.compile(r"^(?![/.-])(?!.*(\.\.|//|@\{|/\.))[^\s~^:?*\[\\\x00-\x1f\x7f]+(?<![/.])(?<!\.lock)$")
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
_BUCKET = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TOPIC_ARN = re.compile(rf"^arn:{_PARTITION}:sns:{REGION_PATTERN}:\d{{12}}:[A-Za-z0-9_-]{{1,256}}(\.fifo)?$", re.ASCII)


_BRANCH_FIELD = Field(
    "branch", "The branch the pipeline deploys", string_schema(_BRANCH, minLength=1, maxLength=255), required=True
)
CODECONNECTIONS_FIELDS = (
    Field(
        "connection_arn",
        "An AVAILABLE CodeConnections connection of the pipeline's own account",
        string_schema(_CONNECTION_ARN),
        required=True,
    ),
    Field(
        "repository",
        "The repository as owner/name (GitLab: group/subgroup/name)",
        string_schema(_FULL_REPOSITORY),
        required=True,
    ),
    _BRANCH_FIELD,
)
CODECOMMIT_FIELDS = (
    Field(
        "repository",
        "A CodeCommit repository of the pipeline's account and region",
        string_schema(_CODECOMMIT_REPOSITORY),
        required=True,
    ),
    _BRANCH_FIELD,
)
S3_FIELDS = (
    Field("bucket", "A versioned bucket of the pipeline's account and region", string_schema(_BUCKET), required=True),
    Field(
        "object_key",
        "The key of a .zip of the repository",
        string_schema(None, minLength=1, maxLength=1024),
        required=True,
    ),
    Field(
        "trigger", "poll, or events (needs a CloudTrail trail logging the bucket's writes)", choice_schema(S3_TRIGGERS)
    ),
)
PIPELINE_FIELDS = (
    Field("name", "The CodePipeline pipeline's name", string_schema(_PIPELINE_NAME)),
    Field("account_id", "The pipeline's account (default: management_account_id)", ACCOUNT_ID_SCHEMA),
    Field("region", "The pipeline's Region (default: region)", REGION_SCHEMA),
    Field("manual_approval", "Approve before any change reaches the organization", {"type": "boolean"}),
    Field(
        "approval_topic_arn",
        "An SNS topic notified of each approval (needs manual_approval)",
        string_schema(_TOPIC_ARN),
    ),
    Field("self_mutation", "The pipeline updates itself from the commit", {"type": "boolean"}),
    Field(
        "codeconnections",
        "Source: GitHub, GitLab or Bitbucket through AWS CodeConnections (exactly one source)",
        fields=CODECONNECTIONS_FIELDS,
    ),
    Field("codecommit", "Source: a CodeCommit repository (exactly one source)", fields=CODECOMMIT_FIELDS),
    Field("s3", "Source: a .zip of the repository in S3 (exactly one source)", fields=S3_FIELDS),
)
_KEYS = field_names(PIPELINE_FIELDS)
_SOURCE_KEYS = ("codeconnections", "codecommit", "s3")
_CODECONNECTIONS_KEYS = field_names(CODECONNECTIONS_FIELDS)
_CODECOMMIT_KEYS = field_names(CODECOMMIT_FIELDS)
_S3_KEYS = field_names(S3_FIELDS)


@dataclass(frozen=True)
class CodeConnectionsSource:
    """A GitHub, GitLab or Bitbucket repository reached through an AWS CodeConnections connection."""

    connection_arn: str
    repository: str  # owner/name
    branch: str

    @property
    def connection_account_id(self) -> str:
        match = _CONNECTION_ARN.match(self.connection_arn)
        assert match, self.connection_arn
        return match["account"]


@dataclass(frozen=True)
class CodeCommitSource:
    """A CodeCommit repository in the pipeline's account and region."""

    repository: str
    branch: str


@dataclass(frozen=True)
class S3Source:
    """A .zip of the repository in a versioned S3 bucket of the pipeline's account and region."""

    bucket: str
    object_key: str
    trigger: str = "poll"  # "events" needs a CloudTrail trail that logs the bucket's write data events


PipelineSource = CodeConnectionsSource | CodeCommitSource | S3Source


@dataclass(frozen=True)
class PipelineConfig:
    """The deployment pipeline; ``account_id`` and ``region`` default to the management account's."""

    source: PipelineSource
    name: str = DEFAULT_PIPELINE_NAME
    account_id: str | None = None
    region: str | None = None
    manual_approval: bool = True
    approval_topic_arn: str | None = None
    self_mutation: bool = True

    @classmethod
    def parse(cls, data: object, where: str = "pipeline", *, default_account_id: object = None) -> PipelineConfig:
        """Validate a mapping and build the config; raises InvalidInputError naming every bad field.

        ``default_account_id`` is the account the pipeline lands in when ``account_id`` is not given
        (the management account); with it, a connection of another account is reported here too.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError([f"{where}: must be a table"])
        problems = _unknown_keys(where, data, _KEYS)
        name = data.get("name", DEFAULT_PIPELINE_NAME)
        if not isinstance(name, str) or not _PIPELINE_NAME.match(name):
            problems.append(f"{where}.name: {name!r} is not a pipeline name (1-100 letters, digits and . @ _ -)")
        account_id = data.get("account_id")
        if account_id is not None:
            problems += _present(account_id_problem(f"{where}.account_id", account_id))
        region = data.get("region")
        if region is not None:
            problems += _present(region_problem(f"{where}.region", region))
        manual_approval = _boolean(f"{where}.manual_approval", data.get("manual_approval", True), problems)
        self_mutation = _boolean(f"{where}.self_mutation", data.get("self_mutation", True), problems)
        topic = data.get("approval_topic_arn")
        if topic is not None:
            if not isinstance(topic, str) or not _TOPIC_ARN.match(topic):
                problems.append(
                    f"{where}.approval_topic_arn: {topic!r} is not an SNS topic ARN "
                    "(arn:aws:sns:<region>:<account>:<name>)"
                )
            elif not manual_approval:
                problems.append(
                    f"{where}.approval_topic_arn: needs manual_approval = true (there is nothing to approve)"
                )
        given = [key for key in _SOURCE_KEYS if key in data]
        source: PipelineSource | None = None
        if len(given) != 1:
            found = f"found {' and '.join(given)}" if given else "found none"
            problems.append(f"{where}: give exactly one source: codeconnections, codecommit or s3 ({found})")
        else:
            source = _source(where, given[0], data[given[0]], problems)
        home = account_id if account_id is not None else default_account_id
        if source is not None and account_id_problem("", home) is None:
            problems += _source_account_problems(where, source, str(home))
        if problems:
            raise InvalidInputError(problems)
        assert source is not None
        return cls(
            source=source,
            name=str(name),
            account_id=str(account_id) if account_id is not None else None,
            region=str(region) if region is not None else None,
            manual_approval=manual_approval,
            approval_topic_arn=str(topic) if topic is not None else None,
            self_mutation=self_mutation,
        )

    def account_and_region(self, *, management_account_id: str, region: str) -> tuple[str, str]:
        """Where the pipeline lands: its own account and region, or the management account's."""
        account = self.account_id or management_account_id
        problems = _source_account_problems("pipeline", self.source, account)
        if problems:
            raise InvalidInputError(problems)
        return account, self.region or region


def _source(where: str, kind: str, value: object, problems: list[str]) -> PipelineSource | None:
    at = f"{where}.{kind}"
    if not isinstance(value, Mapping):
        problems.append(f"{at}: must be a table")
        return None
    before = len(problems)
    if kind == "codeconnections":
        problems += _unknown_keys(at, value, _CODECONNECTIONS_KEYS)
        arn = value.get("connection_arn")
        if not isinstance(arn, str) or not _CONNECTION_ARN.match(arn):
            problems.append(
                f"{at}.connection_arn: {arn!r} is not a CodeConnections connection ARN "
                "(arn:aws:codeconnections:<region>:<account>:connection/<uuid>)"
            )
        repository = value.get("repository")
        if not isinstance(repository, str) or not _FULL_REPOSITORY.match(repository):
            problems.append(f"{at}.repository: {repository!r} is not a repository as owner/name")
        branch = _branch(at, value, problems)
        if len(problems) == before:
            return CodeConnectionsSource(connection_arn=str(arn), repository=str(repository), branch=branch)
    elif kind == "codecommit":
        problems += _unknown_keys(at, value, _CODECOMMIT_KEYS)
        repository = value.get("repository")
        if (
            not isinstance(repository, str)
            or not _CODECOMMIT_REPOSITORY.match(repository)
            or repository.endswith(".git")
        ):
            problems.append(
                f"{at}.repository: {repository!r} is not a CodeCommit repository name "
                "(1-100 letters, digits and . _ -, not ending in .git)"
            )
        branch = _branch(at, value, problems)
        if len(problems) == before:
            return CodeCommitSource(repository=str(repository), branch=branch)
    else:
        problems += _unknown_keys(at, value, _S3_KEYS)
        bucket = value.get("bucket")
        if not isinstance(bucket, str) or not _BUCKET.match(bucket):
            problems.append(f"{at}.bucket: {bucket!r} is not an S3 bucket name")
        key = value.get("object_key")
        if not isinstance(key, str) or not 1 <= len(key) <= 1024 or not key.endswith(".zip"):
            problems.append(
                f"{at}.object_key: {key!r} must be the key of a .zip of the repository (up to 1024 characters)"
            )
        trigger = value.get("trigger", "poll")
        if trigger not in S3_TRIGGERS:
            problems.append(
                f"{at}.trigger: {trigger!r} is not one of {', '.join(S3_TRIGGERS)} "
                "(events needs a CloudTrail trail that logs the bucket's write data events)"
            )
        if len(problems) == before:
            return S3Source(bucket=str(bucket), object_key=str(key), trigger=str(trigger))
    return None


def _branch(at: str, value: Mapping[str, Any], problems: list[str]) -> str:
    branch = value.get("branch")
    if branch is None:
        problems.append(f"{at}.branch: is required (the branch the pipeline deploys)")
    elif not isinstance(branch, str) or not _BRANCH.match(branch) or len(branch) > 255:
        problems.append(f"{at}.branch: {branch!r} is not a git branch name")
    return str(branch)


def _source_account_problems(where: str, source: PipelineSource, account_id: str) -> list[str]:
    if isinstance(source, CodeConnectionsSource) and source.connection_account_id != account_id:
        return [
            f"{where}.codeconnections.connection_arn: belongs to account {source.connection_account_id}, "
            f"but the pipeline is in {account_id} (a pipeline uses a connection of its own account)"
        ]
    return []


def _boolean(where: str, value: object, problems: list[str]) -> bool:
    if not isinstance(value, bool):
        problems.append(f"{where}: {value!r} must be true or false")
        return True
    return value


def _unknown_keys(where: str, data: Mapping[str, Any], allowed: Sequence[str]) -> list[str]:
    return [f"{where}.{key}: unknown key (allowed: {', '.join(allowed)})" for key in data if key not in allowed]


def _present(problem: str | None) -> list[str]:
    return [problem] if problem else []
