"""The contacts benchmark still runs: a small organization, fast, with no timing asserted."""

from __future__ import annotations

from typing import Any

from benchmarks.contacts_benchmark import (
    DEFAULT_LATENCY_MS,
    DELETE,
    GET,
    PUT,
    benchmark,
    outside_consumer,
    quota_floor,
    shared_quota,
)

OPTIONS: dict[str, Any] = {
    "speed": 50.0,
    "latency": (DEFAULT_LATENCY_MS[0] / 1000, DEFAULT_LATENCY_MS[1] / 1000),
    "seed": 0,
}


def test_first_apply_converges_and_a_rerun_writes_nothing() -> None:
    # 50 simulated seconds per real second: about 2 s for both runs, and the service's spare burst
    # still covers ~30 ms of host stall, so a busy CI machine does not turn into throttling.
    first, rerun = benchmark(100, speed=50)

    assert (first.failed, first.throttled) == (0, 0)
    assert first.calls == {GET: 300, PUT: 300, DELETE: 0}
    assert (rerun.failed, rerun.throttled) == (0, 0)
    assert rerun.unchanged == 100
    assert rerun.writes == 0
    assert rerun.calls == {GET: 300, PUT: 0, DELETE: 0}


def test_quota_floor_is_the_slowest_operation_after_its_burst() -> None:
    assert quota_floor({GET: 15, PUT: 8, DELETE: 6}) == 0
    assert quota_floor({GET: 3_000, PUT: 3_000}) == (3_000 - 8) / 5
    assert quota_floor({GET: 115, DELETE: 7}) == 10


def test_contention_scenarios_run_and_lose_no_account() -> None:
    # Small and fast; no timing asserted. Under contention the service does throttle, and still
    # no account fails and every event's account gets its contacts.
    quarter = outside_consumer("quarter left", 20, dict.fromkeys((GET, PUT, DELETE), 0.25), concurrency=8, **OPTIONS)
    assert quarter.failed == 0
    assert quarter.throttled > 0
    assert quarter.calls[PUT] == 60

    shared = shared_quota(30, 5, concurrency=8, **OPTIONS)
    assert shared.failed == 0
    assert len(shared.event_latencies) == 5
    assert shared.events_redelivered == 0
