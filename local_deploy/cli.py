"""``python -m local_deploy``: plan, deploy and destroy the app on a simulated organization, locally.

    plan     what a deploy would change, account by account and setting by setting (read-only);
             with --aws, against the real organization of the current AWS credentials; --output json
             for scripts (docs/plan.md)
    import   write the config that reproduces what the organization's accounts have now, in the
             fewest entries (read-only; --aws for the real organization): a first deploy of it
             writes nothing
    deploy   synthesize the app and do what CloudFormation would do, with the real handlers; in
             delegated-administrator mode, then the delegated administrator's stack, as that account;
             a failure is rolled back as cdk deploy does (--no-rollback keeps it)
    destroy  delete the stacks' resources in reverse order (the removal policies apply); the
             delegated administrator's stack first
    state    the simulated organization and the stack as they are now, and what changed since, and why
    reset    forget the simulated world (the next command seeds it again)
    demo     plan, deploy, deploy again (nothing changes), then day two: a new account joins and
             gets its contacts, a contact edited by hand is put back by the drift check; in its own
             state directory (.local-org-demo/, started over each time), or in --state-dir if that
             holds no world yet (--reset to forget the one it holds)

Day two, on the deployed stacks (each logs the events AWS documents, matched against the deployed
rules and delivered through the deployed queue to the real handler):

    create-account NAME --ou OU [--control-tower]   as Organizations (or Control Tower) creates one
    invite ACCOUNT_ID NAME [--ou OU]                an invited account accepts and joins
    move ACCOUNT_ID --ou OU                         MoveAccount
    suspend ACCOUNT_ID                              CloseAccount: SUSPENDED
    tag ACCOUNT_ID KEY=VALUE                        TagResource
    untag ACCOUNT_ID KEY                            UntagResource
    edit-contact ACCOUNT_ID TYPE [--name ...]       a person changes a contact in the account itself
    drift                                           the scheduled drift check, now (fix or report-only,
                                                    as deployed)

    report   the organization's settings at a glance: an HTML page and a CSV of every OU's and every
             setting's accounts in sync, drifted, failed, skipped and not targeted, read now from the
             simulated organization (nothing changes), or from a deploy or drift report JSON (--from)

A command that changes the state directory holds its lock until it ends: a second one is refused
(exit 1) with the holder's command, process, host and start. `plan`, `state`, `report` and `import`
only read: they take no lock and show the state as the last complete write left it. Ctrl-C keeps
what was done, written as a whole; the stack operation under way ends as failed, and the next deploy
carries on.

Exit status: 0 on success, 1 when a command fails (the reason on one line), 2 for a bad config
or organization file (each problem on its own line), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from local_deploy import ROOT, coverage, estimates, importing
from local_deploy import organization_actions as actions
from local_deploy.api_calls import ApiCalls, ReadOnlyViolation, writes
from local_deploy.assets import assembly_reader, file_assets, publish
from local_deploy.automation import Automation, AutomationError, DeliveryReport, DriftRun
from local_deploy.cloudformation import FUNCTION, NO_CHANGE, LocalCloudFormation, ResourceError, Result, simulated
from local_deploy.importing import IMPORTED_SETTINGS
from local_deploy.organization_file import OrganizationFileError, load_organization_file
from local_deploy.plan import Plan, PlanError, build_plan
from local_deploy.plan_json import FORMAT_VERSION, plan_document
from local_deploy.plan_view import CHANGES_ONLY_PAST, PlanOptions, plan_view
from local_deploy.simulated_time import Timing, duration
from local_deploy.stack import StackState
from local_deploy.state import Run
from local_deploy.synth import SynthError, Synthesized, synthesize
from local_deploy.template import Template, TemplateError
from local_deploy.views import (
    AccountsProgress,
    DeployProgress,
    accounts_table,
    coverage_view,
    delivery_view,
    drift_view,
    import_view,
    make_console,
    result_view,
    short_id,
    state_view,
)
from local_deploy.world import StateDir, StateDirError, World, open_world
from org_bootstrap.aws import clients
from org_bootstrap.aws.organization import management_account_id
from org_bootstrap.aws.partitions import partition_of
from org_bootstrap.engine import clock as clocks
from org_bootstrap.engine.reconcile import AccountApi
from org_bootstrap.engine.stores import DynamoDbSnapshots
from org_bootstrap.handlers.resource import ObjectReader
from org_bootstrap.settings.alternate_contacts import FIELDS
from org_bootstrap.settings.alternate_contacts.spec import CONTACT_TYPES
from org_bootstrap.settings.regions import DISABLE as DISABLE_REGION_CALL
from org_bootstrap.settings.regions import ENABLE as ENABLE_REGION_CALL
from org_bootstrap.validation import EVENTS_REGION, region_problem
from simulation.organization import acting_as
from stacks.config import DEFAULT_CONFIG, BootstrapConfig, ConfigError, load_config

DEFAULT_ORGANIZATION = ROOT / "config" / "example-organization.toml"
DEFAULT_STATE = ROOT / ".local-org"
DEMO_STATE = ROOT / ".local-org-demo"  # the demo's own: started over by each demo
READ_ONLY = frozenset({"plan", "state", "report", "import"})  # commands that never write the state directory
DEFAULT_IMPORT = ROOT / "config" / "imported.toml"

Synthesizer = Callable[[str], Synthesized]
TEXT, JSON = "text", "json"


class CommandFailed(Exception):
    """A command ran and failed; the message is the one-line reason."""


@dataclass
class Session:
    """What every command gets: where to print, the state directory, the seed, how to synthesize."""

    console: Console
    state: StateDir
    seed: str
    synthesizer: Synthesizer
    show_values: bool = False
    invocation_seconds: float | None = None
    real_time: bool = False  # --real-time: the machine's clock instead of the simulated one
    timings: list[Timing] = field(default_factory=list)  # each opening of the world's, in order
    plan_options: PlanOptions = field(default_factory=PlanOptions)
    output: str = TEXT  # of the plan: TEXT, or JSON on stdout alone (everything else on stderr)
    run: Run | None = None  # the command holding the state directory's lock


def main(argv: Sequence[str] | None = None, *, synthesizer: Synthesizer | None = None) -> int:
    args = _parser().parse_args(argv)
    output = getattr(args, "output", TEXT)
    console = make_console(stderr=output == JSON)
    errors = make_console(stderr=True)
    session = Session(
        console=console,
        state=state_dir(args),
        seed=args.organization,
        synthesizer=synthesizer or (lambda path: synthesize(path, reconcile=_reconcile_token(args))),
        show_values=getattr(args, "show_values", False),
        invocation_seconds=getattr(args, "max_invocation_seconds", None),
        real_time=getattr(args, "real_time", False),
        plan_options=PlanOptions(
            show_values=getattr(args, "show_values", False),
            detail=getattr(args, "detail", False),
            changes_only=getattr(args, "changes_only", None),
        ),
        output=output,
    )
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as held:
            if args.command_name in ("reset", "demo"):  # they delete: a mistyped --state-dir gets not even a lock file
                session.state.check_ours()
            if args.command_name not in READ_ONLY:
                session.run = held.enter_context(session.state.lock(args.command_name))
            args.command(session, args)
    except (ConfigError, OrganizationFileError) as error:
        errors.print(Text.assemble(("error: ", "bold red"), str(error)), soft_wrap=True)
        return 2
    except (CommandFailed, SynthError, TemplateError, PlanError, ReadOnlyViolation, StateDirError) as error:
        errors.print(Text.assemble(("error: ", "bold red"), _one_line(str(error))), soft_wrap=True)
        return 1
    except (ClientError, BotoCoreError) as error:  # a real organization: credentials, permissions
        reason = _one_line(f"{type(error).__name__}: {error}")
        errors.print(Text.assemble(("error: ", "bold red"), reason), soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        errors.print(
            Text(
                f"interrupted: {_shown(session.state.path)}/ keeps what was done until now, written as a whole "
                "(a stack operation under way is recorded as failed, and the next deploy carries on from there)",
                style="yellow",
            ),
            soft_wrap=True,
        )
        return 130
    finally:
        if session.timings:
            # A plan's last line on stdout is its "Plan:" summary, for scripts: the timing goes to stderr.
            (errors if args.command is command_plan else console).print(
                Text(_took(session, time.monotonic() - started), style="bold")
            )
    return 0


def state_dir(args: argparse.Namespace) -> StateDir:
    """``--state-dir``, or the command's default: the demo's own directory for the demo."""
    if args.state_dir is not None:
        return StateDir(Path(args.state_dir))
    return StateDir(DEMO_STATE if args.command_name == "demo" else DEFAULT_STATE)


def _took(session: Session, wall_seconds: float) -> str:
    """``took 4.2 s here; at AWS's published quotas: 3 min 12 s`` for the whole command."""
    if session.real_time:
        return f"Took {duration(wall_seconds)} in real time (--real-time: paced as at AWS's published quotas)"
    aws = sum(timing.aws_seconds for timing in session.timings)
    return f"Took {duration(wall_seconds)} here; at AWS's published quotas: {duration(aws)}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local_deploy",
        description="Deploy the app to a simulated AWS Organization on this machine, or plan against a real one.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--organization",
        default=_shown(DEFAULT_ORGANIZATION),
        help="the organization file that seeds the simulated organization on the first run (default: %(default)s)",
    )
    common.add_argument(
        "--state-dir",
        help="where the simulated world and the stack are kept between runs (default: .local-org/ in the repository; "
        "for demo, .local-org-demo/, its own)",
    )
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", default=_shown(DEFAULT_CONFIG), help="the app's config (default: %(default)s)")
    values = argparse.ArgumentParser(add_help=False)
    values.add_argument("--show-values", action="store_true", help="show e-mail addresses and phone numbers in full")
    lambda_time = argparse.ArgumentParser(add_help=False)
    lambda_time.add_argument(
        "--real-time",
        action="store_true",
        help="run on the machine's clock, waiting as AWS's quotas make the calls wait (default: a simulated "
        "clock, which takes seconds here and reports the time at AWS's published quotas)",
    )
    lambda_time.add_argument(
        "--max-invocation-seconds",
        type=float,
        help="cap each handler invocation's time (default: the function's Timeout); long jobs then run in "
        "more is-complete polls",
    )
    commands = parser.add_subparsers(required=True, metavar="command")
    plan = commands.add_parser("plan", parents=[common, config, values, lambda_time], help="what a deploy would change")
    plan.add_argument(
        "--aws",
        action="store_true",
        help="plan against the real organization of the current AWS credentials (read-only)",
    )
    plan.add_argument(
        "--output",
        choices=(TEXT, JSON),
        default=TEXT,
        help="text: the plan to read (default); json: the same plan for scripts, on stdout alone, "
        f"format_version {FORMAT_VERSION} (docs/plan.md); people's data masked unless --show-values",
    )
    plan.add_argument(
        "--detail",
        action="store_true",
        help="every field an update changes (without it, an update of many fields shows the first ones and a count)",
    )
    shown = plan.add_mutually_exclusive_group()
    shown.add_argument(
        "--changes-only",
        dest="changes_only",
        action="store_true",
        default=None,
        help=f"only the accounts and items that change (the default past {CHANGES_ONLY_PAST} accounts)",
    )
    shown.add_argument(
        "--all",
        dest="changes_only",
        action="store_false",
        help="every account, in sync, skipped and not targeted too",
    )
    plan.set_defaults(command=command_plan, command_name="plan")
    imports = commands.add_parser(
        "import", parents=[common], help="write the config of what the organization has now (read-only)"
    )
    imports.add_argument(
        "--aws",
        action="store_true",
        help="read the real organization of the current AWS credentials (read-only, as plan --aws)",
    )
    imports.add_argument(
        "--settings",
        default=",".join(IMPORTED_SETTINGS),
        help="the settings to import, comma-separated (default: %(default)s)",
    )
    imports.add_argument(
        "--output", default=_shown(DEFAULT_IMPORT), help="the config file to write (default: %(default)s)"
    )
    imports.add_argument("--force", action="store_true", help="replace the output file if it exists")
    imports.add_argument(
        "--region",
        default=EVENTS_REGION,
        help="the config's region: where the stack will deploy (default: %(default)s, where account events arrive)",
    )
    imports.set_defaults(command=command_import, command_name="import")
    deploy = commands.add_parser(
        "deploy", parents=[common, config, lambda_time], help="deploy to the simulated organization"
    )
    deploy.add_argument(
        "--no-rollback",
        dest="rollback",
        action="store_false",
        help="on a failure, stop and keep what was done (CREATE_FAILED, UPDATE_FAILED) instead of rolling back, "
        "as cdk deploy --no-rollback",
    )
    deploy.add_argument(
        "--reconcile",
        action="store_true",
        help="compare every targeted account and put right what drifted, even with an unchanged config "
        "(as cdk deploy -c reconcile=$(date +%%s))",
    )
    deploy.set_defaults(command=command_deploy, command_name="deploy")
    commands.add_parser(
        "destroy", parents=[common, config, lambda_time], help="delete the stack from the simulated organization"
    ).set_defaults(command=command_destroy, command_name="destroy")
    commands.add_parser("state", parents=[common, values], help="show the simulated organization").set_defaults(
        command=command_state, command_name="state"
    )
    commands.add_parser("reset", parents=[common], help="forget the simulated world").set_defaults(
        command=command_reset, command_name="reset"
    )
    demo = commands.add_parser(
        "demo", parents=[common, config, values, lambda_time], help="plan, deploy, deploy again, day two, state"
    )
    demo.add_argument(
        "--reset",
        action="store_true",
        help="forget the world --state-dir holds first (without --state-dir the demo uses .local-org-demo/, "
        "its own, and always starts it over)",
    )
    demo.set_defaults(command=command_demo, command_name="demo")
    day_two = [common, values, lambda_time]
    create = commands.add_parser("create-account", parents=day_two, help="create an account in an OU")
    create.add_argument("name", help="the account's name")
    create.add_argument("--ou", required=True, help="the OU (name or ID) it is created in, or root")
    create.add_argument("--control-tower", action="store_true", help="as Control Tower's Account Factory")
    create.add_argument("--account-id", help="the new account's ID (default: a random one)")
    create.set_defaults(command=command_create_account, command_name="create-account")
    invite = commands.add_parser("invite", parents=day_two, help="invite an account, which accepts and joins")
    invite.add_argument("account_id")
    invite.add_argument("name")
    invite.add_argument("--ou", help="move it into this OU (name or ID) once it has joined")
    invite.set_defaults(command=command_invite, command_name="invite")
    move = commands.add_parser("move", parents=day_two, help="move an account to another OU")
    move.add_argument("account_id")
    move.add_argument("--ou", required=True, help="the destination OU (name or ID), or root")
    move.set_defaults(command=command_move, command_name="move")
    suspend = commands.add_parser("suspend", parents=day_two, help="close an account (SUSPENDED)")
    suspend.add_argument("account_id")
    suspend.set_defaults(command=command_suspend, command_name="suspend")
    tag = commands.add_parser("tag", parents=day_two, help="tag an account")
    tag.add_argument("account_id")
    tag.add_argument("tag", metavar="KEY=VALUE")
    tag.set_defaults(command=command_tag, command_name="tag")
    untag = commands.add_parser("untag", parents=day_two, help="remove a tag from an account")
    untag.add_argument("account_id")
    untag.add_argument("key")
    untag.set_defaults(command=command_untag, command_name="untag")
    edit = commands.add_parser("edit-contact", parents=day_two, help="change a contact by hand, in the account")
    edit.add_argument("account_id")
    edit.add_argument("contact_type", choices=CONTACT_TYPES)
    for field_name, flag in (
        ("Name", "--name"),
        ("Title", "--title"),
        ("EmailAddress", "--email"),
        ("PhoneNumber", "--phone"),
    ):
        edit.add_argument(flag, dest=field_name, help=f"the new {field_name}")
    edit.set_defaults(command=command_edit_contact, command_name="edit-contact")
    commands.add_parser("drift", parents=day_two, help="run the scheduled drift check now").set_defaults(
        command=command_drift, command_name="drift"
    )
    report = commands.add_parser(
        "report", parents=[common, config, values], help="a coverage report (HTML and CSV) of every OU and setting"
    )
    report.add_argument(
        "--from",
        dest="source",
        metavar="REPORT_JSON",
        help="a deploy or drift report JSON (from the jobs' S3 bucket) instead of the simulated organization",
    )
    report.add_argument(
        "--out",
        default="coverage-report.html",
        help="the HTML file to write; the CSV goes beside it with .csv (default: %(default)s)",
    )
    report.set_defaults(command=command_report, command_name="report")
    return parser


