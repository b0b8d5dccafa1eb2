"""Client-side rate limiting around the Account Management API's published quotas.

Each calling account gets, per operation, a token bucket whose rate adapts to what the service
accepts: additive increase while calls succeed, multiplicative decrease when one is throttled
(AIMD), never above the published quota and never below a small floor. Calls wait for a token
before they leave, so an uncontended apply runs at the quota instead of bouncing off it, and a
quota shared with other callers (the app's other handlers in the same account, or any other tool)
is shared instead of hammered.

Why AIMD: when several senders share one capacity and each sees whether its calls were refused,
additive increase with multiplicative decrease is the linear control that converges to full use
of the capacity *and* to equal shares, from any starting rates (D.-M. Chiu and R. Jain, "Analysis
of the Increase and Decrease Algorithms for Congestion Avoidance in Computer Networks", Computer
Networks and ISDN Systems 17(1), 1989, pp. 1-14): each increase adds the same amount to every
sender's rate, which keeps their difference, and each decrease scales them all, which shrinks it,
so the rates move toward the fair line while their sum oscillates around the capacity. The deploy
job, the drift job and the account-events handler each run this limiter in their own process and
converge on shares of the one per-account quota without talking to each other; a handler that
needs little (a new account's six calls) is never held below what it asks for.
https://docs.aws.amazon.com/accounts/latest/reference/quotas.html
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

from org_bootstrap.aws.partitions import partition_here
from org_bootstrap.engine import clock as clocks
from org_bootstrap.engine.quotas import Quota
from org_bootstrap.engine.registry import account_quotas

__all__ = ["ACCOUNT_QUOTAS", "Adaptation", "Quota", "RateLimits", "TokenBucket"]


# Published per-account quotas (requests per second, burst) of the partition this code runs in,
# as the settings declare them.
ACCOUNT_QUOTAS: Mapping[str, Quota] = account_quotas(partition_here())


@dataclass(frozen=True)
class Adaptation:
    """How a rate moves, in fractions of the operation's published quota.

    ``increase``: added per second of calls that succeed (from half the quota back to all of it
    in 25 s; faster recovery costs more throttles in every cycle: with a quarter of the quota left,
    0.05 had 22% of the calls throttled, 0.02 has 12%, both using all the capacity left).
    ``decrease``: the factor applied on a throttle, at most once per ``hold`` seconds,
    because the calls already in flight were sent at the old rate and answer within about a
    second: counting their throttles too would cut the rate for one congestion signal many times.
    ``floor``: the least rate, so a long throttling storm is probed now and then, never hammered.
    """

    increase: float = 0.02
    decrease: float = 0.7
    hold: float = 1.0
    floor: float = 0.02


class TokenBucket:
    """A thread-safe token bucket with an adaptive rate; ``acquire`` blocks until a token is free.

    The rate starts at, and never exceeds, ``per_second`` (the published quota). The bucket holds
    at most ``burst`` tokens; it starts with ``initial`` (default ``burst``) tokens, which may be more.
    """

    def __init__(
        self,
        per_second: float,
        burst: int,
        *,
        initial: int | None = None,
        adaptation: Adaptation | None = None,
        clock: Callable[[], float] = clocks.monotonic,
        sleep: Callable[[float], None] = clocks.sleep,
    ) -> None:
        self.quota = float(per_second)
        self.per_second = float(per_second)
        self.capacity = float(burst)
        self.adaptation = adaptation or Adaptation()
        self._tokens = float(burst if initial is None else max(burst, initial))
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._rate_changed = self._updated
        self._decreased = -float("inf")
        self._lock = threading.Lock()
        self.calls = 0  # tokens taken: calls sent
        self.throttles = 0  # calls the service throttled

    def acquire(self, until: float | None = None) -> bool:
        """Take a token, waiting for it; False (and nothing taken) if it would come after ``until``."""
        while True:
            with self._lock:
                now = self._clock()
                self._refill(now)
                if self._tokens >= 1 - 1e-9:  # rounding must not leave a sleep too short to advance the clock
                    self._tokens -= 1
                    self.calls += 1
                    return True
                wait = (1 - self._tokens) / self.per_second
                if until is not None and now + wait > until:
                    return False
            self._sleep(wait)

    def _refill(self, now: float) -> None:
        if self._tokens < self.capacity:  # a start above capacity (``initial``) is spent, never refilled
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.per_second)
        self._updated = now

    def succeeded(self) -> None:
        """Additive increase: the rate grows with the time that passed since it last changed."""
        with self._lock:
            now = self._clock()
            if self.per_second < self.quota:
                self._refill(now)  # tokens earned so far count at the old rate
                step = self.adaptation.increase * self.quota * (now - self._rate_changed)
                self.per_second = min(self.quota, self.per_second + step)
            self._rate_changed = now

    def throttled(self) -> None:
        """Multiplicative decrease, once per congestion signal (see :class:`Adaptation`)."""
        with self._lock:
            self.throttles += 1
            now = self._clock()
            if now - self._decreased < self.adaptation.hold:
                return
            self._refill(now)
            floor = self.adaptation.floor * self.quota
            self.per_second = max(floor, self.per_second * self.adaptation.decrease)
            self._tokens = min(self._tokens, 0.0)  # the next call waits a full interval at the new rate
            self._decreased = self._rate_changed = now


class RateLimits:
    """One adaptive bucket per operation. The client's burst stays below the service's, so that
    jitter between client and service never adds up to a throttle.

    The burst is 2, not 1: a thread's sleep always ends a little late (the GIL, a busy or
    CPU-capped host), and a bucket that holds one token drops what it would have refilled in the
    meantime, so each late wake-up came off the rate for good. One spare token carries it over to
    the next call (benchmarks/contacts_benchmark.py: a re-run over 1,000 accounts took 1.18 times
    the quota floor with a burst of 1, 1.01 with 2).

    A new bucket starts with the service's published burst, as the service's own bucket starts
    full when nobody has called for a while: a short job (100 accounts: 300 reads in 30 s) would
    otherwise leave it unused (1.053 times the floor, against 1.05). When another caller has
    already spent it, the first calls are throttled and retried, and the rate backs off as for any
    throttle; after that first burst the bucket holds ``burst`` again.
    """

    def __init__(
        self,
        quotas: Mapping[str, Quota] = ACCOUNT_QUOTAS,
        *,
        burst: int = 2,
        adaptation: Adaptation | None = None,
        clock: Callable[[], float] = clocks.monotonic,
        sleep: Callable[[float], None] = clocks.sleep,
    ) -> None:
        self.clock = clock
        self._make = lambda quota: TokenBucket(
            quota.per_second,
            min(burst, quota.burst),
            initial=quota.burst,
            adaptation=adaptation,
            clock=clock,
            sleep=sleep,
        )
        self._buckets = {operation: self._make(quota) for operation, quota in quotas.items()}
        self._adding = threading.Lock()

    def _bucket(self, operation: str) -> TokenBucket:
        """The operation's bucket; one the given quotas leave out runs at its published quota."""
        found = self._buckets.get(operation)
        if found is None:
            with self._adding:
                found = self._buckets.setdefault(operation, self._make(ACCOUNT_QUOTAS[operation]))
        return found

    def acquire(self, operation: str, until: float | None = None) -> bool:
        """Wait for ``operation``'s next token; False if it would come after ``until`` (by ``clock``)."""
        return self._bucket(operation).acquire(until)

    def succeeded(self, operation: str) -> None:
        self._bucket(operation).succeeded()

    def throttled(self, operation: str) -> None:
        self._bucket(operation).throttled()

    def rate(self, operation: str) -> float:
        """The current rate (calls per second) of ``operation``."""
        return self._bucket(operation).per_second

    def usage(self) -> dict[str, tuple[int, float]]:
        """Each operation called so far: its throttled calls, and its current rate (calls per second)."""
        return {
            operation: (bucket.throttles, bucket.per_second)
            for operation, bucket in list(self._buckets.items())
            if bucket.calls
        }


@cache
def shared_limits(calling_account_id: str) -> RateLimits:
    """The one set of limits for a calling account in this process, shared by all its threads and
    clients: the quota is the calling account's, whoever in the process spends it."""
    return RateLimits()
