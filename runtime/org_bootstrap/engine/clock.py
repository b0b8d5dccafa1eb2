"""The one place the runtime reads time and waits: real time in Lambda, a simulated clock locally.

Pacing (:mod:`org_bootstrap.engine.pacing`), jobs and their deadlines
(:mod:`org_bootstrap.engine.jobs`, :mod:`org_bootstrap.engine.continuation`), leases, and the
waits for Region request slots (:mod:`org_bootstrap.settings.regions`) read time through the
functions below, which ask the installed :class:`Clock`. Nothing installs one in Lambda, so there
they are ``time.monotonic``, ``time.time`` and ``time.sleep``. The local tools and the tests
install a simulated clock (``simulation.clock.SimulatedClock``) for a block of code with
:func:`use`, so that an hour of AWS's pacing takes seconds on this machine and is still measured
as an hour. The handlers never know which one they run on.
"""

from __future__ import annotations

import contextlib
import threading
import time as _time
from collections.abc import Iterator
from typing import Protocol

__all__ = ["REAL", "Clock", "RealClock", "installed", "monotonic", "notify_all", "sleep", "time", "use", "wait"]


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: deadlines, pacing."""

    def time(self) -> float:
        """Seconds since the epoch: what is stored (a job's start, a lease's end)."""

    def sleep(self, seconds: float) -> None: ...

    def wait(self, condition: threading.Condition, timeout: float) -> None:
        """Wait on ``condition`` (held by the caller) for a notification, or ``timeout`` seconds."""

    def notify_all(self, condition: threading.Condition) -> None:
        """Wake every thread waiting on ``condition`` (held by the caller) in :meth:`wait`."""


class RealClock:
    """The machine's clock: what Lambda runs on."""

    def monotonic(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()

    def sleep(self, seconds: float) -> None:
        _time.sleep(max(0.0, seconds))

    def wait(self, condition: threading.Condition, timeout: float) -> None:
        condition.wait(timeout=max(0.0, timeout))

    def notify_all(self, condition: threading.Condition) -> None:
        condition.notify_all()


REAL = RealClock()
_installed: Clock = REAL


def installed() -> Clock:
    return _installed


@contextlib.contextmanager
def use(clock: Clock) -> Iterator[Clock]:
    """Every read of time and every wait in the runtime goes to ``clock`` inside the block."""
    global _installed
    previous, _installed = _installed, clock
    try:
        yield clock
    finally:
        _installed = previous


def monotonic() -> float:
    return _installed.monotonic()


def time() -> float:
    return _installed.time()


def sleep(seconds: float) -> None:
    _installed.sleep(seconds)


def wait(condition: threading.Condition, timeout: float) -> None:
    _installed.wait(condition, timeout)


def notify_all(condition: threading.Condition) -> None:
    _installed.notify_all(condition)
