"""Benchmark: the alternate-contacts engine against a rate-limited, latency-injected fake API.

Drives the real engine the way the Lambda does (``plan`` a job, then ``run_batch`` one invocation
budget at a time until the job is done) against a fake Account Management API that throttles at
the published quotas, and reports simulated wall time as a ratio to the quota floor: the least
time the quotas allow for the calls actually made. Time is simulated on a sped-up real clock
shared by the fake, the engine's rate limits and the deadline, so 10,000 accounts take seconds.

Uncontended, a first apply and a re-run. Then contention, where the floor is that of the capacity
actually left to the app:

(a) an outside consumer takes half of the Put and Get quota (the service refills the app's share
    at half the rate, with half the burst), 1,000 accounts;
(b) a deploy job, a drift job (fix mode) and 200 account events at once, 1,000 accounts: three
    Lambda functions, so three processes, each with its own adaptive pacing, against one quota.
    The events are 200 accounts that joined after the jobs were planned; their arrival times are
    drawn uniformly at random (seeded) over the first 90% of the jobs' own quota floor (three
    writes per account at 5 per second), so every event meets both jobs running. The events
    handler takes what has arrived, up to 10 records a batch, one batch at a time with a
    2-minute budget; a record it answers as a failure is seen again after the queue's 12-minute
    visibility timeout. Latency: from an event's arrival to the last of its account's three
    contacts being set, as the fake records it. The two jobs share one job store (each saves its
    record at its checkpoints and after each invocation, and reads the other's), so each account
    is worked by one of them (``org_bootstrap.engine.jobs.leaves_to``); the table compares the
    writes made with the writes needed (one per missing contact type) and the wall time with the
    floor of the calls needed, not only of those made;
(c) a quarter of every quota left, 100 accounts.

    .venv/bin/python benchmarks/contacts_benchmark.py            # 100, 1,000 and 10,000 accounts, and contention
    .venv/bin/python benchmarks/contacts_benchmark.py --quick    # 100 and 1,000, and contention
    .venv/bin/python benchmarks/contacts_benchmark.py --contention-only
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "runtime"):  # as pytest's pythonpath = [".", "runtime"]
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from botocore.exceptions import ClientError  # noqa: E402

from org_bootstrap.aws.organization import Account  # noqa: E402
from org_bootstrap.engine.jobs import DEFAULT_CONCURRENCY, FAILED, UNCHANGED, Job, plan, run_batch  # noqa: E402
from org_bootstrap.engine.pacing import Quota, RateLimits  # noqa: E402
from org_bootstrap.engine.reconcile import AccountApi  # noqa: E402
from org_bootstrap.handlers import account_events  # noqa: E402
from org_bootstrap.settings.alternate_contacts.spec import CONTACT_TYPES, Contact, ContactSpec  # noqa: E402
from simulation.organization import ServiceBucket  # noqa: E402

GET, PUT, DELETE = "GetAlternateContact", "PutAlternateContact", "DeleteAlternateContact"
OPERATIONS = (GET, PUT, DELETE)

# The service side, written out here rather than imported from the engine, so that a wrong
# constant in the engine shows up as throttling instead of being mirrored by the fake.
# https://docs.aws.amazon.com/accounts/latest/reference/quotas.html
SERVICE_QUOTAS: Mapping[str, Quota] = {PUT: Quota(5, 8), GET: Quota(10, 15), DELETE: Quota(1, 6)}

# One invocation's work budget, as alternate_contacts._work computes it: the 15-minute Lambda
# timeout less its 60-second safety margin.
INVOCATION_BUDGET_SECONDS = 15 * 60 - 60.0

# Simulated seconds per real second. High enough that 10,000 accounts take well under a minute;
# low enough that a thread's late wake-up (~0.1 ms real, multiplied by the speed: the "sleep
# overshoot" column) stays ~20 simulated ms, small beside 100 ms calls spaced 100-200 ms apart.
# At 50 the ratios move by under 1%; at 1,000 the host's scheduling is a visible part of them.
DEFAULT_SPEED = 200.0
DEFAULT_LATENCY_MS = (50.0, 150.0)
DEFAULT_ACCOUNTS = (100, 1_000, 10_000)
TARGET_RATIO = 1.05  # uncontended
CONTENDED_TARGET_RATIO = 1.2
WRITES_TARGET_RATIO = 1.05  # (b): writes made, at most this many times the writes needed
EVENT_LATENCY_TARGET_SECONDS = 60.0
QUICK_ACCOUNTS = (100, 1_000)
EVENTS = 200
EVENT_BATCH_SIZE = 10
EVENT_BUDGET_SECONDS = 120.0  # the events handler's Lambda timeout
EVENT_VISIBILITY_SECONDS = 6 * EVENT_BUDGET_SECONDS  # the queue's visibility timeout

MANAGEMENT_ACCOUNT_ID = "100000000000"
ROOT_ID = "r-bnch"
SPEC = {
    "contacts": {
        contact_type: {
            "Name": f"{contact_type.title()} Team",
            "Title": f"{contact_type.title()} contact",
            "EmailAddress": f"{contact_type.lower()}@example.com",
            "PhoneNumber": "+1 555 0100",
        }
        for contact_type in CONTACT_TYPES
    }
}


class SimulatedClock:
    """Simulated seconds on the real monotonic clock, sped up ``speed`` times.

    Records how late each sleep wakes (in simulated seconds): the part of a measurement that is
    the host's thread scheduling, multiplied by the speed, rather than the engine.
    """

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._origin = time.perf_counter()
        self.overshoots: list[float] = []

    def now(self) -> float:
        return (time.perf_counter() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        wake = self.now() + seconds
        time.sleep(seconds / self.speed)
        self.overshoots.append(self.now() - wake)  # list.append is atomic: no lock needed


def _client_error(code: str, message: str, operation: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


class FakeAccountManagement:
    """The three alternate-contact calls with boto3's call shape, throttled at ``SERVICE_QUOTAS``.

    Each call spends a random latency in simulated time, half on the way in and half on the way
    out; the service's bucket is checked on arrival, as a real service does. Thread-safe.
    """

    def __init__(
        self,
        clock: SimulatedClock,
        *,
        management_account_id: str,
        account_ids: Sequence[str],
        contacts: dict[tuple[str, str], dict[str, str]],
        latency: tuple[float, float] = (DEFAULT_LATENCY_MS[0] / 1000, DEFAULT_LATENCY_MS[1] / 1000),
        seed: int = 0,
        quotas: Mapping[str, Quota] = SERVICE_QUOTAS,
    ) -> None:
        self._clock = clock
        self._management_account_id = management_account_id
        self._accounts = frozenset(account_ids)
        self.contacts = contacts  # (account ID, contact type) -> the stored contact
        self._latency = latency
        self._random = random.Random(seed)
        self._buckets = {operation: ServiceBucket(quota, clock.now()) for operation, quota in quotas.items()}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # accepted calls by operation
        self.throttled: Counter[str] = Counter()
        self.complete_at: dict[str, float] = {}  # account -> when its last missing contact type was put

    # -- boto3's call shape ----------------------------------------------------------------------

    def get_alternate_contact(self, *, AlternateContactType: str, AccountId: str | None = None) -> dict[str, Any]:
        key = self._key(GET, AccountId, AlternateContactType)

        def get() -> dict[str, Any]:
            found = self.contacts.get(key)
            if found is None:
                raise _client_error("ResourceNotFoundException", "No contact of the requested type found.", GET, 404)
            return {"AlternateContact": {"AlternateContactType": AlternateContactType, **found}}

        return self._serve(GET, get)

    def put_alternate_contact(
        self,
        *,
        AlternateContactType: str,
        Name: str,
        Title: str,
        EmailAddress: str,
        PhoneNumber: str,
        AccountId: str | None = None,
    ) -> dict[str, Any]:
        key = self._key(PUT, AccountId, AlternateContactType)
        contact = {"Name": Name, "Title": Title, "EmailAddress": EmailAddress, "PhoneNumber": PhoneNumber}

        def put() -> dict[str, Any]:
            self.contacts[key] = contact
            if key[0] not in self.complete_at and all((key[0], t) in self.contacts for t in CONTACT_TYPES):
                self.complete_at[key[0]] = self._clock.now()
            return {}

        return self._serve(PUT, put)

    def delete_alternate_contact(self, *, AlternateContactType: str, AccountId: str | None = None) -> dict[str, Any]:
        key = self._key(DELETE, AccountId, AlternateContactType)

        def delete() -> dict[str, Any]:
            if self.contacts.pop(key, None) is None:
                raise _client_error("ResourceNotFoundException", "No contact of the requested type found.", DELETE, 404)
            return {}

        return self._serve(DELETE, delete)

    # -- the service -----------------------------------------------------------------------------

    def _key(self, operation: str, account_id: str | None, contact_type: str) -> tuple[str, str]:
        if contact_type not in CONTACT_TYPES:
            raise _client_error("ValidationException", f"Invalid AlternateContactType {contact_type!r}", operation)
        if account_id == self._management_account_id:
            # https://docs.aws.amazon.com/accounts/latest/reference/API_PutAlternateContact.html (AccountId)
            raise _client_error(
                "AccessDeniedException", "The management account must not specify its own AccountId.", operation, 403
            )
        owner = account_id or self._management_account_id
        if owner not in self._accounts:
            raise _client_error("AccessDeniedException", "The account is not in the organization.", operation, 403)
        return owner, contact_type

    def _serve(self, operation: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            latency = self._random.uniform(*self._latency)
        self._clock.sleep(latency / 2)
        error: ClientError | None = None
        result: dict[str, Any] = {}
        with self._lock:
            if self._buckets[operation].take(self._clock.now()):
                self.calls[operation] += 1
                try:
                    result = action()
                except ClientError as raised:
                    error = raised
            else:
                self.throttled[operation] += 1
                error = _client_error("TooManyRequestsException", "Rate exceeded", operation, 429)
        self._clock.sleep(latency / 2)
        if error is not None:
            raise error
        return result


class MemorySnapshots:
    """The ``Snapshots`` protocol of reconcile.py, in memory."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], Contact | None] = {}
        self._lock = threading.Lock()

    def remember(self, account_id: str, contact_type: str, contact: Contact | None) -> None:
        with self._lock:
            self._records.setdefault((account_id, contact_type), dict(contact) if contact is not None else None)

    def recall(self, account_id: str, contact_type: str) -> tuple[bool, Contact | None]:
        with self._lock:
            key = (account_id, contact_type)
            return key in self._records, self._records.get(key)

    def forget(self, account_id: str, contact_type: str) -> None:
        with self._lock:
            self._records.pop((account_id, contact_type), None)


