"""Simulated time for the simulated organization, its handlers and the local tools.

:class:`SimulatedClock` implements the runtime's clock (:mod:`org_bootstrap.engine.clock`): installed
with ``org_bootstrap.engine.clock.use(clock)``, every read of time and every wait of the pacing, the
jobs, their deadlines and leases, the Region opt-in requests (``ApiLog.clock``) and the local
CloudFormation's polls goes to it. Time stands still while anything runs and jumps to the next
wake-up once every thread has nothing to do but wait: a job that AWS's quotas pace over an hour
runs as fast as this machine computes it, and ``elapsed`` says it took an hour.

"Nothing to do but wait": every thread that has touched the clock is, for the clock, sleeping on
it, inside an AWS call (:meth:`calling`, hooked to botocore's ``before-call`` and ``after-call`` by
the local tools: time stands still while the simulated service answers), or running. A thread
runs from when it wakes up or a call returns until it sleeps or calls again; since threads also
block on things the clock does not see (a thread pool's queue, a semaphore, a future), one that
has not touched the clock for ``idle`` seconds of real time (``far_idle`` before a jump longer
than ``step``) is taken to be blocked there. The time moves when no thread runs or calls.

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

# Of real time since a running thread last touched the clock, after which it is taken to be
# blocked elsewhere (a thread pool's queue, a future): longer than any stretch of computing between
# two calls, short enough that the few such blocks in a run cost little.
IDLE_SECONDS = 0.02
# Before a jump further than STEP_SECONDS (simulated), the quiet must last this long: such a jump
# (a pause of a second, a poll's interval) taken while threads are still being started would
# cost them that time. A jump this short costs nothing: a pacing bucket holding 2 tokens refills
# in 0.2 s at 10 calls a second, so a thread that was about to take a token still finds it.
FAR_IDLE_SECONDS = 0.1
STEP_SECONDS = 0.2


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

    def __init__(
        self,
        start: float | None = None,
        *,
        autojump: bool = True,
        idle: float = IDLE_SECONDS,
        far_idle: float = FAR_IDLE_SECONDS,
        step: float = STEP_SECONDS,
    ) -> None:
        self.epoch = time.time() if start is None else start
        self.idle, self.far_idle, self.step = idle, far_idle, step
        self.jumps = 0  # times the driver moved the time
        self._now = 0.0
        self._lock = threading.Condition(threading.Lock())
        self._sleepers: list[_Sleeper] = []
        self._order = itertools.count()
        self._waking = 0  # woken by the clock, not yet running
        self._running: dict[int, float] = {}  # thread -> real time it started running
        self._calling: set[int] = set()  # threads inside an AWS call
        self._watching = 0  # threads in run_until_idle
        self._closed = False
        self._driver: threading.Thread | None = None
        if autojump:
            self._driver = threading.Thread(target=self._drive, name="simulated-clock", daemon=True)
            self._driver.start()

    # -- the runtime's clock ----------------------------------------------------------------

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self.epoch + self._now

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        event = threading.Event()
        with self._lock:
            self._stop_running()
            heapq.heappush(self._sleepers, _Sleeper(self._now + seconds, next(self._order), event=event))
            self._may_move()
        event.wait()
        with self._lock:
            self._waking -= 1
            self._run()

    def wait(self, condition: threading.Condition, timeout: float) -> None:
        """Wait on ``condition`` (held by the caller) until notified or ``timeout`` simulated seconds."""
        with self._lock:
            self._stop_running()
            sleeper = _Sleeper(self._now + max(0.0, timeout), next(self._order), condition=condition)
            heapq.heappush(self._sleepers, sleeper)
            self._may_move()
        condition.wait()  # releases it; notified by another thread, or by the clock when due
        with self._lock:
            if sleeper.cancelled:  # woken by the clock, or by notify_all
                self._waking -= 1
            else:  # notified before it was due: it no longer waits on the clock
                sleeper.cancelled = True
            self._run()

    def notify_all(self, condition: threading.Condition) -> None:
        """Wake the threads waiting on ``condition`` (held by the caller): they count as waking, so
        the time does not move before they have run."""
        with self._lock:
            for sleeper in self._sleepers:
                if sleeper.condition is condition and not sleeper.cancelled:
                    sleeper.cancelled = True
                    self._waking += 1
        condition.notify_all()

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
            self._stop_running()
            self._calling.add(threading.get_ident())

    def end_call(self) -> None:
        with self._lock:
            self._calling.discard(threading.get_ident())
            self._run()

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

    def _run(self) -> None:
        """With the lock held: the calling thread runs (until it sleeps, calls, or goes quiet)."""
        self._running[threading.get_ident()] = time.monotonic()
        if self._sleepers or self._watching:  # the driver waits for it: it sets its own wait from now on
            self._lock.notify_all()

    def _stop_running(self) -> None:
        """With the lock held: the calling thread no longer runs, nor calls."""
        me = threading.get_ident()
        self._calling.discard(me)
        if self._running.pop(me, None) is not None:
            self._may_move()

    def _may_move(self) -> None:
        """With the lock held: wake the driver (and :meth:`run_until_idle`) when the time could move."""
        if not self._waking and not self._calling and (self._sleepers or self._watching):
            self._lock.notify_all()

    def _busy_for(self, jump: float) -> float | None:
        """With the lock held: None when nothing runs or calls (before a jump of ``jump`` simulated
        seconds); otherwise how long (real time) until the last running thread is taken to be
        blocked elsewhere (0: a call or a wake-up, which say when they end)."""
        if self._waking or self._calling:
            return 0.0
        now = time.monotonic()
        last = max(self._running.values(), default=-float("inf"))
        quiet_at = last + (self.idle if jump <= self.step else self.far_idle)
        if quiet_at <= now:
            if last + self.far_idle <= now:
                self._running.clear()
            return None
        return quiet_at - now

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
                busy = None if sleeper is None else self._busy_for(sleeper.wake - self._now)
                if sleeper is None or busy is not None:
                    self._lock.wait(timeout=busy or 0.05)
                    continue
                self.jumps += 1
                self._move_to(sleeper.wake)
