"""Simulated time for the simulated organization, its handlers and the local tools.

:class:`SimulatedClock` implements the runtime's clock (:mod:`org_bootstrap.engine.clock`): installed
with ``org_bootstrap.engine.clock.use(clock)``, every read of time and every wait of the pacing, the
jobs, their deadlines and leases, the Region opt-in requests (``ApiLog.clock``) and the local
CloudFormation's polls goes to it. Time stands still while anything runs and jumps to the next
wake-up once every thread has nothing to do but wait: a job that AWS's quotas pace over an hour
runs as fast as this machine computes it, and ``elapsed`` says it took an hour.

"Nothing to do but wait" is decided in three ways, because threads also block on things the clock
does not see (a thread pool's queue, a semaphore, a future): the clock does not move while a
thread is inside an AWS call (:meth:`calling`, hooked to botocore's ``before-call`` and
``after-call`` by the local tools), while a woken thread has not yet run, or until no thread has
touched the clock for ``idle`` seconds of real time.

Driving it from a test: ``autojump=False`` leaves time still until the test calls :meth:`advance`
(which wakes whatever falls due); :meth:`sleep` from the test's own thread waits in simulated
time like any other; :meth:`run_until_idle` waits (in real time) until no thread is left waiting
on the clock, or the clock has reached a given time.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

IDLE_SECONDS = 0.0005  # of real time without a touch of the clock before it jumps


@dataclass(order=True)
class _Sleeper:
    wake: float
    order: int
    event: threading.Event | None = field(default=None, compare=False)
    condition: threading.Condition | None = field(default=None, compare=False)
    cancelled: bool = field(default=False, compare=False)


class SimulatedClock:
    """A clock whose time moves only when every thread waits on it (see the module's description).

    ``start``: the first reading of :meth:`time` (seconds since the epoch; by default, now);
    :meth:`monotonic` starts at 0. Thread-safe; a daemon thread moves the time when ``autojump``.
    """

    def __init__(self, start: float | None = None, *, autojump: bool = True, idle: float = IDLE_SECONDS) -> None:
        self.epoch = time.time() if start is None else start
        self.idle = idle
        self._now = 0.0
        self._lock = threading.Condition(threading.Lock())
        self._sleepers: list[_Sleeper] = []
        self._order = itertools.count()
        self._waking = 0
        self._local = threading.local()
        self._calling = 0
        self._watching = 0  # threads in run_until_idle
        self._touched = time.monotonic()
        self._closed = False
        self._driver: threading.Thread | None = None
        if autojump:
            self._driver = threading.Thread(target=self._drive, name="simulated-clock", daemon=True)
            self._driver.start()

    # -- the runtime's clock ----------------------------------------------------------------

    def monotonic(self) -> float:
        self._touched = time.monotonic()
        return self._now

    def time(self) -> float:
        self._touched = time.monotonic()
        return self.epoch + self._now

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            self._touched = time.monotonic()
            return
        event = threading.Event()
        with self._lock:
            self._leave_call()
            sleeper = _Sleeper(self._now + seconds, next(self._order), event=event)
            heapq.heappush(self._sleepers, sleeper)
            self._lock.notify_all()
        event.wait()
        with self._lock:
            self._waking -= 1
            self._touched = time.monotonic()
            self._may_move()

    def wait(self, condition: threading.Condition, timeout: float) -> None:
        """Wait on ``condition`` (held by the caller) until notified or ``timeout`` simulated seconds."""
        with self._lock:
            self._leave_call()
            sleeper = _Sleeper(self._now + max(0.0, timeout), next(self._order), condition=condition)
            heapq.heappush(self._sleepers, sleeper)
            self._lock.notify_all()
        condition.wait()  # releases it; notified by another thread, or by the clock when due
        with self._lock:
            if sleeper.cancelled:  # woken by the clock
                self._waking -= 1
            else:  # notified before it was due: it no longer waits on the clock
                sleeper.cancelled = True
            self._touched = time.monotonic()
            self._may_move()

    # -- what a test (or the local tools) drive -----------------------------------------------

    @property
    def elapsed(self) -> float:
        """Simulated seconds since the clock started."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the time forward by ``seconds``, waking every sleeper that falls due."""
        with self._lock:
            self._move_to(self._now + max(0.0, seconds))

    def run_until_idle(self, *, until: float | None = None, timeout: float = 60.0) -> None:
        """Wait (real time, at most ``timeout`` s) until nothing waits on the clock any more, or the
        simulated time has reached ``until`` (by :meth:`monotonic`)."""
        limit = time.monotonic() + timeout
        with self._lock:
            self._watching += 1
            try:
                while self._live() and (until is None or self._now < until):
                    if not self._lock.wait(timeout=max(0.0, limit - time.monotonic())):
                        raise TimeoutError(f"the simulated clock was still busy at {self._now:.1f} s")
            finally:
                self._watching -= 1

    @contextlib.contextmanager
    def calling(self) -> Iterator[None]:
        """The block is an AWS call: time stands still until it returns."""
        self.begin_call()
        try:
            yield
        finally:
            self.end_call()

    def begin_call(self) -> None:
        with self._lock:
            if not getattr(self._local, "in_call", False):
                self._local.in_call = True
                self._calling += 1
            self._touched = time.monotonic()

    def end_call(self) -> None:
        with self._lock:
            self._leave_call()
            self._touched = time.monotonic()
            self._may_move()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self._driver is not None:
            self._driver.join()

    def __enter__(self) -> SimulatedClock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside --------------------------------------------------------------------------------

    def _leave_call(self) -> None:
        if getattr(self._local, "in_call", False):
            self._local.in_call = False
            self._calling -= 1

    def _may_move(self) -> None:
        """With the lock held: wake the driver (and :meth:`run_until_idle`) only when the time could move now."""
        if not self._waking and not self._calling and (self._sleepers or self._watching):
            self._lock.notify_all()

    def _live(self) -> bool:
        return any(not sleeper.cancelled for sleeper in self._sleepers) or self._waking > 0

    def _next(self) -> _Sleeper | None:
        while self._sleepers and self._sleepers[0].cancelled:
            heapq.heappop(self._sleepers)
        return self._sleepers[0] if self._sleepers else None

    def _move_to(self, when: float) -> None:
        """With the lock held: set the time and wake every sleeper due by then."""
        self._now = max(self._now, when)
        due: list[_Sleeper] = []
        while (sleeper := self._next()) is not None and sleeper.wake <= self._now:
            heapq.heappop(self._sleepers)
            sleeper.cancelled = True
            self._waking += 1
            due.append(sleeper)
        for sleeper in due:
            if sleeper.event is not None:
                sleeper.event.set()
        conditions = [sleeper.condition for sleeper in due if sleeper.condition is not None]
        if conditions:
            # Notified without the clock's lock: a thread holding one of them may be asking the
            # clock for the time.
            self._lock.release()
            try:
                for condition in conditions:
                    with condition:
                        condition.notify_all()
            finally:
                self._lock.acquire()
        self._lock.notify_all()

    def _drive(self) -> None:
        with self._lock:
            while not self._closed:
                sleeper = self._next()
                if sleeper is None or self._waking or self._calling:
                    self._lock.wait(timeout=0.05)
                    continue
                quiet = time.monotonic() - self._touched
                if quiet < self.idle:
                    self._lock.wait(timeout=self.idle - quiet)
                    continue
                self._move_to(sleeper.wake)
