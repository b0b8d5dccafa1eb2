"""The settings benchmark runs the real engine within AWS's Region request limits (a small run;
the figures come from running the script)."""

from __future__ import annotations

from benchmarks.settings_benchmark import ENABLING_SECONDS, PER_ACCOUNT, PER_ORGANIZATION, run, scenarios


def test_regions_and_all_three_settings_stay_within_the_limits_and_finish() -> None:
    for name, specs, floor, speed in scenarios(30)[1:]:
        row = run(name, 30, specs, floor, speed)
        assert row.failed == 0 and row.over_limit == 0, row
        assert row.peak_account <= PER_ACCOUNT and row.peak_organization == PER_ORGANIZATION, row
        # 60 Regions, 50 at a time: two rounds of 5 simulated minutes (the floor's formula is for many rounds)
        assert row.seconds < 1.2 * 2 * ENABLING_SECONDS, row