@dataclass(frozen=True)
class Measurement:
    scenario: str
    accounts: int
    calls: Mapping[str, int]  # accepted by the service, by operation
    throttled: int  # calls the service refused with TooManyRequestsException
    wall_seconds: float  # simulated
    failed: int
    unchanged: int
    invocations: int  # Lambda invocations (run_batch calls) the job needed
    overrun_seconds: float  # the most a batch ran past its deadline (accounts in flight finishing)
    overshoot_ms: float  # mean late wake-up of a sleep, in simulated ms: the host's share of the wall time
    real_seconds: float
    left: Mapping[str, float] | None = None  # the share of each quota left to the app; None: all
    event_latencies: Sequence[float] = ()  # simulated seconds from an event's arrival to its contacts set
    events_redelivered: int = 0  # event records answered as failures (SQS delivers them again)
    # The calls the work needed, by operation (one read and one write per contact type that was
    # missing): the floor of these is the least time the work itself allows, whoever made the calls.
    needed: Mapping[str, int] | None = None

    @property
    def available(self) -> Mapping[str, Quota]:
        return available_quotas(self.left or {})

    @property
    def floor_seconds(self) -> float:
        return quota_floor(self.calls, self.available)

    @property
    def contended(self) -> bool:
        return self.left is not None

    @property
    def target_ratio(self) -> float:
        return CONTENDED_TARGET_RATIO if self.contended else TARGET_RATIO

    def missed(self) -> list[str]:
        problems = []
        if self.failed:
            problems.append(f"{self.failed} failed")
        if not self.contended and self.throttled:
            problems.append(f"{self.throttled} throttled")
        if not self.ratio <= self.target_ratio:
            problems.append(f"ratio {self.ratio:.3f} > {self.target_ratio:g}")
        if self.needed is not None and self.writes > WRITES_TARGET_RATIO * self.needed_writes:
            problems.append(f"{self.writes:,} writes for {self.needed_writes:,} needed")
        if self.event_latencies and max(self.event_latencies) > EVENT_LATENCY_TARGET_SECONDS:
            problems.append(f"event latency up to {max(self.event_latencies):.1f} s")
        return problems

    @property
    def ratio(self) -> float:
        return self.wall_seconds / self.floor_seconds if self.floor_seconds > 0 else math.nan

    @property
    def needed_floor_seconds(self) -> float:
        return quota_floor(self.needed, self.available) if self.needed is not None else math.nan

    @property
    def needed_ratio(self) -> float:
        """Wall time against the floor of the calls needed: doubled work shows here, not in ``ratio``."""
        return self.wall_seconds / self.needed_floor_seconds if self.needed_floor_seconds > 0 else math.nan

    @property
    def needed_writes(self) -> int:
        return (self.needed or {}).get(PUT, 0) + (self.needed or {}).get(DELETE, 0)

    @property
    def writes(self) -> int:
        return self.calls.get(PUT, 0) + self.calls.get(DELETE, 0)

    @property
    def calls_per_account(self) -> float:
        return sum(self.calls.values()) / self.accounts


