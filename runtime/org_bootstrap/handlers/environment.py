"""The one reader of a handler's Lambda environment: the variables the constructs set, made into clients.

The contacts handler (``alternate_contacts``), the drift check (``drift``) and the account-event
handler (``account_events``) are configured the same way by ``constructs/account_settings.py`` and
``constructs/settings_automation.py``; each handler's ``Dependencies.from_environment`` asks this
module for what it needs. A missing or malformed variable is a deployment fault, reported at cold
start with the variable's name and what it should hold.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from org_bootstrap.aws import clients
from org_bootstrap.aws.organization import management_account_id
from org_bootstrap.engine.jobs import DEFAULT_CONCURRENCY
from org_bootstrap.engine.reconcile import AccountApi
from org_bootstrap.engine.registry import specs_from_json
from org_bootstrap.engine.stores import DynamoDbSnapshots, S3JobStore
from org_bootstrap.engine.targeting import SettingSpec


class EnvironmentVariableError(RuntimeError):
    """A variable the function's configuration must set is missing or malformed."""


class HandlerEnvironment:
    """Typed values and clients from a function's environment (``os.environ`` unless given)."""

    def __init__(
        self, variables: Mapping[str, str] | None = None, *, client: Callable[[str], Any] = clients.client
    ) -> None:
        self.variables = os.environ if variables is None else variables
        self._client = client

    # -- values --------------------------------------------------------------------------------

    def text(self, name: str, default: str | None = None) -> str:
        value = self.variables.get(name) or default
        if value is None:
            raise EnvironmentVariableError(f"{name}: must be set in the function's environment")
        return value

    def integer(self, name: str, default: int) -> int:
        value = self.text(name, str(default))
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            raise EnvironmentVariableError(f"{name}: must be a positive whole number, not {value!r}")
        return number

    def seconds(self, name: str, default: float) -> float:
        value = self.text(name, str(default))
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not number >= 0:  # also refuses NaN
            raise EnvironmentVariableError(f"{name}: must be a number of seconds, not {value!r}")
        return number

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.text(name, "true" if default else "false")
        if value not in ("true", "false"):
            raise EnvironmentVariableError(f"{name}: must be 'true' or 'false', not {value!r}")
        return value == "true"

    # -- what the handlers share ---------------------------------------------------------------

    @cached_property
    def organizations(self) -> Any:
        return self._client("organizations")

    @cached_property
    def management_account_id(self) -> str:
        """``MANAGEMENT_ACCOUNT_ID``, or the organization's own answer where it is not set."""
        return self.variables.get("MANAGEMENT_ACCOUNT_ID") or management_account_id(self.organizations)

    @cached_property
    def caller_account_id(self) -> str:
        """The account the function runs in; where not set, the management account (its default home)."""
        return self.variables.get("CALLER_ACCOUNT_ID") or self.management_account_id

    def account_api(self) -> AccountApi:
        """Account Management, addressed from the calling account (its own contacts go without AccountId)."""
        return AccountApi(self._client("account"), self.caller_account_id)

    def specs(self) -> dict[str, SettingSpec[Any]]:
        """Every setting's spec, deployed beside the function (a layer at ``SPEC_FILE``), validated again."""
        path = Path(self.text("SPEC_FILE"))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise EnvironmentVariableError(f"SPEC_FILE: cannot read {path} ({error.strerror})") from None
        return specs_from_json(text)

    def jobs(self) -> S3JobStore:
        return S3JobStore(self._client("s3"), self.text("JOB_BUCKET"))

    def snapshots(self) -> DynamoDbSnapshots:
        return DynamoDbSnapshots(self._client("dynamodb"), self.text("SNAPSHOT_TABLE"))

    def optional_snapshots(self) -> DynamoDbSnapshots | None:
        """The snapshot table, where the function has one (a report-only drift check writes nothing)."""
        return self.snapshots() if self.variables.get("SNAPSHOT_TABLE") else None

    def concurrency(self) -> int:
        return self.integer("CONCURRENCY", DEFAULT_CONCURRENCY)

    def region_follow_seconds(self) -> float | None:
        """``REGION_FOLLOW_SECONDS``: between two reads of one Region request's status. Not set by
        the constructs (the jobs' interval suits AWS, where enabling takes minutes); a simulated
        organization whose Regions enable at once sets 0. None where not set."""
        if not self.variables.get("REGION_FOLLOW_SECONDS"):
            return None
        return self.seconds("REGION_FOLLOW_SECONDS", 0.0)

    def client(self, service: str) -> Any:
        return self._client(service)
