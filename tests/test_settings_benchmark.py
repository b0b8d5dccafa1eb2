"""The settings benchmark runs the real engine within AWS's Region request limits (a small run,
with no timing asserted: the simulated clock follows the host's, and a busy CI machine stretches
it; the figures come from running the script)."""

from __future__ import annotations

from benchmarks.settings_benchmark import ENABLING_SECONDS, PER_ACCOUNT, PER_ORGANIZATION, run, scenarios


def test_regions_and_all_three_settings_stay_within_the_limits_and_finish() -> None:
    for name, specs, floor, speed in scenarios(30)[1:]:
        row = run(name, 30, specs, floor, speed)
        assert row.failed == 0 and row.over_limit == 0, row
        assert row.peak_account <= PER_ACCOUNT and row.peak_organization == PER_ORGANIZATION, row
        # 60 Regions, 50 at a time: at least two rounds of the simulated time a Region takes to enable
        assert row.seconds >= 2 * ENABLING_SECONDS, row
