"""Long contact jobs, carried across Lambda invocations.

A job is the list of accounts to reconcile and, for each, the contact types and their targets.
It is planned once (from the config, the previous config and the organization), stored as JSON,
and worked through in batches: each invocation reconciles accounts with bounded concurrency until
its time budget runs out, then saves its cursor. A 10,000-account organization needs about 100
minutes at the PutAlternateContact quota; no single invocation, and no single CloudFormation
wait, has to hold all of it.

Throttling never fails an account: an account the service throttled (however long the throttling
lasts) goes to the job's ``retrying`` list, stored with the job, and is worked again later in the
same batch or in the next one, until the job's own ``deadline_at``. Only when that deadline passes
are the accounts still unfinished reported failed, with the reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from org_bootstrap.aws.organization import Account
from org_bootstrap.aws.partitions import partition_here
from org_bootstrap.engine import clock as clocks
from org_bootstrap.engine.quotas import RegionOptLimits
from org_bootstrap.engine.reconcile import (
    CHANGED,
    DRIFTED,
    FAILED,
    RESTORE,
    SKIPPED,
    THROTTLED,
    UNCHANGED,
    AccountApi,
    Outcome,
    Snapshots,
    Target,
    reconcile_account,
)
from org_bootstrap.engine.registry import SETTINGS, setting_for, setting_of
from org_bootstrap.engine.targeting import DELETE, SettingSpec
from org_bootstrap.settings import regions
from org_bootstrap.settings.regions import RegionRequests, Request

LOG = logging.getLogger(__name__)
DEFAULT_CONCURRENCY = 8
CHECKPOINT_EVERY = 250  # accounts between saves of the job's progress within one invocation
MANAGEMENT_ACCOUNT = "MANAGEMENT_ACCOUNT"  # skipped: a delegated administrator cannot change it
STATUSES = (CHANGED, UNCHANGED, DRIFTED, SKIPPED, FAILED)
Standing = Callable[[str], str | None]  # why an account is no longer one to work, or None
# How long a job may keep retrying throttled accounts. A day: 10,000 accounts need ~100 minutes at
# the full PutAlternateContact quota and ~7 hours with a quarter of it left.
DEFAULT_DEADLINE_SECONDS = 24 * 3600.0
DEADLINE_REACHED = "JobDeadlineReached"
DEPLOY, DRIFT = "deploy", "drift"  # Job.kind: the settings resource's jobs, the drift check's
DRIFT_JOB_POINTER = "drift"  # the name of the drift check's pointer to its last job in the job store
PEER_POLL_SECONDS = 5.0  # between two reads of the jobs an account was left to, when nothing else is left to do
# After a batch's deadline, how long the accounts already started may still wait for the pacing
# before they are handed back unfinished; inside continuation.SAFETY_MARGIN_SECONDS.
IN_FLIGHT_GRACE_SECONDS = 20.0


class JobStore(Protocol):
    def load(self, job_id: str) -> dict[str, Any]: ...

    def save(self, job_id: str, data: dict[str, Any]) -> str | None: ...

    def save_report(self, job_id: str, report: dict[str, Any]) -> str:
        """Store the full report; return where an operator reads it."""


@dataclass
class Job:
    id: str
    target_sets: dict[str, dict[str, Any]]  # deduplicated targets, keyed by their hash
    items: list[tuple[str, str]]  # (account ID, contact-set key), in the order worked
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (account ID, status)
    cursor: int = 0
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = field(default_factory=clocks.time)
    failure_tolerance: int = 0
    apply: bool = True
    retrying: list[tuple[str, str]] = field(default_factory=list)  # throttled (account ID, contact-set key)
    throttles: dict[str, int] = field(default_factory=dict)  # account ID -> times it was handed back throttled
    deadline_at: float | None = None  # time.time() after which nothing is retried; None: the default
    previous: str = ""  # the job this one took over: its failed and unfinished accounts are planned here too
    superseded_by: str = ""  # the job that took over what this one had not finished
    # Region opt-in requests started (or found under way) and not yet followed to the end
    # (settings.regions.Request as dicts): the job carries on until they are.
    region_requests: list[dict[str, Any]] = field(default_factory=list)
    # How long the job's Region requests were seen on their way (RegionRequests.expected): when the
    # next batch first reads the requests it follows.
    region_seconds: float | None = None
    kind: str = ""  # DEPLOY or DRIFT (from the ID where not given: a drift check's starts with "drift-")
    # Accounts left to another job working on them at the same time ([account ID, contact-set key,
    # that job's ID]), until its outcome there is known: see :func:`leaves_to`.
    left: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.deadline_at is None:
            self.deadline_at = self.started_at + DEFAULT_DEADLINE_SECONDS
        if not self.kind:
            self.kind = DRIFT if self.id.startswith(DRIFT + "-") else DEPLOY

    @property
    def done(self) -> bool:
        finished = self.cursor >= len(self.items) and not self.retrying and not self.region_requests and not self.left
        return finished or bool(self.superseded_by)

    def unfinished(self) -> dict[str, dict[str, Any]]:
        """The targets of the accounts this job failed or has not finished (not reached, or
        throttled and waiting for a retry), by account."""
        failed = {outcome["account"] for outcome in self.outcomes if outcome["status"] == FAILED}
        retrying = {account for account, _ in self.retrying} | {account for account, _, _ in self.left}
        return {
            account: self.target_sets[key]
            for index, (account, key) in enumerate(self.items)
            if ((index >= self.cursor or account in retrying) and not self.superseded_by) or account in failed
        }

    def expire(self) -> None:
        """The job's deadline has passed: every account not yet finished is failed, with why."""
        assert self.deadline_at is not None
        hours = (self.deadline_at - self.started_at) / 3600
        for account_id, _ in [*self.retrying, *self.items[self.cursor :]]:
            tries = self.throttles.get(account_id, 0)
            why = f"still throttled after {tries} tries" if tries else "not reached"
            reason = f"{DEADLINE_REACHED}: {why} when the job's deadline passed ({hours:g} h after it started)"
            self.outcomes.append(Outcome(account_id, FAILED, reason=reason).to_dict())
        for account_id, _, other in self.left:
            reason = f"{DEADLINE_REACHED}: left to job {other}, which had not finished it by this job's deadline"
            self.outcomes.append(Outcome(account_id, FAILED, reason=reason).to_dict())
        self.left = []
        self.retrying = []
        self.cursor = len(self.items)
        self.region_requests = []  # their Regions carry on at AWS; the log of the expiry names how many

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "contact_sets": self.target_sets,  # the stored key of jobs already in S3,
            "items": self.items,
            "skipped": self.skipped,
            "cursor": self.cursor,
            "outcomes": self.outcomes,
            "started_at": self.started_at,
            "failure_tolerance": self.failure_tolerance,
            "apply": self.apply,
            "retrying": self.retrying,
            "throttles": self.throttles,
            "deadline_at": self.deadline_at,
            "previous": self.previous,
            "superseded_by": self.superseded_by,
            "region_requests": self.region_requests,
            "region_seconds": self.region_seconds,
            "kind": self.kind,
            "left": self.left,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        return cls(
            id=data["id"],
            target_sets=data["contact_sets"],
            items=[tuple(item) for item in data["items"]],
            skipped=[tuple(item) for item in data["skipped"]],
            cursor=data["cursor"],
            outcomes=data["outcomes"],
            started_at=data["started_at"],
            failure_tolerance=data["failure_tolerance"],
            apply=data.get("apply", True),
            retrying=[tuple(item) for item in data.get("retrying", [])],
            throttles=dict(data.get("throttles", {})),
            deadline_at=data.get("deadline_at"),
            previous=data.get("previous", ""),
            superseded_by=data.get("superseded_by", ""),
            region_requests=list(data.get("region_requests", [])),
            region_seconds=data.get("region_seconds"),
            kind=data.get("kind", ""),
            left=[list(entry) for entry in data.get("left", [])],
        )

    # -- results -----------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        found = Counter(outcome["status"] for outcome in self.outcomes)
        found[SKIPPED] += len(self.skipped)
        return {status: found[status] for status in STATUSES}

    def failures(self) -> list[dict[str, Any]]:
        return [outcome for outcome in self.outcomes if outcome["status"] == FAILED]

    @property
    def failed(self) -> bool:
        """Whether the job failed its request: done, with more failed accounts than tolerated."""
        return self.done and self.counts()[FAILED] > self.failure_tolerance

    def changed(self) -> dict[str, set[str]]:
        """The contact types the job wrote (put or deleted), by account; a failed account's too."""
        return {o["account"]: set(o["actions"]) for o in self.outcomes if o.get("actions")}

    def report(self) -> dict[str, Any]:
        return {
            "job": self.id,
            "started_at": self.started_at,
            "complete": self.done,
            "superseded_by": self.superseded_by or None,
            "accounts": len(self.items) + len(self.skipped),
            "counts": self.counts(),
            "retrying": [account for account, _ in self.retrying],
            # accounts another job is working on at the same time: their outcome is that job's
            "left_to_other_jobs": [{"account": account, "job": other} for account, _, other in self.left],
            "throttled_accounts": len(self.throttles),
            "deadline_at": self.deadline_at,
            # Regions still ENABLING (or DISABLING): not failed, the job follows them to the end
            "regions_in_progress": [
                {key: request[key] for key in ("account_id", "region", "wanted")} for request in self.region_requests
            ],
            "failed": self.failures(),
            # not worked: not ACTIVE when the job was planned, or no longer an ACTIVE member when worked
            "skipped": [{"account": account, "status": status} for account, status in self.skipped]
            + [outcome for outcome in self.outcomes if outcome["status"] == SKIPPED],
            "outcomes": self.outcomes,
        }


