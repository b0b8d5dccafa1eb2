"""The coverage report as a person sees it: loaded in headless chromium at a phone's and a
laptop's width, for the example organization and for 1,000 accounts.

Checks: no errors while loading (script errors, console errors, failed resources) and nothing
fetched; the numbers on the page equal the report's (counted here from the report JSON itself);
no horizontal overflow of the page at 390 px and 1280 px, and no text smaller than 10 px. Makes
the screenshot docs/images/coverage-report.png (the example organization after its config is
applied and a contact changed by hand). Skipped, with the reason, where no chromium is
installed (.ci/run installs Debian's).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from benchmarks.coverage_benchmark import synthetic_report
from local_deploy.cli import main
from tests.browser import browser, render, screenshot

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "images" / "coverage-report.png"
PHONE, LAPTOP = 390, 1280
STARTED = 1796342400.0  # 2026-12-04 00:00 UTC
CHROMIUM = browser()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on this machine: apt-get install chromium (.ci/run does) to run the browser test",
)


def expected_counts(report: dict[str, Any]) -> dict[str, Counter[str]]:
    """The whole organization's accounts by setting and status, counted from the report JSON."""
    organization = report["organization"]
    outcomes = {outcome["account"]: outcome for outcome in report["outcomes"]}
    skipped = {item["account"] for item in report["skipped"]}
    found: dict[str, Counter[str]] = {name: Counter() for name in organization["settings"]}
    prefixes = {"alternate_contacts": "", "primary_contact": "primary_contact/", "regions": "regions/"}
    for account, _, _, state, mask in organization["accounts"]:
        outcome = outcomes.get(account, {})
        for bit, name in enumerate(organization["settings"]):
            keys = [key for key in outcome.get("actions", {}) if ("/" in key) == bool(prefixes[name])]
            keys = [key for key in keys if key.startswith(prefixes[name])]
            if not mask & (1 << bit):
                found[name]["not targeted"] += 1
            elif account in skipped or state != "ACTIVE" or not outcome:
                found[name]["skipped"] += 1
            elif outcome["status"] == "failed":
                found[name]["failed"] += 1
            elif outcome["status"] == "drifted" and keys:
                found[name]["drifted"] += 1
            else:
                found[name]["in sync"] += 1
    return found


def page_counts(numbers: list[list[str]]) -> dict[tuple[str, str], int]:
    """The numbers the page shows, as the browser read them: (setting, status) -> accounts."""
    return {(setting, status): int(value) for setting, status, value in numbers}


def report_and_page(tmp_path: Path, report: dict[str, Any] | None) -> tuple[dict[str, Any], Path]:
    """The report (read from the simulated example organization when None) and its page."""
    page = tmp_path / "coverage.html"
    if report is None:
        source = tmp_path / "example-report.json"
        from local_deploy import coverage
        from local_deploy.world import StateDir, open_world
        from org_bootstrap.aws import clients
        from org_bootstrap.engine.reconcile import AccountApi
        from stacks.config import load_config

        config = load_config(ROOT / "config" / "example.toml")
        organization = ROOT / "config" / "example-organization.toml"
        with open_world(StateDir(tmp_path / "state"), organization) as world, world.calls.read_only():
            api = AccountApi(clients.client("account"), config.management_account_id)
            assert config.settings
            report, _ = coverage.read_report(
                clients.client("organizations"),
                api,
                config.settings,
                management_account_id=config.management_account_id,
                job_id="drift-example",
            )
        report["started_at"] = STARTED  # the screenshot stays the same from run to run
        source.write_text(json.dumps(report), encoding="utf-8")
    else:
        source = tmp_path / "report.json"
        source.write_text(json.dumps(report), encoding="utf-8")
    assert main(["report", "--from", str(source), "--out", str(page)]) == 0
    return report, page


@pytest.mark.parametrize("accounts", [None, 1000], ids=["example-organization", "1000-accounts"])
def test_the_report_loads_without_errors_shows_the_reports_numbers_and_fits_a_phone_and_a_laptop(
    tmp_path: Path, accounts: int | None
) -> None:
    assert CHROMIUM is not None
    report, page = report_and_page(tmp_path, None if accounts is None else synthetic_report(accounts))
    expected = expected_counts(report)
    assert sum(expected[next(iter(expected))].values()) == len(report["organization"]["accounts"])

    for width in (PHONE, LAPTOP):
        rendered = render(CHROMIUM, page, width=width)
        check = rendered.check
        assert check["width"] == width
        assert check["errors"] == [], f"errors at {width} px"
        assert [name for name in check["resources"] if not name.startswith("data:")] == [], "nothing is fetched"
        assert check["overflow"] <= 0, f"the page is {check['overflow']} px wider than a {width} px window"
        assert check["minFontPx"] >= 10, f"text of {check['minFontPx']} px at {width} px"
        assert page_counts(check["numbers"]) == {
            (setting, status): counts[status]
            for setting, counts in expected.items()
            for status in ("in sync", "drifted", "failed", "skipped", "not targeted")
        }
        assert int(check["accounts"]) == len(report["organization"]["accounts"])
        assert int(check["attention"]) == sum(c["drifted"] + c["failed"] for c in expected.values())


def settled_example_report(tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The example organization once the config is applied, then a security contact changed by
    hand: what a report-only drift check would then find."""
    from local_deploy import coverage
    from local_deploy.world import StateDir, open_world
    from org_bootstrap.aws import clients
    from org_bootstrap.aws.organization import read_tree
    from org_bootstrap.engine.jobs import plan
    from org_bootstrap.engine.reconcile import AccountApi, reconcile_account
    from stacks.config import load_config

    config = load_config(ROOT / "config" / "example.toml")
    assert config.settings
    management = config.management_account_id
    with open_world(StateDir(tmp_path / "settled"), ROOT / "config" / "example-organization.toml") as world:
        api = AccountApi(clients.client("account"), management)
        organizations = clients.client("organizations")
        job = plan("apply", read_tree(organizations).accounts, config.settings, management_account_id=management)
        for account, key in job.items:
            reconcile_account(api, account, job.target_sets[key])
        edited = {"Name": "Someone Else", "Title": "Admin", "EmailAddress": "someone@example.org"}
        world.organization.put_contact("555555555555", "SECURITY", {**edited, "PhoneNumber": "+1 206 555 0199"})
        with world.calls.read_only():
            report, details = coverage.read_report(
                organizations, api, config.settings, management_account_id=management, job_id="drift-example"
            )
    report["started_at"] = STARTED
    return report, details


def test_the_screenshot_shows_the_example_organization_after_a_deploy_and_a_change_by_hand(tmp_path: Path) -> None:
    """docs/images/coverage-report.png, which the README shows (1280 px wide)."""
    assert CHROMIUM is not None
    from local_deploy import coverage

    report, details = settled_example_report(tmp_path)
    found = coverage.coverage_of(report, details=details)
    assert [(row.account, row.setting, row.status) for row in found.attention] == [
        ("555555555555", "alternate_contacts", "drifted")
    ]
    shown = tmp_path / "shown.html"
    shown.write_text(coverage.to_html(found, generated_at=STARTED, source="the example organization"))
    assert "someone@example.org" not in shown.read_text()  # masked
    assert render(CHROMIUM, shown, width=LAPTOP).check["errors"] == []

    screenshot(CHROMIUM, shown, SCREENSHOT, width=LAPTOP, height=1350)

    assert SCREENSHOT.stat().st_size > 10_000
