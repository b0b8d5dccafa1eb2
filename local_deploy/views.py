"""How the local deploy shows things: rich tables, progress bars, contact values masked by default."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from local_deploy import estimates
from local_deploy.api_calls import ApiCalls
from local_deploy.automation import Delivery, DeliveryReport, DriftRun
from local_deploy.cloudformation import NO_CHANGE, Listener, Operation, Result, StackEvent, simulated
from local_deploy.coverage import ATTENTION, STATUSES, Coverage
from local_deploy.importing import Organization, Section
from local_deploy.plan import (
    CREATE_CONTACT,
    DELETE_CONTACT,
    DISABLE_REGION,
    ENABLE_REGION,
    IN_SYNC,
    LEFT_ALONE,
    RESTORE_CONTACT,
    UPDATE_CONTACT,
)
from local_deploy.simulated_time import duration
from local_deploy.stack import ResourceState, StackState
from org_bootstrap.engine.jobs import Job
from org_bootstrap.engine.registry import SETTINGS, setting_of
from org_bootstrap.engine.stores import S3JobStore
from org_bootstrap.settings.alternate_contacts import SETTING as ALTERNATE_CONTACTS
from org_bootstrap.settings.alternate_contacts.spec import CONTACT_TYPES
from org_bootstrap.settings.alternate_contacts.spec import DELETE as DELETE_TARGET
from org_bootstrap.settings.primary_contact import SETTING as PRIMARY_CONTACT_SETTING

ACTION_STYLE = {
    "Create": "green",
    "Update": "yellow",
    "Delete": "red",
    "Retain": "dim",
    NO_CHANGE: "dim",
    CREATE_CONTACT: "green",
    UPDATE_CONTACT: "yellow",
    DELETE_CONTACT: "red",
    RESTORE_CONTACT: "magenta",
    ENABLE_REGION: "green",
    DISABLE_REGION: "bold red",
    IN_SYNC: "dim",
    LEFT_ALONE: "dim",
}
# Data keys a result table leaves out: long, or shown elsewhere.
_HIDDEN_DATA = ("Job", "Report", "FailedAccounts", "FailureReasons", "Complete")
PROGRESS_LINE_SECONDS = 5.0  # without a terminal (a log, a pipe): how often a paced job prints a line


PIPED_WIDTH = 160  # a log or a pipe without COLUMNS


def make_console(*, stderr: bool = False) -> Console:
    """A terminal's console; for a log or a pipe, plain text (no colours, no cursor moves) as wide as
    ``COLUMNS`` says, else PIPED_WIDTH."""
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and not _columns():
        console = Console(stderr=stderr, highlight=False, width=PIPED_WIDTH)
    return console


def _columns() -> int | None:
    value = os.environ.get("COLUMNS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


# -- contacts ---------------------------------------------------------------------------------


def value_text(key: str, value: Any, show_values: bool) -> Text:
    """One item's value (an engine key's: a contact type, ``primary_contact/PRIMARY``, a Region) as
    its setting shows it: people's data masked unless asked."""
    if value is None:
        return Text("—", style="dim")
    setting, _ = setting_of(key)
    return Text(setting.text(value, show_values=show_values), style="red" if value == DELETE_TARGET else "")


# -- deploy -----------------------------------------------------------------------------------