def _key(targets: Mapping[str, Target]) -> str:
    return hashlib.sha256(json.dumps(targets, sort_keys=True).encode()).hexdigest()[:16]


def _release(spec: SettingSpec[Any]) -> Target | None:
    """What happens to an item the stack stops managing, by the setting's removal mode."""
    return {"delete": DELETE, "restore": RESTORE}.get(spec.removal)


# One setting's spec, or several by setting name: what a job plans for.
Specs = SettingSpec[Any] | Mapping[str, SettingSpec[Any]]


def by_setting(specs: Specs | None) -> dict[str, SettingSpec[Any]]:
    """Specs by setting name (a lone spec is its own setting's)."""
    if specs is None:
        return {}
    if isinstance(specs, SettingSpec):
        return {setting_for(specs).name: specs}
    return dict(specs)


def managed_at(
    spec: SettingSpec[Any] | None,
    account_id: str,
    path: tuple[str, ...],
    management_account_id: str | None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Target]:
    """The items ``spec`` manages for this account when it sits at ``path`` carrying ``tags``, by
    engine key, with their targets: none where the spec does not target it (outside its OUs or
    tags, or excluded)."""
    if spec is None or not spec.targets(account_id, path, management_account_id, tags):
        return {}
    return setting_for(spec).keyed(spec.desired(account_id, path, tags))