def available_quotas(left: Mapping[str, float]) -> dict[str, Quota]:
    """The service's quotas as the app sees them when others take a share: ``left`` of the rate and
    of the burst (at least one call) per operation; operations not named are left whole."""
    return {
        operation: Quota(
            quota.per_second * left.get(operation, 1.0), max(1, round(quota.burst * left.get(operation, 1.0)))
        )
        for operation, quota in SERVICE_QUOTAS.items()
    }


def quota_floor(calls: Mapping[str, int], quotas: Mapping[str, Quota] = SERVICE_QUOTAS) -> float:
    """The least time the quotas allow for these calls: the burst is free, the rest at the rate."""
    return max(
        (max(0, calls.get(operation, 0) - quota.burst) / quota.per_second for operation, quota in quotas.items()),
        default=0.0,
    )


def organization(size: int) -> list[Account]:
    """The management account and ``size - 1`` members, all ACTIVE, spread over a few OUs."""
    accounts = [Account(MANAGEMENT_ACCOUNT_ID, "ACTIVE", (ROOT_ID,), "management")]
    for index in range(1, size):
        unit = f"ou-bnch-{index % 8:08d}"
        accounts.append(Account(f"{100000000000 + index:012d}", "ACTIVE", (ROOT_ID, unit), f"member-{index}"))
    return accounts