def result_view(
    result: Result, stack: StackState, *, writes: Counter[str], seconds: float, simulated: bool = False
) -> RenderableType:
    """``seconds``: on the runtime's clock, AWS's time when ``simulated`` (the command's last line
    says how long it took here)."""
    shown = [operation for operation in result.operations if operation.simulated]
    if not result.operations:
        return Text.assemble(
            ("No changes", "bold green"),
            f": every resource of {stack.name} matches the template; CloudFormation sends no event, "
            f"so no handler runs. Handler invocations: 0 · writes to the organization: {sum(writes.values())}",
        )
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("Action")
    table.add_column("Resource · type · physical ID", overflow="fold")
    table.add_column("Result", overflow="fold")
    table.add_column("Calls", justify="right")
    table.add_column("Time", justify="right")
    for row in _rows(result):
        if isinstance(row, StackEvent):
            table.add_row(
                Text(row.status, style=_status_style(row.status)),
                Text.assemble(stack.name, (f" · {row.resource_type}", "dim")),
                Text(row.reason, style="dim"),
                "",
                "",
                end_section=True,
            )
            continue
        operation = row
        phase = "" if operation.phase == "deploy" else f" ({operation.phase})"
        table.add_row(
            Text(operation.action + phase, style=ACTION_STYLE.get(operation.action, "")),
            Text.assemble(
                operation.logical_id,
                (f" · {operation.resource_type}", "dim"),
                (f"\n{operation.physical_id}", "dim"),
            ),
            _outcome(operation),
            str(operation.invocations) if operation.custom else "",
            duration(operation.seconds),
            end_section=True,
        )
    recorded = Counter(op.action for op in result.operations if not op.simulated)
    parts: list[RenderableType] = [table]
    if recorded:
        done = {"Create": "created", "Update": "updated", "Delete": "deleted", "Retain": "retained"}
        summary = ", ".join(f"{count} {done.get(action, action)}" for action, count in sorted(recorded.items()))
        parts.append(Text(f"  + supporting resources recorded, not simulated: {summary}", style="dim"))
    reports = [op.data["Report"] for op in shown if str(op.data.get("Report", "")).startswith("s3://")]
    parts += [Text(f"Report: {report}", style="dim") for report in reports]
    style = "bold green" if result.ok else "bold yellow" if result.status.endswith("ROLLBACK_COMPLETE") else "bold red"
    parts.append(
        Text.assemble(
            (f"{stack.name}: {result.status}", style),
            f" in {duration(seconds)}"
            + (" at AWS's quotas" if simulated else "")
            + f" · handler invocations: {result.invocations} · writes to the organization: ",
            (_writes_text(writes), "bold"),
        )
    )
    return Group(*parts)


def _rows(result: Result) -> list[Operation | StackEvent]:
    """The operations of simulated resources and the stack's status changes, in the order of the
    stack's events (as the CloudFormation console lists them, oldest first); the final status is the
    summary line."""
    if not result.events:
        return [operation for operation in result.operations if operation.simulated]
    rows: list[Operation | StackEvent] = []
    for event in result.events[:-1]:
        if event.of_stack:
            rows.append(event)
        elif event.operation is not None and event.operation.simulated and not event.status.endswith("_IN_PROGRESS"):
            rows.append(event.operation)
    return rows


def _status_style(status: str) -> str:
    if "FAILED" in status:
        return "bold red"
    if "ROLLBACK" in status:
        return "bold yellow"
    return "bold green" if status.endswith("_COMPLETE") else "bold"


def _outcome(operation: Operation) -> Text:
    if operation.error:
        return Text(operation.error.splitlines()[0][:300], style="red")
    data = {key: value for key, value in operation.data.items() if key not in _HIDDEN_DATA and value != ""}
    text = Text(", ".join(f"{key} {value}" for key, value in data.items()))
    for note in operation.notes:
        text.append(("\n" if text else "") + note, style="dim")
    return text


def _writes_text(writes: Counter[str]) -> str:
    if not writes:
        return "none"
    return ", ".join(f"{name} x{count}" for name, count in sorted(writes.items()))


# -- state ------------------------------------------------------------------------------------


