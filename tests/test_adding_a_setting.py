"""Adding a setting is adding its package under settings/, as docs/development.md says: a throw-away
fourth setting (tests/throwaway_setting/account_name) is found, validated, put in the editor schema,
carried by the custom resource and given its IAM actions, with no other change to the app.

It runs in a fresh process, whose settings package also looks in tests/throwaway_setting: the
settings are discovered once, at import, and every other test must see only the real three."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
THROWAWAY = ROOT / "tests" / "throwaway_setting"
SCRIPT = r"""
import json, sys
from org_bootstrap import settings
settings.__path__.append(sys.argv[1])
from stacks import silence_jsii_node_notices
silence_jsii_node_notices()
from org_bootstrap.engine.registry import SETTINGS
from stacks.app_builder import build_app
from stacks.config import BootstrapConfig, ConfigError
from stacks.config_schema import config_schema

base = {"management_account_id": "111111111111", "region": "us-east-1"}
try:
    BootstrapConfig.from_mapping({**base, "account_name": {"name": ""}})
    problems = []
except ConfigError as error:
    problems = error.problems
config = BootstrapConfig.from_mapping({**base, "account_name": {
    "name": "Workload", "overrides": [{"account": "333333333333", "name": "Payments"}]}})
app, _ = build_app(config)
template = app.synth().get_stack_by_name("OrgBootstrapManagement").template
resources = template["Resources"].values()
(settings_resource,) = [r for r in resources if r["Type"] == "Custom::AlternateContacts"]
actions = sorted({action for r in resources if r["Type"] == "AWS::IAM::Policy"
    for statement in r["Properties"]["PolicyDocument"]["Statement"] if statement["Effect"] == "Allow"
    for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    if action.startswith("account:")})
print(json.dumps({
    "settings": [setting.name for setting in SETTINGS],
    "problems": problems,
    "schema": config_schema()["properties"].get("account_name", {}).get("description"),
    "spec": json.loads(settings_resource["Properties"]["AccountNameSpec"]),
    "actions": actions,
}))
"""


@pytest.fixture(scope="module")
def added() -> dict[str, Any]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "runtime")])}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(THROWAWAY)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_new_package_is_found_beside_the_three(added: dict[str, Any]) -> None:
    assert added["settings"] == ["account_name", "alternate_contacts", "primary_contact", "regions"]


def test_its_section_is_validated_naming_the_field_and_is_in_the_editor_schema(added: dict[str, Any]) -> None:
    assert added["problems"] and all(problem.startswith("account_name.name: ") for problem in added["problems"])
    assert added["schema"] == "The name of the organization's accounts"


def test_the_custom_resource_carries_its_spec_and_its_roles_get_its_actions(added: dict[str, Any]) -> None:
    assert added["spec"]["name"] == "Workload"
    assert added["spec"]["overrides"] == [{"account": "333333333333", "name": "Payments"}]
    assert {"account:GetAccountInformation", "account:PutAccountName"} <= set(added["actions"])
