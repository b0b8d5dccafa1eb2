"""A seeded chaos run over the whole app: deploys, account events and drift checks, interleaved,
while faults are injected at random; invariants checked after every run.

Each run (one seed) starts a simulated organization (``simulation.generated``, its shape drawn
from the seed), deploys the app with all three settings and the automation through the local tools'
own Python APIs (``local_deploy.cli``: the local CloudFormation running the real handlers, the
automation's EventBridge, SQS and Lambda, the drift schedule), in this process, and then:

- steps, drawn from the seed: a Create; account events (created, invited, moved, tagged, suspended
  accounts, hand edits), each delivered to the deployed automation; drift checks; an Update that
  changes the targets (an OU excluded: its accounts released by the removal mode, ``restore``);
- faults, drawn from the seed before each step (``FAULT_RATES``; docs/reliability.md): throttling
  storms on Account Management and Organizations operations, ``ConcurrentModificationException``,
  5xx, timeouts, S3 conditional-write conflicts, a Region that takes hours, accounts SUSPENDED or
  removed from the organization mid-job, continuation steps that fail their retries, and the next
  invocation of any function killed at a random API call (a ``BaseException`` that unwinds like a
  killed process, every thread of it dying at its next call; Lambda answers the caller with an
  error: the Provider framework fails the request, SQS delivers the batch again);
- then the faults stop, the app has its final drift check, and a Delete with ``restore`` runs.

The invariants (each run fails, printing its seed and history, when one breaks):

1. after the final drift check, the engine's own plan plans 0 writes for every targeted ACTIVE account;
2. nothing outside the targets was written by the app (``ApiLog.callers``): the accounts of the OU
   the config always excludes, never moved, get no write but their own hand edits;
3. every account a job knew of has exactly one outcome in its report;
4. no job was worked by two workers at once (every lease taken, with its holder and its term);
5. no account had more than 6 Region requests in progress, the organization more than 50;
6. the Delete with ``restore`` put back every alternate contact that was there before the stack;
7. no e-mail address or phone number in the handlers' logs;
8. a rollback fails only where its own process was killed, and no step raises unexpectedly.

The history (the seed, every step and every fault, in order) is printed for a failing seed;
``--replay SEED`` runs that seed again, printing its history as it goes. The run is deterministic
in its steps and faults (the organization, the steps and the faults come from the seed).

    PYTHONPATH=.:runtime .venv/bin/python -m benchmarks.chaos --seeds 1-100 --accounts 30 --steps 8 --jobs 2
    PYTHONPATH=.:runtime .venv/bin/python -m benchmarks.chaos --seeds 1-6 --accounts 300 --steps 8
    PYTHONPATH=.:runtime .venv/bin/python -m benchmarks.chaos --replay 7 --accounts 30 --steps 8
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import copy
import functools
import io
import itertools
import json
import multiprocessing
import random
import re
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "runtime"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from stacks import silence_jsii_node_notices  # noqa: E402

silence_jsii_node_notices()

from botocore.exceptions import ClientError, ReadTimeoutError  # noqa: E402
from moto.core.exceptions import JsonRESTError  # noqa: E402
from rich.console import Console  # noqa: E402

from local_deploy import cli  # noqa: E402
from local_deploy import organization_actions as actions  # noqa: E402
from local_deploy import world as worlds  # noqa: E402
from local_deploy.automation import Automation  # noqa: E402
from local_deploy.cloudformation import LocalCloudFormation, ResourceError  # noqa: E402
from local_deploy.simulated_time import REGION_OPT_SECONDS  # noqa: E402
from local_deploy.synth import Synthesized, synthesize  # noqa: E402
from local_deploy.world import StateDir  # noqa: E402
from org_bootstrap.engine import clock as clocks  # noqa: E402
from org_bootstrap.engine import continuation  # noqa: E402
from org_bootstrap.engine.registry import account_quotas  # noqa: E402
from org_bootstrap.engine.stores import JOB_PREFIX, S3JobStore  # noqa: E402
from simulation import generated  # noqa: E402
from simulation.organization import (  # noqa: E402
    ORGANIZATION,
    WRITE_OPERATIONS,
    ApiLog,
    Storm,
    _organization_of,
    strict_aws,
)

ACCOUNT_OPERATIONS = (
    "GetAlternateContact",
    "PutAlternateContact",
    "DeleteAlternateContact",
    "GetContactInformation",
    "PutContactInformation",
    "ListRegions",
    "GetRegionOptStatus",
    "EnableRegion",
    "DisableRegion",
)
ORGANIZATIONS_OPERATIONS = (
    "ListAccounts",
    "DescribeAccount",
    "ListParents",
    "ListChildren",
    "ListAccountsForParent",
    "ListOrganizationalUnitsForParent",
    "ListTagsForResource",
    "DescribeOrganization",
    "ListRoots",
)
CME = "ConcurrentModificationException"
SERVER_ERRORS = ("ServiceUnavailableException", "InternalServerException")
TIMEOUT = "timeout"  # a call that gets no answer in time (botocore's ReadTimeoutError)
# The fault kinds and their chance before each step (a step may draw several).
FAULT_RATES = {
    "throttling storm (Account Management)": 0.5,
    "throttling storm (Organizations)": 0.3,
    CME: 0.25,
    "5xx": 0.25,
    "timeouts": 0.15,
    "killed invocation": 0.3,
    "account SUSPENDED mid-job": 0.15,
    "account removed from the organization mid-job": 0.1,
    "continuation steps that fail their retries": 0.1,
    "S3 conditional-write conflicts": 0.2,
    "a Region that takes hours to enable": 0.15,
}
MANAGEMENT = generated.MANAGEMENT
DELEGATED = generated.DELEGATED  # a member of every generated organization
REPORTS = "alternate-contacts/reports/"  # every job's report, in the stack's job bucket
REGION_CAP_ACCOUNT, REGION_CAP_ORGANIZATION = 6, 50
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# The published quotas every write is checked against (the handlers pace at them, on the simulated clock).
PUBLISHED = account_quotas("aws")
REGION_HOURS = (2 * 3600.0, 5 * 3600.0)  # "a Region that takes hours to enable"
# A continuation workflow's step fails this many times in a row: its retries (constructs.job_workflow) run out.
CONTINUATION_FAILURES = 9
KILLED = "Runtime exited with error: signal: killed"  # what Lambda answers for an invocation whose process died


class Killed(BaseException):
    """The Lambda invocation's process killed mid-call: nothing in the handlers catches it."""


