"""The coverage report's content: counts by OU (nested) and setting, the accounts that need
attention, people's data masked, one self-contained HTML file and a CSV, bad input named."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from benchmarks.coverage_benchmark import synthetic_report
from local_deploy import coverage
from local_deploy.cli import main
from org_bootstrap.engine.reconcile import Comparison

UNITS = {"r-1": ["Root", ""], "ou-1-a": ["Workloads", "r-1"], "ou-1-b": ["Production", "ou-1-a"]}
REPORT = {
    "job": "drift-1",
    "started_at": 1796342400.0,
    "complete": True,
    "retrying": [],
    "skipped": [{"account": "444444444444", "status": "SUSPENDED"}],
    "outcomes": [
        {"account": "111111111111", "status": "unchanged"},
        {"account": "222222222222", "status": "drifted", "actions": {"SECURITY": "put"}},
        {"account": "333333333333", "status": "failed", "reason": "AccessDenied"},
        {"account": "666666666666", "status": "changed", "actions": {"regions/ap-east-1": "enable"}},
    ],
    "organization": {
        "format": 1,
        "settings": ["alternate_contacts", "regions"],
        "units": UNITS,
        "accounts": [
            ["111111111111", "management", "r-1", "ACTIVE", 1],
            ["222222222222", "app", "ou-1-b", "ACTIVE", 3],
            ["333333333333", "web", "ou-1-a", "ACTIVE", 1],
            ["444444444444", "old", "ou-1-b", "SUSPENDED", 1],
            ["555555555555", "lab", "ou-1-a", "ACTIVE", 0],
            ["666666666666", "data", "ou-1-b", "ACTIVE", 2],
        ],
    },
}


def test_every_ou_counts_its_accounts_and_those_of_the_ous_below_by_setting_and_status() -> None:
    found = coverage.coverage_of(REPORT)

    assert [unit.path for unit in found.units] == ["Root", "Root / Workloads", "Root / Workloads / Production"]
    assert found.totals("alternate_contacts") == {
        "in sync": 1,
        "drifted": 1,
        "failed": 1,
        "skipped": 1,
        "not targeted": 2,
    }
    assert found.totals("regions") == {"in sync": 2, "not targeted": 4}  # drifted in contacts, in sync here
    assert found.counts[("ou-1-b", "alternate_contacts")] == {"drifted": 1, "skipped": 1, "not targeted": 1}
    assert found.counts[("ou-1-a", "alternate_contacts")] == {
        "drifted": 1,
        "failed": 1,
        "skipped": 1,
        "not targeted": 2,
    }
    assert [(row.account, row.setting, row.status, row.reason) for row in found.attention] == [
        ("333333333333", "alternate_contacts", "failed", "AccessDenied"),
        ("222222222222", "alternate_contacts", "drifted", "differs: SECURITY put"),
    ]


def test_the_csv_has_a_row_per_ou_and_setting_with_every_status() -> None:
    rows = list(csv.DictReader(io.StringIO(coverage.to_csv(coverage.coverage_of(REPORT)))))

    assert len(rows) == 3 * 2
    workloads = next(row for row in rows if row["ou_id"] == "ou-1-a" and row["setting"] == "alternate_contacts")
    assert workloads == {
        "ou_id": "ou-1-a",
        "ou_path": "Root / Workloads",
        "depth": "1",
        "setting": "alternate_contacts",
        "in_sync": "0",
        "drifted": "1",
        "failed": "1",
        "skipped": "1",
        "not_targeted": "2",
    }


def test_the_page_is_one_self_contained_file_with_nothing_to_fetch() -> None:
    page = coverage.to_html(coverage.coverage_of(synthetic_report(200)))

    for reference in ("http:", "https:", "<script", "<link", "@import", "url(", "src="):
        assert reference not in page
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") >= 2
    assert '<meta name="viewport"' in page


def test_names_from_the_organization_are_escaped() -> None:
    report = json.loads(json.dumps(REPORT))
    report["organization"]["units"]["ou-1-a"][0] = "<b>R&D</b>"

    page = coverage.to_html(coverage.coverage_of(report))

    assert "&lt;b&gt;R&amp;D&lt;/b&gt;" in page and "<b>R&D" not in page


def test_what_differs_shows_peoples_data_masked_unless_asked() -> None:
    current = {
        "Name": "Jane Doe",
        "Title": "CISO",
        "EmailAddress": "jane.doe@example.com",
        "PhoneNumber": "+1 206 555 0100",
    }
    wanted = {**current, "Name": "Security Team", "EmailAddress": "security@example.com"}
    details = {"222222222222": [Comparison("SECURITY", current, wanted, "put")]}

    masked = coverage.to_html(coverage.coverage_of(REPORT, details=details))
    shown = coverage.to_html(coverage.coverage_of(REPORT, details=details, show_values=True))

    assert "jane.doe@example.com" not in masked and "+1 206 555 0100" not in masked
    assert "SECURITY: Jane Doe" in masked
    assert "jane.doe@example.com" in shown and "+1 206 555 0100" in shown


def test_a_deploy_report_without_the_organization_is_shown_as_one_group_of_all_settings() -> None:
    report = {key: value for key, value in REPORT.items() if key != "organization"}

    found = coverage.coverage_of(report)

    assert found.settings == [coverage.ALL_SETTINGS] and not found.has_organization
    assert found.totals(coverage.ALL_SETTINGS) == {"in sync": 2, "drifted": 1, "failed": 1, "skipped": 1}
    assert "no OUs" in coverage.to_html(found)


def test_json_that_is_not_a_report_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "other.json"
    source.write_text(json.dumps({"Resources": {}}))

    assert main(["report", "--from", str(source), "--out", str(tmp_path / "r.html")]) == 1
    assert "no 'outcomes' list" in capsys.readouterr().err
    assert main(["report", "--from", str(tmp_path / "missing.json"), "--out", str(tmp_path / "r.html")]) == 1


def test_the_report_command_writes_the_page_and_the_csv_beside_it(tmp_path: Path) -> None:
    source = tmp_path / "report.json"
    source.write_text(json.dumps(REPORT))

    assert main(["report", "--from", str(source), "--out", str(tmp_path / "out" / "coverage.html")]) == 0

    assert (tmp_path / "out" / "coverage.html").read_text().count('data-status="drifted"') == 2
    assert (tmp_path / "out" / "coverage.csv").read_text().startswith("ou_id,ou_path,depth,setting,in_sync")