# -- commands ---------------------------------------------------------------------------------


def command_plan(session: Session, args: argparse.Namespace) -> None:
    synthesized = _synthesize(session, args.config)
    if args.aws:
        plan_real(session, synthesized)
    else:
        plan_simulated(session, synthesized)


def command_import(session: Session, args: argparse.Namespace) -> None:
    settings = [name.strip() for name in args.settings.split(",") if name.strip()]
    unknown = [name for name in settings if name not in IMPORTED_SETTINGS]
    if unknown or not settings:
        given = ", ".join(unknown) or "(none)"
        raise CommandFailed(f"--settings: {given}: give some of {', '.join(IMPORTED_SETTINGS)}")
    settings = [name for name in IMPORTED_SETTINGS if name in settings]
    output = Path(args.output)
    if output.exists() and not args.force:
        raise CommandFailed(f"{args.output} exists: give another --output, or --force to replace it")
    if region_problem("--region", args.region):
        raise CommandFailed(str(region_problem("--region", args.region)))
    if args.aws:
        boto3.setup_default_session(region_name=args.region)
        assert boto3.DEFAULT_SESSION is not None
        organization = _import(session, ApiCalls(boto3.DEFAULT_SESSION), settings, args.region)
        source = "the real organization of the current AWS credentials"
    else:
        with _world(session, read_only=True) as world:
            organization = _import(session, world.calls, settings, args.region)
        source = f"simulated, seeded from {_shown(Path(session.seed))}"
    config, sections = importing.imported_config(
        organization, settings, region=args.region, partition=partition_of(args.region)
    )
    schema = os.path.relpath(ROOT / "config" / "schema.json", output.resolve().parent)
    text = importing.config_text(organization, config, sections, source=source, at=_now(), schema=schema)
    try:
        BootstrapConfig.from_mapping(tomllib.loads(text), str(output))
    except ConfigError as error:  # a value the config's rules refuse was not caught: never write it
        raise CommandFailed(f"the imported config does not validate: {'; '.join(error.problems)}") from error
    importing.write_atomically(output, text)
    session.console.print(import_view(organization, sections, _shown(output)))