class InvariantBroken(AssertionError):
    pass


class ChaosLog(ApiLog):
    """The simulated APIs' log, which also kills the calling invocation at a chosen call."""

    kill_at: int | None = None  # the number of calls from now at which the caller is killed
    suspend_at: int | None = None  # the number of calls from now at which an account is closed
    suspend: str = ""  # that account
    remove_at: int | None = None  # the number of calls from now at which an account leaves the organization
    remove: str = ""  # that account
    failing_steps: int = 0  # continuation steps still to fail
    dead: bool = False  # the running invocation was killed: every thread of it dies at its next call
    conflict_rate: float = 0.0  # the chance that a conditional write of a job finds it changed
    fired: Counter[str]
    armed: bool = False  # only the handlers' calls meet the faults, not the simulation's own

    def __post_init__(self) -> None:
        super().__post_init__()
        self.fired = Counter()
        self.write_times: list[tuple[float, str]] = []
        self.write_steps: list[int] = []
        self.write_invocations: list[int] = []
        self.invocation = 0  # which Lambda invocation is running (each its own process in AWS)
        self.step_notes: list[str] = []  # (time on the simulated clock, operation) of each write

    def _refuse(self, operation: str) -> None:
        try:
            super()._refuse(operation)  # raises when the call is refused: a refused call is no write
        except JsonRESTError as error:
            if error.error_type == TIMEOUT:  # no answer: the client's read times out
                raise ReadTimeoutError(endpoint_url=f"https://{operation}.simulated") from None
            raise
        if operation in PUBLISHED and operation in WRITE_OPERATIONS:
            self.write_times.append((clocks.time(), operation))
            self.write_steps.append(len(self.step_notes))
            self.write_invocations.append(self.invocation)

    def refusal(self, operation: str) -> tuple[str, str] | None:
        if not self.armed:
            return None
        if self.dead:
            self._die(operation)
        if self.remove_at is not None:
            self.remove_at -= 1
            if self.remove_at <= 0:
                self.remove_at = None
                backend = _organization_of(MANAGEMENT)
                backend.accounts = [a for a in backend.accounts if a.id != self.remove]
                self.fired["account removed from the organization mid-job"] += 1
        if self.suspend_at is not None:
            self.suspend_at -= 1
            if self.suspend_at <= 0:
                self.suspend_at = None
                account = _organization_of(MANAGEMENT).get_account_by_id(self.suspend)
                account.status = account.state = "SUSPENDED"
                self.fired["account SUSPENDED mid-job"] += 1
        if self.kill_at is not None:
            self.kill_at -= 1
            if self.kill_at <= 0:
                self.kill_at = None
                self.dead = True
                self.fired["invocation killed"] += 1
                self._die(operation)
        return super().refusal(operation)

    @staticmethod
    def _die(operation: str) -> NoReturn:
        """Raise Killed in this call. botocore ends a call that raises an ``Exception`` on the simulated
        clock (``after-call-error``), not one that raises a ``BaseException``: this thread's call ends
        here, or the clock would wait for it forever."""
        end_call = getattr(clocks.installed(), "end_call", None)
        if end_call is not None:
            end_call()
        raise Killed(operation)


