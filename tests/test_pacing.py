"""Client-side pacing: never above the quota, and late wake-ups do not eat into the rate."""

from __future__ import annotations

from org_bootstrap.engine.pacing import ACCOUNT_QUOTAS, Quota, RateLimits, TokenBucket
from simulation.organization import ServiceBucket


class LateClock:
    """A simulated clock whose sleeps always end ``late`` seconds after they should."""

    def __init__(self, late: float = 0.0) -> None:
        self.now = 0.0
        self.late = late

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self.late


def time_for(calls: int, *, per_second: float, burst: int, late: float) -> float:
    clock = LateClock(late)
    bucket = TokenBucket(per_second, burst, clock=clock, sleep=clock.sleep)
    for _ in range(calls):
        bucket.acquire()
    return clock.now


def test_never_faster_than_the_rate_after_the_burst() -> None:
    assert time_for(101, per_second=10, burst=1, late=0.0) >= 10.0 - 1e-9
    assert time_for(102, per_second=10, burst=2, late=0.0) >= 10.0 - 1e-9


def test_a_spare_token_absorbs_late_wake_ups() -> None:
    # 1,001 calls at 10/s with every sleep ending 20 ms late (measured by the benchmark):
    # a one-token bucket loses each late interval for good, a two-token bucket carries it over.
    assert time_for(1001, per_second=10, burst=1, late=0.02) > 119
    assert time_for(1001, per_second=10, burst=2, late=0.02) < 101


def test_client_burst_stays_below_every_published_burst() -> None:
    limits = RateLimits()
    for operation, quota in ACCOUNT_QUOTAS.items():
        bucket = limits._buckets[operation]
        assert bucket.per_second == quota.per_second
        # below the service's burst; a burst of 1 (EnableRegion, DisableRegion) allows no less than 1
        assert bucket.capacity < quota.burst or bucket.capacity == quota.burst == 1


def test_a_new_bucket_spends_the_services_burst_once_then_holds_its_own() -> None:
    """A fresh set of limits starts with the published burst (the service's bucket starts full), so
    a short job is not slower than the quota allows; refilled, it holds only the small burst."""
    clock = LateClock()
    bucket = RateLimits(clock=clock, sleep=clock.sleep)._bucket("GetAlternateContact")  # 10/s, burst 15
    for _ in range(15):
        bucket.acquire()
    assert clock.now == 0.0  # the service's 15 at once
    for _ in range(10):
        bucket.acquire()
    assert abs(clock.now - 1.0) < 1e-6  # then the rate
    clock.now += 60  # idle: refilled to the client's own burst only
    for _ in range(2):
        bucket.acquire()
    assert abs(clock.now - 61.0) < 1e-6
    bucket.acquire()
    assert clock.now > 61.0


# -- adaptive rate (AIMD) ------------------------------------------------------------------------


class Service:
    """The service's own bucket (the simulated organization's) at ``rate`` per second (burst
    ``burst``), on the test's clock."""

    def __init__(self, clock: LateClock, rate: float, burst: int) -> None:
        self.clock = clock
        self.bucket = ServiceBucket(Quota(rate, burst), clock())

    def accepts(self) -> bool:
        return self.bucket.take(self.clock())


def test_the_services_bucket_allows_its_burst_then_its_rate_and_refills_no_further() -> None:
    bucket = ServiceBucket(Quota(5, 8), 0.0)
    assert [bucket.take(0.0) for _ in range(9)] == [True] * 8 + [False]
    assert not bucket.take(0.1)  # half a token refilled
    assert bucket.take(0.3)  # one and a half: one call
    assert not bucket.take(0.3)
    assert [bucket.take(100.0) for _ in range(9)] == [True] * 8 + [False]  # idle for long: back to the burst, no more


def call_for(seconds: float, bucket: TokenBucket, service: Service, clock: LateClock) -> tuple[int, int]:
    """Calls through ``bucket`` for ``seconds`` of simulated time, each 50 ms long: (accepted, throttled)."""
    accepted = throttled = 0
    end = clock() + seconds
    while clock() < end:
        bucket.acquire()
        ok = service.accepts()
        clock.now += 0.05
        if ok:
            accepted += 1
            bucket.succeeded()
        else:
            throttled += 1
            bucket.throttled()
    return accepted, throttled


def test_the_rate_slows_on_throttles_to_the_capacity_left_and_recovers_when_they_stop() -> None:
    clock = LateClock()
    bucket = TokenBucket(5, 2, clock=clock, sleep=clock.sleep)
    busy = Service(clock, rate=1.25, burst=2)  # a quarter of the quota left

    call_for(30, bucket, busy, clock)  # settle
    accepted, throttled = call_for(300, bucket, busy, clock)

    assert throttled > 0
    # It backs off instead of hammering: a client that kept to the quota would see 75% refused.
    assert throttled < 0.2 * (accepted + throttled)
    assert accepted >= 0.85 * 1.25 * 300  # and still uses most of what is left
    assert 0.5 < bucket.per_second < 2.0  # around 1.25, far below the quota of 5

    free = Service(clock, rate=5, burst=8)  # the other caller is gone
    accepted, throttled = call_for(60, bucket, free, clock)
    assert throttled == 0
    assert bucket.per_second == 5  # back at the quota, never above it
    assert accepted >= 0.8 * 5 * 60


def test_one_congestion_signal_cuts_the_rate_once_and_never_below_the_floor() -> None:
    clock = LateClock()
    bucket = TokenBucket(10, 2, clock=clock, sleep=clock.sleep)
    for _ in range(8):  # the calls that were in flight together all come back throttled
        bucket.throttled()
    assert bucket.per_second == 10 * bucket.adaptation.decrease

    for _ in range(1000):  # a storm that refuses everything, for a long time
        clock.now += bucket.adaptation.hold
        bucket.throttled()
    assert bucket.per_second == 10 * bucket.adaptation.floor


def test_processes_sharing_one_quota_converge_to_fair_shares() -> None:
    # Chiu and Jain (1989): additive increase, multiplicative decrease moves any starting rates
    # toward equal shares whose sum is the capacity.
    clock = LateClock()
    service = Service(clock, rate=5, burst=8)
    buckets = [TokenBucket(5, 2, clock=clock, sleep=clock.sleep) for _ in range(3)]
    buckets[0].per_second = 0.2  # one process starts far below the others
    accepted = [0, 0, 0]
    due = [0.0, 0.0, 0.0]  # when each process's next token is free
    for _ in range(30_000):
        index = min(range(3), key=lambda i: due[i])
        clock.now = max(clock.now, due[index])
        bucket = buckets[index]
        bucket.acquire()
        if service.accepts():
            bucket.succeeded()
            accepted[index] += 1 if clock.now > 300 else 0
        else:
            bucket.throttled()
        due[index] = clock.now + 1 / bucket.per_second
    assert clock.now > 600
    total = sum(accepted)
    assert total >= 0.85 * 5 * (clock.now - 300)
    assert all(share > 0.25 * total for share in accepted), accepted