def uses_tags(specs: Specs | None) -> bool:
    """Whether any setting's targets or overrides name tags: then a job reads every account's."""
    return any(spec.uses_tags for spec in by_setting(specs).values())


def released(had: Mapping[str, Target], wanted: Mapping[str, Target], mode: SettingSpec[Any]) -> dict[str, Target]:
    """The types managed before (``had``) and no longer (``wanted``), each with what the removal
    mode does to it: nothing (retain), DELETE or RESTORE. A config change and an account moved out
    of the targets release types the same way."""
    release = _release(mode)
    if release is None:
        return {}
    return {contact_type: release for contact_type in had if contact_type not in wanted}


def unchangeable(account_id: str, *, caller_account_id: str | None, management_account_id: str | None) -> str | None:
    """Why the caller may not change this account's contacts, or None.

    A delegated administrator cannot change the management account's contacts; only the
    management account itself can (https://docs.aws.amazon.com/accounts/latest/reference/using-orgs-delegated-admin.html).
    """
    if caller_account_id and management_account_id and account_id == management_account_id != caller_account_id:
        return MANAGEMENT_ACCOUNT
    return None


def plan(
    job_id: str,
    accounts: Iterable[Account],
    new: Specs | None,
    old: Specs | None = None,
    *,
    apply: bool = True,
    caller_account_id: str | None = None,
    management_account_id: str | None = None,
    unfinished: Mapping[str, Mapping[str, Any]] | None = None,
    only: Mapping[str, Collection[str]] | None = None,
    everywhere: bool = False,
) -> Job:
    """The work a change implies, account by account, for one account setting or several.

    Create: ``old`` is None. Update: only accounts and items whose target changed, plus the items
    the stack stops managing (released by each setting's removal mode). Delete: ``new`` is None
    and every managed item is released. Accounts that are not ACTIVE, and the management account
    when the caller is a delegated administrator, are skipped and reported. Items are engine keys
    (:func:`org_bootstrap.engine.registry.setting_of`), so one job can carry several settings.

    ``unfinished`` (:meth:`Job.unfinished` of the previous job) heals: those accounts get
    everything the new config wants there, as a Create would, plus what the previous job was
    still releasing there (when the removal mode still releases). ``only``: no other accounts and
    types than these (undoing what a failed job wrote). ``everywhere``: every targeted account
    gets everything the new config wants, as a Create would (a reconcile of an unchanged config).
    """
    news, olds = by_setting(new), by_setting(old)
    names = [setting.name for setting in SETTINGS if setting.name in news or setting.name in olds]
    assert names, "plan needs a spec"
    modes = {name: news.get(name) or olds[name] for name in names}
    releases = {name: _release(mode) for name, mode in modes.items()}

    sets: dict[str, dict[str, Any]] = {}
    items: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    for account in accounts:
        targets: dict[str, Target] = {}
        wanted_all: dict[str, Target] = {}
        for name in names:
            spec_new, spec_old, release = news.get(name), olds.get(name), releases[name]
            wanted = managed_at(spec_new, account.id, account.path, management_account_id, account.tags)
            had = managed_at(spec_old, account.id, account.path, management_account_id, account.tags)
            targets.update({t: c for t, c in wanted.items() if had.get(t) != c})
            if release is not None:
                targets.update({t: release for t in had if t not in wanted})
            wanted_all.update(wanted)
        if everywhere or (unfinished and account.id in unfinished):
            left = (unfinished or {}).get(account.id, {})
            releasing = {
                t: c
                for t, c in left.items()
                if c in (DELETE, RESTORE) and releases.get(setting_of(t)[0].name) is not None
            }
            targets = {**releasing, **wanted_all, **targets}
        if only is not None:
            targets = {t: c for t, c in targets.items() if t in only.get(account.id, ())}
        if not targets:
            continue
        if not account.active:
            skipped.append((account.id, account.status))
            continue
        reason = unchangeable(
            account.id, caller_account_id=caller_account_id, management_account_id=management_account_id
        )
        if reason:
            skipped.append((account.id, reason))
            continue
        key = _key(targets)
        sets.setdefault(key, {t: (dict(c) if isinstance(c, Mapping) else c) for t, c in targets.items()})
        items.append((account.id, key))
    tolerance = min(mode.failure_tolerance for mode in modes.values())
    return Job(job_id, sets, items, skipped, failure_tolerance=tolerance, apply=apply)


