"""Synthesize the app from a config, in this process, exactly as ``cdk synth`` would (cdk-nag included)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stacks import silence_jsii_node_notices
from stacks.config import BootstrapConfig, load_config
from stacks.limits import StackLimitError, check_assembly


class SynthError(RuntimeError):
    """The app did not synthesize (a cdk-nag finding, a construct error)."""


@dataclass(frozen=True)
class AccountStack:
    """A stack of the app deployed in another account than the management account's."""

    name: str
    account: str
    template: dict[str, Any]


@dataclass(frozen=True)
class Synthesized:
    config_path: str
    config: BootstrapConfig
    stack_name: str  # the management account's stack
    template: dict[str, Any]
    seconds: float
    # With settings_deployed_in = "delegated_administrator": the delegated administrator's stack,
    # deployed after the management account's (it depends on it), destroyed before it.
    delegated_administrator: AccountStack | None = None
    assembly_directory: str = ""  # the cloud assembly: the assets (Lambda layers) are read from it


def synthesize(config_path: str | Path, *, reconcile: str | None = None) -> Synthesized:
    """Load and validate the config (raises ``ConfigError`` with its lines), then synthesize;
    ``reconcile`` is the context value of ``cdk deploy -c reconcile=...``."""
    config = load_config(config_path)
    started = time.monotonic()
    silence_jsii_node_notices()
    from constructs.account_settings import RECONCILE_CONTEXT
    from stacks.app_builder import build_app, new_app  # imports aws-cdk-lib, which starts jsii's Node process

    try:
        app, stack = build_app(config, new_app({RECONCILE_CONTEXT: reconcile} if reconcile else None))
        assembly = app.synth()
    except Exception as error:  # jsii reports construct errors and cdk-nag findings as RuntimeError
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SynthError(f"synth failed: {first_line}") from error
    try:
        check_assembly(assembly)
    except StackLimitError as error:
        raise SynthError(f"synth refused: {'; '.join(error.problems)} (see docs/limits.md)") from error
    template = assembly.get_stack_by_name(stack.stack_name).template
    delegated = None
    if config.delegated_administrator_mode:
        from stacks.stages import DELEGATED_ADMINISTRATOR_STACK_NAME

        account = config.delegated_administrator_account_id
        assert account, "delegated-administrator mode needs the delegated administrator's account"
        artifact = assembly.get_stack_by_name(DELEGATED_ADMINISTRATOR_STACK_NAME)
        delegated = AccountStack(DELEGATED_ADMINISTRATOR_STACK_NAME, account, artifact.template)
    seconds = time.monotonic() - started
    return Synthesized(str(config_path), config, stack.stack_name, template, seconds, delegated, assembly.directory)
