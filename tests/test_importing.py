"""``python -m local_deploy import``: the config it writes reproduces the organization it read
(0 writes in the plan), in the fewest entries, validated by the config's own rules and its schema."""

from __future__ import annotations

import contextlib
import json
import logging
import tomllib
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import jsonschema
import pytest

from local_deploy import importing
from local_deploy.cli import main
from local_deploy.importing import ABSENT, fewest_entries
from local_deploy.organization_file import load_organization_file
from local_deploy.plan import WRITES, build_plan
from local_deploy.stack import StackState
from local_deploy.template import Template
from local_deploy.world import StateDir, open_world
from org_bootstrap.aws import clients
from org_bootstrap.aws.organization import Account
from org_bootstrap.engine.reconcile import AccountApi
from org_bootstrap.engine.registry import BY_NAME, spec_properties
from simulation.generated import generated_organization, to_toml
from simulation.organization import Organization, strict_aws
from stacks.config import BootstrapConfig, load_config
from tests.conftest import ROOT, at_simulation_speed

SEED = ROOT / "config" / "example-organization.toml"
SCHEMA = json.loads((ROOT / "config" / "schema.json").read_text(encoding="utf-8"))
SETTINGS_RESOURCE = "Custom::AlternateContacts"


@pytest.fixture(autouse=True)
def published_quotas_lifted() -> Iterator[None]:
    """The import paces itself at the published quotas (benchmarks/import_benchmark.py measures
    that); the simulated organization needs no pacing."""
    with at_simulation_speed():
        yield


# -- the fewest entries ----------------------------------------------------------------------------


def tree(places: Mapping[str, tuple[str, ...]]) -> list[Account]:
    return [Account(account_id, "ACTIVE", path) for account_id, path in places.items()]


ROOT_ID, OU_A, OU_B, OU_B1 = "r-root", "ou-root-aaaaaaaa", "ou-root-bbbbbbbb", "ou-root-bbbbbbb1"
PLACES = {
    "111111111111": (ROOT_ID,),
    "200000000001": (ROOT_ID, OU_A),
    "200000000002": (ROOT_ID, OU_A),
    "200000000003": (ROOT_ID, OU_A),
    "300000000001": (ROOT_ID, OU_B),
    "300000000002": (ROOT_ID, OU_B, OU_B1),
    "300000000003": (ROOT_ID, OU_B, OU_B1),
}


def test_the_value_most_accounts_share_is_the_default_an_agreeing_subtree_an_ou_override_the_rest_accounts() -> None:
    values = {account: "company" for account in PLACES}
    values |= {"300000000002": "b1", "300000000003": "b1"}  # OU B1's whole subtree agrees
    values["200000000002"] = "own"  # one account of its own
    assert fewest_entries(tree(PLACES), values) == {ROOT_ID: "company", OU_B1: "b1", "200000000002": "own"}


def test_an_ou_whose_subtree_mostly_differs_gets_the_override_and_its_exceptions_their_own() -> None:
    values = {account: "company" for account in PLACES}
    values |= {"300000000001": "b", "300000000002": "b", "300000000003": "company"}
    assert fewest_entries(tree(PLACES), values) == {ROOT_ID: "company", OU_B: "b", "300000000003": "company"}


def test_a_type_most_accounts_lack_is_left_out_and_a_minority_lacking_it_gets_a_delete_of_nothing() -> None:
    mostly_absent = {account: ABSENT for account in PLACES} | {"200000000001": "ops"}
    assert fewest_entries(tree(PLACES), mostly_absent) == {"200000000001": "ops"}
    mostly_present = {account: "ops" for account in PLACES} | {"300000000001": ABSENT}
    assert fewest_entries(tree(PLACES), mostly_present) == {ROOT_ID: "ops", "300000000001": ABSENT}
    # A subtree that has it in full, in an organization that mostly lacks it: an OU override, no delete.
    subtree = {account: ABSENT for account in PLACES} | {a: "ops" for a in PLACES if a.startswith("2")}
    assert fewest_entries(tree(PLACES), subtree) == {OU_A: "ops"}


def test_accounts_not_read_take_whatever_costs_least() -> None:
    values = {account: "b" for account in PLACES if PLACES[account][-1] in (OU_B, OU_B1)}
    values |= {"111111111111": "company", "200000000001": "company"}  # 200000000002/3 not read
    assert fewest_entries(tree(PLACES), values) == {ROOT_ID: "company", OU_B: "b"}


# -- the example organization, end to end ----------------------------------------------------------