def _import(session: Session, calls: ApiCalls, settings: list[str], region: str) -> importing.Organization:
    with calls.read_only():
        caller = str(clients.client("sts").get_caller_identity()["Account"])
        api = AccountApi(clients.client("account"), caller)  # Account Management, paced at its quotas
        with AccountsProgress(session.console, "reading accounts' settings") as progress:
            return importing.read_organization(
                clients.client("organizations"),
                api,
                settings,
                partition_of(region),
                on_accounts=progress.total,
                on_account=progress.account,
            )


def command_deploy(session: Session, args: argparse.Namespace) -> None:
    result, _ = deploy(session, _synthesize(session, args.config), rollback=args.rollback)
    if not result.ok:
        raise CommandFailed(_failure(result))


def command_destroy(session: Session, args: argparse.Namespace) -> None:
    # CloudFormation deletes what it recorded, not what a config says: the config is only checked
    # (valid, and for this organization), so that `destroy` takes the options `deploy` takes.
    config = load_config(args.config)
    with _world(session) as world:
        if config.management_account_id != world.organization.management_account_id:
            raise CommandFailed(
                f"the config's management_account_id is {config.management_account_id}, but the organization's "
                f"management account is {world.organization.management_account_id}"
            )
        if not any(stack.resources for stack in world.stacks()):
            session.console.print("Nothing to destroy: the stack is not deployed.")
            return
        if world.delegated_stack is not None:  # it depends on the management account's: first
            if world.delegated_stack.resources:
                _destroy(session, world, world.delegated_stack)
            world.delegated_stack = None
        if world.stack is not None and world.stack.resources:
            _destroy(session, world, world.stack)
        world.stack = None


