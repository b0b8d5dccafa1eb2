"""The plan as a person reads it: what changes first, summarised to fit the terminal (80 columns and
wider, every column kept), the detail on demand, and a last line a script can grep.

Written once for every setting: an item's name, its values in words and what a write changes come
from the setting (:meth:`~org_bootstrap.settings.Setting.item_title`, ``text``, ``differences``),
which masks people's data so that a change still shows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rich.box import Box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from local_deploy.cloudformation import CREATE, DELETE, UPDATE
from local_deploy.plan import (
    CHANGING,
    DRIFTED,
    FAILED,
    IN_SYNC,
    LEFT_ALONE,
    NOT_TARGETED,
    SKIPPED,
    UPDATE_CONTACT,
    WRITES,
    AccountLine,
    Plan,
    SettingLine,
)
from local_deploy.stack import StackState
from local_deploy.views import ACTION_STYLE
from org_bootstrap.engine.registry import setting_of
from org_bootstrap.handlers.preflight import Findings
from org_bootstrap.settings.primary_contact import SETTING as PRIMARY_CONTACT_SETTING
from org_bootstrap.settings.primary_contact import UNVERIFIED, verification_status
from org_bootstrap.settings.primary_contact.spec import PRIMARY_CONTACT

PRIMARY_CONTACT_KEY = PRIMARY_CONTACT_SETTING.key(PRIMARY_CONTACT)

CHANGES_ONLY_PAST = 50  # accounts: past this many, the plan shows only what changes unless --all
FIELDS_SHOWN = 3  # an update's changed fields shown without --detail (more: the first ones and a count)
# Like rich's SIMPLE_HEAD with an ASCII rule under the header: reads the same in a CI log.
PLAIN_HEAD = Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


@dataclass(frozen=True)
class PlanOptions:
    """How much of the plan to show."""

    show_values: bool = False  # people's data in full
    detail: bool = False  # every changed field of an update
    changes_only: bool | None = None  # None: only past CHANGES_ONLY_PAST accounts

    def only_changes(self, plan: Plan) -> bool:
        return self.changes_only if self.changes_only is not None else len(plan.accounts) > CHANGES_ONLY_PAST


def plan_view(
    plan: Plan,
    stack: StackState,
    *,
    real: bool,
    options: PlanOptions = PlanOptions(),
    reads: str | None = None,
) -> RenderableType:
    """The whole plan of one stack; ``reads`` (what planning cost) comes just before the last line."""
    parts: list[RenderableType] = [header_text(plan, real), resources_table(plan, stack, real=real)]
    if plan.supporting:
        counted = Counter(change.action for change in plan.supporting)
        summary = ", ".join(f"{count} to {action.lower()}" for action, count in sorted(counted.items()))
        kinds = sorted({change.resource_type.split("::")[1] for change in plan.supporting})
        parts.append(Text(f"  + supporting resources: {summary} ({', '.join(kinds)})", style="dim"))
    if plan.preflight is not None:
        parts.append(preflight_text(plan))
    if plan.tags is not None:
        parts.append(tags_text(plan.tags))
    if plan.contacts_change is not None:
        only_changes = options.only_changes(plan)
        parts.append(SettingsTable(plan, options, only_changes=only_changes))
        hidden = hidden_text(plan, only_changes)
        if hidden is not None:
            parts.append(hidden)
        if any(account.drifted for account in plan.accounts):
            parts.append(
                Text(
                    "drift: differs from the config, but the config did not change, so this deploy sends no "
                    "event and leaves it (the drift check, or deploy --reconcile, puts it right)",
                    style="yellow",
                )
            )
        parts += [setting_totals_table(plan), ou_totals_table(plan, only_changes=only_changes)]
        parts.append(accounts_text(plan))
        unverified = unverified_phones(plan)
        if unverified:
            shown = ", ".join(unverified[:10]) + (", ..." if len(unverified) > 10 else "")
            parts.append(
                Text(
                    f"Note: the primary contact phone of {len(unverified)} account(s) is UNVERIFIED ({shown}): "
                    "the account's users verify it in the console; the deploy neither needs nor changes that.",
                    style="yellow",
                )
            )
        warning = disabling_warning(plan)
        if warning is not None:
            parts.append(warning)
    if reads:
        parts.append(Text(reads, style="dim"))
    parts += [resources_text(plan), plan_line(plan)]
    return Group(*parts)


def header_text(plan: Plan, real: bool) -> Text:
    facts = plan.facts
    where = "AWS Organization" if real else "Simulated organization"
    return Text.assemble(
        (f"{where} {facts.organization_id}", "bold"),
        f" · management account {facts.management_account_id} · {len(facts.accounts)} accounts"
        f" in {len(facts.ou_names)} OUs · trusted access: {', '.join(sorted(facts.trusted_access)) or 'none'}",
    )


def _table(title: str) -> Table:
    return Table(box=PLAIN_HEAD, title=title, title_justify="left", pad_edge=False, collapse_padding=True)


def resources_table(plan: Plan, stack: StackState, *, real: bool) -> Table:
    deployed = stack.status if stack.deployed else "not deployed" + (" (no stack record read)" if real else "")
    table = _table(f"Stack {stack.name}: {deployed} · custom resources, in deploy order")
    table.add_column("Action", min_width=6, max_width=9, overflow="fold")
    table.add_column("Resource", no_wrap=True)  # a logical ID and a type: at most ~32 characters, kept whole
    table.add_column("Now", ratio=1, min_width=10, overflow="fold")
    table.add_column("Wants", ratio=1, min_width=10, overflow="fold")
    for line in plan.resources:
        action = line.change.action
        changed = f"\nchanges {', '.join(line.change.properties)}" if line.change.properties else ""
        table.add_row(
            Text(action, style=ACTION_STYLE.get(action, "")),
            Text.assemble(line.change.logical_id, (f"\n{line.change.resource_type}", "dim")),
            line.current,
            Text.assemble(line.desired, (changed, "dim")),
        )
    return table


def preflight_text(plan: Plan) -> Text:
    """What the deploy's preflight would find: problems stop the deploy before anything changes."""
    assert plan.preflight is not None
    findings = plan.preflight
    if findings.problems:
        count = len(findings.problems)
        text = Text(f"Preflight: the deploy would fail before changing anything ({count} problems):", style="bold red")
    else:
        text = Text(f"Preflight: every ID the config names is in organization {findings.organization_id}", "green")
    for problem in findings.problems:
        text.append(f"\n  - {problem}", style="red")
    for warning in findings.warnings:
        text.append(f"\n  ! {warning}", style="yellow")
    return text