def state_view(
    organization: Mapping[str, Any],
    stack: StackState | None,
    *,
    show_values: bool,
    seeded_from: str,
    history: list[dict[str, Any]] | None = None,
) -> RenderableType:
    admins = organization.get("delegated_administrators", {})
    header = Text.assemble(
        (f"Simulated organization {organization['id']}", "bold"),
        f" (seeded from {seeded_from}) · management account {organization['management_account_id']} · "
        f"trusted access: {', '.join(organization['trusted_access']) or 'none'} · delegated administrators: "
        + (", ".join(f"{', '.join(ids)} ({principal})" for principal, ids in admins.items() if ids) or "none"),
    )
    parts: list[RenderableType] = [header]
    if stack is None:
        parts.append(Text("Stack: not deployed", style="dim"))
    else:
        resources = Table(box=box.SIMPLE_HEAD, title=f"Stack {stack.name}: {stack.status}", title_justify="left")
        for column in ("Resource", "Type", "Physical ID"):
            resources.add_column(column)
        for logical_id, resource in stack.resources.items():
            if simulated(resource.type):
                resources.add_row(logical_id, resource.type, resource.physical_id)
        parts.append(resources)
        if stack.status_reason:
            parts.append(Text(f"  last failure: {stack.status_reason}", style="red"))
    parts.append(accounts_table(organization, show_values=show_values))
    if history:
        parts.append(history_table(history))
    return Group(*parts)


def accounts_table(organization: Mapping[str, Any], *, show_values: bool, title: str = "Account settings") -> Table:
    """The organization's accounts (those ``organization`` lists) with their OU and contacts."""
    ous = {ou["id"]: ou for ou in organization["organizational_units"]}
    masked = "" if show_values else " (e-mail and phone masked; --show-values shows them)"
    table = Table(box=box.SIMPLE_HEAD, title=f"{title}{masked}", title_justify="left")
    # The alternate contacts a column per type, every other setting a column of its own.
    others = [setting for setting in SETTINGS if setting is not ALTERNATE_CONTACTS]
    for column in (
        "Account",
        "OU",
        *CONTACT_TYPES,
        *(setting.title[:1].upper() + setting.title[1:] for setting in others),
    ):
        table.add_column(column)
    for account in sorted(organization["accounts"], key=lambda item: item["id"]):
        status = account.get("status", "ACTIVE")
        table.add_row(
            Text.assemble(
                (account["id"], "bold"),
                f"\n{account['name']}",
                (f"\n{status}", "yellow") if status != "ACTIVE" else "",
                ("".join(f"\n{key}={value}" for key, value in sorted(account.get("tags", {}).items())), "dim"),
            ),
            Text(_ou_path(account.get("parent", ""), ous), style="dim"),
            *(value_text(t, account["contacts"].get(t), show_values) for t in CONTACT_TYPES),
            *(
                Text(
                    setting.state_text(account[setting.name], show_values=show_values)
                    + (
                        f" (phone {account['phone_verification'].lower().replace('_', ' ')})"
                        if setting is PRIMARY_CONTACT_SETTING and account.get("phone_verification")
                        else ""
                    )
                )
                if account.get(setting.name)
                else Text("—", style="dim")
                for setting in others
            ),
            end_section=True,
        )
    return table


def _ou_path(parent: str, ous: Mapping[str, Mapping[str, Any]]) -> str:
    names: list[str] = []
    while parent in ous:
        names.insert(0, str(ous[parent]["name"]))
        parent = str(ous[parent].get("parent", ""))
    return " / ".join(names) or "(root)"


# -- progress ---------------------------------------------------------------------------------