# -- two jobs at once -----------------------------------------------------------------------------


@dataclass
class Peer:
    """Another job working at the same time, as its record was last read."""

    job: Job
    keys: dict[str, str]  # account ID -> its contact-set key in that job
    outcomes: dict[str, dict[str, Any]]  # account ID -> its (last) outcome there

    @classmethod
    def of(cls, job: Job) -> Peer:
        return cls(job, dict(job.items), {outcome["account"]: outcome for outcome in job.outcomes})

    def targets(self, account_id: str) -> dict[str, Any] | None:
        key = self.keys.get(account_id)
        return None if key is None else self.job.target_sets[key]


def _covers(wide: Mapping[str, Target], narrow: Mapping[str, Target]) -> bool:
    return all(key in wide and wide[key] == value for key, value in narrow.items())


def leaves_to(job: Job, peer: Job, targets: Mapping[str, Target], theirs: Mapping[str, Target]) -> bool:
    """Whether ``job`` leaves an account (``targets``: its work there) to ``peer`` (``theirs``).

    Of a deploy job and a drift check that both write, working the same account at the same time,
    one owns the account and the other leaves it to it. The drift check owns it when it does all the
    deploy would do there (its targets cover the deploy's, with the same values) and started first;
    otherwise the deploy does (its config is the newer one: the check's may be stale). Both read the
    same two records, so they always agree: an account is never left both ways, nor worked twice.
    Jobs of one kind never leave work to each other (a deploy supersedes the one before it)."""
    if not (job.apply and peer.apply) or {job.kind, peer.kind} != {DEPLOY, DRIFT}:
        return False
    drift, deploy = (job, peer) if job.kind == DRIFT else (peer, job)
    drift_targets, deploy_targets = (targets, theirs) if job is drift else (theirs, targets)
    first = (drift.started_at, drift.id) < (deploy.started_at, deploy.id)
    drift_owns = first and _covers(drift_targets, deploy_targets)
    return (peer is drift) == drift_owns


