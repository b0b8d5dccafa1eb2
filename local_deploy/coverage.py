"""The organization's settings at a glance: a coverage report, from a deploy or drift report JSON
(as the handlers write it to S3) or from the simulated organization.

For every OU (nested: an OU counts the accounts of the OUs below it) and every setting, how many
accounts are in sync, drifted, failed, skipped (not ACTIVE, or not changeable from the calling
account) or not targeted; and the accounts that need attention, with the reason. Written as one
self-contained HTML file (inline CSS and SVG: no script, no font, nothing fetched) and a CSV of
the counts. A drift report names every account of the organization (its ``organization`` block,
:mod:`org_bootstrap.engine.coverage`); a deploy report names only the accounts its job worked, so
its view has no OUs and no per-setting targeting.
"""

from __future__ import annotations

import csv
import html
import io
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from org_bootstrap.aws.organization import read_tree
from org_bootstrap.engine.coverage import REPORT_KEY, organization_snapshot
from org_bootstrap.engine.jobs import Specs
from org_bootstrap.engine.jobs import plan as plan_job
from org_bootstrap.engine.reconcile import (
    CHANGED,
    DRIFTED,
    FAILED,
    THROTTLED,
    AccountApi,
    Comparison,
    reconcile_account,
)
from org_bootstrap.engine.registry import BY_NAME, setting_of

IN_SYNC, DRIFTED_STATUS, FAILED_STATUS, SKIPPED, NOT_TARGETED = (
    "in sync",
    "drifted",
    "failed",
    "skipped",
    "not targeted",
)
STATUSES = (IN_SYNC, DRIFTED_STATUS, FAILED_STATUS, SKIPPED, NOT_TARGETED)
ATTENTION = (FAILED_STATUS, DRIFTED_STATUS)  # what a person has to act on, worst first
COLOURS = {
    IN_SYNC: "#2e7d32",
    DRIFTED_STATUS: "#b26a00",
    FAILED_STATUS: "#c62828",
    SKIPPED: "#757575",
    NOT_TARGETED: "#cfd8dc",
}
ALL_SETTINGS = "all settings"  # a deploy report's one column: it does not say which settings target whom
WHOLE_ORGANIZATION = "(organization)"  # the unit of a report without an OU tree
ATTENTION_SHOWN = 2000  # rows of the attention table in the page; the counts always cover everyone
CSV_COLUMNS = ("ou_id", "ou_path", "depth", "setting", *(status.replace(" ", "_") for status in STATUSES))


class ReportError(ValueError):
    """The JSON is not a deploy or drift report."""


@dataclass(frozen=True)
class Unit:
    id: str
    name: str
    parent: str
    depth: int
    path: str  # names from the root down, " / " between


@dataclass(frozen=True)
class Attention:
    account: str
    name: str
    unit: str
    setting: str
    status: str
    reason: str


@dataclass
class Coverage:
    job: str
    started_at: float | None
    complete: bool
    settings: list[str]
    units: list[Unit]  # depth first, children by name
    counts: dict[tuple[str, str], Counter[str]]  # (unit ID, setting) -> status -> accounts, nested OUs included
    attention: list[Attention]
    accounts: int
    has_organization: bool
    show_values: bool = False
    by_unit: dict[str, Unit] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_unit = {unit.id: unit for unit in self.units}

    @property
    def roots(self) -> list[Unit]:
        return [unit for unit in self.units if not unit.parent]

    def totals(self, setting: str) -> Counter[str]:
        """The whole organization's counts for one setting (every root's)."""
        found: Counter[str] = Counter()
        for root in self.roots:
            found.update(self.counts.get((root.id, setting), Counter()))
        return found