def _destroy(session: Session, world: World, stack: StackState) -> None:
    engine = LocalCloudFormation(stack, world.session, invocation_seconds=session.invocation_seconds)
    total = sum(1 for resource in stack.resources.values() if simulated(resource.type))
    result = _run(session, world, stack, engine, total, engine.destroy)
    if not result.ok:
        raise CommandFailed(_failure(result))


def command_state(session: Session, args: argparse.Namespace) -> None:
    show_state(session)


def command_reset(session: Session, args: argparse.Namespace) -> None:
    load_organization_file(session.seed)  # the file the next command seeds from: a typo shows now
    forgotten = session.state.reset()
    session.console.print(f"{'Forgot' if forgotten else 'Nothing in'} {session.state.path}")


def command_demo(session: Session, args: argparse.Namespace) -> None:
    started = time.monotonic()
    console = session.console
    own = args.state_dir is None
    if session.state.load() is not None and not own and not args.reset:
        raise CommandFailed(
            f"{_shown(session.state.path)}/ holds a simulated world, which the demo would change: run the demo "
            f"without --state-dir (it then uses {_shown(DEMO_STATE)}/, its own), or add --reset to forget that world"
        )
    forgot = session.state.reset()
    where = "its own, started over" if own else ("its world forgotten, as --reset asks" if forgot else "new")
    console.print(
        Text.assemble(
            ("Local deploy demo", "bold"),
            f": {args.config} on a simulated organization seeded from {session.seed}; "
            f"state in {_shown(session.state.path)}/ ({where})",
        )
    )
    synthesized = _synthesize(session, _with_automation(session, args.config))
    console.print(Rule("1. Plan: what the first deploy would change (read-only)"))
    plan_simulated(session, synthesized)
    console.print(Rule("2. Deploy"))
    first, _ = deploy(session, synthesized)
    if not first.ok:
        raise CommandFailed(_failure(first))
    console.print(Rule("3. Deploy again, with nothing changed"))
    second, organization_writes = deploy(session, synthesized)
    if not second.ok or second.operations or organization_writes:
        raise CommandFailed(
            f"the second deploy was not a no-op: {len(second.operations)} resource operations, "
            f"{sum(organization_writes.values())} writes"
        )
    console.print(Rule("4. Day two: an invited account accepts, joins the organization and is moved to an OU"))
    joined = day_two(session, lambda org: actions.invite_account(org, DEMO_ACCOUNT, "Acquired Startup", DEMO_OU))
    console.print(Rule("5. Day two: the Data Platform account is tagged into production"))
    retagged = day_two(session, lambda org: actions.tag_account(org, DEMO_TAGGED, "environment", "production"))
    _check_tagged(retagged, synthesized.config.automation_enabled)
    console.print(Rule("6. Someone changes a contact by hand, in the account itself"))
    edited = day_two(
        session,
        lambda org: actions.edit_contact(
            org, DEMO_EDITED, "SECURITY", {"Name": "Former Payments Lead", "EmailAddress": "lead@example.com"}
        ),
    )
    if synthesized.config.automation_enabled:
        console.print(Rule("7. The scheduled drift check, run now"))
        checked = drift(session)
        _check_day_two(joined, edited, checked)
    console.print(Rule("8. The organization now, and what changed after the deploys"))
    show_state(session)
    console.print(
        Text.assemble(
            ("Demo complete", "bold green"),
            f" in {time.monotonic() - started:.1f} s. Try: python -m local_deploy plan | deploy | destroy | state | "
            "create-account | invite | move | suspend | tag | untag | edit-contact | drift (--help for options)"
            f"{'' if not own else f' with --state-dir {_shown(DEMO_STATE)} for this world'}; "
            "edit the config and deploy again to see an Update.",
        )
    )