def _taken_over(job: Job, account_id: str, outcome: Mapping[str, Any], other: str) -> dict[str, Any]:
    """This job's outcome for an account another job did: a deploy reports what that job did there
    (its status and actions, which undo what a failed deploy wrote); a drift check reports it
    skipped (it neither found nor fixed drift there)."""
    done = {CHANGED: "changed it", UNCHANGED: "found it in sync"}.get(outcome["status"], outcome["status"])
    reason = f"left to job {other}, which {done}"
    if job.kind == DRIFT:
        return {**Outcome(account_id, SKIPPED, reason=reason).to_dict(), "by": other}
    return {**outcome, "account": account_id, "reason": reason, "by": other}


@dataclass(frozen=True)
class _Handed:
    """An account not worked here: left to job ``other`` (``outcome`` None until it is known)."""

    item: tuple[str, str]
    other: str
    outcome: dict[str, Any] | None


def run_batch(
    job: Job,
    api: AccountApi,
    *,
    snapshots: Snapshots | None,
    deadline: float,
    clock: Callable[[], float] = clocks.monotonic,
    now: Callable[[], float] = clocks.time,
    concurrency: int = DEFAULT_CONCURRENCY,
    checkpoint: Callable[[Job], None] | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
    grace: float | None = None,
    sleep: Callable[[float], None] = clocks.sleep,
    region_limits: RegionOptLimits | None = None,
    follow_every: float | None = None,
    peers: Callable[[], Sequence[Job]] | None = None,
    standing: Standing | None = None,
) -> None:
    """Reconcile accounts from the cursor on, and the throttled ones again, until done or
    ``deadline`` (by ``clock``).

    ``standing``: why an account is no longer one to work (closed or removed from the organization
    since the job was planned; :func:`org_bootstrap.aws.organization.standing`), read for an account
    refused for good: such an account is SKIPPED with that reason, not FAILED.

    ``peers``: the other jobs that may be working at the same time (their records, read again every
    :data:`PEER_POLL_SECONDS` while this job waits on them). An account one of them owns
    (:func:`leaves_to`) is not worked here but left to it (``job.left``) until its outcome there is
    known: success is this job's outcome too (:func:`_taken_over`); a failure, or that job ending
    without reaching the account, hands it back here, and this job works it itself.

    New accounts go first, in order; an account handed back THROTTLED joins ``job.retrying`` and is
    started again once the new accounts are all started (the pacing has slowed down by then).
    No new work starts after the deadline; work in flight finishes, so the stored job always
    describes a clean boundary: an account in flight is still in ``items[cursor:]`` or
    ``retrying``; one that would wait for the pacing more than ``grace`` seconds past the deadline
    is handed back THROTTLED and retried in the next batch (``grace``: :data:`IN_FLIGHT_GRACE_SECONDS`).
    One failing account never stops the others. When the job's own deadline
    (``job.deadline_at``, by ``now``) has passed, the accounts not finished are failed with the
    reason (:meth:`Job.expire`). ``checkpoint`` is called every ``checkpoint_every`` accounts
    finished, so an invocation cut short (a Lambda timeout) loses at most that much work.

    Region opt-in requests are asynchronous: a worker starts one when a slot is free within
    ``region_limits`` (per account and per organization; the partition's by default) and moves on,
    and a follower thread reads each request's Region (every ``follow_every`` seconds:
    :data:`FOLLOW_EVERY_SECONDS` by default) until it has got there, which frees the slot. When
    the accounts are done the batch goes on following until the deadline; requests still in
    flight are saved with the job (``job.region_requests``) and followed by the next batch.
    """
    finished_before = len(job.outcomes)
    assert job.deadline_at is not None
    grace = IN_FLIGHT_GRACE_SECONDS if grace is None else grace
    # Work in flight gives up waiting for the pacing at the batch's deadline plus the grace, or at
    # the job's deadline, whichever comes first, read on the pacing's own clock.
    paced = api.until(api.limits.clock() + min(deadline - clock() + grace, job.deadline_at - now()))
    # A short queue, so that "stop at the deadline" takes effect within a few accounts.
    queue = threading.BoundedSemaphore(concurrency * 2)
    follow_every = FOLLOW_EVERY_SECONDS if follow_every is None else follow_every
    pause = max(MIN_FOLLOW_PAUSE_SECONDS, min(FOLLOW_PAUSE_SECONDS, follow_every))
    requests = _region_requests(job, paced, region_limits, follow_every)
    stop_following = threading.Event()
    follower = None
    if requests is not None:
        follower = threading.Thread(target=_follow, args=(requests, paced, stop_following, sleep, pause), daemon=True)
        follower.start()
    # (future of an Outcome, or of a _Handed for an account left to another job; item; is a retry)
    pending: deque[tuple[Future[Any], tuple[str, str], bool]] = deque()
    to_retry: deque[tuple[str, str]] = deque(job.retrying)  # not started yet in this batch
    next_new = job.cursor
    submitted = 0
    since_checkpoint = 0
    others: dict[str, Peer] = {}

    def read_peers() -> bool:
        """Read the other jobs again; False when they could not be read (what was left stays left)."""
        if peers is None:
            others.clear()
            return True
        try:
            found = {peer.id: Peer.of(peer) for peer in peers() if peer.id != job.id}
        except Exception:  # the next read may succeed; meanwhile nothing more is left to them
            LOG.info("the other jobs could not be read", exc_info=True)
            others.clear()
            return False
        others.clear()
        others.update(found)
        return True

    def handed(account_id: str, key: str, *, left_to: str | None = None) -> _Handed | None:
        """The account is another job's: its outcome there (None: still to come); None: work it here.
        A new account is left only to a job still running that has not yet finished it (a result
        from before is no answer to this job); one already left (``left_to``) takes that job's outcome.
        A job that started after this one is the exception: its plan is the newer (a drift check
        planned before a deploy's config change), so its outcome, whenever it came and whatever it
        is, is this job's answer: this job's targets there are stale and are never written."""
        targets = job.target_sets[key]
        for peer in others.values():
            theirs = peer.targets(account_id)
            if theirs is None or not leaves_to(job, peer.job, targets, theirs):
                continue
            if left_to is not None and peer.job.id != left_to:
                continue
            outcome = peer.outcomes.get(account_id)
            if outcome is not None:
                newer = (peer.job.started_at, peer.job.id) > (job.started_at, job.id)
                if not newer and (left_to is None or outcome["status"] == FAILED):
                    return None
                return _Handed((account_id, key), peer.job.id, outcome)
            assert peer.job.deadline_at is not None
            if peer.job.done or now() >= peer.job.deadline_at:
                return None  # it ended without reaching the account
            return _Handed((account_id, key), peer.job.id, None)
        return None

    def settle_left() -> None:
        """The accounts left to other jobs whose outcome there is now known: taken over, or handed back."""
        still: list[list[str]] = []
        for account_id, key, other in job.left:
            found = handed(account_id, key, left_to=other)
            if found is not None and found.outcome is None:
                still.append([account_id, key, other])
            elif found is not None and found.outcome is not None:
                job.outcomes.append(_taken_over(job, account_id, found.outcome, found.other))
            else:
                LOG.info(json.dumps({"job": job.id, "account": account_id, "taken_back_from": other}))
                job.retrying.append((account_id, key))
                to_retry.append((account_id, key))
        job.left = still

    def collect(block: bool, limit: int | None = None) -> None:
        nonlocal since_checkpoint
        taken = 0
        while pending and (block or pending[0][0].done()) and (limit is None or taken < limit):
            future, item, retry = pending.popleft()
            taken += 1
            outcome: Outcome | _Handed = future.result()
            if retry:
                job.retrying.remove(item)
            else:
                job.cursor += 1
            if isinstance(outcome, _Handed):
                if outcome.outcome is None:
                    job.left.append([*item, outcome.other])
                else:
                    job.outcomes.append(_taken_over(job, item[0], outcome.outcome, outcome.other))
                    since_checkpoint += 1
            elif outcome.status == THROTTLED:
                job.throttles[item[0]] = job.throttles.get(item[0], 0) + 1
                job.retrying.append(item)
                to_retry.append(item)
            else:
                job.outcomes.append(outcome.to_dict())
                since_checkpoint += 1
        if checkpoint is not None and since_checkpoint >= checkpoint_every:
            checkpoint(job)
            since_checkpoint = 0

    def expired() -> bool:
        assert job.deadline_at is not None
        return now() >= job.deadline_at

    if read_peers():
        settle_left()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        while not expired():
            queue.acquire()
            if submitted and clock() >= deadline:  # the first account always runs: every batch progresses
                queue.release()
                break
            if next_new < len(job.items):
                item, retry = job.items[next_new], False
                next_new += 1
            elif to_retry:
                item, retry = to_retry.popleft(), True
            else:
                queue.release()
                if pending:
                    collect(block=True, limit=1)  # it may hand an account back for a retry
                    continue
                if not job.left or clock() >= deadline:
                    break  # everything is finished, or what is left is the other jobs' to finish
                sleep(PEER_POLL_SECONDS)  # waiting on the jobs the accounts were left to
                if read_peers():
                    settle_left()
                continue
            account_id, key = item
            given = handed(account_id, key) if others else None
            if given is not None:  # no outcome yet: left to that job
                done_already: Future[_Handed] = Future()
                done_already.set_result(given)
                pending.append((done_already, item, retry))
                queue.release()
                collect(block=False)
                continue
            future = pool.submit(_reconcile, paced, account_id, job.target_sets[key], snapshots, job.apply, standing)
            future.add_done_callback(lambda _: queue.release())
            pending.append((future, item, retry))
            submitted += 1
            collect(block=False)
        collect(block=True)
    if requests is not None and follower is not None:
        while requests.in_flight() and clock() < deadline and not expired():
            sleep(pause)  # the follower frees the slots; nothing else is left to start
        stop_following.set()
        follower.join()
        try:  # one last read of the requests that are due, within the time work in flight has
            requests.follow(paced, until=paced.deadline or deadline)
        except Exception:
            LOG.info("following Region requests paused", exc_info=True)
        job.region_requests = [request.to_dict() for request in requests.in_flight()]
        job.region_seconds = requests.expected
    if expired() and not job.done:
        LOG.warning(json.dumps({"job": job.id, "deadline_reached": job.deadline_at, "unfinished": _unfinished(job)}))
        job.expire()
    LOG.info(
        json.dumps(
            {
                "job": job.id,
                "processed": len(job.outcomes) - finished_before,
                "cursor": job.cursor,
                "of": len(job.items),
                "retrying": len(job.retrying),
            }
        )
    )