@dataclass
class Run:
    seed: int
    accounts: int
    history: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    leases: list[tuple[str, str, float, float]] = field(default_factory=list)  # job, owner, taken, until
    released: dict[tuple[str, str], float] = field(default_factory=dict)
    fired: Counter[str] = field(default_factory=Counter)  # kills, suspensions, conflicts that happened
    echo: bool = False
    log: ChaosLog | None = None

    def note(self, line: str) -> None:
        self.history.append(line)
        if self.log is not None:
            self.log.step_notes.append(line)
        if self.echo:
            print(f"  {line}", flush=True)


@functools.cache
def _synthesized(variant: str) -> Synthesized:
    """The app synthesized from the generated organization's config (its OU IDs do not depend on
    the seed): ``create`` excludes one OU from the alternate contacts; ``update`` excludes a second."""
    organization = generated.generated_organization(10, 8, seed=1)
    config = generated.generated_config(organization)
    units = [unit["id"] for unit in organization["organizational_units"]]
    excluded = [units[7]] if variant == "create" else [units[7], units[6]]
    config["alternate_contacts"] = {**config["alternate_contacts"], "removal": "restore"}
    config["primary_contact"] = {**config["primary_contact"], "removal": "restore"}
    text = generated.to_toml_config(config)
    text += f"\n[alternate_contacts.targets]\nexclude_organizational_units = {json.dumps(excluded)}\n"
    text += "\n[automation]\n"
    folder = Path(tempfile.mkdtemp(prefix=f"chaos-{variant}-"))
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return synthesize(path)


def excluded_unit(variant: str) -> list[str]:
    units = [f"ou-{generated.ROOT_ID[2:]}-{index:08d}" for index in (7, 6)]
    return units[:1] if variant == "create" else units


@contextlib.contextmanager
def _simulated(log: ChaosLog, run: Run) -> Iterator[None]:
    """Every world the local tools open shares ``log``; quotas lifted; leases recorded."""
    original_take = continuation.Lease.take.__func__  # type: ignore[attr-defined]
    original_release = continuation.Lease.release

    def take(cls: Any, store: Any, job_id: str, *, owner: str, until: float, now: float) -> Any:
        lease = original_take(cls, store, job_id, owner=owner, until=until, now=now)
        if lease is not None:
            run.leases.append((job_id, owner, now, until))
        return lease

    def release(self: Any, job: Any) -> None:
        original_release(self, job)
        run.released[job.id, self.holder["owner"]] = clocks.time()

    hook = threading.excepthook

    def quietly(args: Any) -> None:
        """A thread of a killed invocation (the Region follower) ends with Killed: nothing to print."""
        if args.exc_type is not Killed:
            hook(args)

    take_over = worlds._take_over_leases

    def taking_over(saved: dict[str, Any], *, real_time: bool) -> list[str]:
        """A world opened frees every lease its saved state holds (their holders have stopped:
        ``local_deploy.world``), one whose release was refused (412) too: that lease ends there."""
        at = max(time.time(), float(saved.get("clock", 0.0)))
        for bucket in saved.get("s3", {}).values():
            for key, body in bucket.get("objects", {}).items():
                if key.startswith(f"{JOB_PREFIX}/jobs/") and key.endswith(".json"):
                    job = json.loads(base64.b64decode(body))
                    if isinstance(job, dict) and job.get(continuation.LEASE):
                        run.released.setdefault((str(job.get("id")), str(job[continuation.LEASE]["owner"])), at)
        return take_over(saved, real_time=real_time)

    invoke = LocalCloudFormation._invoke

    def armed(self: Any, function: Any, payload: dict[str, Any], operation: Any) -> Any:
        """One Lambda invocation: a process that may be killed (Lambda answers the caller with an
        error: the Provider framework fails the request, SQS delivers the batch again, the
        workflow's step retries) and whose leases then end, as no call of it runs any more."""
        if continuation.CONTINUE_JOB in payload and log.failing_steps > 0:
            log.failing_steps -= 1
            log.fired["continuation step failed"] += 1
            raise ResourceError(f"{KILLED} (a continuation step, failed on purpose)")
        log.armed, log.dead = True, False
        log.invocation += 1
        first_lease = len(run.leases)
        try:
            return invoke(self, function, payload, operation)
        except Killed as killed:
            for job, owner, _, _ in run.leases[first_lease:]:
                run.released.setdefault((job, owner), clocks.time())
            raise ResourceError(f"{KILLED} (at {killed.args[0]})") from None
        finally:
            log.armed = log.dead = False

    save = S3JobStore.save

    def conflicting(self: Any, job_id: str, data: dict[str, Any], *, if_match: str | None = None) -> str:
        if log.armed and if_match and log.rng.random() < log.conflict_rate:
            log.fired["S3 conditional write refused (412)"] += 1
            refused = copy.copy(self)
            refused.s3 = _Refusing(self.s3)  # S3 answers this write 412, as if another writer came first
            return save(refused, job_id, data, if_match=if_match)
        return save(self, job_id, data, if_match=if_match)

    with (
        mock.patch.object(S3JobStore, "save", conflicting),
        mock.patch.object(LocalCloudFormation, "_invoke", armed),
        mock.patch.object(worlds, "strict_aws", functools.partial(strict_aws, log)),
        mock.patch.object(worlds, "REGION_OPT_SECONDS", worlds.REGION_OPT_SECONDS),
        mock.patch.object(continuation.Lease, "take", classmethod(take)),
        mock.patch.object(continuation.Lease, "release", release),
        mock.patch.object(worlds, "_take_over_leases", taking_over),
        mock.patch.object(threading, "excepthook", quietly),
    ):
        yield