# -- account settings ------------------------------------------------------------------------


def tags_text(found: Findings, *, shown: int = 8) -> Text:
    """Which accounts each tag target or tag override selects now; tags no account carries."""
    text = Text("Tags: the accounts each tag selector selects now", style="bold")
    for where, selected in found.selected.items():
        listed = ", ".join(selected[:shown]) + (f", +{len(selected) - shown} more" if len(selected) > shown else "")
        text.append(f"\n  {where}: {len(selected)} account(s)" + (f" ({listed})" if selected else ""))
    for warning in found.warnings:
        text.append(f"\n  ! Warning: {warning}", style="yellow")
    return text


def unverified_phones(plan: Plan) -> list[str]:
    """The accounts whose primary contact phone GetContactInformation reports UNVERIFIED (a note, never a failure)."""
    return [
        account.account.id
        for account in plan.accounts
        for line in account.contacts
        if line.contact_type == PRIMARY_CONTACT_KEY and verification_status(line.current) == UNVERIFIED
    ]


def shown_accounts(plan: Plan, only_changes: bool) -> list[AccountLine]:
    if not only_changes:
        return plan.accounts
    return [line for line in plan.accounts if line.status in (CHANGING, FAILED, DRIFTED)]


# Below these many columns the Account and Item columns (and below NARROWEST the Action column) wrap
# sooner, leaving Now and Wants room for an e-mail address on one line.
NARROW, NARROWEST = 120, 100


class SettingsTable:
    """The account settings table, its columns sized for the width it is rendered at."""

    def __init__(self, plan: Plan, options: PlanOptions, *, only_changes: bool) -> None:
        self.plan, self.options, self.only_changes = plan, options, only_changes

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield settings_table(self.plan, self.options, only_changes=self.only_changes, width=options.max_width)