class DeployProgress(Listener):
    """Resources done, and for a settings job its reads, by setting and operation: a bar for long runs.

    The bar's total is the reads the job makes (every item it carries is read once, whatever it
    then writes), so it ends at its total; the writes and the Region follow-ups are counted beside it."""

    def __init__(self, console: Console, calls: ApiCalls, session: boto3.Session, resources: int) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.calls, self.session = calls, session
        self.resources = self.progress.add_task("resources", total=resources)
        self.contacts: Any = None
        self.reads: Counter[str] = Counter()  # the job's planned reads, by operation
        self.made: Counter[str] = Counter()  # Account Management calls made since the job started
        self._last_line = time.monotonic()
        self._lock = threading.Lock()

    @property
    def read(self) -> int:
        """The job's planned reads made so far (never past their total)."""
        return sum(min(self.made[operation], count) for operation, count in self.reads.items())

    def __enter__(self) -> DeployProgress:
        self.progress.start()
        self._listening = self.calls.listening(self._api_call)
        self._listening.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listening.__exit__(None, None, None)
        self.progress.stop()

    def started(self, operation: Operation) -> None:
        if operation.simulated:
            self.progress.update(self.resources, description=f"{operation.action} {operation.logical_id}")

    def finished(self, operation: Operation) -> None:
        if operation.simulated:
            self.progress.advance(self.resources)

    def stack_status(self, status: str, reason: str) -> None:
        if "ROLLBACK" in status:  # its steps come on top of the change set's: no known total
            self.progress.update(self.resources, total=None)
        self.progress.update(self.resources, description=status)

    def polled(self, operation: Operation, polls: int) -> None:
        self.progress.update(self.resources, description=f"{operation.action} {operation.logical_id} (poll {polls})")

    def on_event_returned(self, operation: Operation, function: ResourceState, result: dict[str, Any]) -> None:
        bucket = function.properties.get("Environment", {}).get("Variables", {}).get("JOB_BUCKET")
        job_id = (result.get("Data") or {}).get("Job")
        if not bucket or not job_id:
            return
        job = Job.from_dict(S3JobStore(self.session.client("s3"), bucket).load(job_id))
        reads, most = estimates.of_job(job)
        total = sum(reads.calls.values())
        with self._lock:
            self.reads, self.made, self._last_line = reads.calls, Counter(), time.monotonic()
        if self.contacts is None:
            self.contacts = self.progress.add_task("reads", total=total)
        else:
            self.progress.reset(self.contacts, total=total)
        if job.items:
            self.progress.console.print(Text(_pacing_line(operation, job, reads, most), style="dim"))

    def _api_call(self, service: str, operation: str) -> None:
        if service != "account" or self.contacts is None:
            return
        with self._lock:
            self.made[operation] += 1
            read = self.read
            others = ", ".join(f"{count} {name}" for name, count in sorted(self.made.items()) if name not in self.reads)
            description = "reads" + (f" (and {others})" if others else "")
            due = not self.progress.console.is_terminal and time.monotonic() - self._last_line >= PROGRESS_LINE_SECONDS
            if due:
                self._last_line = time.monotonic()
        self.progress.update(self.contacts, completed=read, description=description)
        if due:  # a log or a pipe shows no bar: a line now and then says the paced work goes on
            total = sum(self.reads.values())
            self.progress.console.print(Text(f"  ... {read} of {total} {description}", style="dim"))


def _pacing_line(operation: Operation, job: Job, reads: estimates.Estimate, most: estimates.Estimate) -> str:
    """What a settings job will do, by setting and operation, and the time AWS's published quotas
    allow for it: at least that of its reads, at most that of every write it could make as well."""
    writes = {
        title: Counter({name: count for name, count in calls.items() if name not in reads.calls})
        for title, calls in most.by_setting.items()
    }
    parts = []
    for title, calls in reads.by_setting.items():
        written = ", ".join(f"{count} {name}" for name, count in writes.get(title, Counter()).items())
        read = ", ".join(f"{count} {name}" for name, count in calls.items())
        parts.append(f"{title}: {read}" + (f" (then up to {written})" if written else ""))
    least, longest = duration(reads.seconds), duration(most.seconds)
    return (
        f"{operation.logical_id}: {len(job.items)} accounts · {'; '.join(parts)} · at AWS's published quotas: "
        f"at least {least} (the reads), at most {longest} (if every item is written)"
    )


class AccountsProgress:
    """The plan's reads, account by account."""

    def __init__(self, console: Console, description: str = "reading accounts' contacts") -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task(description, total=None)

    def __enter__(self) -> AccountsProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def total(self, accounts: int) -> None:
        self.progress.update(self.task, total=accounts)

    def account(self, account_id: str) -> None:
        self.progress.advance(self.task)


# -- import -----------------------------------------------------------------------------------