def measure(
    scenario: str,
    accounts: Sequence[Account],
    spec: ContactSpec,
    contacts: dict[tuple[str, str], dict[str, str]],
    *,
    speed: float,
    latency: tuple[float, float],
    seed: int,
    concurrency: int,
    left: Mapping[str, float] | None = None,
) -> Measurement:
    """One deploy: plan the job, then one ``run_batch`` per Lambda invocation until it is done."""
    clock = SimulatedClock(speed)
    fake = FakeAccountManagement(
        clock,
        management_account_id=MANAGEMENT_ACCOUNT_ID,
        account_ids=[account.id for account in accounts],
        contacts=contacts,
        latency=latency,
        seed=seed,
        quotas=available_quotas(left or {}),
    )
    api = AccountApi(fake, MANAGEMENT_ACCOUNT_ID, RateLimits(clock=clock.now, sleep=clock.sleep))
    snapshots = MemorySnapshots()
    job = plan(f"benchmark-{len(accounts)}", accounts, spec)
    # A full collection of everything botocore loaded takes ~20 ms: nothing in a Lambda, seconds of
    # simulated time here. Frozen objects are left out of collections until the run is over.
    gc.collect()
    gc.freeze()
    try:
        real_start, start = time.perf_counter(), clock.now()
        invocations = 0
        overrun = 0.0
        while not job.done:
            invocations += 1
            deadline = clock.now() + INVOCATION_BUDGET_SECONDS
            run_batch(job, api, snapshots=snapshots, deadline=deadline, clock=clock.now, concurrency=concurrency)
            overrun = max(overrun, clock.now() - deadline)
        wall = clock.now() - start
        real = time.perf_counter() - real_start
    finally:
        gc.unfreeze()
    counts = job.counts()
    overshoots = clock.overshoots
    return Measurement(
        scenario=scenario,
        accounts=len(accounts),
        calls={operation: fake.calls[operation] for operation in OPERATIONS},
        throttled=sum(fake.throttled.values()),
        wall_seconds=wall,
        failed=counts[FAILED],
        unchanged=counts[UNCHANGED],
        invocations=invocations,
        overrun_seconds=overrun,
        overshoot_ms=1000 * sum(overshoots) / len(overshoots) if overshoots else 0.0,
        real_seconds=real,
        left=left,
    )


