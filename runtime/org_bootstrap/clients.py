"""boto3 clients with one retry policy, and the retry for errors botocore does not retry.

botocore's ``standard`` retry mode already retries throttling (``TooManyRequestsException``,
``ThrottlingException``) and transient errors with exponential backoff and jitter. Organizations'
``ConcurrentModificationException`` is not in its list, so :func:`retry_concurrent_modification`
covers it the same way.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

LOG = logging.getLogger(__name__)
T = TypeVar("T")

# botocore's DEBUG records carry request bodies, which hold contacts (people's data): never
# let them through, whatever level the function's log configuration asks for.
for _name in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_name).setLevel(logging.INFO)

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 10}, user_agent_extra="org-bootstrap")
_RETRIED_CODES = frozenset({"ConcurrentModificationException"})


def client(service: str, region_name: str | None = None) -> Any:
    return boto3.client(service, region_name=region_name, config=RETRY_CONFIG)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def retry_concurrent_modification(
    call: Callable[..., T], *, attempts: int = 6, base_delay: float = 1.0, sleep: Callable[[float], None] = time.sleep
) -> Callable[..., T]:
    """Wrap an Organizations call so that ``ConcurrentModificationException`` is retried with backoff."""

    @functools.wraps(call)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        for attempt in range(1, attempts + 1):
            try:
                return call(*args, **kwargs)
            except ClientError as error:
                if error_code(error) not in _RETRIED_CODES or attempt == attempts:
                    raise
                delay = random.uniform(0, base_delay * 2 ** (attempt - 1))  # full jitter
                LOG.warning("%s, retrying in %.1fs (attempt %d of %d)", error_code(error), delay, attempt, attempts)
                sleep(delay)
        raise AssertionError("unreachable")

    return wrapper
