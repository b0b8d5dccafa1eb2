"""Every AWS API call made through a boto3 session, counted by service and operation.

It hooks botocore's ``before-call`` event, so it sees the handlers' calls and the plan's alike,
against the simulated organization or a real one, without touching their code. It can also
refuse every call that is not a read, which is how ``plan`` guarantees it changes nothing.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3

# Operations that only read. The plan needs organizations List*/Describe* and account:GetAlternateContact.
READ_OPERATION = re.compile(r"^(Get|List|Describe|Head|Scan|Query|BatchGet)")
ORGANIZATION_SERVICES = ("organizations", "account")

Listener = Callable[[str, str], None]


class ReadOnlyViolation(RuntimeError):
    """A write was attempted while only reads are allowed."""


class ApiCalls:
    def __init__(self, session: boto3.Session) -> None:
        self.session = session
        self.counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._read_only = False
        session.events.register("before-call", self._before_call)

    def _before_call(self, model: Any, **_: Any) -> None:
        service, operation = model.service_model.service_name, model.name
        if self._read_only and not READ_OPERATION.match(operation):
            raise ReadOnlyViolation(f"{service}:{operation} is not a read, and this command only reads")
        with self._lock:
            self.counts[service, operation] += 1
        for listener in list(self._listeners):
            listener(service, operation)

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.counts)

    @contextlib.contextmanager
    def listening(self, listener: Listener) -> Iterator[None]:
        self._listeners.append(listener)
        try:
            yield
        finally:
            self._listeners.remove(listener)

    @contextlib.contextmanager
    def read_only(self) -> Iterator[None]:
        self._read_only = True
        try:
            yield
        finally:
            self._read_only = False


def writes(counts: Counter[tuple[str, str]], services: Iterable[str] = ORGANIZATION_SERVICES) -> Counter[str]:
    """The calls in ``counts`` that change something in these services, as ``service:Operation``."""
    wanted = set(services)
    return Counter(
        {
            f"{service}:{operation}": count
            for (service, operation), count in counts.items()
            if service in wanted and not READ_OPERATION.match(operation) and count
        }
    )