DEMO_ACCOUNT, DEMO_OU, DEMO_EDITED = "141414141414", "Development", "555555555555"
DEMO_TAGGED = "999999999999"  # Data Platform: tagged environment=production, it gets the production Regions


def _with_automation(session: Session, config: str) -> str:
    """The demo's config: the one given, with an [automation] section (defaults) if it has none,
    so that day two has rules, a queue and a drift schedule to show."""
    if load_config(config).automation is not None:
        return config
    path = Path(tempfile.gettempdir()) / f"local-deploy-demo-{Path(config).stem}-with-automation.toml"
    path.write_text(Path(config).read_text(encoding="utf-8-sig") + "\n[automation]\n", encoding="utf-8")
    session.console.print(
        Text(f"{config} has no [automation] section: the demo adds one with its defaults ({_shown(path)})", style="dim")
    )
    return str(path)


def _check_tagged(retagged: DeliveryReport, automation: bool) -> None:
    """The TagResource event reached the handler, which started the production Regions there
    (when the config has Regions for production accounts: the example's)."""
    if not automation:
        return
    handled = [h for d in retagged.deliveries if d.name == "TagResource" for h in d.handled]
    if not handled:
        raise CommandFailed(f"day two: no rule delivered the TagResource event of {DEMO_TAGGED}")


def _check_day_two(joined: DeliveryReport, edited: DeliveryReport, checked: DriftRun) -> None:
    """The demo's day two did what it shows: the joined account got contacts from its event, the
    hand edit matched no rule, and the drift check put it back."""
    if not any(h.actions for d in joined.deliveries if d.name == "AccountJoinedOrganization" for h in d.handled):
        raise CommandFailed(f"day two: the AccountJoinedOrganization event did not give {DEMO_ACCOUNT} its contacts")
    if any(delivery.routes for delivery in edited.deliveries):
        raise CommandFailed("day two: a rule matched the hand edit, which no rule should")
    if not any(o["account"] == DEMO_EDITED and o.get("actions") for o in checked.outcomes):
        raise CommandFailed(f"day two: the drift check did not put back the contact edited in {DEMO_EDITED}")


def command_create_account(session: Session, args: argparse.Namespace) -> None:
    day_two(
        session,
        lambda org: actions.create_account(
            org, args.name, args.ou, control_tower=args.control_tower, account_id=args.account_id
        ),
    )


def command_invite(session: Session, args: argparse.Namespace) -> None:
    day_two(session, lambda org: actions.invite_account(org, args.account_id, args.name, args.ou))


def command_move(session: Session, args: argparse.Namespace) -> None:
    day_two(session, lambda org: actions.move_account(org, args.account_id, args.ou))


def command_suspend(session: Session, args: argparse.Namespace) -> None:
    day_two(session, lambda org: actions.suspend_account(org, args.account_id))


def command_tag(session: Session, args: argparse.Namespace) -> None:
    key, separator, value = args.tag.partition("=")
    if not separator or not key:
        raise CommandFailed(f"tag {args.tag!r}: write KEY=VALUE")
    day_two(session, lambda org: actions.tag_account(org, args.account_id, key, value))


def command_untag(session: Session, args: argparse.Namespace) -> None:
    day_two(session, lambda org: actions.untag_account(org, args.account_id, args.key))


def command_edit_contact(session: Session, args: argparse.Namespace) -> None:
    fields = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    if not fields:
        raise CommandFailed("edit-contact: give at least one of --name, --title, --email, --phone")
    day_two(session, lambda org: actions.edit_contact(org, args.account_id, args.contact_type, fields))


def command_drift(session: Session, args: argparse.Namespace) -> None:
    drift(session)


