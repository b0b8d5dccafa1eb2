"""The plan a person reads (every width from 80 columns, on a terminal and piped) and the plan for
machines (``--output json``), on the example organization and one past 50 accounts."""

from __future__ import annotations

import io
import json
import re
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from local_deploy.cli import main
from local_deploy.plan import CHANGING, FAILED, IN_SYNC, Plan, build_plan
from local_deploy.plan_json import FORMAT_VERSION
from local_deploy.plan_view import PlanOptions, action_text, item_title, plan_view
from local_deploy.stack import StackState
from local_deploy.synth import Synthesized
from local_deploy.template import Template
from local_deploy.world import StateDir, open_world
from org_bootstrap.aws import clients
from org_bootstrap.engine.reconcile import AccountApi
from org_bootstrap.settings.alternate_contacts import SETTING as ALTERNATE_CONTACTS
from org_bootstrap.settings.primary_contact import SETTING as PRIMARY_CONTACT
from stacks.config import load_config
from tests.conftest import ROOT, at_simulation_speed

SEED = ROOT / "config" / "example-organization.toml"
STACK, MANAGEMENT = "OrgBootstrapManagement", "111111111111"
WIDTHS = (80, 100, 120, 160)
ANSI = re.compile(r"\x1b\[")


@pytest.fixture(autouse=True)
def published_quotas_lifted() -> Iterator[None]:
    with at_simulation_speed():
        yield


@pytest.fixture(scope="module")
def example_template(example_app: dict[str, Any]) -> dict[str, Any]:
    return dict(example_app["assembly"].get_stack_by_name(STACK).template)