class _Refusing:
    """An S3 client whose next PutObject is refused as a conditional write that lost its race."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3

    def put_object(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": "PreconditionFailed", "Message": "injected"}}, "PutObject")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def _session(state: Path, organization: Path, synthesized: Synthesized) -> cli.Session:
    console = Console(file=io.StringIO(), width=200)
    return cli.Session(console, StateDir(state), str(organization), lambda path: synthesized)


def _inject(rng: random.Random, log: ChaosLog, run: Run, *, members: list[str]) -> None:
    _calm(log)
    for kind, rate in FAULT_RATES.items():
        if rng.random() >= rate:
            continue
        if kind == "account SUSPENDED mid-job":
            if not members:
                continue
            log.suspend, log.suspend_at = rng.choice(members), rng.randint(1, 300)
            run.note(f"fault: account {log.suspend} SUSPENDED at the handlers' API call {log.suspend_at}")
        elif kind == "a Region that takes hours to enable":
            worlds.REGION_OPT_SECONDS = rng.choice(REGION_HOURS)
            run.note(f"fault: Regions take {worlds.REGION_OPT_SECONDS / 3600:.0f} h to enable")
        elif kind == "S3 conditional-write conflicts":
            log.conflict_rate = rng.choice((0.1, 0.3))
            run.note(f"fault: {log.conflict_rate:.0%} of the jobs' conditional writes find the job changed")
        elif kind == "account removed from the organization mid-job":
            if not members:
                continue
            log.remove, log.remove_at = rng.choice(members), rng.randint(1, 300)
            run.note(f"fault: account {log.remove} leaves the organization at the handlers' API call {log.remove_at}")
        elif kind == "continuation steps that fail their retries":
            log.failing_steps = CONTINUATION_FAILURES
            run.note(f"fault: the next {CONTINUATION_FAILURES} continuation steps fail: the workflow's retries run out")
        elif kind == "killed invocation":
            log.kill_at = rng.randint(1, 400)
            run.note(f"fault: the next invocation killed at its API call {log.kill_at}")
        elif kind.startswith("throttling"):
            pool = ACCOUNT_OPERATIONS if "Account" in kind else ORGANIZATIONS_OPERATIONS
            operations = set(rng.sample(pool, rng.randint(1, 3)))
            storm = Storm(operations, fraction=rng.choice((0.3, 0.6, 0.9)), calls=rng.randint(20, 200))
            log.add_storm(storm)
            run.note(f"fault: {kind} on {sorted(operations)}: {storm.fraction:.0%} of {storm.calls} calls")
        else:
            code = CME if kind == CME else TIMEOUT if kind == "timeouts" else rng.choice(SERVER_ERRORS)
            operations = set(rng.sample((*ACCOUNT_OPERATIONS, *ORGANIZATIONS_OPERATIONS), 2))
            log.add_storm(Storm(operations, fraction=0.5, calls=rng.randint(5, 40), code=code, message="injected"))
            run.note(f"fault: {code} on {sorted(operations)}")
        run.faults[kind] += 1


def _calm(log: ChaosLog) -> None:
    log.storms.clear()
    log.throttle_rate = {}
    log.kill_at = log.suspend_at = log.remove_at = None
    log.failing_steps = 0
    log.conflict_rate = 0.0
    worlds.REGION_OPT_SECONDS = REGION_OPT_SECONDS


def _deploy(run: Run, session: cli.Session, synthesized: Synthesized, what: str) -> None:
    """A deploy; one that fails under the faults is rolled back, and deployed again (as a person would).
    A rollback may fail only where its own process was killed (as in AWS, where a person then
    destroys the stack or continues the rollback): the stack is then destroyed and deployed again."""
    for attempt in range(1, 6):
        result, _ = cli.deploy(session, synthesized)
        run.note(f"{what} (attempt {attempt}): {result.status if result.ok else cli._failure(result)}")
        if result.ok:
            return
        if result.status.endswith("ROLLBACK_FAILED"):
            last = [operation for operation in result.operations if not operation.ok][-1]
            if KILLED not in str(last.error):
                _fail(run, "a rollback fails only where its process was killed", f"{last.logical_id}: {last.error}")
            run.note(f"  the rollback's {last.logical_id} was killed: the stack is destroyed, then deployed again")
            _delete(run, session)
    raise InvariantBroken(f"{what}: not deployed after 5 attempts")


def _day_two(run: Run, session: cli.Session, log: ChaosLog, act: Callable[[Any], actions.Action]) -> None:
    """An account event: the change, then its events delivered by the deployed queue (a batch whose
    invocation was killed is delivered again after the visibility timeout, as SQS does)."""
    with cli._world(session) as world:
        action = act(world.organization)
        run.note(f"event: {action.summary}")
        report = Automation(world.stacks(), world.session).deliver(action.events)
        for batch in report.batches:
            if batch.error:
                run.note(f"  a batch of {batch.messages} failed ({batch.error[:80]}): SQS delivers it again")
        dead = [delivery.name for delivery in report.deliveries if delivery.dead_lettered]
        if dead:
            run.note(f"  dead-lettered: {dead}")


def _drift(run: Run, session: cli.Session) -> None:
    try:
        checked = cli.drift(session)
    except cli.CommandFailed as error:
        run.note(f"drift check failed: {error}")
        return
    statuses = Counter(str(outcome.get("status")) for outcome in checked.outcomes)
    run.note(f"drift check: job {checked.result.get('Job')}: {dict(sorted(statuses.items()))}")


def _choose_event(rng: random.Random, organization: dict[str, Any], counter: list[int]) -> Callable[[Any], Any]:
    active = [a["id"] for a in organization["accounts"] if a.get("status", "ACTIVE") == "ACTIVE"]
    members = [a for a in active if a != organization["management_account_id"]]
    units = [unit["id"] for unit in organization["organizational_units"]]
    kind = rng.choice(("create", "invite", "move", "tag", "suspend", "edit", "edit"))
    counter[0] += 1
    n = counter[0]
    if kind == "create":
        ou = rng.choice(units)
        return lambda org: actions.create_account(org, f"chaos-{n}", ou, control_tower=rng.random() < 0.3)
    if kind == "invite":
        account_id = f"{900000000000 + n * 131:012d}"
        ou = rng.choice(units)
        return lambda org: actions.invite_account(org, account_id, f"invited-{n}", ou)
    account = rng.choice(members)
    if kind == "move":
        ou = rng.choice(units)
        return lambda org: actions.move_account(org, account, ou)
    if kind == "tag":
        return lambda org: actions.tag_account(org, account, "team", f"team-{n}")
    if kind == "suspend":
        return lambda org: actions.suspend_account(org, account)
    contact_type = rng.choice(("BILLING", "OPERATIONS", "SECURITY"))
    fields = {"Name": f"Hand edit {n}", "Title": "Edited", "EmailAddress": f"edit-{n}@example.net"}
    fields["PhoneNumber"] = f"+1 555 010 {n % 10000:04d}"
    return lambda org: actions.edit_contact(org, account, contact_type, fields)


def run_seed(seed: int, accounts: int, *, steps: int = 12, echo: bool = False) -> Run:
    """One chaos run; raises InvariantBroken (its message names the seed, then the history), for an
    error no invariant names (a step that raised) too."""
    run = Run(seed, accounts, echo=echo)
    try:
        return _run_seed(run, steps)
    except InvariantBroken:
        raise
    except Exception as error:
        where = "; ".join(
            f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"
            for frame in traceback.extract_tb(error.__traceback__)[-4:]
        )
        _fail(run, "no step fails unexpectedly", f"{type(error).__name__}: {error} (at {where})")
        raise  # not reached: _fail raises


def _run_seed(run: Run, steps: int) -> Run:
    seed, accounts = run.seed, run.accounts
    rng = random.Random(seed)
    log = ChaosLog(rng=random.Random(seed * 7919 + 1), capacity=dict(PUBLISHED))
    run.log = log
    create, update = _synthesized("create"), _synthesized("update")
    ous = max(8, accounts // 4)
    organization_data = generated.generated_organization(accounts, ous, seed=seed)
    with tempfile.TemporaryDirectory(prefix=f"chaos-{seed}-") as folder, _simulated(log, run):
        org_file = Path(folder) / "organization.toml"
        org_file.write_text(generated.to_toml(organization_data), encoding="utf-8")
        state = Path(folder) / "state"
        session = _session(state, org_file, create)
        run.note(f"seed {seed}: {accounts} accounts in {ous} OUs")
        before = {a["id"]: a.get("contacts", {}) for a in organization_data["accounts"]}
        counter = [0]
        hand_edited: set[str] = set()
        moved: set[str] = set()
        _inject(rng, log, run, members=_members(organization_data))
        _deploy(run, session, create, "Create")
        current = create
        for step in range(steps):
            roll = rng.random()
            shape = _shape(state)
            _inject(rng, log, run, members=_members(shape))
            if step == steps // 2:
                session = _session(state, org_file, update)
                _deploy(run, session, update, "Update (an OU excluded from the alternate contacts)")
                current = update
            elif roll < 0.25:
                _drift(run, session)
            else:
                act = _choose_event(rng, shape, counter)
                before_callers = Counter(log.callers)
                _day_two(run, session, log, act)
                for (operation, caller, target), _ in (log.callers - before_callers).items():
                    if operation in WRITE_OPERATIONS and caller == target:
                        hand_edited.add(target)
                moved |= {line.split()[3] for line in run.history[-3:] if line.startswith("event: Moved account ")}
            _calm(log)
        run.note("faults stop")
        _drift(run, session)
        check_converged(run, session, current)
        check_untargeted(run, _shape(state), log, hand_edited | moved)
        check_reports(run, session)
        check_leases(run)
        check_region_caps(run, log)
        check_quotas(run, log)
        active = {a["id"] for a in _shape(state)["accounts"] if a.get("status", "ACTIVE") == "ACTIVE"}
        check_logs(run, state, organization_data)
        _delete(run, session)
        check_restored(run, session, before, active - hand_edited - moved)
        run.fired.update(log.fired)
        check_logs(run, state, organization_data)
    return run


def _shape(state: Path) -> dict[str, Any]:
    """The simulated organization as the state directory holds it after the last step."""
    saved = StateDir(state).load()
    assert saved is not None, f"no simulated world in {state}"
    shape: dict[str, Any] = saved["organization"]
    return shape


def _members(shape: dict[str, Any]) -> list[str]:
    """The ACTIVE member accounts but the delegated administrator: the ones a fault may close."""
    return [
        a["id"]
        for a in shape["accounts"]
        if a.get("status", "ACTIVE") == "ACTIVE" and a["id"] not in (shape["management_account_id"], DELEGATED)
    ]


def _delete(run: Run, session: cli.Session) -> None:
    with cli._world(session) as world:
        stack = world.stack
        assert stack is not None
        cli._destroy(session, world, stack)
        world.stack = None
    run.note("Delete: the stack destroyed (alternate contacts and primary contact: removal restore)")


def _fail(run: Run, invariant: str, detail: str) -> None:
    history = "\n".join(f"  {line}" for line in run.history)
    raise InvariantBroken(f"seed {run.seed}: invariant broken: {invariant}: {detail}\nhistory:\n{history}")


def check_converged(run: Run, session: cli.Session, synthesized: Synthesized) -> None:
    run.checks["converged"] += 1
    plan = cli.plan_simulated(session, synthesized)
    unconverged = [
        (line.account.id, [f"{c.contact_type}:{c.action}" for c in line.changes])
        for line in plan.accounts
        if line.targeted and not line.skipped and (line.changes or line.failed)
    ]
    if unconverged:
        _fail(run, "every targeted ACTIVE account matches the config", f"{len(unconverged)}: {unconverged[:5]}")


def check_untargeted(run: Run, shape: dict[str, Any], log: ChaosLog, touched: set[str]) -> None:
    """The accounts of the OU excluded since the Create (and its nested OUs), never moved or edited by
    hand, had no alternate-contact write."""
    run.checks["nothing written outside the targets"] += 1
    parents = {unit["id"]: unit.get("parent", shape["root_id"]) for unit in shape["organizational_units"]}
    excluded = excluded_unit("create")[0]

    def under(parent: str) -> bool:
        while parent in parents:
            if parent == excluded:
                return True
            parent = parents[parent]
        return False

    outside = {a["id"] for a in shape["accounts"] if under(a.get("parent", shape["root_id"]))} - touched
    written = sorted(
        (operation, target)
        for (operation, caller, target), count in log.callers.items()
        if operation in ("PutAlternateContact", "DeleteAlternateContact") and target in outside and caller != target
    )
    if written:
        _fail(run, "nothing outside the targets was written", str(written[:5]))


def check_reports(run: Run, session: cli.Session) -> None:
    """Every job report: each account it knew of has exactly one outcome."""
    with cli._world(session) as world:
        stack = world.stack
        assert stack is not None
        bucket = next(
            str(resource.properties["Environment"]["Variables"]["JOB_BUCKET"])
            for resource in stack.resources.values()
            if resource.properties.get("Environment", {}).get("Variables", {}).get("JOB_BUCKET")
        )
        with worlds.acting_as(stack.account):
            s3 = world.session.client("s3", region_name=stack.region)
            keys = [
                item["Key"]
                for page in s3.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix="alternate-contacts/reports/"
                )
                for item in page.get("Contents", [])
            ]
            for key in keys:
                run.checks["one outcome per account per report"] += 1
                report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                seen = Counter(str(outcome.get("account")) for outcome in report.get("outcomes", []))
                twice = [account for account, count in seen.items() if count != 1]
                if twice:
                    _fail(run, "one outcome per account", f"{key}: {twice[:5]}")


def check_leases(run: Run) -> None:
    """No two workers held a job's lease at once: each lease taken ends (released, or its term
    over) before another worker's starts."""
    by_job: dict[str, list[tuple[float, float, str]]] = {}
    for job, owner, taken, until in run.leases:
        end = min(until, run.released.get((job, owner), until))
        by_job.setdefault(job, []).append((taken, end, owner))
    for job, held in by_job.items():
        run.checks["one worker per job"] += 1
        held.sort()
        for (_, end, owner), (start, _, other) in itertools.pairwise(held):
            if other != owner and start < end:
                _fail(run, "one worker per job", f"{job}: {other} took it at {start} while {owner} held it to {end}")


