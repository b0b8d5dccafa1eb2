"""The simulated clock: the runtime's seam, deterministic pacing, threads, and driving it from a test."""

from __future__ import annotations

import threading
import time

import pytest

from org_bootstrap.engine import clock as clocks
from org_bootstrap.engine.pacing import RateLimits, TokenBucket
from org_bootstrap.engine.quotas import RegionOptLimits
from org_bootstrap.settings.regions import RegionRequests
from simulation.clock import SimulatedClock


def test_the_runtime_reads_real_time_unless_a_clock_is_installed() -> None:
    assert clocks.installed() is clocks.REAL
    assert abs(clocks.time() - time.time()) < 1
    with SimulatedClock(start=1_000.0) as clock, clocks.use(clock):
        assert clocks.monotonic() == 0.0
        assert clocks.time() == 1_000.0
        clocks.sleep(3600)
        assert clocks.monotonic() == 3600.0
        assert clocks.time() == 4_600.0
    assert clocks.installed() is clocks.REAL


def test_the_clock_drives_the_pacing_deterministically() -> None:
    # 100 calls at 5/s after the service's burst of 8: exactly (100 - 8) / 5 s, every time.
    for _ in range(3):
        with SimulatedClock() as clock, clocks.use(clock):
            bucket = TokenBucket(5, 2, initial=8)
            started = time.monotonic()
            for _ in range(100):
                bucket.acquire()
            assert clock.elapsed == pytest.approx((100 - 8) / 5, abs=1e-9)
            assert time.monotonic() - started < 5  # simulated: 18.4 s of pacing in well under that


def test_threads_sharing_a_quota_take_the_quota_floor_in_simulated_time() -> None:
    with SimulatedClock() as clock, clocks.use(clock):
        limits = RateLimits()  # the published quotas: PutAlternateContact 5/s, burst 8
        done = []

        def worker() -> None:
            for _ in range(25):
                limits.acquire("PutAlternateContact")
                done.append(clock.elapsed)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(done) == 200
    assert clock.elapsed == pytest.approx((200 - 8) / 5, rel=0.02)


def test_a_test_drives_time_by_hand_without_autojump() -> None:
    with SimulatedClock(autojump=False) as clock, clocks.use(clock):
        woke: list[float] = []

        def nap() -> None:
            clocks.sleep(10)
            woke.append(clocks.monotonic())

        sleeper = threading.Thread(target=nap)
        sleeper.start()
        time.sleep(0.05)
        clock.advance(9)
        time.sleep(0.05)
        assert woke == []  # not due yet
        clock.advance(1)
        sleeper.join(timeout=5)
        assert woke == [10.0]


def test_run_until_idle_waits_for_every_sleeper() -> None:
    with SimulatedClock() as clock, clocks.use(clock):
        slept: list[tuple[float, float]] = []

        def nap(seconds: float) -> None:
            start = clocks.monotonic()
            clocks.sleep(seconds)
            slept.append((seconds, clocks.monotonic() - start))

        threads = [threading.Thread(target=nap, args=(seconds,)) for seconds in (5, 60, 300)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        clock.run_until_idle(timeout=10)
        assert sorted(slept) == [(5, 5), (60, 60), (300, 300)]
        assert 300 <= clock.elapsed <= 365  # each from when it started


def test_a_wait_for_a_region_slot_ends_at_the_deadline_in_simulated_time() -> None:
    with SimulatedClock() as clock, clocks.use(clock):
        requests = RegionRequests(RegionOptLimits(per_account=1, per_organization=50))
        assert requests.reserve("123456789012", until=0)
        started = time.monotonic()
        assert not requests.reserve("123456789012", until=600.0)  # the one slot stays taken
        assert clock.elapsed == pytest.approx(600.0)
        assert time.monotonic() - started < 5
