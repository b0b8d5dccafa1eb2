"""Following Region requests costs few reads and sees each Region get there as soon as reading every
15 s would: the requests of a job are read when they are expected to have got there (learnt from
the job's own requests), and an account's requests together with one ListRegions."""

from __future__ import annotations

from collections import Counter
from typing import Any

from org_bootstrap.engine.quotas import RegionOptLimits
from org_bootstrap.settings.regions import GET, LIST, RegionRequests, Request
from org_bootstrap.settings.regions.spec import ENABLED

FOLLOW_EVERY = 15.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Regions:
    """AccountCalls with Regions that get to ENABLED ``took[(account, region)]`` after they start."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.own_account_id = "111111111111"
        self.deadline: float | None = None
        self.region_requests: Any = None
        self.started: dict[tuple[str, str], float] = {}
        self.took: dict[tuple[str, str], float] = {}
        self.calls: Counter[str] = Counter()

    def status(self, account: str, region: str) -> str:
        key = (account, region)
        return "ENABLED" if self.clock() >= self.started[key] + self.took[key] else "ENABLING"

    def call(self, operation: str, account_id: str, **parameters: Any) -> dict[str, Any]:
        self.calls[operation] += 1
        if operation == GET:
            return {"RegionOptStatus": self.status(account_id, parameters["RegionName"])}
        assert operation == LIST
        mine = [region for account, region in self.started if account == account_id]
        return {"Regions": [{"RegionName": r, "RegionOptStatus": self.status(account_id, r)} for r in mine]}


def follow_all(requests: RegionRequests, api: Regions, clock: Clock) -> dict[tuple[str, str], float]:
    """Follow every second until all have got there; when each was seen there."""
    seen: dict[tuple[str, str], float] = {}
    while requests.in_flight():
        clock.now += 1.0
        for request, _ in requests.follow(api, until=float("inf")):
            seen[request.account_id, request.region] = clock.now
    return seen


def start(requests: RegionRequests, api: Regions, clock: Clock, account: str, region: str, took: float) -> None:
    assert requests.reserve(account, until=clock.now)
    api.started[account, region], api.took[account, region] = clock.now, took
    requests.started(account, region, ENABLED)


def test_a_wave_of_requests_costs_a_few_reads_each_and_is_seen_as_soon_as_polling_would() -> None:
    clock = Clock()
    api = Regions(clock)
    requests = RegionRequests(RegionOptLimits(6, 50), clock=clock, follow_every=FOLLOW_EVERY)
    accounts = [f"{200000000000 + i}" for i in range(25)]
    for account in accounts:  # 50 requests, one a second (EnableRegion's quota), 300 s each
        for region in ("ap-east-1", "me-central-1"):
            start(requests, api, clock, account, region, 300.0)
            clock.now += 1.0

    seen = follow_all(requests, api, clock)

    lateness = [seen[key] - (api.started[key] + api.took[key]) for key in seen]
    assert len(seen) == 50 and max(lateness) <= FOLLOW_EVERY + 1
    reads = api.calls[GET] + api.calls[LIST]
    assert reads / 50 <= 5, api.calls  # reading each every 15 s: 20 a request
    assert api.calls[LIST] > 0  # an account's two requests, read together
    assert requests.expected is not None and 285 <= requests.expected <= 300

    # The next wave, knowing how long requests take: about one read a request.
    api.calls.clear()
    for account in accounts[:10]:
        for region in ("eu-south-2", "il-central-1"):
            start(requests, api, clock, account, region, 300.0)
    seen = follow_all(requests, api, clock)
    assert len(seen) == 20
    assert api.calls[GET] + api.calls[LIST] <= 2 * 10, api.calls  # two ListRegions per account at most
    assert max(seen[key] - (api.started[key] + api.took[key]) for key in seen) <= FOLLOW_EVERY + 1


def test_a_request_that_takes_hours_is_read_ever_less_often() -> None:
    clock = Clock()
    api = Regions(clock)
    requests = RegionRequests(RegionOptLimits(6, 50), clock=clock, follow_every=FOLLOW_EVERY)
    start(requests, api, clock, "200000000001", "ap-east-1", 4 * 3600.0)
    seen = follow_all(requests, api, clock)
    assert seen[("200000000001", "ap-east-1")] - 4 * 3600.0 <= 0.05 * 4 * 3600.0 + 1
    assert api.calls[GET] <= 100  # every 15 s: 960


def test_what_was_learnt_is_kept_between_invocations() -> None:
    clock = Clock()
    requests = RegionRequests(RegionOptLimits(6, 50), clock=clock, expected=290.0)
    request = Request("200000000001", "ap-east-1", ENABLED, since=10.0, checked=10.0)
    assert requests.due(request, probe=True) == 300.0  # read first when the others got there
    request.checked = 300.0
    assert requests.due(request, probe=False) == 300.0 + FOLLOW_EVERY
