"""Synthesize the app from a config, in this process, exactly as ``cdk synth`` would (cdk-nag included)."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
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
    cached: bool = False  # read from the cache of an earlier synth of the same config and code


# What the synthesized templates depend on besides the config: the app's own code.
SOURCES = ("app.py", "cdk.json", "stacks", "constructs", "runtime")
CACHE = Path(tempfile.gettempdir()) / "local-deploy-synth"


def synthesize(config_path: str | Path, *, reconcile: str | None = None, cache: Path | None = CACHE) -> Synthesized:
    """Load and validate the config (raises ``ConfigError`` with its lines), then synthesize;
    ``reconcile`` is the context value of ``cdk deploy -c reconcile=...``.

    The same config with the same app code (and aws-cdk-lib) synthesizes the same templates, so the
    result is kept in ``cache`` under a hash of all of them and reused (``seconds`` is then the time
    it took to read it; ``cached`` says so); ``cache=None`` always synthesizes."""
    config = load_config(config_path)
    started = time.monotonic()
    key = _cache_key(Path(config_path), reconcile) if cache is not None else ""
    if cache is not None and (cache / key / "synthesized.json").is_file():
        try:
            return _cached(cache / key, str(config_path), config, started)
        except (OSError, ValueError, KeyError):
            pass  # an unreadable entry is synthesized again
    found = _synthesize(config_path, config, reconcile, started)
    if cache is not None:
        _keep(cache / key, found)
    return found


def _synthesize(config_path: str | Path, config: BootstrapConfig, reconcile: str | None, started: float) -> Synthesized:
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


def _cache_key(config_path: Path, reconcile: str | None) -> str:
    versions = [importlib.metadata.version(name) for name in ("aws-cdk-lib", "cdk-nag")]  # no jsii start
    digest = hashlib.sha256(f"{versions}\n{reconcile}\n".encode())
    digest.update(config_path.read_bytes())
    root = Path(__file__).resolve().parent.parent
    for source in SOURCES:
        path = root / source
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(f"\n{file.relative_to(root)}\n".encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()[:32]


def _keep(entry: Path, synthesized: Synthesized) -> None:
    """Store the templates and the cloud assembly (its assets: the Lambda layers' files)."""
    partial = entry.with_name(entry.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        if synthesized.assembly_directory:
            shutil.copytree(synthesized.assembly_directory, partial / "assembly")
        partial.mkdir(parents=True, exist_ok=True)
        other = synthesized.delegated_administrator
        data = {
            "stack_name": synthesized.stack_name,
            "template": synthesized.template,
            "seconds": synthesized.seconds,
            "delegated_administrator": None if other is None else dataclasses.asdict(other),
        }
        (partial / "synthesized.json").write_text(json.dumps(data), encoding="utf-8")
        if entry.exists():  # another run kept the same one meanwhile
            shutil.rmtree(partial)
        else:
            os.replace(partial, entry)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)  # no cache: the next run synthesizes again


def _cached(entry: Path, config_path: str, config: BootstrapConfig, started: float) -> Synthesized:
    data = json.loads((entry / "synthesized.json").read_text(encoding="utf-8"))
    other = data["delegated_administrator"]
    assembly = entry / "assembly"
    return Synthesized(
        config_path,
        config,
        data["stack_name"],
        data["template"],
        time.monotonic() - started,
        AccountStack(**other) if other else None,
        str(assembly) if assembly.is_dir() else "",
        cached=True,
    )
