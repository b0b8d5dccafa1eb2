"""app.py run by the pinned CDK CLI, as a user runs it: ``npx cdk synth`` on a config with every part
of the app, in a clean environment (no JSII_* variables) and with jsii's deprecated-API mode set to
fail. It prints no Node.js banner, no feature-flag notice and calls no deprecated API, and no
logical ID or construct path carries a contact's e-mail address or phone number."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk
import pytest

from stacks.config import load_config

ROOT = Path(__file__).resolve().parent.parent
EVERY_PART = "tests/configs/every-part.toml"  # relative: the pipeline synthesizes from a committed file


@dataclass(frozen=True)
class CliSynth:
    returncode: int
    output: str  # stdout and stderr
    directory: Path


@pytest.fixture(scope="module")
def cli_synth(tmp_path_factory: pytest.TempPathFactory) -> CliSynth:
    directory = tmp_path_factory.mktemp("cdk.out")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("JSII_")}
    environment["JSII_DEPRECATED"] = "fail"  # a call of a deprecated API throws, and the synth fails
    result = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "-c", f"config={EVERY_PART}", "-o", str(directory)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return CliSynth(result.returncode, result.stdout + result.stderr, directory)


def test_the_cli_synthesizes_every_part_without_a_deprecated_api(cli_synth: CliSynth) -> None:
    assert cli_synth.returncode == 0, cli_synth.output[-3000:]
    assert "is deprecated" not in cli_synth.output
    names = {path.name for path in cli_synth.directory.rglob("*.template.json")}
    assert {"OrgBootstrapPipeline.template.json"} <= names


def test_the_cli_prints_no_node_release_banner(cli_synth: CliSynth) -> None:
    assert "end-of-life" not in cli_synth.output
    assert "!!" not in cli_synth.output


def test_the_cli_prints_no_feature_flag_notice(cli_synth: CliSynth) -> None:
    assert not re.search(r"feature flags? (is|are) not configured", cli_synth.output), cli_synth.output[-2000:]


def recommended_feature_flags() -> dict[str, Any]:
    """The recommended flags the installed aws-cdk-lib ships (what `cdk init` writes into cdk.json)."""
    (bundle,) = (Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(bundle) as archive:
        member = archive.extractfile("package/recommended-feature-flags.json")
        assert member is not None
        return dict(json.load(member))


def test_cdk_json_carries_the_recommended_feature_flags_of_the_pinned_library() -> None:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    recommended = recommended_feature_flags()
    assert len(recommended) > 80
    assert {key: context.get(key) for key in recommended} == recommended
    assert list(context) == sorted(context), "cdk init writes the flags sorted by name"


def personal_data(config_path: Path) -> set[str]:
    """The config's e-mail addresses and phone numbers, also as CDK would squash them into an ID."""
    config = load_config(config_path)
    assert config.alternate_contacts is not None and config.automation is not None
    sets = [config.alternate_contacts.contacts] + [o.contacts for o in config.alternate_contacts.overrides]
    contacts = [contact for each in sets for contact in each.values() if isinstance(contact, dict)]
    emails = [c["EmailAddress"] for c in contacts] + [str(config.automation.notification_email)]
    phones = [c["PhoneNumber"] for c in contacts]
    found = set(emails) | set(phones)
    found |= {re.sub(r"[^A-Za-z0-9]", "", email) for email in emails}  # Names.unique_id keeps letters and digits
    found |= {re.sub(r"\D", "", phone) for phone in phones}
    found |= {email.split("@")[0] for email in emails}
    return found


def identifiers(directory: Path) -> Iterator[tuple[str, str]]:
    """Every logical ID and construct path the assembly carries: templates, manifests and the tree."""
    for template in directory.rglob("*.template.json"):
        for logical_id, resource in json.loads(template.read_text())["Resources"].items():
            yield template.name, logical_id
            yield template.name, str(resource.get("Metadata", {}).get("aws:cdk:path", ""))
    for manifest in directory.rglob("manifest.json"):
        for artifact in json.loads(manifest.read_text()).get("artifacts", {}).values():
            for path in artifact.get("metadata", {}):
                yield manifest.name, path

    def tree(node: dict[str, Any]) -> Iterator[tuple[str, str]]:
        yield "tree.json", str(node.get("path", ""))
        for child in node.get("children", {}).values():
            yield from tree(child)

    for tree_file in directory.rglob("tree.json"):
        yield from tree(json.loads(tree_file.read_text())["tree"])


def test_no_logical_id_or_construct_path_carries_personal_data(cli_synth: CliSynth) -> None:
    assert cli_synth.returncode == 0, cli_synth.output[-3000:]
    secrets = personal_data(ROOT / EVERY_PART)
    assert "awsplatformexamplenet" in secrets and "442079460958" in secrets
    seen = list(identifiers(cli_synth.directory))
    assert len(seen) > 500, "the scan must see the assembly's identifiers"
    leaks = [(where, name) for where, name in seen for secret in secrets if secret.lower() in name.lower()]
    assert leaks == []