def import_file(tmp_path: Path, seed: Path, *extra: str) -> tuple[Path, StateDir]:
    output, state = tmp_path / "imported.toml", StateDir(tmp_path / "state")
    argv = ["import", "--organization", str(seed), "--state-dir", str(state.path), "--output", str(output), *extra]
    assert main(argv) == 0
    return output, state


def checked(path: Path) -> BootstrapConfig:
    """The file as the app reads it: its own validation and the editor's JSON Schema."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(data, SCHEMA)
    return load_config(path)


def planned_writes(state: StateDir, seed: Path, config: BootstrapConfig) -> tuple[int, Any]:
    """The local plan of a first deploy of ``config``'s settings on the organization in ``state``:
    its setting writes, and the plan. The settings resource carries each spec as the synthesized
    template does (spec_properties)."""
    template = {"Resources": {"Settings": {"Type": SETTINGS_RESOURCE, "Properties": spec_properties(config.settings)}}}
    with open_world(state, seed) as world, world.calls.read_only():
        stack = StackState("OrgBootstrapManagement", config.management_account_id, config.region)
        api = AccountApi(clients.client("account"), stack.account)
        plan = build_plan(Template(template), stack, clients.client("organizations"), api)
    return sum(plan.totals().contacts[action] for action in WRITES), plan


def test_the_example_organization_imports_to_a_config_the_plan_finds_in_sync(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    output, state = import_file(tmp_path, SEED)
    config = checked(output)
    assert sorted(config.settings) == ["alternate_contacts", "primary_contact", "regions"]
    assert all(spec.removal == "retain" for spec in config.settings.values())
    text = output.read_text(encoding="utf-8")
    assert "131313131313 Legacy Analytics: SUSPENDED" in text  # listed, never guessed
    assert "it-security@example.com" in text  # people's data is in the file...
    shown = capsys.readouterr().out + caplog.text + (state.path / "handlers.log").read_text(encoding="utf-8")
    assert "@example.com" not in shown and "555 0199" not in shown  # ...never on the screen or in a log
    writes, plan = planned_writes(state, SEED, config)
    assert writes == 0
    totals = plan.totals()
    assert (totals.failed, totals.skipped, totals.contacts["in sync"]) == (0, 1, 9)
    assert not list(tmp_path.glob("*.partial"))


def test_the_cli_plan_of_the_imported_example_shows_0_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole path a user takes: import, then plan with the imported file (synthesized, cdk-nag included)."""
    output, state = import_file(tmp_path, SEED)
    capsys.readouterr()
    argv = ["plan", "--organization", str(SEED), "--state-dir", str(state.path), "--config", str(output)]
    assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())  # as printed, wrapped to the terminal
    assert "0 writes (0 create, 0 update, 0 delete, 0 restore), 9 in sync" in out, out[-2000:]


def test_settings_and_an_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output, state = import_file(tmp_path, SEED, "--settings", "regions")
    assert sorted(checked(output).settings) == ["regions"]
    argv = ["import", "--organization", str(SEED), "--state-dir", str(state.path), "--output", str(output)]
    assert main(argv) == 1 and "exists" in capsys.readouterr().err
    assert main([*argv, "--settings", "contacts", "--force"]) == 1
    assert "--settings: contacts: give some of alternate_contacts" in capsys.readouterr().err


def test_an_interrupted_import_writes_nothing(tmp_path: Path) -> None:
    output = tmp_path / "imported.toml"
    argv = ["import", "--organization", str(SEED), "--state-dir", str(tmp_path / "state"), "--output", str(output)]
    with mock.patch.object(importing, "read_accounts", side_effect=KeyboardInterrupt):
        assert main(argv) == 130
    assert not output.exists()
    output.write_text("kept\n", encoding="utf-8")
    with mock.patch("os.replace", side_effect=KeyboardInterrupt), pytest.raises(KeyboardInterrupt):
        importing.write_atomically(output, "new\n")
    assert output.read_text(encoding="utf-8") == "kept\n"
    assert [path.name for path in tmp_path.iterdir() if path.is_file()] == ["imported.toml"]