def import_view(organization: Organization, sections: Sequence[Section], output: str) -> RenderableType:
    """What an import wrote, in counts: never a contact's value (those are only in the file)."""
    accounts = organization.accounts
    not_read = Counter(a.not_read.split(":")[0] for a in accounts if a.not_read)
    table = Table(box=box.SIMPLE_HEAD, title=f"Imported into {output}", title_justify="left")
    for column in ("Section", "Default items", "OU overrides", "Account overrides", "Excluded accounts"):
        table.add_column(column, justify="left" if column == "Section" else "right")
    for section in sections:
        if section.data is None:
            table.add_row(section.name, Text(f"not imported: {section.why_none}", style="dim"), "", "", "")
            continue
        default, ous, own = section.counts()
        table.add_row(section.name, str(default), str(ous), str(own), str(len(section.excluded)))
    unread = ", ".join(f"{count} {why}" for why, count in sorted(not_read.items()))
    summary = Text.assemble(
        ("Organization ", "bold"),
        f"{organization.organization_id}: {len(accounts)} accounts, {len(accounts) - sum(not_read.values())} read",
        f" ({unread}: listed in the file, never guessed)" if unread else "",
    )
    follow = Text(f"Next: python -m local_deploy plan --config {output}   (a first deploy writes nothing)", style="dim")
    return Group(summary, table, follow)


# -- day two ----------------------------------------------------------------------------------


def short_id(logical_id: str) -> str:
    """A logical ID without the hash CDK appends (``ContactAutomationAccountMoved1A2B3C4D``)."""
    tail = logical_id[-8:]
    return logical_id[:-8] if len(logical_id) > 8 and all(c in "0123456789ABCDEF" for c in tail) else logical_id


def handled_text(delivery: Delivery) -> Text:
    if delivery.dead_lettered:
        return Text(f"failed {delivery.receives} times: moved to the dead-letter queue", style="red")
    if not delivery.handled:
        return Text("no rule matched" if not delivery.routes else "not handled", style="dim")
    text = Text()
    for handled in delivery.handled:
        changes = ", ".join(f"{t} {a}" for t, a in sorted(handled.actions.items()))
        style = {"changed": "green", "failed": "red", "unusable": "red"}.get(handled.status, "dim")
        text.append(f"{handled.account or '—'} {handled.status}", style=style)
        if changes:
            text.append(f": {changes}")
        if handled.reason:
            text.append(f" ({handled.reason})", style="dim")
    if delivery.receives > 1:
        text.append(f"\nafter {delivery.receives} deliveries", style="yellow")
    return text


def delivery_view(summary: str, report: DeliveryReport, *, missing: str | None, management: str) -> RenderableType:
    table = Table(box=box.SIMPLE_HEAD, title="Events (CloudTrail → EventBridge default bus)", title_justify="left")
    for column in ("Event", "Bus of", "Rule → target", "The handler said"):
        table.add_column(column, overflow="fold")
    for delivery in report.deliveries:
        source = str(delivery.event.get("source", ""))
        bus = delivery.bus_account + ("" if delivery.bus_account == management else " (its own trail)")
        routes = "\n".join(
            f"{short_id(route.rule)} → {route.target if route.target.startswith('bus ') else short_id(route.target)}"
            for route in delivery.routes
        )
        table.add_row(
            Text.assemble(delivery.name, (f"\n{source}", "dim")),
            bus,
            Text(routes or "—", style="" if routes else "dim"),
            handled_text(delivery),
            end_section=True,
        )
    parts: list[RenderableType] = [Text(summary, style="bold"), table]
    if missing:
        parts.append(
            Text(
                f"No rule matched: {missing}. No handler ran; new and moved accounts wait for the next "
                "deploy of a config with [automation].",
                style="yellow",
            )
        )
    for batch in report.batches:
        failed = f", {batch.failed} reported failed" if batch.failed else ""
        error = f" ({batch.error.splitlines()[0][:200]})" if batch.error else ""
        parts.append(
            Text(
                f"  {short_id(batch.function)}: a batch of {batch.messages} from "
                f"{short_id(batch.queue)}{failed}{error}",
                style="dim",
            )
        )
    parts += [Text(f"  {note}", style="dim") for note in report.notes]
    return Group(*parts)