def benchmark(
    size: int,
    *,
    speed: float = DEFAULT_SPEED,
    latency: tuple[float, float] = (DEFAULT_LATENCY_MS[0] / 1000, DEFAULT_LATENCY_MS[1] / 1000),
    seed: int = 0,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[Measurement]:
    """A first apply on accounts with no contacts, then a re-run with nothing changed."""
    accounts = organization(size)
    spec = ContactSpec.parse(SPEC)
    contacts: dict[tuple[str, str], dict[str, str]] = {}  # the organization's state, kept between the two
    options: dict[str, Any] = {"speed": speed, "latency": latency, "seed": seed, "concurrency": concurrency}
    first = measure("first apply", accounts, spec, contacts, **options)
    rerun = measure("re-run, nothing changed", accounts, spec, contacts, **options)
    return [first, rerun]


def outside_consumer(
    scenario: str,
    size: int,
    left: Mapping[str, float],
    *,
    speed: float,
    latency: tuple[float, float],
    seed: int,
    concurrency: int,
) -> Measurement:
    """A first apply while others take the rest of the quota: the service refills only ``left``."""
    options: dict[str, Any] = {"speed": speed, "latency": latency, "seed": seed, "concurrency": concurrency}
    return measure(scenario, organization(size), ContactSpec.parse(SPEC), {}, left=left, **options)


class FakeOrganizations:
    """DescribeAccount and ListParents for the events handler: every account ACTIVE, under the root.
    (Organizations' own quotas, DescribeAccount 20/s, are far above what 200 events need.)"""

    def describe_account(self, *, AccountId: str) -> dict[str, Any]:
        return {"Account": {"Id": AccountId, "Name": f"new-{AccountId}", "Status": "ACTIVE", "State": "ACTIVE"}}

    def list_parents(self, *, ChildId: str) -> dict[str, Any]:
        return {"Parents": [{"Id": ROOT_ID, "Type": "ROOT"}]}


def _event_record(index: int, account_id: str) -> dict[str, Any]:
    event = {
        "id": f"event-{index}",
        "source": "aws.organizations",
        "detail-type": "AWS Service Event via CloudTrail",
        "detail": {
            "eventName": "CreateAccountResult",
            "serviceEventDetails": {"createAccountStatus": {"state": "SUCCEEDED", "accountId": account_id}},
        },
    }
    return {"messageId": f"message-{index}", "body": json.dumps(event)}


def shared_quota(
    size: int, events: int, *, speed: float, latency: tuple[float, float], seed: int, concurrency: int
) -> Measurement:
    """(b): a deploy job, a drift job and ``events`` account events at once, in one calling account.

    Each is its own Lambda function, so its own process with its own pacing; all three call one
    fake service, whose quota they share.
    """
    clock = SimulatedClock(speed)
    accounts = organization(size)
    joined = [f"{200000000000 + index:012d}" for index in range(events)]
    fake = FakeAccountManagement(
        clock,
        management_account_id=MANAGEMENT_ACCOUNT_ID,
        account_ids=[account.id for account in accounts] + joined,
        contacts={},
        latency=latency,
        seed=seed,
    )
    spec = ContactSpec.parse(SPEC)
    snapshots = MemorySnapshots()  # the one snapshot table of the calling account

    def process_api() -> AccountApi:
        return AccountApi(fake, MANAGEMENT_ACCOUNT_ID, RateLimits(clock=clock.now, sleep=clock.sleep))

    # The deploy job is planned first (the drift check was not running yet); each job's record is in
    # the one job store both use, saved at each checkpoint and at the end of each invocation, and each
    # reads the other's there (the drift check through the deploy's pointer, the deploy through the check's).
    jobs = {"deploy": plan("deploy", accounts, spec), "drift": plan("drift-check", accounts, spec)}
    store: dict[str, str] = {}
    store_lock = threading.Lock()

    def save(saved: Job) -> None:
        with store_lock:
            store[saved.id] = json.dumps(saved.to_dict())

    def peers_of(name: str) -> Callable[[], list[Job]]:
        other = jobs["drift" if name == "deploy" else "deploy"].id

        def read() -> list[Job]:
            with store_lock:
                found = store.get(other)
            return [Job.from_dict(json.loads(found))] if found else []

        return read

    for job in jobs.values():
        save(job)
    results: dict[str, dict[str, float]] = {}

    def run_job(name: str, job: Job, api: AccountApi) -> None:
        invocations, overrun = 0, 0.0
        while not job.done:
            invocations += 1
            deadline = clock.now() + INVOCATION_BUDGET_SECONDS
            run_batch(
                job,
                api,
                snapshots=snapshots,
                deadline=deadline,
                clock=clock.now,
                sleep=clock.sleep,
                concurrency=concurrency,
                checkpoint=save,
                peers=peers_of(name),
            )
            save(job)
            overrun = max(overrun, clock.now() - deadline)
        results[name] = {"invocations": invocations, "overrun": overrun}

    # Arrivals over the first 90% of the jobs' own floor: three writes per account at the Put quota.
    spread = 0.9 * 3 * size / SERVICE_QUOTAS[PUT].per_second
    arrival_random = random.Random(seed + 1)
    arrivals = sorted((arrival_random.uniform(0, spread), account_id) for account_id in joined)
    arrived_at = {account_id: at for at, account_id in arrivals}
    redelivered = 0

    def run_events(api: AccountApi) -> None:
        nonlocal redelivered
        deps = account_events.Dependencies(
            organizations=FakeOrganizations(),
            api=api,
            spec=spec,
            management_account_id=MANAGEMENT_ACCOUNT_ID,
            caller_account_id=MANAGEMENT_ACCOUNT_ID,
            snapshots=snapshots,
        )
        # (visible at, record) in the queue, in arrival order
        queue = [(at, _event_record(index, account_id)) for index, (at, account_id) in enumerate(arrivals)]
        while queue:
            now = clock.now()
            visible = [entry for entry in queue if entry[0] <= now][:EVENT_BATCH_SIZE]
            if not visible:
                clock.sleep(min(at for at, _ in queue) - now)
                continue
            budget_end = clock.now() + EVENT_BUDGET_SECONDS

            def seconds_left(end: float = budget_end) -> float:
                return end - clock.now()

            answer = account_events.handle_batch([record for _, record in visible], deps, seconds_left=seconds_left)
            retry = {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}
            redelivered += len(retry)
            for entry in visible:
                queue.remove(entry)
                if entry[1]["messageId"] in retry:
                    queue.append((clock.now() + EVENT_VISIBILITY_SECONDS, entry[1]))
            queue.sort(key=lambda entry: entry[0])

    threads = [threading.Thread(target=run_job, args=(name, job, process_api())) for name, job in jobs.items()] + [
        threading.Thread(target=run_events, args=(process_api(),))
    ]
    gc.collect()
    gc.freeze()
    try:
        real_start, start = time.perf_counter(), clock.now()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = clock.now() - start
        real = time.perf_counter() - real_start
    finally:
        gc.unfreeze()
    latencies = [fake.complete_at[account] - arrived_at[account] for account in joined if account in fake.complete_at]
    never = events - len(latencies)
    overshoots = clock.overshoots
    return Measurement(
        scenario=f"(b) deploy + drift + {events} events at once",
        accounts=size,
        calls={operation: fake.calls[operation] for operation in OPERATIONS},
        throttled=sum(fake.throttled.values()),
        wall_seconds=wall,
        failed=sum(job.counts()[FAILED] for job in jobs.values()) + never,
        unchanged=sum(job.counts()[UNCHANGED] for job in jobs.values()),
        invocations=int(sum(result["invocations"] for result in results.values())),
        overrun_seconds=max(result["overrun"] for result in results.values()),
        overshoot_ms=1000 * sum(overshoots) / len(overshoots) if overshoots else 0.0,
        real_seconds=real,
        left={},
        event_latencies=latencies,
        events_redelivered=redelivered,
        # every contact type of every account, the jobs' and the new ones, was missing: read once, put once
        needed={GET: len(CONTACT_TYPES) * (size + events), PUT: len(CONTACT_TYPES) * (size + events)},
    )


def contention(
    *,
    speed: float,
    latency: tuple[float, float],
    seed: int,
    concurrency: int,
    events: int = EVENTS,
    shared_accounts: int = 1_000,
) -> list[Measurement]:
    options: dict[str, Any] = {"speed": speed, "latency": latency, "seed": seed, "concurrency": concurrency}
    half = {PUT: 0.5, GET: 0.5}
    quarter = dict.fromkeys(OPERATIONS, 0.25)
    return [
        outside_consumer("(a) outside consumer takes 50% of Put and Get", 1_000, half, **options),
        shared_quota(shared_accounts, events, **options),
        outside_consumer("(c) 25% of the quota left", 100, quarter, **options),
    ]


def _latency(m: Measurement) -> str:
    if not m.event_latencies:
        return "-"
    return f"{statistics.median(m.event_latencies):.1f} / {max(m.event_latencies):.1f}"


def _needed(m: Measurement) -> str:
    if m.needed is None:
        return "- | -"
    return f"{m.writes:,} / {m.needed_writes:,} ({m.writes / m.needed_writes:.3f}) | {m.needed_ratio:.3f}"


def table(measurements: Sequence[Measurement]) -> str:
    lines = [
        "| Scenario | Accounts | Calls (Get / Put / Delete) | Calls per account | Throttled | Failed | Wall (sim s) "
        "| Floor of capacity left (s) | Ratio | Writes / needed | Ratio to floor of needed calls "
        "| Event latency median / max (s) | Invocations | Deadline overrun (s) | Sleep overshoot (sim ms) | Real (s) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for m in measurements:
        calls = " / ".join(f"{m.calls[operation]:,}" for operation in OPERATIONS)
        lines.append(
            f"| {m.scenario} | {m.accounts:,} | {calls} | {m.calls_per_account:.2f} | {m.throttled:,} | {m.failed:,} "
            f"| {m.wall_seconds:,.1f} | {m.floor_seconds:,.1f} | {m.ratio:.3f} | {_needed(m)} | {_latency(m)} "
            f"| {m.invocations} "
            f"| {m.overrun_seconds:.1f} | {m.overshoot_ms:.1f} | {m.real_seconds:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, nargs="+", default=list(DEFAULT_ACCOUNTS), help="organization sizes")
    parser.add_argument("--quick", action="store_true", help=f"only {' and '.join(map(str, QUICK_ACCOUNTS))} accounts")
    parser.add_argument("--contention-only", action="store_true", help="only the contention scenarios")
    parser.add_argument("--no-contention", action="store_true", help="only the uncontended scenarios")
    parser.add_argument(
        "--shared-accounts", type=int, default=1_000, help="organization size of (b), the jobs the events meet"
    )
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED, help="simulated seconds per real second")
    parser.add_argument(
        "--latency-ms", type=float, nargs=2, default=list(DEFAULT_LATENCY_MS), metavar=("MIN", "MAX"), help="per call"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # failed accounts are counted in the table, not logged one by one
    logging.getLogger().setLevel(logging.ERROR)  # the handlers' modules set INFO on import
    sizes = [] if args.contention_only else list(QUICK_ACCOUNTS) if args.quick else args.accounts
    latency = (args.latency_ms[0] / 1000, args.latency_ms[1] / 1000)
    print(
        f"speed {args.speed:g} simulated s per real s, latency {args.latency_ms[0]:g}-{args.latency_ms[1]:g} ms, "
        f"concurrency {args.concurrency}, seed {args.seed}",
        flush=True,
    )
    real_start = time.perf_counter()
    options: dict[str, Any] = {
        "speed": args.speed,
        "latency": latency,
        "seed": args.seed,
        "concurrency": args.concurrency,
    }
    measurements: list[Measurement] = []
    for size in sizes:
        measurements += benchmark(size, **options)
    if not args.no_contention:
        measurements += contention(shared_accounts=args.shared_accounts, **options)
    print(table(measurements))
    print(
        "\nFloor: the least time the quotas left to the app allow for the calls made, max over operations of "
        "(calls - burst) / rate, with rate and burst those the app has (all of the published quota when "
        f"uncontended). Ratio: wall / floor; target <= {TARGET_RATIO:g} uncontended (and no throttles), "
        f"<= {CONTENDED_TARGET_RATIO:g} under contention, zero failed accounts, events' latency <= "
        f"{EVENT_LATENCY_TARGET_SECONDS:g} s. Times are simulated seconds. Needed (b): one Get and one Put "
        "per contact type that was missing (the jobs' accounts and the events' new ones); the floor of the "
        "calls made hides work done twice, the floor of the calls needed does not. Target for (b): writes at "
        f"most {WRITES_TARGET_RATIO:g} x needed."
    )
    redelivered = sum(m.events_redelivered for m in measurements)
    print(f"Event records answered as failures (delivered again): {redelivered}")
    print(f"Real time {time.perf_counter() - real_start:.1f} s")
    missed = [(m, m.missed()) for m in measurements if m.missed()]
    for m, problems in missed:
        print(f"target missed: {m.scenario}, {m.accounts:,} accounts ({', '.join(problems)})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