def settings_table(plan: Plan, options: PlanOptions, *, only_changes: bool, width: int) -> Table:
    masked = "" if options.show_values else " (people's data masked; --show-values shows it)"
    which = "what changes" if only_changes else "every account"
    table = _table(f"Account settings, {which}{masked}")
    narrow = width < NARROW
    table.add_column("Account", min_width=12, max_width=14 if narrow else 24, overflow="fold")
    table.add_column("Item", min_width=8, max_width=12 if narrow else 20, overflow="fold")
    table.add_column("Action", min_width=7, max_width=9 if width < NARROWEST else 16, overflow="fold")
    table.add_column("Now", ratio=1, min_width=10, overflow="fold")
    table.add_column("Wants", ratio=1, min_width=10, overflow="fold")
    for account in shown_accounts(plan, only_changes):
        about = [
            Text(account.account.id, style="bold"),
            Text(account.account.name),
            Text(plan.facts.path_names(account.account), style="dim"),
        ]
        rows = _account_rows(account, options, only_changes=only_changes)
        while len(rows) < len(about):
            rows.append(("", "", "", ""))
        for index, row in enumerate(rows):
            table.add_row(about[index] if index < len(about) else "", *row, end_section=index == len(rows) - 1)
    return table


Row = tuple[RenderableType, RenderableType, RenderableType, RenderableType]


def _account_rows(account: AccountLine, options: PlanOptions, *, only_changes: bool) -> list[Row]:
    rows: list[Row] = []
    if not account.targeted:
        rows.append(("—", Text("not targeted", style="dim"), Text("the config leaves it alone", style="dim"), ""))
    elif account.skipped:
        rows.append(("—", Text("skipped", style="yellow"), Text(account.skipped, style="yellow"), "not ACTIVE"))
    else:
        lines = [line for line in account.contacts if not only_changes or line.action not in (IN_SYNC, LEFT_ALONE)]
        rows += [_item_row(line, options) for line in lines]
        unchanged = len(account.contacts) - len(lines)
        if unchanged:
            rows.append((Text(f"+{unchanged} in sync", style="dim"), "", "", ""))
    if account.failed:
        rows.append(("—", Text("failed", style="red"), Text(f"cannot read: {account.failed}", style="red"), ""))
    return rows


def action_text(line: SettingLine) -> str:
    """What happens to an item, short: ``create``, ``update e-mail``, ``update 7 fields``."""
    action = line.action
    if line.fields:
        setting, _ = setting_of(line.contact_type)
        action += f" {setting.field_label(line.fields[0])}" if len(line.fields) == 1 else f" {len(line.fields)} fields"
    return action if line.by_deploy or line.action in (IN_SYNC, LEFT_ALONE) else f"drift: {action}"


def _item_row(line: SettingLine, options: PlanOptions) -> Row:
    setting, _ = setting_of(line.contact_type)
    action = Text(action_text(line), style=ACTION_STYLE[line.action] if line.by_deploy else "yellow")
    if line.action == IN_SYNC:
        return (item_title(line), action, _value(line, line.current, None, options), Text("= now", style="dim"))
    if line.action == UPDATE_CONTACT:
        differences = setting.differences(line.current, line.wanted, show_values=options.show_values)
        if differences[0][0]:  # field by field
            shown = differences if options.detail or len(differences) <= FIELDS_SHOWN else differences[:2]
            now = Text("\n".join(f"{field}: {old}" for field, old, _ in shown))
            wants = Text("\n".join(f"{field}: {new}" for field, _, new in shown))
            if len(shown) < len(differences):
                more = f"\n+{len(differences) - len(shown)} more (--detail)"
                now.append(more, style="dim")
                wants.append(more, style="dim")
            return (item_title(line), action, now, wants)
    now = _value(line, line.current, line.wanted, options)
    return (item_title(line), action, now, _value(line, line.wanted, line.current, options))


def item_title(line: SettingLine) -> str:
    setting, item = setting_of(line.contact_type)
    return setting.item_title(item)


def _value(line: SettingLine, value: object, against: object, options: PlanOptions) -> Text:
    if value is None:
        return Text("—", style="dim")
    setting, _ = setting_of(line.contact_type)
    return Text(setting.text(value, show_values=options.show_values, against=against))