FOLLOW_PAUSE_SECONDS = 1.0  # between two rounds of following Region requests (at most)
MIN_FOLLOW_PAUSE_SECONDS = 0.01  # however short the follow interval: never a busy loop
# Between two reads of one request's Region once it is due (RegionRequests.due): a Region that got
# there waits 7.5 s on average to be seen.
FOLLOW_EVERY_SECONDS = 15.0


def _region_requests(
    job: Job, api: AccountApi, limits: RegionOptLimits | None, follow_every: float
) -> RegionRequests | None:
    """The job's Region requests in flight, on the API the batch's workers use; None without Regions."""
    has_regions = job.region_requests or any(
        setting_of(key)[0] is regions.SETTING for targets in job.target_sets.values() for key in targets
    )
    if not has_regions:
        return None
    limits = limits or regions.SETTING.opt_limits(partition_here())
    assert limits is not None, f"the {partition_here()} partition has no Region opt-in"
    requests = RegionRequests(
        limits,
        map(Request.from_dict, job.region_requests),
        clock=api.limits.clock,
        follow_every=follow_every,
        expected=job.region_seconds,
    )
    api.region_requests = requests
    return requests


def _follow(
    requests: RegionRequests, api: AccountApi, stop: threading.Event, sleep: Callable[[float], None], pause: float
) -> None:
    while not stop.is_set():
        try:
            for request, status in requests.follow(api, until=api.deadline or float("inf")):
                if status != request.wanted:  # changed by other means while it was under way
                    LOG.warning(
                        "Region %s of %s is %s, not %s", request.region, request.account_id, status, request.wanted
                    )
        except Exception:  # a throttled read or an expired deadline: the next round reads again
            LOG.info("following Region requests paused", exc_info=True)
        sleep(pause)


