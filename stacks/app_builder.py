"""Builds the app's stacks from a config; ``app.py`` and the tests share this one wiring."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from org_bootstrap.validation import InvalidInputError
from stacks.config import BootstrapConfig, ConfigError
from stacks.management_account import ManagementAccountStack
from stacks.pipeline import PIPELINE_STACK_NAME, ROOT, PipelineStack
from stacks.pipeline_config import PipelineConfig
from stacks.stages import add_org_stacks

CDK_JSON = ROOT / "cdk.json"


def feature_flags() -> dict[str, object]:
    """cdk.json's context: the feature flags of the pinned aws-cdk-lib, which the CDK CLI passes to the app."""
    return dict(json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"])


def new_app(context: Mapping[str, str] | None = None) -> App:
    """An app with cdk.json's feature flags, so a synth in this process matches ``cdk synth``'s (context
    the CLI passes, such as ``-c config=...``, still wins), and ``context`` as ``-c`` would give it."""
    return App(context={**feature_flags(), **(context or {})})


def build(config: BootstrapConfig, *, config_file: str | Path, app: App | None = None) -> App:
    """The app as ``cdk synth`` sees it (``app.py``): the account stacks, or with a ``[pipeline]``
    section only the pipeline, whose stages hold them.

    Each CloudFormation stack is built once, at one construct path, however it is deployed: with a
    pipeline, ``cdk deploy --all`` deploys the pipeline alone, and a deploy by hand names the staged
    stack (``OrgBootstrapPipeline/Management/OrgBootstrapManagement``), the same construct the
    pipeline deploys. Top-level copies beside the pipeline would carry other construct paths, so
    the names CDK derives from them (statement IDs, descriptions, one logical ID) would flip with
    every deploy made the other way.
    """
    if config.pipeline is None:
        return build_app(config, app)[0]
    app = app or new_app()
    build_pipeline(app, config=config, pipeline_config=config.pipeline, config_file=config_file)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def build_app(config: BootstrapConfig, app: App | None = None) -> tuple[App, ManagementAccountStack]:
    """The account stacks at the top level, for ``cdk deploy`` (a ``[pipeline]`` section is ignored)."""
    app = app or new_app()
    stacks = add_org_stacks(app, config=config)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    management = next(stack for stack in stacks if isinstance(stack, ManagementAccountStack))
    return app, management


def build_pipeline(
    app: App, *, config: BootstrapConfig, pipeline_config: PipelineConfig, config_file: str | Path
) -> PipelineStack:
    """Add the pipeline that deploys ``config``'s stacks, synthesizing them from the committed ``config_file``.

    ``config_file`` is the file this synth read (``-c config=...``); the pipeline's own synth passes
    the same path, so it must lie inside the repository. Raises ConfigError naming the problem.
    """
    try:
        account, region = pipeline_config.account_and_region(
            management_account_id=config.management_account_id, region=config.region
        )
        committed = repository_path(config_file)
    except InvalidInputError as error:
        raise ConfigError(str(config_file), error.problems) from None
    return PipelineStack(
        app,
        PIPELINE_STACK_NAME,
        config=config,
        pipeline_config=pipeline_config,
        config_file=committed,
        env=Environment(account=account, region=region),
        description="AWS Account Management bootstrap: the pipeline that deploys it, account by account",
    )


def repository_path(config_file: str | Path) -> str:
    """The config file as a path relative to the repository root, as the pipeline's checkout sees it."""
    try:
        return Path(config_file).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        raise InvalidInputError(
            [
                f"pipeline: the config file {config_file} is outside the repository, and the pipeline synthesizes "
                "from a file committed in it"
            ]
        ) from None