def check_region_caps(run: Run, log: ChaosLog) -> None:
    run.checks["Region requests in progress"] += 1
    accounts = {key: peak for key, peak in log.peak_in_progress.items() if key != ORGANIZATION}
    if any(peak > REGION_CAP_ACCOUNT for peak in accounts.values()) or log.peak_in_progress[ORGANIZATION] > 50:
        _fail(run, "Region requests in progress", f"{log.peak_in_progress.most_common(3)}")


def check_quotas(run: Run, log: ChaosLog) -> None:
    """No invocation's writes exceeded their published quota: each write, in order on the simulated
    clock, finds a token in a bucket at the quota's rate and burst. Per invocation: two Lambda
    invocations at once (a deploy and an event) each pace at the quota, and the service throttles
    what their sum exceeds (``ApiLog.capacity``, set at the published quotas), as AWS does."""
    run.checks["writes within the published quotas"] += 1
    buckets: dict[tuple[int, str], tuple[float, float]] = {}  # (invocation, operation) -> (tokens, at)
    over: list[tuple[float, str]] = []
    for at, operation, invocation in sorted(
        zip(*zip(*log.write_times, strict=True), log.write_invocations, strict=True)
    ):
        quota = PUBLISHED[operation]
        tokens, then = buckets.get((invocation, operation), (float(quota.burst), at))
        tokens = min(float(quota.burst), tokens + (at - then) * quota.per_second)
        if tokens < 1 - 1e-6:
            over.append((at, operation))
        buckets[invocation, operation] = (max(tokens - 1, 0.0), at)
    if over:
        at, operation = over[0]
        near = [
            (round(when - at, 3), log.step_notes[step - 1][:50])
            for (when, name), step in zip(log.write_times, log.write_steps, strict=True)
            if name == operation and abs(when - at) < 1
        ]
        quota = PUBLISHED[operation]
        detail = f"{len(over)} writes over; {operation} at {quota.per_second}/s burst {quota.burst}: writes at {near} s"
        _fail(run, "no write exceeded a published quota", detail)