def coverage_of(
    report: Mapping[str, Any],
    *,
    details: Mapping[str, Sequence[Comparison]] | None = None,
    show_values: bool = False,
) -> Coverage:
    """The coverage a deploy or drift report shows. ``details``: the comparisons of each account
    (read from the simulated organization), which add what differs to a drifted account's reason,
    people's data masked unless ``show_values``."""
    if not isinstance(report, Mapping) or not isinstance(report.get("outcomes"), list):
        raise ReportError("not a deploy or drift report: it has no 'outcomes' list (a report from the jobs' S3 bucket)")
    organization = report.get(REPORT_KEY)
    outcomes = {str(outcome["account"]): outcome for outcome in report["outcomes"]}
    skipped = {str(item["account"]): str(item["status"]) for item in report.get("skipped", [])}
    retrying = set(report.get("retrying", []))
    if organization:
        settings = list(organization["settings"])
        units = _units(organization["units"])
        rows = [(str(a), str(n), str(p), str(s), int(m)) for a, n, p, s, m in organization["accounts"]]
    else:
        settings = [ALL_SETTINGS]
        units = [Unit(WHOLE_ORGANIZATION, WHOLE_ORGANIZATION, "", 0, WHOLE_ORGANIZATION)]
        everyone = sorted({*outcomes, *skipped})
        rows = [(account, "", WHOLE_ORGANIZATION, "", 1) for account in everyone]
    known = {unit.id for unit in units}
    parents = {unit.id: unit.parent for unit in units}
    counts: dict[tuple[str, str], Counter[str]] = {(unit.id, s): Counter() for unit in units for s in settings}
    attention: list[Attention] = []
    for account, name, parent, state, mask in rows:
        unit = parent if parent in known else units[0].id
        outcome = outcomes.get(account)
        for bit, setting in enumerate(settings):
            status, reason = _status(
                account,
                setting,
                targeted=bool(mask & (1 << bit)),
                state=state,
                outcome=outcome,
                skipped=skipped.get(account),
                retrying=account in retrying,
                everything=not organization,
            )
            at: str | None = unit
            while at:
                counts[(at, setting)][status] += 1
                at = parents.get(at)
            if status in ATTENTION:
                if status == DRIFTED_STATUS and details and account in details:
                    reason = _differences(details[account], setting, show_values) or reason
                attention.append(Attention(account, name, unit, setting, status, reason))
    attention.sort(key=lambda row: (ATTENTION.index(row.status), row.account, row.setting))
    return Coverage(
        job=str(report.get("job", "")),
        started_at=report.get("started_at"),
        complete=bool(report.get("complete", True)),
        settings=settings,
        units=units,
        counts=counts,
        attention=attention,
        accounts=len(rows),
        has_organization=bool(organization),
        show_values=show_values,
    )


def _status(
    account: str,
    setting: str,
    *,
    targeted: bool,
    state: str,
    outcome: Mapping[str, Any] | None,
    skipped: str | None,
    retrying: bool,
    everything: bool,
) -> tuple[str, str]:
    """One account's status for one setting, and why (empty when in sync or not targeted)."""
    if not targeted:
        return NOT_TARGETED, ""
    if skipped is not None:
        return SKIPPED, skipped
    if state and state != "ACTIVE":
        return SKIPPED, state
    if outcome is None:
        return SKIPPED, "still retrying (throttled)" if retrying else "not checked by this job"
    if outcome["status"] == THROTTLED:
        return SKIPPED, "throttled: not read"
    if outcome["status"] == FAILED:
        return FAILED_STATUS, str(outcome.get("reason", "")) or "failed"
    actions = {key: action for key, action in outcome.get("actions", {}).items()}
    touched = {key: action for key, action in actions.items() if everything or setting_of(key)[0].name == setting}
    if outcome["status"] == DRIFTED and touched:
        return DRIFTED_STATUS, "differs: " + ", ".join(
            f"{_item(key)} {action}" for key, action in sorted(touched.items())
        )
    if outcome["status"] == CHANGED and touched:
        return IN_SYNC, "fixed"
    return IN_SYNC, ""


def _item(key: str) -> str:
    return setting_of(key)[1]


def _differences(compared: Sequence[Comparison], setting: str, show_values: bool) -> str:
    """What differs in one setting of an account: current -> wanted, as its setting shows values."""
    parts = []
    for comparison in compared:
        found, item = setting_of(comparison.contact_type)
        if found.name != setting or comparison.action is None:
            continue
        now = "—" if comparison.current is None else found.text(comparison.current, show_values=show_values)
        wanted = "—" if comparison.wanted is None else found.text(comparison.wanted, show_values=show_values)
        parts.append(f"{item}: {now} → {wanted}")
    return "; ".join(parts)


def _units(units: Mapping[str, Sequence[str]]) -> list[Unit]:
    """Every root and OU, depth first, children in name order; an OU whose parent is missing hangs
    under the first root."""
    children: dict[str, list[str]] = {}
    roots = sorted(unit for unit, (_, parent) in units.items() if not parent)
    if not roots:
        raise ReportError("the report's organization has no root")
    for unit, (_, parent) in units.items():
        if parent:
            children.setdefault(parent if parent in units else roots[0], []).append(unit)
    ordered: list[Unit] = []
    pending = [(root, "", 0, "") for root in reversed(roots)]
    while pending:
        unit, parent, depth, above = pending.pop()
        name = str(units[unit][0])
        path = f"{above} / {name}" if above else name
        ordered.append(Unit(unit, name, parent, depth, path))
        below = sorted(children.get(unit, []), key=lambda child: (str(units[child][0]).lower(), child))
        pending += [(child, unit, depth + 1, path) for child in reversed(below)]
    return ordered


