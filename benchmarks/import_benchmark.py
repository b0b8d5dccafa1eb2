"""Benchmark: the import's reads against a rate-limited, latency-injected fake Account Management API.

Drives :func:`local_deploy.importing.read_accounts`, the reads ``python -m local_deploy import``
makes (every ACTIVE account's alternate contacts, primary contact and Regions, through the
engine's ``AccountApi`` and its adaptive pacing), against the fake of ``settings_benchmark``: it
throttles at the published quotas and spends 50-150 ms a call, on the sped-up simulated clock of
``contacts_benchmark``. Reports simulated wall time as a ratio to the floor the Get quotas set:
each operation runs beside the others, so the floor is the largest of calls / rate over
GetAlternateContact (3 types an account, 10/s), GetContactInformation (10/s) and ListRegions (5/s):
3N / 10 seconds. Every account must be read, each value as the fake holds it.

Scenarios: 10,000 accounts uncontended (target at most 1.05); 1,000 accounts with half of every
Get quota taken by another caller (the service refills the import's share at half the rate: its
throttles are retried and the pacing adapts; floor from the half left, target at most 1.2).

    .venv/bin/python benchmarks/import_benchmark.py                  # 10,000 accounts: about 80 s
    .venv/bin/python benchmarks/import_benchmark.py --accounts 1000

The simulated clock runs ``--speed`` times faster than the real one (default 50): a thread's late
wake-up on a busy host is multiplied by it (the "overshoot" column, in simulated ms), so on a
loaded machine a higher speed measures the host rather than the import (at 200, on a host with a
load average of 15, 1,000 accounts took 1.6 times the floor; at 50, 1.03).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "runtime"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from benchmarks.contacts_benchmark import MANAGEMENT_ACCOUNT_ID, ROOT_ID, SimulatedClock  # noqa: E402
from benchmarks.settings_benchmark import PRIMARY, REGIONS, SETTINGS_QUOTAS, FakeSettingsApi  # noqa: E402
from local_deploy.importing import IMPORTED_SETTINGS, read_accounts  # noqa: E402
from org_bootstrap.aws.organization import Account  # noqa: E402
from org_bootstrap.engine.pacing import Quota, RateLimits  # noqa: E402
from org_bootstrap.engine.reconcile import AccountApi  # noqa: E402
from org_bootstrap.settings.alternate_contacts.spec import CONTACT_TYPES  # noqa: E402
from simulation.organization import ServiceBucket  # noqa: E402

GETS = {"GetAlternateContact": len(CONTACT_TYPES), "GetContactInformation": 1, "ListRegions": 1}  # calls an account
DEFAULT_SPEED = 50.0
TARGETS = {"uncontended": 1.05, "half the Get quotas left": 1.2}


def floor_seconds(accounts: int, quotas: Mapping[str, Quota]) -> float:
    """The least time the Get quotas allow, the operations running side by side."""
    return max(calls * accounts / quotas[operation].per_second for operation, calls in GETS.items())


@dataclass(frozen=True)
class Row:
    scenario: str
    accounts: int
    seconds: float
    floor: float
    read: int
    wrong: int
    throttled: int
    real_seconds: float
    overshoot_ms: float  # mean late wake-up of a sleep, in simulated ms: the host's share of the time

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor


def run(scenario: str, accounts: int, left: float, speed: float) -> Row:
    clock = SimulatedClock(speed)
    ids = [MANAGEMENT_ACCOUNT_ID, *(f"{200000000000 + i}" for i in range(1, accounts))]
    # What the accounts have now: every seventh lacks its OPERATIONS contact (a ResourceNotFound
    # answer is a call like any other), every eleventh its primary contact.
    contacts = {
        (account, contact_type): {
            "Name": f"{contact_type.title()} Team",
            "Title": contact_type.title(),
            "EmailAddress": f"{contact_type.lower()}-{account}@example.com",
            "PhoneNumber": "+1 206 555 0100",
        }
        for index, account in enumerate(ids)
        for contact_type in CONTACT_TYPES
        if not (contact_type == "OPERATIONS" and index % 7 == 3)
    }
    # The service's side: another caller takes (1 - left) of every Get quota.
    service = {
        operation: Quota(quota.per_second * left, max(1, int(quota.burst * left))) if operation in GETS else quota
        for operation, quota in SETTINGS_QUOTAS.items()
    }
    fake = FakeSettingsApi(clock, management_account_id=MANAGEMENT_ACCOUNT_ID, account_ids=ids, contacts=dict(contacts))
    fake._buckets = {operation: ServiceBucket(quota, clock.now()) for operation, quota in service.items()}
    fake.primary = {account: dict(PRIMARY) for index, account in enumerate(ids) if index % 11 != 5}
    limits = RateLimits(SETTINGS_QUOTAS, clock=clock.now, sleep=clock.sleep)  # the published quotas
    api = AccountApi(fake, MANAGEMENT_ACCOUNT_ID, limits)
    organization = [Account(account_id, "ACTIVE", (ROOT_ID,)) for account_id in ids]
    started, real = clock.now(), time.perf_counter()
    found = read_accounts(api, organization, IMPORTED_SETTINGS, "aws")
    seconds, real_seconds = clock.now() - started, time.perf_counter() - real
    wrong = 0
    for account in found:
        owner = account.account.id
        expected = {
            "alternate_contacts": {t: contacts.get((owner, t)) for t in CONTACT_TYPES},
            "primary_contact": {"PRIMARY": fake.primary.get(owner)},
        }
        regions = {region: status for region, status in account.values.get("regions", {}).items() if status}
        wrong += bool(account.not_read) or any(account.values.get(k) != v for k, v in expected.items())
        wrong += regions != dict.fromkeys(REGIONS, "DISABLED")
    return Row(
        scenario,
        accounts,
        seconds,
        floor_seconds(accounts, service),
        len(found) - sum(1 for account in found if account.not_read),
        wrong,
        sum(fake.throttled.values()),
        real_seconds,
        1000 * sum(clock.overshoots) / max(1, len(clock.overshoots)),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED, help="simulated seconds per real second")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    rows = [
        run("uncontended", args.accounts, 1.0, args.speed),
        run("half the Get quotas left", min(args.accounts, 1000), 0.5, args.speed),
    ]
    columns = "scenario | accounts | simulated s | floor s | ratio | target | read | wrong | throttled"
    print(f"| {columns} | real s | overshoot ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    for row in rows:
        target = TARGETS[row.scenario]
        ok &= row.ratio <= target and row.read == row.accounts and row.wrong == 0
        print(
            f"| {row.scenario} | {row.accounts} | {row.seconds:.0f} | {row.floor:.0f} | {row.ratio:.3f} | {target} | "
            f"{row.read} | {row.wrong} | {row.throttled} | {row.real_seconds:.0f} | {row.overshoot_ms:.1f} |"
        )
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