def check_restored(run: Run, session: cli.Session, before: dict[str, Any], active: set[str]) -> None:
    """Every account ACTIVE all along, never edited by hand nor moved, has the alternate contacts it
    had before the stack. (A hand edit before the stack first changed that contact type is what
    ``restore`` puts back: it restores the value from before the stack's first change.)"""
    run.checks["Delete with restore"] += 1
    after = {a["id"]: a.get("contacts", {}) for a in _shape(session.state.path)["accounts"]}
    wrong = [account for account in sorted(before) if account in active and after.get(account) != before[account]]
    if wrong:
        detail = [(account, before[account], after.get(account)) for account in wrong[:2]]
        _fail(run, "a Delete with restore puts back what was there", f"{len(wrong)} accounts: {detail}")


def check_logs(run: Run, state: Path, organization: dict[str, Any]) -> None:
    run.checks["no e-mail or phone number in the logs"] += 1
    text = (state / "handlers.log").read_text(encoding="utf-8")
    phones = {
        str(contact.get("PhoneNumber"))
        for account in organization["accounts"]
        for contact in [*account.get("contacts", {}).values(), account.get("primary_contact") or {}]
        if contact.get("PhoneNumber")
    }
    found = EMAIL.findall(text) + [phone for phone in phones if phone in text]
    if found:
        _fail(run, "no e-mail or phone number in any log", str(sorted(set(found))[:5]))