# -- CSV ---------------------------------------------------------------------------------------


def to_csv(coverage: Coverage) -> str:
    """One row per OU (nested OUs counted in their parents) and setting: accounts by status."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for unit in coverage.units:
        for setting in coverage.settings:
            found = coverage.counts[(unit.id, setting)]
            writer.writerow([unit.id, unit.path, unit.depth, setting, *(found[status] for status in STATUSES)])
    return out.getvalue()


# -- HTML --------------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f23;background:#f6f8fa}
main{max-width:1120px;margin:0 auto;padding:16px}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem}h3{font-size:1rem;margin:0 0 .4rem}
.meta,.note{color:#57606a;overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(250px,1fr));gap:12px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px}
.bar{display:block;width:100%;height:18px;border-radius:4px}
.legend{list-style:none;padding:0;margin:.6rem 0 0;display:grid;grid-template-columns:1fr auto;gap:2px 12px}
.legend li{display:contents}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.4em;vertical-align:-.05em}
.num{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto;background:#fff;border:1px solid #d0d7de;border-radius:8px}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:4px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
th{background:#f6f8fa;position:sticky;top:0}
td.reason{overflow-wrap:anywhere;min-width:12rem}
.mini{display:block;width:100%;min-width:60px;height:8px}
.s-failed{color:#c62828;font-weight:600}.s-drifted{color:#b26a00;font-weight:600}
@media (max-width:600px){main{padding:8px}th,td{padding:3px 5px}table{font-size:.8rem}.wide{display:none}}
"""


def to_html(coverage: Coverage, *, generated_at: float | None = None, source: str = "") -> str:
    """The whole page: one file, inline CSS and SVG, nothing to fetch."""
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(generated_at or time.time()))
    started = (
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(coverage.started_at)) if coverage.started_at else "unknown"
    )
    ous = sum(1 for unit in coverage.units if unit.parent)
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<title>Account settings coverage</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>Account settings coverage</h1>",
        f'<p class="meta">Job <code>{_e(coverage.job)}</code> · started {started}'
        f"{'' if coverage.complete else ' · <strong>not complete</strong>'} · "
        f'<span id="accounts" data-count="{coverage.accounts}">{coverage.accounts}</span> accounts'
        + (f" in {ous} OUs" if coverage.has_organization else "")
        + f" · generated {generated}{' from ' + _e(source) if source else ''}</p>",
    ]
    if not coverage.has_organization:
        parts.append(
            '<p class="note">This report names only the accounts its job worked (a deploy report): no OUs and no '
            "per-setting targeting. A drift check's report has both.</p>"
        )
    parts.append('<h2>By setting</h2><div class="cards">')
    for setting in coverage.settings:
        parts.append(_card(setting, coverage.totals(setting)))
    parts.append("</div>")
    for setting in coverage.settings:
        parts.append(_unit_table(coverage, setting))
    parts.append(_attention_table(coverage))
    masked = (
        "" if coverage.show_values else " E-mail addresses and phone numbers are masked (--show-values shows them)."
    )
    parts.append(
        f'<p class="note">In sync: the account has what the config wants (fixed by this run included). Drifted: it '
        "differs and was not fixed. Failed: it could not be read or changed. Skipped: not ACTIVE, or not changeable "
        f"from the calling account. Not targeted: no target of the setting includes it.{masked}</p>"
    )
    parts.append("</main></body></html>\n")
    return "".join(parts)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _label(setting: str) -> str:
    found = BY_NAME.get(setting)
    return setting.replace("_", " ") if found is None else found.name.replace("_", " ")


def _segments(found: Counter[str], *, height: int) -> str:
    """A stacked bar of the statuses, as SVG rectangles in a 0-100 wide view box."""
    total = sum(found[status] for status in STATUSES)
    if not total:
        return f'<rect x="0" y="0" width="100" height="{height}" fill="#eaeef2"/>'
    x, shapes = 0.0, []
    for status in STATUSES:
        if found[status]:
            width = 100 * found[status] / total
            shapes.append(
                f'<rect x="{x:.3f}" y="0" width="{width:.3f}" height="{height}" fill="{COLOURS[status]}">'
                f"<title>{status}: {found[status]}</title></rect>"
            )
            x += width
    return "".join(shapes)


