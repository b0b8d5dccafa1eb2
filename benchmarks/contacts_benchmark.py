"""Benchmark: the alternate-contacts engine against a rate-limited, latency-injected fake API.

Drives the real engine the way the Lambda does (``plan`` a job, then ``run_batch`` one invocation
budget at a time until the job is done) against a fake Account Management API that throttles at
the published quotas, and reports simulated wall time as a ratio to the quota floor: the least
time the quotas allow for the calls actually made. Time is simulated on a sped-up real clock
shared by the fake, the engine's rate limits and the deadline, so 10,000 accounts take seconds.

    .venv/bin/python benchmarks/contacts_benchmark.py            # 100, 1,000 and 10,000 accounts
    .venv/bin/python benchmarks/contacts_benchmark.py --quick    # 100 and 1,000
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import random
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

from org_bootstrap.contact_spec import Contact, ContactSpec  # noqa: E402
from org_bootstrap.jobs import DEFAULT_CONCURRENCY, FAILED, UNCHANGED, plan, run_batch  # noqa: E402
from org_bootstrap.organization import Account  # noqa: E402
from org_bootstrap.pacing import Quota, RateLimits  # noqa: E402
from org_bootstrap.reconcile import ContactsApi  # noqa: E402
from org_bootstrap.validation import CONTACT_TYPES  # noqa: E402

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
TARGET_RATIO = 1.15
QUICK_ACCOUNTS = (100, 1_000)

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


class _ServiceBucket:
    """The service's token bucket for one operation; the caller holds the fake's lock."""

    def __init__(self, quota: Quota, now: float) -> None:
        self.rate = float(quota.per_second)
        self.capacity = float(quota.burst)
        self.tokens = self.capacity
        self.updated = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


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
        self._buckets = {operation: _ServiceBucket(quota, clock.now()) for operation, quota in quotas.items()}
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()  # accepted calls by operation
        self.throttled: Counter[str] = Counter()

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

    @property
    def floor_seconds(self) -> float:
        return quota_floor(self.calls)

    @property
    def ratio(self) -> float:
        return self.wall_seconds / self.floor_seconds if self.floor_seconds > 0 else math.nan

    @property
    def writes(self) -> int:
        return self.calls.get(PUT, 0) + self.calls.get(DELETE, 0)

    @property
    def calls_per_account(self) -> float:
        return sum(self.calls.values()) / self.accounts


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
    )
    api = ContactsApi(fake, MANAGEMENT_ACCOUNT_ID, RateLimits(clock=clock.now, sleep=clock.sleep))
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


def table(measurements: Sequence[Measurement]) -> str:
    lines = [
        "| Scenario | Accounts | Calls (Get / Put / Delete) | Calls per account | Throttled | Wall (sim s) "
        "| Floor (s) | Ratio | Failed | Invocations | Deadline overrun (s) | Sleep overshoot (sim ms) | Real (s) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for m in measurements:
        calls = " / ".join(f"{m.calls[operation]:,}" for operation in OPERATIONS)
        lines.append(
            f"| {m.scenario} | {m.accounts:,} | {calls} | {m.calls_per_account:.2f} | {m.throttled:,} "
            f"| {m.wall_seconds:,.1f} | {m.floor_seconds:,.1f} | {m.ratio:.3f} | {m.failed:,} | {m.invocations} "
            f"| {m.overrun_seconds:.1f} | {m.overshoot_ms:.1f} | {m.real_seconds:.1f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, nargs="+", default=list(DEFAULT_ACCOUNTS), help="organization sizes")
    parser.add_argument("--quick", action="store_true", help=f"only {' and '.join(map(str, QUICK_ACCOUNTS))} accounts")
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED, help="simulated seconds per real second")
    parser.add_argument(
        "--latency-ms", type=float, nargs=2, default=list(DEFAULT_LATENCY_MS), metavar=("MIN", "MAX"), help="per call"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # failed accounts are counted in the table, not logged one by one
    sizes = list(QUICK_ACCOUNTS) if args.quick else args.accounts
    latency = (args.latency_ms[0] / 1000, args.latency_ms[1] / 1000)
    print(
        f"speed {args.speed:g} simulated s per real s, latency {args.latency_ms[0]:g}-{args.latency_ms[1]:g} ms, "
        f"concurrency {args.concurrency}, seed {args.seed}",
        flush=True,
    )
    real_start = time.perf_counter()
    measurements: list[Measurement] = []
    for size in sizes:
        measurements += benchmark(size, speed=args.speed, latency=latency, seed=args.seed, concurrency=args.concurrency)
    print(table(measurements))
    print(
        "\nFloor: the least time the published quotas allow for the calls made, max over operations of "
        f"(calls - burst) / rate. Ratio: wall / floor; target <= {TARGET_RATIO:g}, zero failed accounts. "
        "Times are simulated seconds."
    )
    print(f"Real time {time.perf_counter() - real_start:.1f} s")
    missed = [m for m in measurements if m.failed or m.throttled or not m.ratio <= TARGET_RATIO]
    for m in missed:
        print(
            f"target missed: {m.scenario}, {m.accounts:,} accounts "
            f"(ratio {m.ratio:.3f}, {m.failed} failed, {m.throttled} throttled)"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
