"""Day two on the simulated organization: people's and AWS's actions emit the documented events,
which the deployed rules match (moto's EventBridge pattern matching), the deployed queue delivers
(retries, then the dead-letter queue) to the real handler; the drift command runs the real check."""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from local_deploy import world as world_module
from local_deploy.cli import main
from local_deploy.synth import Synthesized, synthesize
from local_deploy.world import StateDir, open_world
from org_bootstrap.engine import continuation
from simulation.organization import ApiLog
from tests.conftest import ROOT, at_simulation_speed
from tests.test_local_deploy import EXAMPLE, SEED, STACK, synthesized

CONFIGURED = {t: EXAMPLE[t] for t in ("BILLING", "OPERATIONS", "SECURITY")}
PAYMENTS = "555555555555"


@pytest.fixture(autouse=True)
def published_quotas_lifted() -> Iterator[None]:
    with at_simulation_speed():
        yield


@pytest.fixture(scope="module")
def automation(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The example config with [automation] (its defaults), synthesized as the CLI does."""
    config = tmp_path_factory.mktemp("config") / "automation.toml"
    text = (ROOT / "config" / "example.toml").read_text()  # all three settings
    config.write_text(text + "\n[automation]\n")
    return synthesize(config)


def report_only(synthesized: Synthesized) -> Synthesized:
    template = copy.deepcopy(synthesized.template)
    for resource in template["Resources"].values():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if "REPORT_ONLY" in variables:
            variables["REPORT_ONLY"] = "true"
    return dataclasses.replace(synthesized, template=template)


@pytest.fixture(scope="module")
def deployed(automation: Synthesized, tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("deployed") / "state"
    with at_simulation_speed():
        assert main(["deploy", "--state-dir", str(state)], synthesizer=lambda path: automation) == 0
    return state


@pytest.fixture
def state(deployed: Path, tmp_path: Path) -> list[str]:
    """A copy of the deployed world for one test: ``--state-dir`` and its path."""
    copied = tmp_path / "state"
    shutil.copytree(deployed, copied)
    return ["--state-dir", str(copied)]


def contacts(state: list[str], account: str) -> dict[str, Any]:
    with open_world(StateDir(Path(state[1])), SEED) as world:
        return world.organization.contacts(account)


def history(state: list[str]) -> list[dict[str, Any]]:
    with open_world(StateDir(Path(state[1])), SEED) as world:
        return world.history


def test_an_account_created_by_organizations_in_an_ou_gets_its_contacts_from_its_events(
    state: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["create-account", "Payments Staging", "--ou", "Production", "--account-id", "141414141414", *state]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for event, rule in (
        ("CreateAccountResult", "AccountCreated"),
        ("AccountJoinedOrganization", "AccountJoined"),
        ("MoveAccount", "AccountMoved"),
    ):
        line = next(line for line in out.splitlines() if line.startswith(f"  {event} "))
        assert f"ContactAutomation{rule} →" in line, line
    assert "141414141414 changed: BILLING put" in out
    assert contacts(state, "141414141414") == CONFIGURED
    (entry,) = history(state)
    assert entry["account"] == "141414141414" and entry["why"].startswith("CreateAccountResult event, rule ")


def test_control_tower_adds_its_lifecycle_event(state: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["create-account", "Sandbox Carol", "--ou", "Sandbox", "--control-tower", "--account-id", "141414141414"]
    assert main([*argv, *state]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  CreateManagedAccount "))
    assert "ContactAutomationManagedAccountCreated →" in line
    assert contacts(state, "141414141414") == CONFIGURED


def test_an_invited_account_joins_through_its_management_account_event_not_accept_handshake(
    state: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["invite", "141414141414", "Acquired Startup", *state]) == 0
    out = capsys.readouterr().out
    accepted = next(line for line in out.splitlines() if line.startswith("  AcceptHandshake "))
    assert "141414141414 (its own trail)" in accepted and "no rule matched" in accepted
    joined = next(line for line in out.splitlines() if line.startswith("  AccountJoinedOrganization "))
    assert "ContactAutomationAccountJoined →" in joined and "141414141414 changed" in joined
    assert contacts(state, "141414141414") == CONFIGURED


def test_a_hand_edit_matches_no_rule_and_the_drift_check_puts_it_back(
    state: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    edit = ["edit-contact", PAYMENTS, "SECURITY", "--name", "Someone Else", "--email", "someone@example.com"]
    assert main([*edit, *state]) == 0
    assert "no rule matched" in capsys.readouterr().out
    assert contacts(state, PAYMENTS)["SECURITY"]["Name"] == "Someone Else"

    assert main(["drift", *state]) == 0
    out = capsys.readouterr().out
    assert "Drift check (fix mode)" in out and "drifted 1, fixed 1, failed 0" in out
    assert "notified the topic: Account settings drift: 1 drifted, 1 fixed, 0 failed" in out
    assert contacts(state, PAYMENTS)["SECURITY"] == CONFIGURED["SECURITY"]
    by_hand, fixed = history(state)
    assert by_hand["changes"] == {"SECURITY": "put by hand"} and by_hand["why"].startswith("by hand")
    assert fixed["changes"] == {"SECURITY": "put"} and fixed["why"].startswith("drift check (fix mode), job drift-")

    assert main(["state", *state]) == 0
    out = capsys.readouterr().out
    assert "What changed after the deploys, and why" in out and "drift check (fix mode)" in out


def test_a_check_whose_job_another_worker_holds_says_so_and_claims_nothing(
    state: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Another invocation holds the new check's lease (a killed check's, until its timeout): this one
    # touches no account and writes no report, and the command says why rather than "in sync".
    with mock.patch.object(continuation.Lease, "take", return_value=None):
        assert main(["drift", *state]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "is being worked by another invocation: no report until it finishes" in out
    assert "in sync" not in out


def test_an_unchanged_config_deployed_with_reconcile_puts_a_hand_edit_back(
    automation: Synthesized, state: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """CloudFormation sends nothing for an unchanged resource, so a plain re-deploy leaves a hand
    edit; ``deploy --reconcile`` (``cdk deploy -c reconcile=...``) makes it an Update that compares
    every targeted account and puts back only what drifted."""
    assert main(["edit-contact", PAYMENTS, "SECURITY", "--name", "Someone Else", *state]) == 0
    config = ["--config", automation.config_path]
    assert main(["deploy", *config, *state]) == 0  # the real synth: the same template, nothing to do
    assert "No changes" in capsys.readouterr().out
    assert contacts(state, PAYMENTS)["SECURITY"]["Name"] == "Someone Else"

    assert main(["deploy", "--reconcile", *config, *state]) == 0
    out = capsys.readouterr().out
    (writes,) = re.findall(r"writes to the organization: (.*)", out)
    assert writes.strip() == "account:PutAlternateContact x1", out[-2000:]  # the edit, and nothing else
    assert contacts(state, PAYMENTS)["SECURITY"] == CONFIGURED["SECURITY"]


def test_a_report_only_check_reports_the_edit_and_changes_nothing(
    automation: Synthesized, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    assert main(["deploy", *state], synthesizer=lambda path: report_only(automation)) == 0
    assert main(["edit-contact", PAYMENTS, "SECURITY", "--name", "Someone Else", *state]) == 0
    capsys.readouterr()
    assert main(["drift", *state]) == 0
    out = capsys.readouterr().out
    assert "Drift check (report-only mode)" in out and "drifted 1, fixed 0" in out
    assert contacts(state, PAYMENTS)["SECURITY"]["Name"] == "Someone Else"


def test_a_message_that_keeps_failing_is_retried_then_moved_to_the_dead_letter_queue(
    state: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    log = ApiLog(denied_accounts={"141414141414"})  # an SCP denies the account's contacts
    strict = world_module.strict_aws
    with mock.patch.object(world_module, "strict_aws", lambda **kwargs: strict(log, **kwargs)):
        assert main(["invite", "141414141414", "Locked Down", *state]) == 0
    out = capsys.readouterr().out
    assert "failed 5 times: moved to the dead-letter queue" in out  # the queue's maxReceiveCount
    assert "visibility timeout (720 s, on the simulated clock; at once with --real-time)" in out
    assert log.calls["GetAlternateContact"] == 5  # one read per delivery: the first type fails each time
    (entry,) = history(state)
    assert entry["status"] == "dead-lettered" and entry["account"] == "141414141414"
    assert contacts(state, "141414141414") == {}


def test_suspending_logs_an_event_no_rule_listens_for_and_tagging_reevaluates_the_account(
    state: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["suspend", "777777777777", *state]) == 0
    assert main(["tag", "888888888888", "team=orders", *state]) == 0
    assert main(["tag", "888888888888", "bad#key=x", *state]) == 1  # Organizations' own rule, which moto lacks
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("  CloseAccount "))
    assert "no rule matched" in line
    line = next(line for line in out.splitlines() if line.startswith("  TagResource "))
    assert "AccountTagsChanged" in line and "888888888888 unchanged" in line  # team is not a tag the config names
    with open_world(StateDir(Path(state[1])), SEED) as world:  # kept between invocations
        accounts = {a["id"]: a for a in world.organization.to_mapping()["accounts"]}
    assert accounts["777777777777"]["status"] == "SUSPENDED"
    assert accounts["888888888888"]["tags"] == {"team": "orders"}
    assert main(["move", "777777777777", "--ou", "Nowhere", *state]) == 1
    assert "--ou 'Nowhere': no such OU" in capsys.readouterr().err
    assert main(["invite", "42", "Typo", *state]) == 1
    assert "account ID: '42' is not an AWS account ID" in capsys.readouterr().err


def test_without_automation_it_says_no_rule_matched_and_no_check_is_deployed(
    tmp_path: Path, example_app: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    example = synthesized(dict(example_app["assembly"].get_stack_by_name(STACK).template))  # the example config
    assert main(["deploy", *state], synthesizer=example) == 0
    capsys.readouterr()
    assert main(["move", "101010101010", "--ou", "Production", *state]) == 0
    out = capsys.readouterr().out
    assert "No rule matched: no automation is deployed (the config has no [automation] section)" in out
    assert main(["drift", *state]) == 1
    error = capsys.readouterr().err
    assert "no drift schedule to run: no automation is deployed (the config has no [automation] section)" in error
    empty = ["--state-dir", str(tmp_path / "empty")]
    assert main(["move", "101010101010", "--ou", "Production", *empty]) == 0
    assert "No rule matched: the stack is not deployed" in capsys.readouterr().out


def test_the_demo_ends_with_a_joined_account_and_a_hand_edit_put_back(
    automation: Synthesized, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    assert main(["demo", *state], synthesizer=lambda path: automation) == 0
    out = capsys.readouterr().out
    for expected in (
        "4. Day two",
        "AccountJoinedOrganization",
        "5. Day two: the Data Platform account is tagged into production",
        "7. The scheduled drift check",
        "Demo complete",
    ):
        assert expected in out, expected
    assert contacts(state, "141414141414") == CONFIGURED
    assert contacts(state, PAYMENTS)["SECURITY"] == CONFIGURED["SECURITY"]
    assert "regions.targets.tags: 2 account(s) (555555555555, 666666666666)" in out  # the plan's tag selections
    assert "the primary contact phone of 1 account(s) is UNVERIFIED (555555555555)" in out  # a note, not a failure
    tagged = next(line for line in out.splitlines() if line.startswith("  TagResource "))
    assert "999999999999 changed: regions/ap-east-1 enable" in tagged  # tagged into production: its Regions


def test_in_delegated_administrator_mode_the_management_account_forwards_the_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "delegated.toml"
    example = (ROOT / "config" / "example.toml").read_text()
    config.write_text('settings_deployed_in = "delegated_administrator"\n' + example + "\n[automation]\n")
    delegated = synthesize(config)
    state = ["--state-dir", str(tmp_path / "state")]
    assert main(["deploy", *state], synthesizer=lambda path: delegated) == 0
    capsys.readouterr()
    log = ApiLog()
    strict = world_module.strict_aws
    with mock.patch.object(world_module, "strict_aws", lambda **kwargs: strict(log, **kwargs)):
        assert main(["invite", "141414141414", "Acquired Startup", *state]) == 0
    out = capsys.readouterr().out
    assert "ForwardOrganizationEventsAccountJoined → bus" in out and "ContactAutomationAccountJoined →" in out
    assert contacts(state, "141414141414") == CONFIGURED
    # The delegated administrator's handler made the calls, from its own account.
    assert {caller for (operation, caller, _) in log.callers if operation == "PutAlternateContact"} == {"222222222222"}
