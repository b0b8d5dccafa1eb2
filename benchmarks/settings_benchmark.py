"""Benchmark: the primary contact and the opt-in Regions through the real engine, against a fake
Account Management API that throttles at the published quotas and enables a Region in a simulated
5 minutes, with the 6-per-account and 50-per-organization limits on Region requests in progress.

Drives the engine as the Lambda does (``plan`` a job of one or several settings, then ``run_batch``
one invocation budget at a time until the job is done) on the sped-up clock of
``contacts_benchmark``, and reports simulated wall time as a ratio to the floor:

- primary contact, 1,000 accounts: the Put floor, N / 5 s (target at most 1.10);
- Regions, 1,000 accounts x 2: the larger of 2N / 1 s (EnableRegion) and 2N x 300 s / 50 (the
  organization's 50 requests in progress), which is the second (target at most 1.2), and the limits
  are never exceeded (the fake counts every request beyond them, and any is a failure);
- all three settings in one job: at most 1.1 x the slowest setting's floor (the quotas are separate).

It also counts the Region reads (ListRegions and GetRegionOptStatus, reading the accounts and
following the requests) per Region request started.

    .venv/bin/python benchmarks/settings_benchmark.py            # 1,000 accounts, about 3 minutes
    .venv/bin/python benchmarks/settings_benchmark.py --accounts 100
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "runtime"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from benchmarks.contacts_benchmark import (  # noqa: E402
    INVOCATION_BUDGET_SECONDS,
    MANAGEMENT_ACCOUNT_ID,
    ROOT_ID,
    SPEC,
    FakeAccountManagement,
    SimulatedClock,
    _client_error,
)
from org_bootstrap.aws.organization import Account  # noqa: E402
from org_bootstrap.engine.jobs import FAILED, plan, run_batch  # noqa: E402
from org_bootstrap.engine.pacing import Quota, RateLimits  # noqa: E402
from org_bootstrap.engine.quotas import RegionOptLimits  # noqa: E402
from org_bootstrap.engine.reconcile import AccountApi  # noqa: E402
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec  # noqa: E402
from org_bootstrap.settings.primary_contact.spec import PrimaryContactSpec  # noqa: E402
from org_bootstrap.settings.regions.spec import RegionSpec  # noqa: E402

# The service side, written out here rather than imported from the engine.
# https://docs.aws.amazon.com/accounts/latest/reference/quotas.html
SETTINGS_QUOTAS: Mapping[str, Quota] = {
    "GetAlternateContact": Quota(10, 15),
    "PutAlternateContact": Quota(5, 8),
    "DeleteAlternateContact": Quota(1, 6),
    "GetContactInformation": Quota(10, 15),
    "PutContactInformation": Quota(5, 8),
    "ListRegions": Quota(5, 5),
    "GetRegionOptStatus": Quota(5, 5),
    "EnableRegion": Quota(1, 1),
    "DisableRegion": Quota(1, 1),
}
PER_ACCOUNT, PER_ORGANIZATION = 6, 50
ENABLING_SECONDS = 300.0
REGIONS = ("ap-east-1", "me-central-1")
PRIMARY = {
    "FullName": "Example Corp Cloud Team",
    "AddressLine1": "410 Terry Ave N",
    "City": "Seattle",
    "StateOrRegion": "WA",
    "PostalCode": "98109",
    "CountryCode": "US",
    "PhoneNumber": "+1 206 555 0100",
}
TARGETS = {"primary contact": 1.10, "regions": 1.2, "all three": 1.1}


class FakeSettingsApi(FakeAccountManagement):
    """The alternate contacts' fake, plus the primary contact and the Region calls as AWS answers
    them: a Region stays ENABLING for ``ENABLING_SECONDS`` of simulated time; a request beyond 6 in
    progress in the account or 50 in the organization is refused with AWS's TooManyRequestsException
    (and counted in ``over_limit``: the engine must never send one)."""

    def __init__(self, clock: SimulatedClock, **kwargs: Any) -> None:
        super().__init__(clock, quotas=SETTINGS_QUOTAS, **kwargs)
        self.primary: dict[str, dict[str, str]] = {}
        self.enabling: dict[tuple[str, str], float] = {}  # (account, Region) -> when ENABLING started
        self.enabled: set[tuple[str, str]] = set()
        self.over_limit = 0
        self.peak: Counter[str] = Counter()
        self.done_at = 0.0
        self.requests = 0  # Region requests started (each a Region that went ENABLING)
        self.arrived: dict[tuple[str, str], float] = {}  # (account, Region) -> when it got to ENABLED
        self.seen_after: dict[tuple[str, str], float] = {}  # -> how long after that a read first said so

    def _owner(self, operation: str, account_id: str | None) -> str:
        return self._key("GetAlternateContact", account_id, "BILLING")[0]

    def _settle(self, now: float) -> None:
        for key, since in list(self.enabling.items()):
            if now - since >= ENABLING_SECONDS:
                del self.enabling[key]
                self.enabled.add(key)
                self.arrived[key] = since + ENABLING_SECONDS
                self.done_at = max(self.done_at, since + ENABLING_SECONDS)

    def _status(self, owner: str, region: str) -> str:
        self._settle(self._clock.now())
        if (owner, region) in self.enabled:
            self.seen_after.setdefault((owner, region), self._clock.now() - self.arrived[owner, region])
            return "ENABLED"
        return "ENABLING" if (owner, region) in self.enabling else "DISABLED"

    def get_contact_information(self, *, AccountId: str | None = None) -> dict[str, Any]:
        owner = self._owner("GetContactInformation", AccountId)

        def get() -> dict[str, Any]:
            if owner not in self.primary:
                raise _client_error("ResourceNotFoundException", "No contact information", "GetContactInformation")
            return {"ContactInformation": dict(self.primary[owner])}

        return self._serve("GetContactInformation", get)

    def put_contact_information(self, *, ContactInformation: dict[str, str], AccountId: str | None = None) -> Any:
        owner = self._owner("PutContactInformation", AccountId)

        def put() -> dict[str, Any]:
            self.primary[owner] = dict(ContactInformation)
            self.done_at = max(self.done_at, self._clock.now())
            return {}

        return self._serve("PutContactInformation", put)

    def list_regions(self, *, MaxResults: int = 20, NextToken: str | None = None, AccountId: str | None = None) -> Any:
        owner = self._owner("ListRegions", AccountId)
        return self._serve(
            "ListRegions",
            lambda: {"Regions": [{"RegionName": r, "RegionOptStatus": self._status(owner, r)} for r in REGIONS]},
        )

    def get_region_opt_status(self, *, RegionName: str, AccountId: str | None = None) -> Any:
        owner = self._owner("GetRegionOptStatus", AccountId)
        return self._serve(
            "GetRegionOptStatus",
            lambda: {"RegionName": RegionName, "RegionOptStatus": self._status(owner, RegionName)},
        )

    def enable_region(self, *, RegionName: str, AccountId: str | None = None) -> Any:
        owner = self._owner("EnableRegion", AccountId)

        def enable() -> dict[str, Any]:
            now = self._clock.now()
            self._settle(now)
            if self._status(owner, RegionName) != "DISABLED":
                return {}
            mine = sum(1 for account, _ in self.enabling if account == owner)
            scope = (
                "an account"
                if mine >= PER_ACCOUNT
                else "an organization"
                if len(self.enabling) >= PER_ORGANIZATION
                else ""
            )
            if scope:
                self.over_limit += 1
                message = (
                    f"This request has exceeded the quota for 'Number of concurrent region-opt requests for {scope}'."
                )
                raise _client_error("TooManyRequestsException", message, "EnableRegion", 429)
            self.enabling[owner, RegionName] = now
            self.requests += 1
            self.peak[owner] = max(self.peak[owner], mine + 1)
            self.peak[""] = max(self.peak[""], len(self.enabling))
            return {}

        return self._serve("EnableRegion", enable)


@dataclass(frozen=True)
class Row:
    scenario: str
    accounts: int
    seconds: float
    floor: float
    failed: int
    throttled: int
    over_limit: int
    peak_account: int
    peak_organization: int
    calls: Mapping[str, int]  # accepted by the service, by operation
    requests: int  # Region requests started
    seen_after: tuple[float, ...]  # per Region: from getting to ENABLED to the first read that said so

    @property
    def ratio(self) -> float:
        return self.seconds / self.floor

    @property
    def region_reads(self) -> int:
        """ListRegions and GetRegionOptStatus calls: reading the accounts and following the requests."""
        return self.calls.get("ListRegions", 0) + self.calls.get("GetRegionOptStatus", 0)

    @property
    def reads_per_request(self) -> float:
        return self.region_reads / self.requests if self.requests else 0.0


def run(scenario: str, accounts: int, specs: Mapping[str, Any], floor: float, speed: float) -> Row:
    clock = SimulatedClock(speed)
    ids = [MANAGEMENT_ACCOUNT_ID, *(f"{200000000000 + i}" for i in range(1, accounts))]
    fake = FakeSettingsApi(clock, management_account_id=MANAGEMENT_ACCOUNT_ID, account_ids=ids, contacts={})
    limits = RateLimits(SETTINGS_QUOTAS, clock=clock.now, sleep=clock.sleep)
    api = AccountApi(fake, MANAGEMENT_ACCOUNT_ID, limits)
    organization = [Account(account_id, "ACTIVE", (ROOT_ID,)) for account_id in ids]
    job = plan("benchmark", organization, dict(specs))
    job.started_at = clock.now()
    job.deadline_at = clock.now() + 24 * 3600
    started = clock.now()
    while not job.done:
        run_batch(
            job,
            api,
            snapshots=None,
            deadline=clock.now() + INVOCATION_BUDGET_SECONDS,
            clock=clock.now,
            now=clock.now,
            sleep=clock.sleep,
            concurrency=16,
            region_limits=RegionOptLimits(PER_ACCOUNT, PER_ORGANIZATION),
        )
    finished = clock.now() - started  # until the job is done: every Region seen ENABLED
    return Row(
        scenario,
        accounts,
        finished,
        floor,
        job.counts()[FAILED],
        sum(fake.throttled.values()),
        fake.over_limit,
        max((v for k, v in fake.peak.items() if k), default=0),
        fake.peak[""],
        dict(fake.calls),
        fake.requests,
        tuple(fake.seen_after.values()),
    )


def scenarios(accounts: int) -> list[tuple[str, dict[str, Any], float, float]]:
    primary = {"primary_contact": PrimaryContactSpec.parse({"contact": PRIMARY})}
    regions = {"regions": RegionSpec.parse({"enable": list(REGIONS)})}
    contacts = {"alternate_contacts": ContactSpec.parse(SPEC)}
    region_floor = max(len(REGIONS) * accounts / 1.0, len(REGIONS) * accounts * ENABLING_SECONDS / PER_ORGANIZATION)
    return [
        ("primary contact", primary, accounts / 5.0, 200.0),
        ("regions", regions, region_floor, 400.0),
        ("all three", {**contacts, **primary, **regions}, max(3 * accounts / 5.0, accounts / 5.0, region_floor), 400.0),
    ]


def _seen(row: Row) -> str:
    if not row.seen_after:
        return "-"
    return f"{sum(row.seen_after) / len(row.seen_after):.1f} / {max(row.seen_after):.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    rows = [run(name, args.accounts, specs, floor, speed) for name, specs, floor, speed in scenarios(args.accounts)]
    columns = "scenario | accounts | simulated s | floor s | ratio | target | failed | throttled | over limits"
    reads = "Region requests | ListRegions | GetRegionOptStatus | Region reads per request | seen after, mean / max s"
    print(f"| {columns} | peak per account | peak in organization | {reads} |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    for row in rows:
        target = TARGETS[row.scenario]
        ok &= row.ratio <= target and row.failed == 0 and row.over_limit == 0
        ok &= row.peak_account <= PER_ACCOUNT and row.peak_organization <= PER_ORGANIZATION
        print(
            f"| {row.scenario} | {row.accounts} | {row.seconds:.0f} | {row.floor:.0f} | {row.ratio:.3f} | {target} | "
            f"{row.failed} | {row.throttled} | {row.over_limit} | {row.peak_account} | {row.peak_organization} | "
            f"{row.requests} | {row.calls.get('ListRegions', 0)} | {row.calls.get('GetRegionOptStatus', 0)} | "
            f"{row.reads_per_request:.2f} | {_seen(row)} |"
        )
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