def _unfinished(job: Job) -> int:
    return len(job.items) - job.cursor + len(job.retrying)


def _reconcile(
    api: AccountApi,
    account_id: str,
    targets: Mapping[str, Target],
    snapshots: Snapshots | None,
    apply: bool,
    standing: Standing | None = None,
) -> Outcome:
    try:
        outcome = reconcile_account(api, account_id, targets, snapshots=snapshots, apply=apply)
    except Exception as error:  # one account's surprise must not stop the rest
        LOG.exception("account %s failed unexpectedly", account_id)
        return Outcome(account_id, FAILED, reason=f"{type(error).__name__}: {error}")
    if outcome.status != FAILED or not outcome.permanent or standing is None:
        return outcome
    # Refused for good: an account closed or removed since the job listed it is skipped, as the plan
    # skips one that is not ACTIVE, rather than failing the job (and a deploy's rollback of all of it).
    try:
        gone = standing(account_id)
    except Exception:  # the refusal is the outcome to report
        LOG.warning("account %s: its standing in the organization could not be read", account_id, exc_info=True)
        return outcome
    if gone is None:
        return outcome
    LOG.warning("account %s skipped: %s (%s)", account_id, gone, outcome.reason)
    return Outcome(account_id, SKIPPED, outcome.actions, gone, compared=outcome.compared)


def summary(job: Job, report_location: str, *, limit_bytes: int = 3000) -> dict[str, Any]:
    """The custom resource's Data: counts and failed account IDs, within CloudFormation's 4 KB."""
    counts = job.counts()
    failed = [outcome["account"] for outcome in job.failures()]
    shown: list[str] = []
    for account in failed:
        if len(",".join([*shown, account])) > limit_bytes // 2:
            break
        shown.append(account)
    reasons = "; ".join(f"{o['account']}: {o.get('reason', '')}"[:120] for o in job.failures()[:5])
    data: dict[str, Any] = {
        "Changed": counts[CHANGED],
        "Unchanged": counts[UNCHANGED],
        "Skipped": counts[SKIPPED],
        "Failed": counts[FAILED],
        "FailedAccounts": ",".join(shown) + (f",+{len(failed) - len(shown)} more" if len(shown) < len(failed) else ""),
        "FailureReasons": reasons[: limit_bytes // 3],
        "Report": report_location,
        "Complete": "true" if job.done else "false",
        # Regions still ENABLING (or DISABLING): not failed; the job follows them to the end
        "RegionsInProgress": len(job.region_requests),
    }
    return data
