"""The import benchmark reads every account, each value as the fake API holds it (a small run,
with no timing asserted: the simulated clock follows the host's; the figures come from the script)."""

from __future__ import annotations

from benchmarks.import_benchmark import floor_seconds, run
from benchmarks.settings_benchmark import SETTINGS_QUOTAS


def test_every_account_is_read_right_with_and_without_throttling() -> None:
    for left in (1.0, 0.5):
        row = run("benchmark", 40, left, 50.0)
        assert (row.read, row.wrong) == (40, 0), row
        assert row.seconds >= 0.7 * row.floor, row  # no faster than the quotas allow (less the bursts)
    assert floor_seconds(10_000, SETTINGS_QUOTAS) == 3000.0  # GetAlternateContact: 3 types at 10/s