def command_report(session: Session, args: argparse.Namespace) -> None:
    html_path = Path(args.out)
    csv_path = html_path.with_suffix(".csv")
    details: dict[str, Any] = {}
    if args.source:
        try:
            report = json.loads(Path(args.source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise CommandFailed(f"--from {args.source}: cannot read it as JSON ({error})") from error
        source = Path(args.source).name
    else:
        config = load_config(args.config)
        if not config.settings:
            raise CommandFailed(f"{args.config} manages no account setting: nothing to report on")
        with _world(session, read_only=True) as world, world.calls.read_only():
            organizations = clients.client("organizations")
            _check_management_account_id(config.management_account_id, management_account_id(organizations))
            api = AccountApi(clients.client("account"), config.management_account_id)
            with session.console.status("Reading every targeted account's settings (read-only)..."):
                report, details = coverage.read_report(
                    organizations, api, config.settings, management_account_id=config.management_account_id
                )
        source = "the simulated organization"
    try:
        found = coverage.coverage_of(report, details=details, show_values=session.show_values)
    except (coverage.ReportError, KeyError, TypeError, ValueError) as error:
        raise CommandFailed(f"{args.source or 'report'}: {error}") from error
    coverage.write(found, html_path, csv_path, source=source)
    session.console.print(coverage_view(found))
    session.console.print(f"Wrote {_shown(html_path)} and {_shown(csv_path)}")


def _check_management_account_id(configured: str, actual: str) -> None:
    if configured != actual:
        raise CommandFailed(
            f"the config's management_account_id {configured} is not the simulated organization's ({actual})"
        )


# -- the steps, shared by the commands and the demo -------------------------------------------


def day_two(session: Session, act: Callable[[Any], actions.Action]) -> DeliveryReport:
    """Do something to the organization, then deliver the events it logs to the deployed automation."""
    with _world(session) as world:
        automation = Automation(world.stacks(), world.session, invocation_seconds=session.invocation_seconds)
        try:
            action = act(world.organization)
        except (actions.ActionError, ClientError) as error:
            raise CommandFailed(str(error)) from error
        at = _now()
        for contact_type, what in action.by_hand.items():
            world.history.append(
                {
                    "at": at,
                    "account": action.account_id,
                    "changes": {contact_type: what},
                    "what": action.summary,
                    "why": "by hand: no deploy, event or check made this change",
                }
            )
        report = automation.deliver(action.events)
        for delivery in report.deliveries:
            rules = ", ".join(short_id(route.rule) for route in delivery.routes if not route.target.startswith("bus "))
            why = f"{delivery.name} event, rule {rules}"
            for handled in delivery.handled:
                if handled.actions:
                    world.history.append(
                        {
                            "at": at,
                            "account": handled.account,
                            "changes": handled.actions,
                            "what": action.summary,
                            "why": why,
                        }
                    )
            if delivery.dead_lettered:
                world.history.append(
                    {
                        "at": at,
                        "account": action.account_id,
                        "changes": {},
                        "status": "dead-lettered",
                        "what": action.summary,
                        "why": f"{why}: failed every delivery",
                    }
                )
        management = world.organization.management_account_id
        session.console.print(delivery_view(action.summary, report, missing=automation.missing, management=management))
        touched = {action.account_id} | {h.account for d in report.deliveries for h in d.handled if h.account}
        _print_accounts(session, world, touched)
        return report


def drift(session: Session) -> DriftRun:
    with _world(session) as world:
        automation = Automation(world.stacks(), world.session, invocation_seconds=session.invocation_seconds)
        try:
            run = automation.run_drift()
        except AutomationError as error:
            raise CommandFailed(str(error)) from error
        except ResourceError as error:
            raise CommandFailed(f"the drift check failed: {error}") from error
        at = _now()
        for outcome in run.outcomes:
            if outcome.get("actions"):
                world.history.append(
                    {
                        "at": at,
                        "account": outcome["account"],
                        "changes": outcome["actions"],
                        "what": f"drift check: {outcome['status']}",
                        "why": f"drift check ({run.mode} mode), job {run.result.get('Job')}",
                    }
                )
        session.console.print(drift_view(run))
        _print_accounts(session, world, {o["account"] for o in run.outcomes if o.get("actions")})
        return run


def _print_accounts(session: Session, world: World, accounts: set[str]) -> None:
    organization = world.organization.to_mapping()
    shown = {**organization, "accounts": [a for a in organization["accounts"] if a["id"] in accounts]}
    if shown["accounts"]:
        session.console.print(accounts_table(shown, show_values=session.show_values, title="The accounts now"))


def _now() -> str:
    """The time on the world's clock (simulated while a world is open), as the jobs stamp theirs."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clocks.time()))


def plan_simulated(session: Session, synthesized: Synthesized) -> Plan:
    """Each stack's plan (the management account's, then in delegated-administrator mode the
    delegated administrator's, which changes every other account); the management stack's is returned."""
    with _world(session, read_only=True) as world:
        stacks = _stacks_to_plan(synthesized, world.stack, world.delegated_stack)
        writes = world.api_log.writes
        return _plan_each(session, synthesized, stacks, world.calls, _snapshots, writes=writes, real=False)


def plan_real(session: Session, synthesized: Synthesized) -> Plan:
    """Against the organization of the default boto3 session: organizations Describe*/List* and
    account:GetAlternateContact only; any other call is refused before it leaves."""
    boto3.setup_default_session(region_name=synthesized.config.region)
    assert boto3.DEFAULT_SESSION is not None
    # The deployed stacks are not read: this plans a first deploy.
    stacks = _stacks_to_plan(synthesized, None, None)
    return _plan_each(session, synthesized, stacks, ApiCalls(boto3.DEFAULT_SESSION), None, writes=None, real=True)


def _plan_each(
    session: Session,
    synthesized: Synthesized,
    stacks: list[tuple[dict[str, Any], StackState]],
    calls: ApiCalls,
    snapshots: Callable[[StackState], DynamoDbSnapshots | None] | None,
    *,
    writes: Callable[[], int] | None,
    real: bool,
) -> Plan:
    """Plan each stack read-only and show it with the reads it took (``writes``: the simulated
    organization's count of writes, shown beside them); then refuse the deploy if any stack's
    preflight would fail. The first stack's plan is returned."""
    plans = []
    for template, stack in stacks:
        before = calls.snapshot()
        with calls.read_only():
            plan = _plan(session, synthesized, template, stack, snapshots(stack) if snapshots else None)
        reads = _reads_text(calls.snapshot() - before, writes() if writes else 0)
        if plan.contacts_change is not None:  # before the plan, whose last line is its summary
            session.console.print(Text(estimates.plan_line(estimates.of_plan(plan)), style="bold"))
        if session.output == JSON:
            session.console.print(Text(reads, style="dim"))
        else:
            session.console.print(plan_view(plan, stack, real=real, options=session.plan_options, reads=reads))
        plans.append((plan, stack))
    if session.output == JSON:
        document = plan_document(plans, show_values=session.show_values, real=real)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        sys.stdout.flush()
    for plan, _ in plans:
        _check_preflight(plan)
    return plans[0][0]


def _stacks_to_plan(
    synthesized: Synthesized, deployed: StackState | None, delegated_deployed: StackState | None
) -> list[tuple[dict[str, Any], StackState]]:
    """Each stack's template with its state (as deployed, or new): the management account's, and
    the delegated administrator's in delegated-administrator mode."""
    found = [(synthesized.template, deployed or _new_stack(synthesized))]
    other = synthesized.delegated_administrator
    if other is not None:
        state = delegated_deployed or StackState(other.name, other.account, synthesized.config.region)
        found.append((other.template, state))
    return found


def _check_preflight(plan: Plan) -> None:
    if plan.problems:
        raise CommandFailed(f"the deploy would fail at the preflight: {'; '.join(plan.problems)}")


def _plan(
    session: Session,
    synthesized: Synthesized,
    template: dict[str, Any],
    stack: StackState,
    snapshots: DynamoDbSnapshots | None,
) -> Plan:
    organizations = clients.client("organizations")
    _check_management_account(synthesized, management_account_id(organizations))  # before reading any account
    api = AccountApi(clients.client("account"), stack.account)  # from the account the stack deploys to
    with AccountsProgress(session.console) as progress:
        return build_plan(
            Template(template),
            stack,
            organizations,
            api,
            snapshots=snapshots,
            read_object=_object_reader(synthesized, stack),
            on_accounts=progress.total,
            on_account=progress.account,
        )


def deploy(session: Session, synthesized: Synthesized, *, rollback: bool = True) -> tuple[Result, Counter[str]]:
    """Deploy the management account's stack, then (delegated-administrator mode) the delegated
    administrator's, as that account; the result (every stack's operations) and the writes made to
    the organization (``service:Operation`` counts). A failed stack is rolled back unless not ``rollback``."""
    delegated = synthesized.delegated_administrator
    with _world(session) as world:
        _check_management_account(synthesized, world.organization.management_account_id)
        stack = world.stack or _new_stack(synthesized)
        _check_stack(stack, synthesized.stack_name)
        world.stack = stack
        before = world.calls.snapshot()
        _publish_assets(world, stack, synthesized.assembly_directory)
        result = _deploy(session, world, stack, Template(synthesized.template), rollback)
        if result.ok:
            _record(stack, synthesized.template, synthesized.assembly_directory)
        if result.ok and delegated is not None:
            other = world.delegated_stack or StackState(delegated.name, delegated.account, synthesized.config.region)
            _check_stack(other, delegated.name)
            world.delegated_stack = other
            _publish_assets(world, other, synthesized.assembly_directory)
            second = _deploy(session, world, other, Template(delegated.template), rollback)
            if second.ok:
                _record(other, delegated.template, synthesized.assembly_directory)
            result = Result(second.status, result.operations + second.operations, result.events + second.events)
        return result, writes(world.calls.snapshot() - before)


def _publish_assets(world: World, stack: StackState, assembly_directory: str) -> None:
    """What ``cdk deploy`` does before the stack: its file assets to the stack account's bootstrap bucket."""
    if not assembly_directory:
        return
    assets = file_assets(assembly_directory, stack.name, account=stack.account, region=stack.region)
    with acting_as(stack.account):
        publish(assets, world.session.client("s3", region_name=stack.region), region=stack.region)


def _object_reader(synthesized: Synthesized, stack: StackState) -> ObjectReader:
    """The plan's reading of properties kept in the bootstrap bucket: the synthesized ones from the
    cloud assembly, the deployed stack's from the simulated bucket of its account."""

    def from_bucket(bucket: str, key: str) -> bytes:
        with acting_as(stack.account):
            body = clients.client("s3", region_name=stack.region).get_object(Bucket=bucket, Key=key)["Body"]
            return bytes(body.read())

    return assembly_reader(synthesized.assembly_directory, fallback=from_bucket)


def _deploy(session: Session, world: World, stack: StackState, template: Template, rollback: bool) -> Result:
    engine = LocalCloudFormation(stack, world.session, invocation_seconds=session.invocation_seconds)
    changes = engine.change_set(template)
    total = sum(1 for change in changes if change.action != NO_CHANGE and simulated(change.resource_type))
    return _run(session, world, stack, engine, total, lambda: engine.deploy(template, rollback=rollback))


def _record(stack: StackState, template: dict[str, Any], assembly_directory: str) -> None:
    """What a complete deploy leaves for the day-two commands: the template, and the files of its
    Lambda layers (from the cloud assembly's assets), which Lambda would mount at /opt."""
    stack.template = template
    stack.layers = {}
    for logical_id, resource in template.get("Resources", {}).items():
        key = str(resource.get("Properties", {}).get("Content", {}).get("S3Key", ""))
        folder = Path(assembly_directory) / f"asset.{key.removesuffix('.zip')}"
        if resource.get("Type") == "AWS::Lambda::LayerVersion" and assembly_directory and folder.is_dir():
            stack.layers[logical_id] = {
                str(path.relative_to(folder)): path.read_text(encoding="utf-8")
                for path in sorted(folder.rglob("*"))
                if path.is_file()
            }


def _check_stack(stack: StackState, name: str) -> None:
    if stack.name != name:
        raise CommandFailed(f"the state directory holds stack {stack.name}, not {name}")


def _run(
    session: Session,
    world: World,
    stack: StackState,
    engine: LocalCloudFormation,
    total: int,
    action: Callable[[], Result],
) -> Result:
    before = world.calls.snapshot()
    clock_started = clocks.monotonic()
    with DeployProgress(session.console, world.calls, world.session, total) as progress:
        engine.listener = progress
        result = action()
    view = result_view(
        result,
        stack,
        writes=writes(world.calls.snapshot() - before),
        seconds=clocks.monotonic() - clock_started,
        simulated=not session.real_time,
    )
    session.console.print(view)
    made = Counter(
        {
            operation: count
            for (service, operation), count in (world.calls.snapshot() - before).items()
            if service == "account"
        }
    )
    if made:
        requests = made[ENABLE_REGION_CALL] + made[DISABLE_REGION_CALL]
        floor = estimates.quota_floor(made, region_requests=requests)
        session.console.print(
            Text(
                f"Account Management calls made: {', '.join(f'{n} {op}' for op, n in sorted(made.items()))}; "
                f"their floor at AWS's published quotas: {duration(floor)}",
                style="dim",
            )
        )
    if not result.ok:
        session.console.print(Text(f"The handlers' logs: {_shown(world.state.log_file)}", style="dim"))
    return result


def show_state(session: Session) -> None:
    with _world(session, read_only=True) as world:
        session.console.print(
            state_view(
                world.organization.to_mapping(world.api_log),
                world.stack,
                show_values=session.show_values,
                seeded_from=_shown(Path(world.seeded_from)),
                history=world.history,
            )
        )


# -- helpers ----------------------------------------------------------------------------------


def _reconcile_token(args: argparse.Namespace) -> str | None:
    """A new value each time, as ``-c reconcile=$(date +%s)`` gives one (``deploy --reconcile``)."""
    return str(time.time_ns()) if getattr(args, "reconcile", False) else None


def _synthesize(session: Session, config: str) -> Synthesized:
    with session.console.status(f"Synthesizing the app from {config} (cdk-nag included)..."):
        synthesized = session.synthesizer(config)
    resources = synthesized.template.get("Resources", {})
    custom = sum(1 for resource in resources.values() if str(resource.get("Type", "")).startswith("Custom::"))
    session.console.print(
        f"Synthesized {synthesized.stack_name} from {config} in {synthesized.seconds:.1f} s"
        + (" (the same config and app code as a synth before: its templates, kept)" if synthesized.cached else "")
        + ": "
        f"{len(resources)} resources, {custom} custom resources "
        f"(account {synthesized.config.management_account_id}, {synthesized.config.region})"
    )
    delegated = synthesized.delegated_administrator
    if delegated is not None:
        resources = delegated.template.get("Resources", {})
        custom = sum(1 for resource in resources.values() if str(resource.get("Type", "")).startswith("Custom::"))
        session.console.print(
            f"Synthesized {delegated.name}: {len(resources)} resources, {custom} custom resources "
            f"(account {delegated.account}, the delegated administrator; deployed after {synthesized.stack_name})"
        )
    return synthesized


@contextlib.contextmanager
def _world(session: Session, *, read_only: bool = False) -> Iterator[World]:
    """The simulated world, saved back as a whole when the block ends unless ``read_only``; a
    stack operation stopped by Ctrl-C is recorded as failed first."""
    # Read and checked even when the state directory already holds a world: a file named on the
    # command line that is missing or wrong is an error, never silently ignored.
    load_organization_file(session.seed)
    writer = session.state.holder() if read_only else None
    if writer is not None:
        session.console.print(
            Text(
                f"{writer} is changing {_shown(session.state.path)}/: this shows it as its last complete write left it",
                style="yellow",
            )
        )
    saved = session.state.seeded_from()
    if saved is not None and Path(saved).resolve() != Path(session.seed).resolve():
        session.console.print(
            Text(
                f"Using the simulated world in {_shown(session.state.path)}/ (seeded from {_shown(Path(saved))}); "
                f"run `python -m local_deploy reset` to seed it from {session.seed}.",
                style="yellow",
            )
        )
    opened = open_world(session.state, session.seed, read_only=read_only, run=session.run, real_time=session.real_time)
    with opened as world:
        if world.timing is not None:
            session.timings.append(world.timing)
        for line in world.taken_over:
            session.console.print(Text(line, style="yellow"), soft_wrap=True)
        try:
            yield world
        except KeyboardInterrupt:
            for stack in world.stacks():
                stack.interrupted()
            raise


def _new_stack(synthesized: Synthesized) -> StackState:
    config = synthesized.config
    return StackState(synthesized.stack_name, config.management_account_id, config.region)


def _check_management_account(synthesized: Synthesized, actual: str) -> None:
    configured = synthesized.config.management_account_id
    if configured != actual:
        raise CommandFailed(
            f"the config's management_account_id is {configured}, but the organization's management account is {actual}"
        )


def _snapshots(stack: StackState) -> DynamoDbSnapshots | None:
    """The snapshot table the contacts handlers were given, if the stack has one."""
    for resource in stack.resources.values():
        table = resource.properties.get("Environment", {}).get("Variables", {}).get("SNAPSHOT_TABLE")
        if resource.type == FUNCTION and table:
            return DynamoDbSnapshots(clients.client("dynamodb", region_name=stack.region), table)
    return None


def _reads_text(reads: Any, simulated_writes: int) -> str:
    by_operation = sorted((f"{service}:{operation}", count) for (service, operation), count in reads.items())
    summary = ", ".join(f"{name} x{count}" for name, count in by_operation)
    return f"Read-only: {sum(reads.values())} API calls ({summary}); writes: {simulated_writes}"


def _failure(result: Result) -> str:
    failed = result.failure
    if failed is None:
        return f"{result.status}"
    return f"{result.status}: {failed.logical_id} ({failed.resource_type}) {failed.action} failed: {failed.error}"


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text


def _shown(path: Path) -> str:
    """A path as typed from here: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