@pytest.fixture(scope="module")
def example_plan(example_template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Plan:
    with at_simulation_speed(), open_world(StateDir(tmp_path_factory.mktemp("plan") / "state"), SEED) as world:
        stack = StackState(STACK, MANAGEMENT, "us-east-1")
        api = AccountApi(clients.client("account"), stack.account)
        with world.calls.read_only():
            return build_plan(Template(example_template), stack, clients.client("organizations"), api)


def synthesized(template: dict[str, Any]) -> Any:
    return lambda path: Synthesized(str(path), load_config(), STACK, template, 0.0)


def rendered(plan: Plan, width: int, options: PlanOptions | None = None) -> tuple[str, str]:
    """The plan as a terminal of ``width`` columns shows it: (text without styles, what was written)."""
    console = Console(force_terminal=True, width=width, record=True, file=io.StringIO())
    stack = StackState(STACK, MANAGEMENT, "us-east-1")
    console.print(plan_view(plan, stack, real=False, options=options or PlanOptions()))
    written = console.file.getvalue()  # type: ignore[attr-defined]
    return console.export_text(), written


def characters(text: str) -> Counter[str]:
    """Every character that is not layout (spaces, the header rules): wrapping and folding move
    them, cutting off or an ellipsis changes them."""
    return Counter(c for line in text.splitlines() if set(line.strip()) != {"-"} for c in line if not c.isspace())


def assert_complete(text: str, width: int, plan: Plan) -> None:
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width, [line for line in lines if len(line) > width][:3]
    assert "…" not in text
    words = Counter(text.split())
    for account in plan.accounts:
        assert account.account.id in words, account.account.id
        for line in account.changes:
            for word in [*item_title(line).split(), *action_text(line).split()]:
                assert word in words, (account.account.id, line.contact_type, word)
    for setting in ("alternate contacts", "primary contact", "opt-in Regions"):
        assert setting in text
    assert lines[-1].startswith("Plan: 43 writes in 11 accounts") or "Plan: 43 writes in 11 accounts" in text


@pytest.mark.parametrize("width", WIDTHS)
def test_the_example_plan_fits_a_terminal_of_every_width_with_nothing_cut_off(example_plan: Plan, width: int) -> None:
    text, written = rendered(example_plan, width)
    assert ANSI.search(written)  # a terminal gets colours
    assert_complete(text, width, example_plan)
    assert characters(text) == characters(rendered(example_plan, 400)[0])  # wrapped, never cut
    for header in ("Account", "Item", "Action", "Now", "Wants"):  # no column dropped
        assert re.search(rf"^ ?{header}\b| {header}\b", text, re.MULTILINE), header
    assert "Plan: 43 writes in 11 accounts (36 create, 4 update, 3 enable)" in " ".join(text.split())
    detail, _ = rendered(example_plan, width, PlanOptions(detail=True))
    assert_complete(detail, width, example_plan)
    assert characters(detail) == characters(rendered(example_plan, 400, PlanOptions(detail=True))[0])


@pytest.mark.parametrize("width", WIDTHS)
def test_the_piped_plan_is_plain_text_as_wide_as_columns_says(
    example_template: dict[str, Any],
    tmp_path: Path,
    width: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    example_plan: Plan,
) -> None:
    argv = ["plan", "--state-dir", str(tmp_path / "state")]
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(argv, synthesizer=synthesized(example_template)) == 0
    out = capsys.readouterr().out
    assert not ANSI.search(out) and "─" not in out  # no colours, no box-drawing characters
    assert_complete(out, width, example_plan)
    assert out.splitlines()[-1].startswith("Plan: 43 writes in 11 accounts")  # the line a script greps
    monkeypatch.setenv("COLUMNS", "400")
    assert main(argv, synthesizer=synthesized(example_template)) == 0
    assert characters(out) == characters(capsys.readouterr().out)


def test_an_update_of_many_fields_is_summarised_and_detail_shows_every_field(example_plan: Plan) -> None:
    payments = next(line for line in example_plan.accounts if line.account.id == "555555555555")
    primary = next(line for line in payments.contacts if line.contact_type == "primary_contact/PRIMARY")
    assert action_text(primary) == "update 7 fields"
    text, _ = rendered(example_plan, 100)
    assert "update 7 fields" in text and "+5 more (--detail)" in text and "postal code:" not in text
    detail, _ = rendered(example_plan, 100, PlanOptions(detail=True))
    for field in ("full name:", "address line 1:", "city:", "postal code:", "state or region:", "phone:"):
        assert field in detail, field
    assert "+5 more" not in detail


def test_a_masked_change_still_shows_what_changed() -> None:
    # The case: "SOC · s***@corp.example.com → SOC · s***@corp.example.com", "update e-mail".
    old = {"Name": "SOC", "Title": "Security", "EmailAddress": "soc@corp.example.com", "PhoneNumber": "+1 206 555 0199"}
    new = {**old, "EmailAddress": "security@corp.example.com"}
    now, wants = ALTERNATE_CONTACTS.text(old, against=new), ALTERNATE_CONTACTS.text(new, against=old)
    assert (now, wants) == ("SOC · so***@corp.example.com", "SOC · se***@corp.example.com")
    assert ALTERNATE_CONTACTS.differences(old, new) == [("e-mail", "so***@corp.example.com", "se***@corp.example.com")]
    assert ALTERNATE_CONTACTS.text(old) == "SOC · s***@corp.example.com"  # alone: as masked as ever
    # Only the phone changes: the line shows the phones, each masked, and different.
    phone = {**old, "PhoneNumber": "+1 206 555 0299"}
    assert ALTERNATE_CONTACTS.text(phone, against=old).endswith("· ***299")
    assert ALTERNATE_CONTACTS.text(old, against=phone).endswith("· ***199")
    # One local part the start of the other: more would show it whole, so a fingerprint tells them apart.
    (_, before, after), *_ = ALTERNATE_CONTACTS.differences(
        {**old, "EmailAddress": "ops@corp.example.com"}, {**old, "EmailAddress": "ops2@corp.example.com"}
    )
    assert before != after and "ops" not in before + after and before.endswith("@corp.example.com")
    # An address: the differing word masked, and different.
    street = {
        "FullName": "Example Corp",
        "AddressLine1": "120 Main Street",
        "City": "Seattle",
        "PostalCode": "98109",
        "CountryCode": "US",
        "PhoneNumber": "+1 206 555 0100",
    }
    moved = {**street, "AddressLine1": "100 Main Street"}
    assert PRIMARY_CONTACT.differences(street, moved) == [("address line 1", "12*** M*** S***", "10*** M*** S***")]
    shown = PRIMARY_CONTACT.differences(street, moved, show_values=True)
    assert shown == [("address line 1", "120 Main Street", "100 Main Street")]


def seed_past_50(tmp_path: Path, in_sync: int) -> Path:
    """The example organization and ``in_sync`` more accounts in an OU of their own, each already as
    the example config wants it."""
    lines = [SEED.read_text(), '\n[[organizational_units]]\nid = "ou-ex01-quietous"\nname = "Quiet"\n']
    wanted = tomllib.loads((ROOT / "config" / "example.toml").read_text())
    for index in range(in_sync):
        account_id = f"{900000000000 + index}"
        lines.append(
            f'\n[[accounts]]\nid = "{account_id}"\nname = "Team {index}"\nemail = "team{index}@example.com"\n'
            'parent = "ou-ex01-quietous"\n'
        )
        for contact_type, contact in wanted["alternate_contacts"]["contacts"].items():
            lines.append(f"contacts.{contact_type} = {_inline(contact)}\n")
        lines.append(f"primary_contact = {_inline(wanted['primary_contact']['contact'])}\n")
    seed = tmp_path / "organization.toml"
    seed.write_text("".join(lines))
    return seed


def _inline(table: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in table.items()) + " }"


def test_past_50_accounts_the_plan_shows_only_what_changes_and_says_what_it_hides(
    example_template: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed = seed_past_50(tmp_path, 50)  # 62 accounts: 11 changing, 50 in sync, 1 skipped
    monkeypatch.setenv("COLUMNS", "100")
    argv = ["plan", "--state-dir", str(tmp_path / "state"), "--organization", str(seed)]
    assert main(argv, synthesizer=synthesized(example_template)) == 0
    out = capsys.readouterr().out
    assert "Account settings, what changes" in out
    assert "51 accounts not shown: 50 in sync, 1 skipped (not ACTIVE) (--all shows them)" in out
    assert "900000000007" not in out and "131313131313" not in out
    assert "555555555555" in out and "+1 in sync" in out  # a changing account's in-sync items: counted
    # Quiet (a title wraps at its table's width)
    assert "By OU, the accounts directly in it (1 OU with no change not shown)" in " ".join(out.split())
    assert re.search(r"^ Security +2 +2 +7 *$", out, re.MULTILINE)
    assert out.splitlines()[-1].startswith("Plan: 43 writes in 11 accounts")

    assert main([*argv, "--all"], synthesizer=synthesized(example_template)) == 0
    everything = capsys.readouterr().out
    assert "Account settings, every account" in everything and "not shown" not in everything
    assert "900000000007" in everything and "131313131313" in everything
    assert re.search(r"^ Quiet +50 +0 +0 *$", everything, re.MULTILINE)

    small = ["plan", "--state-dir", str(tmp_path / "small"), "--changes-only"]
    assert main(small, synthesizer=synthesized(example_template)) == 0  # 12 accounts, asked for
    asked = capsys.readouterr().out
    assert "1 account not shown: 1 skipped (not ACTIVE) (--all shows them)" in asked
    assert re.search(r"^ Sandbox +3 +2 +8 *$", asked, re.MULTILINE)  # its suspended account counted


# -- the plan for machines --------------------------------------------------------------------

# The keys of format_version 1, level by level: a key removed or renamed must raise FORMAT_VERSION
# (and update docs/plan.md); a key added is added here and in the docs.
SCHEMA: dict[str, Any] = {
    "": {"format_version", "masked", "masked_fields", "organization", "stacks"},
    "organization": {"id", "real", "management_account_id", "accounts", "organizational_units", "trusted_access"},
    "stack": {
        "name",
        "account",
        "region",
        "status",
        "resources",
        "supporting_resources",
        "preflight",
        "settings",
        "accounts",
        "totals",
        "summary",
    },
    "resource": {"logical_id", "type", "action", "changed_properties", "now", "wants"},
    "preflight": {"problems", "warnings"},
    "account": {"id", "name", "organizational_unit", "status", "reason", "items"},
    "organizational_unit": {"id", "path"},
    "item": {"key", "setting", "item", "title", "action", "summary", "by_deploy", "fields", "now", "wants"},
    "totals": {"writes", "actions", "drifted_items", "accounts", "by_setting", "by_organizational_unit"},
    "totals.actions": {"create", "update", "delete", "restore", "enable", "disable", "in sync", "left alone"},
    "totals.accounts": {"total", "changing", "failed", "drifted", "in sync", "skipped", "not targeted"},
    "by_setting": {"setting", "title", "writes", "actions", "drifted"},
    "by_organizational_unit": {"id", "path", "accounts", "changing", "writes"},
}


def plan_json(argv: list[str], template: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["plan", "--output", "json", *argv], synthesizer=synthesized(template)) == 0
    captured = capsys.readouterr()
    assert "Synthesized" in captured.err and "Read-only:" in captured.err  # what a person reads: stderr
    return dict(json.loads(captured.out))  # stdout is the document alone


def test_the_json_plan_keeps_its_documented_schema(
    example_template: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = plan_json(["--state-dir", str(tmp_path / "state")], example_template, capsys)
    assert document["format_version"] == FORMAT_VERSION == 1
    assert set(document) == SCHEMA[""]
    assert set(document["organization"]) == SCHEMA["organization"]
    (stack,) = document["stacks"]
    assert set(stack) == SCHEMA["stack"]
    assert all(set(resource) == SCHEMA["resource"] for resource in stack["resources"])
    assert set(stack["preflight"]) == SCHEMA["preflight"]
    assert all(set(account) == SCHEMA["account"] for account in stack["accounts"])
    assert all(set(account["organizational_unit"]) == SCHEMA["organizational_unit"] for account in stack["accounts"])
    items = [item for account in stack["accounts"] for item in account["items"]]
    assert items and all(set(item) == SCHEMA["item"] for item in items)
    totals = stack["totals"]
    assert set(totals) == SCHEMA["totals"]
    assert set(totals["actions"]) == SCHEMA["totals.actions"]
    assert set(totals["accounts"]) == SCHEMA["totals.accounts"]
    assert all(set(setting) == SCHEMA["by_setting"] for setting in totals["by_setting"])
    assert all(set(setting["actions"]) == SCHEMA["totals.actions"] for setting in totals["by_setting"])
    assert all(set(ou) == SCHEMA["by_organizational_unit"] for ou in totals["by_organizational_unit"])
    docs = (ROOT / "docs" / "plan.md").read_text()
    for level in SCHEMA.values():
        for key in level:
            assert f"`{key}`" in docs, f"docs/plan.md does not document {key!r}"


def test_the_json_plan_is_the_plan_the_table_shows(
    example_template: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = plan_json(["--state-dir", str(tmp_path / "state")], example_template, capsys)
    (stack,) = document["stacks"]
    totals = stack["totals"]
    assert totals["writes"] == 43
    assert {key: value for key, value in totals["actions"].items() if value} == {
        "create": 36,
        "update": 4,
        "enable": 3,
        "in sync": 5,
    }
    assert totals["accounts"] | {"total": 12} == {
        "total": 12,
        CHANGING: 11,
        FAILED: 0,
        "drifted": 0,
        IN_SYNC: 0,
        "skipped": 1,
        "not targeted": 0,
    }
    assert [(s["setting"], s["writes"]) for s in totals["by_setting"]] == [
        ("alternate_contacts", 30),
        ("primary_contact", 10),
        ("regions", 3),
    ]
    production = next(ou for ou in totals["by_organizational_unit"] if ou["id"] == "ou-ex01-prodapps")
    assert production == {
        "id": "ou-ex01-prodapps",
        "path": "Workloads / Production",
        "accounts": 2,
        "changing": 2,
        "writes": 10,
    }
    assert stack["summary"].startswith("Plan: 43 writes in 11 accounts")
    management = next(account for account in stack["accounts"] if account["id"] == MANAGEMENT)
    security = next(item for item in management["items"] if item["key"] == "SECURITY")
    assert security["action"] == "update" and security["fields"] == ["Name", "EmailAddress", "PhoneNumber"]
    # Masked as documented, and the change still shows.
    assert document["masked"] and "EmailAddress" in document["masked_fields"]
    assert security["now"]["EmailAddress"] == "i***@example.com" and security["wants"]["EmailAddress"] == (
        "a***@example.com"
    )
    assert security["now"]["Name"] == "IT Security"  # names are not masked
    raw = json.dumps(document)
    assert "aws-security@example.com" not in raw and "+1 206 555 0102" not in raw
    shown = plan_json(["--state-dir", str(tmp_path / "state"), "--show-values"], example_template, capsys)
    assert not shown["masked"] and shown["masked_fields"] == []
    assert "aws-security@example.com" in json.dumps(shown)