def _card(setting: str, found: Counter[str]) -> str:
    rows = "".join(
        f'<li><span><span class="swatch" style="background:{COLOURS[status]}"></span>{status}</span>'
        f'<span class="num" data-setting="{_e(setting)}" data-status="{status}">{found[status]}</span></li>'
        for status in STATUSES
    )
    label = _e(_label(setting))
    return (
        f'<section class="card" data-card="{_e(setting)}"><h3>{label}</h3>'
        f'<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
        f'aria-label="{label}: ' + ", ".join(f"{found[s]} {s}" for s in STATUSES) + '">'
        f"{_segments(found, height=10)}</svg>"
        f'<ul class="legend">{rows}</ul></section>'
    )


def _unit_table(coverage: Coverage, setting: str) -> str:
    header = "".join(f'<th class="num">{status}</th>' for status in STATUSES)
    rows = []
    for unit in coverage.units:
        found = coverage.counts[(unit.id, setting)]
        if not sum(found.values()) and unit.parent:
            continue  # an empty OU says nothing here
        cells = "".join(f'<td class="num">{found[status]}</td>' for status in STATUSES)
        indent = f' style="padding-left:{0.5 + unit.depth * 1.1:.1f}em"' if unit.depth else ""
        rows.append(
            f'<tr data-unit="{_e(unit.id)}"><td{indent} title="{_e(unit.path)}">{_e(unit.name)}</td>{cells}'
            f'<td class="wide"><svg class="mini" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true">'
            f"{_segments(found, height=8)}</svg></td></tr>"
        )
    return (
        f'<h2>By OU: {_e(_label(setting))}</h2><div class="scroll"><table data-setting="{_e(setting)}">'
        f'<thead><tr><th>OU</th>{header}<th class="wide"></th></tr></thead><tbody>{"".join(rows)}</tbody>'
        "</table></div>"
    )


def _attention_table(coverage: Coverage) -> str:
    shown = coverage.attention[:ATTENTION_SHOWN]
    title = f'<h2>Accounts that need attention (<span id="attention-count">{len(coverage.attention)}</span>)</h2>'
    if not shown:
        return title + '<p class="note">None: every targeted ACTIVE account is in sync.</p>'
    rows = "".join(
        f'<tr data-account="{_e(row.account)}"><td>{_e(row.account)}</td><td class="wide">{_e(row.name)}</td>'
        f"<td>{_e(coverage.by_unit[row.unit].path)}</td><td>{_e(_label(row.setting))}</td>"
        f'<td class="s-{row.status}">{row.status}</td><td class="reason">{_e(row.reason)}</td></tr>'
        for row in shown
    )
    more = (
        f'<p class="note">The first {len(shown)} of {len(coverage.attention)} are shown, failed first; the report '
        "JSON has all of them.</p>"
        if len(shown) < len(coverage.attention)
        else ""
    )
    return (
        f'{title}<div class="scroll"><table id="attention"><thead><tr><th>Account</th><th class="wide">Name</th>'
        f"<th>OU</th><th>Setting</th><th>Status</th><th>Reason</th></tr></thead><tbody>{rows}</tbody></table></div>"
        + more
    )


def write(coverage: Coverage, html_path: Path, csv_path: Path, *, source: str = "") -> None:
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(to_html(coverage, source=source), encoding="utf-8")
    csv_path.write_text(to_csv(coverage), encoding="utf-8")


# -- from an organization ----------------------------------------------------------------------


def read_report(
    organizations: Any,
    api: AccountApi,
    specs: Specs,
    *,
    management_account_id: str,
    job_id: str | None = None,
) -> tuple[dict[str, Any], dict[str, list[Comparison]]]:
    """A report-only drift check, read now (no write): the report as the drift check writes it to
    S3 (its ``organization`` block included), and each account's comparisons for the reasons."""
    tree = read_tree(organizations)
    job = plan_job(
        job_id or f"coverage-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}",
        tree.accounts,
        specs,
        apply=False,
        caller_account_id=management_account_id,
        management_account_id=management_account_id,
    )
    details: dict[str, list[Comparison]] = {}
    for account, key in job.items:
        outcome = reconcile_account(api, account, job.target_sets[key], apply=False)
        job.outcomes.append(outcome.to_dict())
        details[account] = outcome.compared
    job.cursor = len(job.items)
    report = job.report()
    report[REPORT_KEY] = organization_snapshot(tree, specs, management_account_id)
    return report, details
