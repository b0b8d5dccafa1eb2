"""The coverage report at 10,000 accounts: the drift report's size (what S3 and Lambda hold), the
HTML page's size (limit 5 MB) and the time headless chromium takes to load and lay it out
(limit 3 s), each reported as a ratio to its limit.

    PYTHONPATH=.:runtime .venv/bin/python -m benchmarks.coverage_benchmark [--accounts 10000]

The drift report is made as the drift check writes it (``S3JobStore.save_report``'s JSON, its
``organization`` block included) for a synthetic organization: 10,000 accounts in 250 OUs three
levels deep, three settings, a few percent drifted, failed or suspended. The browser time is
chromium's own, from navigation start to the end of the load event and the first layout,
measured by a script added to a copy of the page (the page itself has none); the wall time of the
whole chromium process (start-up included) is shown beside it.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from local_deploy import coverage

HTML_LIMIT_BYTES = 5 * 1024 * 1024
RENDER_LIMIT_SECONDS = 3.0
SETTINGS = ["alternate_contacts", "primary_contact", "regions"]
ITEMS = {
    "alternate_contacts": ["BILLING", "OPERATIONS", "SECURITY"],
    "primary_contact": ["primary_contact/PRIMARY"],
    "regions": ["regions/ap-east-1", "regions/me-south-1"],
}


def synthetic_report(accounts: int, *, seed: int = 7, units: int | None = None) -> dict[str, Any]:
    """A drift report (report-only) as the drift check writes it, for ``accounts`` accounts in
    about one OU per 40 accounts, nested up to three levels: about 3% drifted, 0.5% failed, 1%
    suspended; primary contact targets everyone, Regions one OU in four, alternate contacts all but
    one OU in ten."""
    rng = random.Random(seed)
    root = "r-bm01"
    count = units or max(4, accounts // 40)
    unit_rows: dict[str, list[str]] = {root: ["Root", ""]}
    ids: list[str] = []
    for index in range(count):
        unit = f"ou-bm01-{index:08x}"
        parent = root if index < 8 or not ids else rng.choice([root, *ids[-20:]])
        if parent != root and unit_rows[parent][1] != root and unit_rows[unit_rows[parent][1]][1] != root:
            parent = root  # three levels at most
        unit_rows[unit] = [f"OU {index:03d} {rng.choice(['Prod', 'Dev', 'Sandbox', 'Shared', 'Security'])}", parent]
        ids.append(unit)
    rows: list[list[Any]] = []
    outcomes: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for index in range(accounts):
        account = f"{100000000000 + index * 7919:012d}"
        unit = root if index < 3 else ids[index % count]
        position = int(unit[-8:], 16) if unit != root else 0
        mask = 0
        if position % 10 != 9:
            mask |= 1
        mask |= 2
        if position % 4 == 0:
            mask |= 4
        state = "SUSPENDED" if rng.random() < 0.01 else "ACTIVE"
        rows.append([account, f"account-{index:05d}", unit, state, mask])
        if state != "ACTIVE":
            skipped.append({"account": account, "status": state})
            continue
        draw = rng.random()
        if draw < 0.005:
            outcomes.append({"account": account, "status": "failed", "reason": "AccessDeniedException: not authorized"})
        elif draw < 0.035:
            targeted = [SETTINGS[bit] for bit in range(3) if mask & (1 << bit)]
            setting = rng.choice(targeted)
            outcomes.append({"account": account, "status": "drifted", "actions": {ITEMS[setting][0]: "put"}})
        else:
            outcomes.append({"account": account, "status": "unchanged"})
    statuses = [outcome["status"] for outcome in outcomes]
    return {
        "job": f"drift-20261204T000000Z-bench{accounts}",
        "started_at": 1796342400.0,
        "complete": True,
        "superseded_by": None,
        "accounts": len(outcomes) + len(skipped),
        "counts": {
            status: statuses.count(status) for status in ("changed", "unchanged", "drifted", "skipped", "failed")
        }
        | {"skipped": len(skipped)},
        "retrying": [],
        "throttled_accounts": 0,
        "deadline_at": 1796342400.0 + 86400,
        "regions_in_progress": [],
        "failed": [outcome for outcome in outcomes if outcome["status"] == "failed"],
        "skipped": skipped,
        "outcomes": outcomes,
        "organization": {"format": 1, "settings": SETTINGS, "units": unit_rows, "accounts": rows},
    }


def report_json(report: dict[str, Any]) -> bytes:
    """The bytes the drift check writes to S3 (``S3JobStore.save_report``)."""
    return json.dumps(report, indent=1).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    args = parser.parse_args()
    from tests.browser import browser, render

    report = synthetic_report(args.accounts)
    stored = report_json(report)
    without = report_json({key: value for key, value in report.items() if key != "organization"})
    started = time.perf_counter()
    found = coverage.coverage_of(report)
    page = coverage.to_html(found)
    built = time.perf_counter() - started
    size = len(page.encode())
    print(f"{args.accounts} accounts, {len(found.units) - 1} OUs, {len(found.attention)} need attention")
    print(f"drift report JSON: {len(stored) / 1e6:.2f} MB ({len(without) / 1e6:.2f} MB without the organization block)")
    print(f"HTML: {size / 1e6:.2f} MB = {size / HTML_LIMIT_BYTES:.2f} of the 5 MB limit; built in {built:.2f} s")
    chromium = browser()
    if chromium is None:
        print("browser time: no chromium on this machine (apt-get install chromium)")
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "coverage.html"
        path.write_text(page, encoding="utf-8")
        result = render(chromium, path, width=1280)
    seconds = result.check["loadMs"] / 1000
    print(
        f"browser: loaded and laid out in {seconds:.2f} s = {seconds / RENDER_LIMIT_SECONDS:.2f} of the 3 s limit "
        f"(chromium process, start-up included: {result.wall_seconds:.2f} s); errors: {result.check['errors']}"
    )


if __name__ == "__main__":
    main()