def api_log_set(**faults: Any) -> tuple[Any, dict[str, Any]]:
    """A stand-in for the CLI's open_world whose simulated API has ``faults`` (ApiLog fields) set;
    the log's counters are copied into the dictionary returned beside it when the world closes."""
    seen: dict[str, Any] = {}

    @contextlib.contextmanager
    def opened(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with open_world(*args, **kwargs) as world:
            for name, value in faults.items():
                setattr(world.api_log, name, value)
            try:
                yield world
            finally:
                seen["throttled"] = Counter(world.api_log.throttled)

    return opened, seen


def test_throttled_reads_are_retried_until_every_account_is_read(tmp_path: Path) -> None:
    calm, _ = import_file(tmp_path / "calm", SEED)
    stormy, seen = api_log_set(throttle_rate={op: 0.5 for op in ("GetAlternateContact", "ListRegions")})
    with mock.patch("local_deploy.cli.open_world", stormy):
        output, _ = import_file(tmp_path, SEED)
    assert seen["throttled"]["GetAlternateContact"] > 5 and seen["throttled"]["ListRegions"] > 0
    assert body(output) == body(calm)


def test_an_account_that_cannot_be_read_is_listed_and_excluded_never_guessed(tmp_path: Path) -> None:
    denied, _ = api_log_set(denied_accounts={"444444444444"})
    with mock.patch("local_deploy.cli.open_world", denied):
        output, state = import_file(tmp_path, SEED)
    config = checked(output)
    text = output.read_text(encoding="utf-8")
    assert "#   444444444444 Shared Services: AccessDeniedException: not read" in text
    assert "shared-ops@example.com" not in text  # its OPERATIONS contact was never seen
    for spec in config.settings.values():
        assert "444444444444" in spec.exclude_accounts
    writes, _ = planned_writes(state, SEED, config)
    assert writes == 0


def body(path: Path) -> list[str]:
    """The file but for the lines that say when and where it was written."""
    return [line for line in path.read_text().splitlines() if not line.startswith(("# Imported from", "#:schema"))]


# -- a generated organization of 1,000 accounts, random heterogeneity --------------------------------


@pytest.mark.parametrize(("accounts", "ous", "seed"), [(1000, 85, 1), (400, 60, 2), (400, 40, 3)])
def test_a_generated_organization_imports_in_few_entries_and_plans_0_writes(
    tmp_path: Path, accounts: int, ous: int, seed: int
) -> None:
    organization = generated_organization(accounts, ous, seed=seed)
    seed_file = tmp_path / "organization.toml"
    seed_file.write_text(to_toml(organization), encoding="utf-8")
    output, state = import_file(tmp_path, seed_file)
    config = checked(output)
    writes, plan = planned_writes(state, seed_file, config)
    assert writes == 0
    totals = plan.totals()
    suspended = sum(1 for account in organization["accounts"] if account.get("status") == "SUSPENDED")
    assert (totals.failed, totals.skipped) == (0, suspended)
    # The company's values are the defaults; what differs by subtree is an OU override, and
    # account overrides stay a small part of the organization.
    contacts = config.settings["alternate_contacts"]
    assert sorted(contacts.values) == ["BILLING", "OPERATIONS", "SECURITY"]
    assert config.settings["primary_contact"].values["PRIMARY"]["City"] == "Seattle"
    ou_overrides = [o for o in contacts.overrides if o.organizational_unit]
    assert ou_overrides, "subtrees with a SECURITY contact of their own get an OU override"
    empty = {a["id"] for a in organization["accounts"] if not a.get("contacts") and "status" not in a}
    assert empty and empty <= set(contacts.exclude_accounts), "left alone rather than deleted type by type"
    own = [o for o in contacts.overrides if o.account]
    assert len(own) < 0.2 * accounts
    print(f"\n{accounts} accounts, seed {seed}: {entry_counts(config)}")


def entry_counts(config: BootstrapConfig) -> dict[str, tuple[int, int, int]]:
    """Per setting: (items in the default, OU overrides, account overrides)."""
    found = {}
    for name, spec in config.settings.items():
        ous = sum(1 for o in spec.overrides if o.organizational_unit)
        found[name] = (len(spec.values), ous, len(spec.overrides) - ous)
    assert set(found) <= set(BY_NAME)
    return found


def test_import_from_a_real_organization_uses_the_default_session_and_only_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with strict_aws() as log:  # moto answers for AWS here: --aws only differs in where the session points
        Organization.from_mapping(load_organization_file(SEED), log)
        output = tmp_path / "real.toml"
        assert main(["import", "--aws", "--output", str(output)]) == 0
        assert log.writes() == 0
    assert "(the real organization of the current AWS credentials)" in output.read_text(encoding="utf-8")
    assert sorted(checked(output).settings) == ["alternate_contacts", "primary_contact", "regions"]
