"""boto3 clients with one retry policy, for every handler.

Every client :func:`client` makes carries one ``needs-retry`` handler (botocore's event for "should
this attempt be retried, and after how long"), so every call, paginated reads included, is
retried the same way: transient errors (5xx, timeouts, dropped connections), errors the service
model marks retryable, throttling, and Organizations' ``ConcurrentModificationException``, with
full-jitter exponential backoff (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).

botocore's own retries are switched off (one attempt): its standard mode shares one retry quota
among all threads of a client, which drains under sustained throttling, after which every throttle
fails at once. Throttles of the paced services (:data:`PACED_SERVICES`) are not retried here but
returned to the caller, whose adaptive pacing (:mod:`org_bootstrap.engine.pacing`) must see each one to
slow down, and which retries the call itself.

A caller with a deadline sets it with :func:`retries_until`: no retry is made whose back-off would
end after it, and the last error is raised instead, for the caller to hand its work back unfinished
rather than run past its timeout. Under a deadline, throttles and ``ConcurrentModificationException``
(contention, which always clears) are retried until it, not only :data:`MAX_ATTEMPTS` times: a
throttling storm on Organizations that outlasts ten attempts must not fail a deploy, still less the
rollback that puts the organization back. Every handler's entry point sets its invocation's end as
the deadline (:func:`until_invocation_ends`); other errors (5xx, timeouts) still stop at
:data:`MAX_ATTEMPTS`, so that an outage fails the request in a minute and says why.
"""

from __future__ import annotations

import functools
import logging
import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.retries import standard

from org_bootstrap.engine import clock as clocks

LOG = logging.getLogger(__name__)

# botocore's DEBUG records carry request bodies, which hold contacts (people's data): never
# let them through, whatever level the function's log configuration asks for.
for _name in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_name).setLevel(logging.INFO)

# botocore retries nothing itself; _needs_retry below decides.
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1}, user_agent_extra="org-bootstrap")
MAX_ATTEMPTS = 10
BASE_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 20.0
# Left between the last retry's end and the invocation's timeout: for the handler to save its work and answer.
INVOCATION_MARGIN_SECONDS = 60.0
PACED_SERVICES = frozenset({"account"})  # their throttles go back to org_bootstrap.engine.pacing's callers
THROTTLING_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "SlowDown",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "EC2ThrottledException",
    }
)
RETRIED_CODES = frozenset({"ConcurrentModificationException"})  # Organizations: another change is in progress

# Region opt-in: AWS refuses a request beyond the requests in progress it allows (6 per account, 50 per
# organization) with TooManyRequestsException and this message: a wait of minutes to hours for a
# request to finish, not a rate to slow down to (https://docs.aws.amazon.com/accounts/latest/reference/quotas.html).
CONCURRENT_REQUESTS_MESSAGE = "concurrent region-opt requests"
# Errors no retry fixes: the caller's permissions, or a request the service refuses as invalid.
PERMANENT_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "ValidationException",
        "InvalidInputException",
        "InvalidParameterValue",
        "ConstraintViolationException",
        "AWSOrganizationsNotInUseException",
    }
)

_ADAPTER = standard.RetryEventAdapter()
_TRANSIENT = standard.TransientRetryableChecker()
_THROTTLING_STATUS = standard.ThrottlingStatusCodeChecker()  # a 429 without a modeled error
_MODELED = standard.ModeledRetryErrorDetector()


def client(service: str, region_name: str | None = None) -> Any:
    made = boto3.client(service, region_name=region_name, config=CLIENT_CONFIG)
    event = made.meta.service_model.service_id.hyphenize()
    made.meta.events.register(f"needs-retry.{event}", _needs_retry, unique_id="org-bootstrap-retry")
    return made


# (deadline, clock) of the work in this thread or task; None: retries are bounded by MAX_ATTEMPTS only
_DEADLINE: ContextVar[tuple[float, Callable[[], float]] | None] = ContextVar("retry_deadline", default=None)


@contextmanager
def retries_until(deadline: float, clock: Callable[[], float] = clocks.monotonic) -> Iterator[None]:
    """Within the block, no call of this thread is retried after ``deadline`` (by ``clock``): a retry
    whose back-off would end after it is not made, and the error is raised to the caller."""
    token = _DEADLINE.set((deadline, clock))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


Handler = TypeVar("Handler", bound=Callable[..., Any])


def until_invocation_ends(handler: Handler) -> Handler:
    """A Lambda entry point whose calls are retried until :data:`INVOCATION_MARGIN_SECONDS` before
    its invocation must end (the context's remaining time), rather than at most :data:`MAX_ATTEMPTS`
    times for throttles and contention (see the module's description). Without a context (a call
    from code, not from Lambda), nothing changes."""

    @functools.wraps(handler)
    def invoked(event: Any, context: Any = None) -> Any:
        if context is None or _DEADLINE.get() is not None:
            return handler(event, context)
        remaining = context.get_remaining_time_in_millis() / 1000
        with retries_until(clocks.monotonic() + remaining - INVOCATION_MARGIN_SECONDS):
            return handler(event, context)

    return cast(Handler, invoked)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_request_limit(error: ClientError) -> bool:
    """AWS refused a Region request because too many are in progress (a wait, not a rate)."""
    message = str(error.response.get("Error", {}).get("Message", ""))
    return error_code(error) == "TooManyRequestsException" and CONCURRENT_REQUESTS_MESSAGE in message


def is_throttle(error: ClientError) -> bool:
    return error_code(error) in THROTTLING_CODES and not is_request_limit(error)


def is_permanent(error: BaseException) -> bool:
    """Whether no retry can fix the error (access denied, a request the service calls invalid)."""
    return isinstance(error, ClientError) and error_code(error) in PERMANENT_CODES


def backoff(attempt: int, *, base: float = BASE_DELAY_SECONDS, cap: float = MAX_DELAY_SECONDS) -> float:
    """Full jitter: a uniform draw up to the exponential bound of the ``attempt``-th retry (1-based)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def _needs_retry(**kwargs: Any) -> float | None:
    """botocore's ``needs-retry`` event: the seconds to wait before the next attempt, or None."""
    context = _ADAPTER.create_retry_context(**kwargs)
    attempts = context.attempt_number
    code = context.get_error_code() or ""
    service = context.operation_model.service_model.service_id.hyphenize()
    modeled = _MODELED.detect_error_type(context) if code else None
    throttled = (
        code in THROTTLING_CODES or modeled == _MODELED.THROTTLING_ERROR or _THROTTLING_STATUS.is_retryable(context)
    )
    contended = code in RETRIED_CODES or (throttled and service not in PACED_SERVICES)
    retried = contended or (not throttled and (modeled == _MODELED.TRANSIENT_ERROR or _TRANSIENT.is_retryable(context)))
    limit = _DEADLINE.get()
    to_deadline = contended and limit is not None and math.isfinite(limit[0])
    if not retried or (attempts >= MAX_ATTEMPTS and not to_deadline):
        return None
    delay = backoff(min(attempts, 16))
    reason = code or type(context.caught_exception).__name__
    operation = context.operation_model.name
    if limit is not None and limit[1]() + delay >= limit[0]:
        LOG.warning("%s on %s, not retried: the deadline comes first (attempt %d)", reason, operation, attempts)
        return None
    bound = "until the deadline" if to_deadline else f"of {MAX_ATTEMPTS}"
    LOG.warning("%s on %s, retrying in %.1fs (attempt %d %s)", reason, operation, delay, attempts, bound)
    return delay