def hidden_text(plan: Plan, only_changes: bool) -> Text | None:
    """What --changes-only leaves out, and how to show it."""
    if not only_changes:
        return None
    counted = Counter(line.status for line in plan.accounts)
    parts = [
        f"{counted[status]} {words}"
        for status, words in (
            (IN_SYNC, "in sync"),
            (SKIPPED, "skipped (not ACTIVE)"),
            (NOT_TARGETED, "not targeted"),
        )
        if counted[status]
    ]
    if not parts:
        return None
    hidden = sum(counted[status] for status in (IN_SYNC, SKIPPED, NOT_TARGETED))
    return Text(f"{_count(hidden, 'account')} not shown: {', '.join(parts)} (--all shows them)", style="dim")


def setting_totals_table(plan: Plan) -> Table:
    table = _table("By setting")
    table.add_column("Setting", max_width=24, overflow="fold")
    table.add_column("Writes", justify="right")
    table.add_column("Of them", ratio=1, overflow="fold")
    table.add_column("In sync", justify="right")
    table.add_column("Drifted", justify="right")
    for totals in plan.by_setting():
        table.add_row(
            totals.title,
            str(totals.writes),
            _actions(totals.actions) or Text("none", style="dim"),
            str(totals.actions[IN_SYNC]),
            str(totals.drifted),
        )
    return table


def ou_totals_table(plan: Plan, *, only_changes: bool) -> Table:
    every = plan.by_organizational_unit()
    shown = [ou for ou in every if ou.changing] if only_changes else every
    left_out = f" ({_count(len(every) - len(shown), 'OU')} with no change not shown)" if len(shown) < len(every) else ""
    table = _table(f"By OU, the accounts directly in it{left_out}")
    table.add_column("OU", ratio=1, overflow="fold")
    table.add_column("Accounts", justify="right")
    table.add_column("Changing", justify="right")
    table.add_column("Writes", justify="right")
    for ou in shown:
        table.add_row(ou.path, str(ou.accounts), str(ou.changing), str(ou.writes))
    return table


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _actions(counted: Counter[str]) -> str:
    return ", ".join(f"{counted[action]} {action}" for action in WRITES if counted[action])


def accounts_text(plan: Plan) -> Text:
    totals = plan.totals()
    text = Text.assemble(
        ("Accounts: ", "bold"),
        f"{totals.accounts}: {totals.changing} to change, {totals.in_sync} in sync, "
        f"{totals.skipped} skipped (not ACTIVE), {totals.failed} unreadable, {totals.untargeted} not targeted",
    )
    if totals.drifted:
        text.append(f" · {totals.drifted} items drifted, which this deploy leaves alone", style="yellow")
    return text


def disabling_warning(plan: Plan) -> Text | None:
    disabling = sorted(
        f"{line.contact_type.removeprefix('regions/')} in {account.account.id}"
        for account in plan.accounts
        for line in account.changes
        if line.wanted == "DISABLED"
    )
    if not disabling:
        return None
    return Text(
        f"Warning: this deploy disables {len(disabling)} Region(s) ({', '.join(disabling[:10])}"
        f"{', ...' if len(disabling) > 10 else ''}). Disabling a Region removes all IAM access to the "
        "account's resources there (https://docs.aws.amazon.com/accounts/latest/reference/API_DisableRegion.html).",
        style="bold red",
    )


def resources_text(plan: Plan) -> Text:
    counted = Counter(line.change.action for line in plan.resources)
    counted += Counter(change.action for change in plan.supporting)
    custom = sum(1 for line in plan.resources if line.change.action in (CREATE, UPDATE, DELETE))
    return Text.assemble(
        ("Stack: ", "bold"),
        f"{counted[CREATE]} resources to create, {counted[UPDATE]} to update, {counted[DELETE]} to delete "
        f"({custom} custom, {sum(counted[a] for a in (CREATE, UPDATE, DELETE)) - custom} supporting)",
    )


def plan_line(plan: Plan) -> Text:
    """The last line, for scripts, never wrapped: ``Plan: 43 writes in 11 accounts (36 create,
    4 update, 3 enable).``"""
    totals = plan.totals()
    writes = sum(totals.contacts[action] for action in WRITES)
    breakdown = _actions(totals.contacts)
    text = Text.assemble(
        ("Plan: ", "bold"),
        (f"{writes} writes", "bold"),
        f" in {_count(totals.changing, 'account')}" + (f" ({breakdown})." if breakdown else "."),
    )
    text.no_wrap = True
    return text