def _seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        seeds += list(range(int(first), int(last or first) + 1))
    return seeds


@dataclass
class Finished:
    """One seed's result, as a worker process hands it back."""

    seed: int
    seconds: float
    failure: str = ""  # the broken invariant, the seed and the history; empty when every invariant held
    faults: Counter[str] = field(default_factory=Counter)
    fired: Counter[str] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)


def run_one(seed: int, accounts: int, steps: int, echo: bool = False) -> Finished:
    begun = time.monotonic()
    try:
        run = run_seed(seed, accounts, steps=steps, echo=echo)
    except InvariantBroken as error:
        return Finished(seed, time.monotonic() - begun, str(error))
    return Finished(seed, time.monotonic() - begun, "", run.faults, run.fired, run.checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", default="1-5", help="seeds to run: 1-20, or 3,8,11 (default 1-5)")
    parser.add_argument("--accounts", type=int, default=60, help="accounts in each organization (default 60)")
    parser.add_argument("--steps", type=int, default=12, help="steps after the Create (default 12)")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once, each in its own process (default 1)")
    parser.add_argument("--replay", type=int, help="run one seed again, printing its history as it goes")
    args = parser.parse_args(argv)
    seeds = [args.replay] if args.replay is not None else _seeds(args.seeds)
    started = time.monotonic()
    faults: Counter[str] = Counter()
    fired: Counter[str] = Counter()
    checks: Counter[str] = Counter()
    failed: list[int] = []
    for finished in _each(seeds, args.accounts, args.steps, jobs=args.jobs, echo=args.replay is not None):
        if finished.failure:
            print(finished.failure, flush=True)
            failed.append(finished.seed)
            continue
        faults.update(finished.faults)
        fired.update(finished.fired)
        checks.update(finished.checks)
        print(f"seed {finished.seed}: ok in {finished.seconds:.1f} s, faults {dict(finished.faults)}", flush=True)
    print(f"{len(seeds)} runs, {len(failed)} failed {sorted(failed)}, in {time.monotonic() - started:.0f} s")
    print(f"faults injected: {sum(faults.values())} {dict(sorted(faults.items()))}")
    print(f"faults that fired: {sum(fired.values())} {dict(sorted(fired.items()))}")
    print(f"invariant checks: {sum(checks.values())} {dict(sorted(checks.items()))}")
    return 1 if failed else 0


def _each(seeds: list[int], accounts: int, steps: int, *, jobs: int, echo: bool) -> Iterator[Finished]:
    """Each seed's result, in the order they finish: in this process, or in ``jobs`` worker processes
    (started fresh, not forked: the synthesizer's node process must not be shared)."""
    if jobs <= 1:
        for seed in seeds:
            yield run_one(seed, accounts, steps, echo)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = [pool.submit(run_one, seed, accounts, steps) for seed in seeds]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


if __name__ == "__main__":
    raise SystemExit(main())
