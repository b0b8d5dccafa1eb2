"""Simulated time for the local tools: a run takes seconds here and says what AWS would take.

Every command that opens the simulated world runs it, the handlers included, on a
:class:`simulation.clock.SimulatedClock` installed as the runtime's clock
(:mod:`org_bootstrap.engine.clock`): the pacing at AWS's published quotas, a Region's enabling
(:data:`REGION_OPT_SECONDS`), the Provider framework's is-complete polls, the continuation
workflow's waits, Lambda's remaining time, leases and deadlines all read it. Time stands still
while the simulation computes and jumps to the next wake-up when everything waits, so the clock's
elapsed time is what the same calls take at AWS's quotas. ``--real-time`` runs on the machine's
clock instead, pacing included (and Regions enable at once, as before).

The simulated wall clock starts where the last run's ended, or now if that is later, so that the
times stored in the state directory (a job's start, a lease) never lie in the future.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import boto3

from org_bootstrap.engine import clock as clocks
from simulation.clock import SimulatedClock

# How long a Region stays ENABLING (or DISABLING) in the simulated organization. AWS documents
# "minutes to hours"; five minutes is what enabling one usually takes.
REGION_OPT_SECONDS = 300.0
# In real time a Region enables at the first read after the request (the wait would only be slept).
REAL_TIME_REGION_OPT_SECONDS = 0.0


@dataclass
class Timing:
    """How long a run took here (wall) and on the runtime's clock (AWS's time when simulated)."""

    clock: clocks.Clock
    simulated: bool
    wall_started: float
    clock_started: float

    @property
    def wall_seconds(self) -> float:
        return time.monotonic() - self.wall_started

    @property
    def aws_seconds(self) -> float:
        return self.clock.monotonic() - self.clock_started

    def summary(self) -> str:
        """``took 4.2 s here; at AWS's published quotas: 3 min 12 s``."""
        if not self.simulated:
            return f"took {duration(self.wall_seconds)} in real time (--real-time: paced as at AWS)"
        return f"took {duration(self.wall_seconds)} here; at AWS's published quotas: {duration(self.aws_seconds)}"


@contextlib.contextmanager
def running(session: boto3.Session, *, real_time: bool, resume_at: float = 0.0) -> Iterator[Timing]:
    """Install the clock for the block (a simulated one unless ``real_time``) and hook it to
    ``session``'s calls: the simulated time stands still while a call is answered."""
    if real_time:
        yield Timing(clocks.REAL, False, time.monotonic(), clocks.REAL.monotonic())
        return
    clock = SimulatedClock(start=max(time.time(), resume_at))
    hooks = [
        ("before-call", lambda **_: clock.begin_call()),
        ("after-call", lambda **_: clock.end_call()),
        ("after-call-error", lambda **_: clock.end_call()),
    ]
    for event, hook in hooks:
        session.events.register(event, hook)
    try:
        # botocore's own retry delays (Organizations' throttles) wait on the clock too
        with clocks.use(clock), mock.patch("botocore.endpoint.time", _BotocoreTime()):
            yield Timing(clock, True, time.monotonic(), clock.monotonic())
    finally:
        for event, hook in hooks:
            session.events.unregister(event, hook)
        clock.close()


class _BotocoreTime:
    """What ``botocore.endpoint`` reads of the ``time`` module, with its sleep on the runtime's clock."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        clocks.sleep(seconds)


def duration(seconds: float) -> str:
    """``4.2 s``, ``3 min 12 s``, ``2 h 5 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