def drift_view(run: DriftRun) -> RenderableType:
    result = run.result
    counts = ", ".join(
        f"{key.removeprefix('Accounts').lower()} {result[key]}" for key in result if key.startswith("Accounts")
    )
    header = Text.assemble(
        (f"Drift check ({run.mode} mode)", "bold"),
        f" by the schedule's target {short_id(run.function)}: {counts or 'no counts'}",
    )
    table = Table(box=box.SIMPLE_HEAD, title="Accounts that differed from the config", title_justify="left")
    for column in ("Account", "Status", "Contact types"):
        table.add_column(column)
    drifted = [outcome for outcome in run.outcomes if outcome.get("actions")]
    for outcome in drifted:
        actions = ", ".join(f"{t} {a}" for t, a in sorted(outcome["actions"].items()))
        table.add_row(outcome["account"], outcome["status"], actions)
    parts: list[RenderableType] = [header]
    if drifted:
        parts.append(table)
    if run.unfinished:  # no report yet: nothing to say of the accounts
        parts.append(Text(f"  {run.unfinished}", style="yellow"))
    elif not drifted:
        parts.append(Text("  every targeted account is in sync", style="dim"))
    parts += [Text(f"  notified the topic: {subject}", style="dim") for subject in run.notifications]
    parts += [Text(f"  {note}", style="dim") for note in run.notes]
    if result.get("Report"):
        parts.append(Text(f"  Report: {result['Report']}", style="dim"))
    return Group(*parts)


def history_table(history: list[dict[str, Any]], *, last: int = 20) -> Table:
    table = Table(box=box.SIMPLE_HEAD, title="What changed after the deploys, and why", title_justify="left")
    for column in ("When", "Account", "Changes", "What happened", "Why"):
        table.add_column(column, overflow="fold")
    for entry in history[-last:]:
        changes = ", ".join(f"{t} {a}" for t, a in sorted(entry.get("changes", {}).items()))
        table.add_row(
            str(entry.get("at", ""))[11:19],
            entry.get("account", ""),
            Text(changes or entry.get("status", ""), style="red" if entry.get("status") == "dead-lettered" else ""),
            entry.get("what", ""),
            Text(entry.get("why", ""), style="dim"),
        )
    return table


# -- coverage ---------------------------------------------------------------------------------

_COVERAGE_STYLE = {"in sync": "green", "drifted": "yellow", "failed": "red", "skipped": "dim", "not targeted": "dim"}


def coverage_view(coverage: Coverage, *, listed: int = 10) -> RenderableType:
    """The whole organization's counts by setting, and the first accounts that need attention."""
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"Coverage of {coverage.accounts} accounts (job {coverage.job})",
        title_justify="left",
    )
    table.add_column("Setting")
    for status in STATUSES:
        table.add_column(Text(status, style=_COVERAGE_STYLE[status]), justify="right")
    for setting in coverage.settings:
        found = coverage.totals(setting)
        table.add_row(setting, *(str(found[status]) for status in STATUSES))
    attention = Table(
        box=box.SIMPLE_HEAD, title=f"{len(coverage.attention)} need attention", title_justify="left", pad_edge=False
    )
    for column in ("Account", "Setting", "Status", "Reason"):
        attention.add_column(column, overflow="fold")
    for row in coverage.attention[:listed]:
        attention.add_row(row.account, row.setting, Text(row.status, style=_COVERAGE_STYLE[row.status]), row.reason)
    if len(coverage.attention) > listed:
        attention.caption = f"... and {len(coverage.attention) - listed} more in the HTML page"
    assert set(ATTENTION) <= set(STATUSES)
    return Group(table, attention) if coverage.attention else table
