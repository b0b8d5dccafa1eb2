"""Client-side pacing: never above the quota, and late wake-ups do not eat into the rate."""

from __future__ import annotations

from org_bootstrap.pacing import ACCOUNT_QUOTAS, RateLimits, TokenBucket


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
