"""A strict simulated AWS Organization built on moto.

moto 5.2 is laxer than AWS in ways that matter here; :func:`strict_aws` patches it, on the
simulated service's side, so that the handlers meet the same refusals they would meet in AWS:

- ``account.amazonaws.com`` is accepted as a delegated-administrator service principal (moto
  rejects it), but only once trusted access for it is enabled, for an ACTIVE account, one at a
  time, and an account already registered is refused (``AccountAlreadyRegisteredException``);
- the Account Management API with ``AccountId`` needs trusted access for ``account.amazonaws.com``
  and a caller that is the management account or the delegated administrator; the management
  account cannot name itself (it calls without ``AccountId``); a delegated administrator cannot
  change the management account; the target must be an ACTIVE account of the organization;
- contact fields are checked against the service model's limits and patterns, and the primary
  contact against the rules the API reference adds: StateOrRegion for the countries that need it,
  and in the China partition a CountryCode or CompanyName that cannot change;
- the primary contact (GetContactInformation, PutContactInformation) and Region opt-in
  (ListRegions, GetRegionOptStatus, EnableRegion, DisableRegion), which moto does not have, are
  implemented as AWS documents them: the same caller rules; Regions ENABLING for
  ``ApiLog.region_opt_seconds`` on ``ApiLog.clock`` before they are ENABLED (DISABLING before
  DISABLED); ENABLED_BY_DEFAULT Regions that cannot be changed; at most 6 region-opt requests in
  progress per account and 50 per organization, refused with the ``TooManyRequestsException``
  AWS returns; ``ConflictException`` for enabling a Region that is DISABLING (or disabling one
  that is ENABLING);
- an S3 conditional write (``If-Match``, ``If-None-Match``) is checked and applied as one step,
  as S3 does (moto checks, then writes: two racing writers could both pass the check);
- a member account's Organizations calls reach its organization (moto would give it an empty one
  of its own), so a delegated administrator reads the organization as in AWS; :func:`acting_as`
  makes another account of the organization the caller;
- CloudFormation's ``DescribeStacks`` knows no stack (``ValidationError``, as AWS answers for a
  stack that does not exist; moto's CloudFormation needs packages this project does not install):
  the local deploy answers for the stack it deploys, ahead of this.

It can also refuse calls the way a busy service does, and counts every call, so tests can assert
on convergence and on the number of calls made:

- ``ApiLog.capacity``: the service's own token bucket per operation, at a rate of your choosing
  (for example a quarter of the published quota, the rest taken by another caller); a call that
  finds it empty is throttled;
- ``ApiLog.storms``: :class:`Storm` refuses a fraction of the calls of chosen operations (Account
  Management or Organizations), for a duration on the simulation's clock or for a number of calls,
  with ``TooManyRequestsException`` or another code (``ConcurrentModificationException``);
- ``ApiLog.throttle_rate``: a fraction of an operation's calls throttled, for as long as it is set.

Which call is refused is drawn from the log's seeded random generator and the simulation's clock,
after the request has reached the service, and the error is the one the service returns: the
handlers see only what they would see from AWS.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
from botocore import handlers as botocore_handlers
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.account import responses as account_responses
from moto.account import urls as account_urls
from moto.core.exceptions import JsonRESTError
from moto.organizations import models as org_models
from moto.organizations import responses as org_responses
from moto.s3 import responses as s3_responses

from org_bootstrap.aws import partitions
from org_bootstrap.engine import clock as clocks
from org_bootstrap.engine.pacing import Quota
from org_bootstrap.settings.alternate_contacts.spec import CONTACT_FIELD_RULES
from org_bootstrap.settings.primary_contact.spec import (
    PRIMARY_CONTACT_FIELD_RULES,
    primary_contact_change_problems,
    primary_contact_problems,
)
from org_bootstrap.settings.regions import SETTING as REGIONS
from org_bootstrap.settings.regions.spec import REGION_NAME_RULE
from org_bootstrap.validation import ACCOUNT_SERVICE_PRINCIPAL, FieldRule

DEFAULT_MANAGEMENT_ACCOUNT = "111111111111"
PARTITION = "aws"
VERIFIED, UNVERIFIED = "VERIFIED", "UNVERIFIED"  # GetContactInformation's VerificationStatus of the phone


THROTTLED = "TooManyRequestsException"


WRITE_OPERATIONS = (
    "PutAlternateContact",
    "DeleteAlternateContact",
    "PutContactInformation",
    "EnableRegion",
    "DisableRegion",
)
ENABLED, ENABLING, DISABLING, DISABLED, ENABLED_BY_DEFAULT = (
    "ENABLED",
    "ENABLING",
    "DISABLING",
    "DISABLED",
    "ENABLED_BY_DEFAULT",
)
REGION_OPT_STATUSES = (ENABLED, ENABLING, DISABLING, DISABLED, ENABLED_BY_DEFAULT)
ORGANIZATION = "organization"  # the key of the organization-wide peak in ApiLog.peak_in_progress
_ACTIVE_LOGS: list[Any] = []  # the ApiLog of each strict_aws block entered, innermost last


@dataclass
class Storm:
    """Refuse ``fraction`` of the calls to ``operations`` with ``code``: for ``seconds`` from when the
    storm is added to the log (by the log's clock), for the next ``calls`` calls, or, with neither,
    until it is removed."""

    operations: frozenset[str] | set[str]
    fraction: float = 1.0
    seconds: float | None = None
    calls: int | None = None
    code: str = THROTTLED
    message: str = "Rate exceeded"
    started: float | None = None  # set by ApiLog.add_storm

    def active(self, now: float) -> bool:
        if self.calls is not None and self.calls <= 0:
            return False
        return self.seconds is None or self.started is None or now < self.started + self.seconds


class ServiceBucket:
    """The service's own token bucket for one operation, at ``quota``: a call that finds it empty is
    throttled. Not thread-safe: its user (:class:`ApiLog`, the benchmarks' fake API) holds a lock."""

    def __init__(self, quota: Quota, now: float) -> None:
        self.rate = float(quota.per_second)
        self.capacity = float(quota.burst)
        self.tokens = self.capacity
        self.updated = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class ApiLog:
    """Calls seen by the simulated Account Management and Organizations APIs, and faults to inject."""

    calls: Counter[str] = field(default_factory=Counter)  # Account Management calls that reached the service
    throttle_rate: Mapping[str, float] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    throttled: Counter[str] = field(default_factory=Counter)
    capacity: Mapping[str, Quota] = field(default_factory=dict)  # the service's rate per operation
    storms: list[Storm] = field(default_factory=list)
    clock: Callable[[], float] = clocks.monotonic  # the runtime's clock: simulated when one is installed
    organizations_calls: Counter[str] = field(default_factory=Counter)
    faults: Counter[tuple[str, str]] = field(default_factory=Counter)  # (operation, code) refused
    denied_accounts: set[str] = field(default_factory=set)  # refuse every call that targets these
    # (operation, caller, target account) of every call, the target being the caller's own account
    # when the call names none: who changed which account
    callers: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # Region opt-in: how long a Region stays ENABLING (or DISABLING), on ``clock``
    region_opt_seconds: float = 0.0
    # the most region-opt requests seen in progress at once, per account and in the organization
    peak_in_progress: Counter[str] = field(default_factory=Counter)
    region_lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    # accounts whose registration as delegated administrator fails (as an outage or a race would)
    failing_registrations: set[str] = field(default_factory=set)
    # the status DescribeStacks answers for any stack (None: no such stack), for handlers that ask
    # whether CloudFormation is rolling back
    stack_status: str | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, ServiceBucket] = {}

    def writes(self) -> int:
        return sum(self.calls[operation] for operation in WRITE_OPERATIONS)

    def add_storm(self, storm: Storm) -> Storm:
        storm.started = self.clock()
        self.storms.append(storm)
        return storm

    def refusal(self, operation: str) -> tuple[str, str] | None:
        """The (code, message) this call is refused with, or None: capacity first, then storms."""
        with self._lock:
            now = self.clock()
            quota = self.capacity.get(operation)
            if quota is not None:
                bucket = self._buckets.get(operation)
                if bucket is None or (bucket.rate, bucket.capacity) != (quota.per_second, quota.burst):
                    bucket = self._buckets[operation] = ServiceBucket(quota, now)
                if not bucket.take(now):
                    return THROTTLED, "Rate exceeded"
            if self.rng.random() < self.throttle_rate.get(operation, 0.0):
                return THROTTLED, "Rate exceeded"
            for storm in self.storms:
                if operation in storm.operations and storm.active(now):
                    if storm.calls is not None:
                        storm.calls -= 1
                    if self.rng.random() < storm.fraction:
                        return storm.code, storm.message
        return None

    def _refuse(self, operation: str) -> None:
        refused = self.refusal(operation)
        if refused is None:
            return
        code, message = refused
        self.faults[operation, code] += 1
        if code == THROTTLED:
            self.throttled[operation] += 1
        raise _error(code, message)


def _org_backend() -> org_models.OrganizationsBackend:
    """The backend of the organization the simulated caller belongs to."""
    return _organization_of(os.environ["MOTO_ACCOUNT_ID"])


def _organization_of(account_id: str, partition: str = PARTITION) -> org_models.OrganizationsBackend:
    """The backend holding ``account_id``'s organization: its management account's for a member
    account, otherwise the account's own (a management account, or an account outside any)."""
    backends = org_models.organizations_backends
    found = backends.master_accounts.get(account_id)
    if found is not None:
        backend = backends[found[0]][found[1]]
        if backend.org is not None and any(account.id == account_id for account in backend.accounts):
            return backend
    return backends[account_id][partition]


@contextlib.contextmanager
def acting_as(account_id: str) -> Iterator[None]:
    """Inside :func:`strict_aws`: every call made in the block comes from ``account_id`` (moto takes
    the caller from ``MOTO_ACCOUNT_ID`` on each request), as from a role in that account."""
    with mock.patch.dict(os.environ, {"MOTO_ACCOUNT_ID": account_id}):
        yield


def _trusted(backend: org_models.OrganizationsBackend, principal: str) -> bool:
    return any(service["ServicePrincipal"] == principal for service in backend.services)


def _delegated_admins(backend: org_models.OrganizationsBackend, principal: str) -> set[str]:
    return {admin.account.id for admin in backend.admins if principal in admin.services}


# The errors AWS answers with a 5xx status (a fault of the service, which clients retry), not 400.
SERVER_ERROR_STATUS = {"ServiceUnavailableException": 503, "InternalServerException": 500, "ServiceException": 500}


def _error(kind: str, message: str) -> JsonRESTError:
    error = JsonRESTError(kind, message)
    error.code = SERVER_ERROR_STATUS.get(kind, error.code)
    return error


def _check_account_call(response: Any, operation: str, log: ApiLog) -> str:
    """The rules every Account Management call meets; returns the account it addresses."""
    log.calls[operation] += 1
    log._refuse(operation)
    caller = response.current_account
    target = response._get_param("AccountId")
    log.callers[operation, caller, target or caller] += 1
    if target in log.denied_accounts:
        raise _error("AccessDeniedException", f"An SCP in {target} denies account:{operation}")
    _PARAMETER_CHECKS[operation](response)
    backend = _organization_of(caller)
    if target is None:
        return str(caller)  # the caller's own account: always allowed
    if backend.org is None:
        raise _error("AccessDeniedException", "The caller is not in an organization")
    management = backend.org.master_account_id
    if target == management:
        raise _error(
            "AccessDeniedException",
            "The management account can only be managed without specifying its AccountId",
        )
    if not _trusted(backend, ACCOUNT_SERVICE_PRINCIPAL):
        raise _error("AccessDeniedException", "Trusted access is not enabled for account.amazonaws.com")
    if caller != management and caller not in _delegated_admins(backend, ACCOUNT_SERVICE_PRINCIPAL):
        raise _error("AccessDeniedException", f"{caller} is not the management or delegated administrator account")
    account = next((a for a in backend.accounts if a.id == target), None)
    if account is None:
        raise _error("AccessDeniedException", f"{target} is not a member of the organization")
    if account.status != "ACTIVE":
        raise _error("AccessDeniedException", f"{target} is {account.status}, not ACTIVE")
    return str(target)


def _field_check(values: Any, rules: Mapping[str, FieldRule]) -> None:
    """The service's own validation of a request's string fields (ValidationException)."""
    if not isinstance(values, Mapping):
        raise _error("ValidationException", "1 validation error detected: a structure is required")
    for name, rule in rules.items():
        value = values.get(name)
        if value is None and not rule.required:
            continue
        if not isinstance(value, str) or not rule.min_length <= len(value) <= rule.max_length:
            raise _error("ValidationException", f"1 validation error detected: {name} length")
        if rule.pattern is not None and not rule.pattern.match(value):
            raise _error("ValidationException", f"1 validation error detected: {name} pattern")


def _contact_type_check(response: Any) -> None:
    if response._get_param("AlternateContactType") not in ("BILLING", "OPERATIONS", "SECURITY"):
        raise _error("ValidationException", "1 validation error detected: AlternateContactType")


def _put_contact_check(response: Any) -> None:
    _contact_type_check(response)
    _field_check({name: response._get_param(name) for name in CONTACT_FIELD_RULES}, CONTACT_FIELD_RULES)


def _primary_contact_check(contact: Any) -> None:
    _field_check(contact, PRIMARY_CONTACT_FIELD_RULES)
    beyond_the_model = primary_contact_problems("ContactInformation", contact)  # the API reference's own rules
    if beyond_the_model:
        raise _error("ValidationException", f"1 validation error detected: {beyond_the_model[0]}")


def _region_check(response: Any) -> None:
    _field_check({"RegionName": response._get_param("RegionName")}, {"RegionName": REGION_NAME_RULE})
    region = response._get_param("RegionName")
    if region not in partitions.regions_of(response.partition):
        raise _error("ValidationException", f"{region} is not a valid Region (reason: invalidRegionOptTarget)")


def _list_regions_check(response: Any) -> None:
    limit = response._get_param("MaxResults")
    if limit is not None and not 1 <= int(limit) <= 50:
        raise _error("ValidationException", "1 validation error detected: MaxResults must be 1 to 50")
    for status in response._get_param("RegionOptStatusContains") or []:
        if status not in REGION_OPT_STATUSES:
            raise _error("ValidationException", f"1 validation error detected: RegionOptStatusContains {status}")


_PARAMETER_CHECKS: dict[str, Callable[[Any], None]] = {
    "GetAlternateContact": _contact_type_check,
    "DeleteAlternateContact": _contact_type_check,
    "PutAlternateContact": _put_contact_check,
    "GetContactInformation": lambda response: None,
    "PutContactInformation": lambda response: _primary_contact_check(response._get_param("ContactInformation")),
    "GetRegionOptStatus": _region_check,
    "EnableRegion": _region_check,
    "DisableRegion": _region_check,
    "ListRegions": _list_regions_check,
}


def _strict_account_operation(original: Callable[..., Any], operation: str, log: ApiLog) -> Callable[..., Any]:
    def wrapper(self: Any) -> Any:
        _check_account_call(self, operation, log)
        return original(self)

    return wrapper


# -- the primary contact and Region opt-in, which moto does not have ---------------------------


def _account_backend(account_id: str, partition: str = PARTITION) -> Any:
    from moto.account.models import account_backends

    return account_backends[account_id][partition]


def _region_states(account_id: str, partition: str = PARTITION) -> dict[str, tuple[str, float]]:
    """The account's Regions that are not in their partition's initial state: status and since when."""
    backend = _account_backend(account_id, partition)
    if not hasattr(backend, "region_opt"):
        backend.region_opt = {}
    states: dict[str, tuple[str, float]] = backend.region_opt
    return states


def region_status(account_id: str, region: str, log: ApiLog, partition: str = PARTITION) -> str:
    """A Region's status now: ENABLING becomes ENABLED (DISABLING, DISABLED) once
    ``log.region_opt_seconds`` have passed on ``log.clock``."""
    with log.region_lock:
        if region in partitions.enabled_by_default(partition):
            return ENABLED_BY_DEFAULT
        states = _region_states(account_id, partition)
        status, since = states.get(region, (DISABLED, 0.0))
        if status in (ENABLING, DISABLING) and log.clock() - since >= log.region_opt_seconds:
            status = ENABLED if status == ENABLING else DISABLED
            states[region] = (status, since)
        return status


def _in_progress(account_id: str, log: ApiLog, partition: str) -> int:
    return sum(
        region_status(account_id, region, log, partition) in (ENABLING, DISABLING)
        for region in list(_region_states(account_id, partition))
    )


def _request_region_change(response: Any, log: ApiLog, *, enable: bool) -> Any:
    from moto.core.responses import EmptyResult

    operation = "EnableRegion" if enable else "DisableRegion"
    target = _check_account_call(response, operation, log)
    region, partition = response._get_param("RegionName"), response.partition
    with log.region_lock:
        status = region_status(target, region, log, partition)
        if status == ENABLED_BY_DEFAULT:
            raise _error(
                "ValidationException",
                f"{region} is enabled by default and cannot be {'enabled' if enable else 'disabled'} "
                "(reason: invalidRegionOptTarget)",
            )
        if status == (DISABLING if enable else ENABLING):
            raise _error(
                "ConflictException",
                f"{region} is {status}: the request cannot be processed until that process has completed",
            )
        if status in ((ENABLED, ENABLING) if enable else (DISABLED, DISABLING)):
            return EmptyResult()  # already there or on its way: nothing new starts
        limits = REGIONS.opt_limits(partition)
        assert limits is not None, f"no Region opt-in in {partition}"
        members = [account.id for account in _organization_of(target, partition).accounts] or [target]
        if _in_progress(target, log, partition) >= limits.per_account:
            raise _error("TooManyRequestsException", _CONCURRENCY_MESSAGE.format(scope="an account"))
        in_organization = sum(_in_progress(member, log, partition) for member in members)
        if in_organization >= limits.per_organization:
            raise _error("TooManyRequestsException", _CONCURRENCY_MESSAGE.format(scope="an organization"))
        _region_states(target, partition)[region] = (ENABLING if enable else DISABLING, log.clock())
        log.peak_in_progress[target] = max(log.peak_in_progress[target], _in_progress(target, log, partition))
        log.peak_in_progress[ORGANIZATION] = max(log.peak_in_progress[ORGANIZATION], in_organization + 1)
    return EmptyResult()


# The message AWS returns when a request would exceed the region-opt concurrency quota.
_CONCURRENCY_MESSAGE = (
    "This request has exceeded the quota for 'Number of concurrent region-opt requests for {scope}'. "
    "Consider retrying the operation later once some requests have been completed."
)


def _new_account_operations(log: ApiLog) -> dict[str, Callable[..., Any]]:
    from moto.core.responses import ActionResult, EmptyResult

    def get_contact_information(self: Any) -> Any:
        target = _check_account_call(self, "GetContactInformation", log)
        found = getattr(_account_backend(target, self.partition), "contact_information", None)
        if found is None:
            raise _error("ResourceNotFoundException", "No contact information found for this account")
        # moto answers no VerificationStatus (botocore 1.44.8's model has it): the phone's, kept beside the record.
        status = _phone_status(_account_backend(target, self.partition))
        return ActionResult(result={"ContactInformation": dict(found), "VerificationStatus": status})

    def put_contact_information(self: Any) -> Any:
        target = _check_account_call(self, "PutContactInformation", log)
        contact = self._get_param("ContactInformation")
        backend = _account_backend(target, self.partition)
        current = getattr(backend, "contact_information", None)
        # Accounts in the China partition cannot change some fields through the API.
        unchangeable = primary_contact_change_problems("ContactInformation", current, contact, self.partition)
        if unchangeable:
            raise _error("ValidationException", unchangeable[0])
        backend.contact_information = {
            name: contact[name] for name in PRIMARY_CONTACT_FIELD_RULES if contact.get(name) is not None
        }
        # A number the account never had is UNVERIFIED until someone verifies it; one it had keeps its status.
        statuses = _phone_statuses(backend)
        statuses.setdefault(str(contact.get("PhoneNumber")), UNVERIFIED)
        return EmptyResult()

    def get_region_opt_status(self: Any) -> Any:
        target = _check_account_call(self, "GetRegionOptStatus", log)
        region = self._get_param("RegionName")
        return ActionResult(
            result={"RegionName": region, "RegionOptStatus": region_status(target, region, log, self.partition)}
        )

    def list_regions(self: Any) -> Any:
        target = _check_account_call(self, "ListRegions", log)
        wanted = set(self._get_param("RegionOptStatusContains") or REGION_OPT_STATUSES)
        found = [
            {"RegionName": region, "RegionOptStatus": status}
            for region in sorted(partitions.regions_of(self.partition))
            if (status := region_status(target, region, log, self.partition)) in wanted
        ]
        start = int(self._get_param("NextToken") or 0)
        limit = int(self._get_param("MaxResults") or 20)
        page: dict[str, Any] = {"Regions": found[start : start + limit]}
        if start + limit < len(found):
            page["NextToken"] = str(start + limit)
        return ActionResult(result=page)

    return {
        "get_contact_information": get_contact_information,
        "put_contact_information": put_contact_information,
        "get_region_opt_status": get_region_opt_status,
        "list_regions": list_regions,
        "enable_region": lambda self: _request_region_change(self, log, enable=True),
        "disable_region": lambda self: _request_region_change(self, log, enable=False),
    }


def _faulty_organizations_operation(original: Callable[..., Any], log: ApiLog) -> Callable[..., Any]:
    def wrapper(self: Any) -> Any:
        operation = self._get_action()
        log.organizations_calls[operation] += 1
        log._refuse(operation)
        return original(self)

    return wrapper


def _strict_register(original: Callable[..., Any], log: ApiLog) -> Callable[..., Any]:
    def wrapper(self: org_models.OrganizationsBackend, **kwargs: str) -> Any:
        principal = kwargs["ServicePrincipal"]
        if kwargs["AccountId"] in log.failing_registrations:
            raise org_models.ConstraintViolationException(f"simulated failure registering {kwargs['AccountId']}")
        if not _trusted(self, principal):
            raise org_models.ConstraintViolationException(
                f"You must enable trusted access for {principal} before registering a delegated administrator."
            )
        account = self.get_account_by_id(kwargs["AccountId"])
        if account.status != "ACTIVE":
            raise org_models.ConstraintViolationException(f"{account.id} is not ACTIVE")
        if account.id in _delegated_admins(self, principal):
            raise org_models.AccountAlreadyRegisteredException
        if principal == ACCOUNT_SERVICE_PRINCIPAL and _delegated_admins(self, principal) - {account.id}:
            # Account Management allows one delegated administrator at a time.
            raise org_models.ConstraintViolationException(
                "You have exceeded the allowed number of delegated administrators for the delegated service."
            )
        return original(self, **kwargs)

    return wrapper


_DESCRIBE_STACKS = "before-call.cloudformation.DescribeStacks"


def _describe_stacks(log: ApiLog) -> Callable[..., tuple[AWSResponse, dict[str, Any]]]:
    """DescribeStacks answered from ``log.stack_status``: that status for any stack, or no such stack."""

    def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = params.get("body")
        name = body.get("StackName", "") if isinstance(body, dict) else ""
        url = str(params.get("url", ""))
        if log.stack_status is not None:
            stack = {"StackId": name, "StackName": name.split("/")[1] if "/" in name else name}
            stack |= {"StackStatus": log.stack_status, "CreationTime": "2026-01-01T00:00:00Z"}
            return AWSResponse(url, 200, {}, None), {"Stacks": [stack], "ResponseMetadata": {"HTTPStatusCode": 200}}
        error = {"Code": "ValidationError", "Message": f"Stack with id {name} does not exist", "Type": "Sender"}
        return AWSResponse(url, 400, {}, None), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    return answer


@contextlib.contextmanager
def _answered_last(event: str, handler: Callable[..., Any]) -> Iterator[None]:
    """``handler`` on every boto3 session, the default one and those made in the block, after any
    other handler of ``event``."""
    builtin = [*botocore_handlers.BUILTIN_HANDLERS, (event, handler, botocore_handlers.REGISTER_LAST)]
    existing = boto3.DEFAULT_SESSION
    if existing is not None:
        existing.events.register_last(event, handler)
    try:
        with mock.patch.object(botocore_handlers, "BUILTIN_HANDLERS", builtin):
            yield
    finally:
        if existing is not None:
            existing.events.unregister(event, handler)


@contextlib.contextmanager
def strict_aws(log: ApiLog | None = None, management_account: str = DEFAULT_MANAGEMENT_ACCOUNT) -> Iterator[ApiLog]:
    """moto's ``mock_aws`` with the strictness above; the caller is ``management_account``."""
    log = log or ApiLog()
    env = {
        "MOTO_ACCOUNT_ID": management_account,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    responses = account_responses.AccountResponse
    patches: list[Any] = [
        mock.patch.dict(os.environ, env),
        mock.patch.object(
            org_models.FakeDelegatedAdministrator,
            "SUPPORTED_SERVICES",
            [*org_models.FakeDelegatedAdministrator.SUPPORTED_SERVICES, ACCOUNT_SERVICE_PRINCIPAL],
        ),
        mock.patch.object(
            org_responses.OrganizationsResponse,
            "organizations_backend",
            property(lambda self: _organization_of(self.current_account, self.partition)),
        ),
        mock.patch.object(
            org_models.OrganizationsBackend,
            "register_delegated_administrator",
            _strict_register(org_models.OrganizationsBackend.register_delegated_administrator, log),
        ),
    ]
    for method, operation in (
        ("put_alternate_contact", "PutAlternateContact"),
        ("get_alternate_contact", "GetAlternateContact"),
        ("delete_alternate_contact", "DeleteAlternateContact"),
    ):
        patches.append(
            mock.patch.object(responses, method, _strict_account_operation(getattr(responses, method), operation, log))
        )
    for method, implementation in _new_account_operations(log).items():
        patches.append(mock.patch.object(responses, method, implementation, create=True))
    routes = {
        f"{{0}}/{operation[0].lower()}{operation[1:]}$": responses.dispatch
        for operation in (
            "GetContactInformation",
            "PutContactInformation",
            "ListRegions",
            "GetRegionOptStatus",
            "EnableRegion",
            "DisableRegion",
        )
    }
    patches.append(mock.patch.dict(account_urls.url_paths, routes))
    for name, method in vars(org_responses.OrganizationsResponse).items():
        if callable(method) and not name.startswith("_"):
            patches.append(
                mock.patch.object(
                    org_responses.OrganizationsResponse, name, _faulty_organizations_operation(method, log)
                )
            )
    patches.append(
        mock.patch.object(s3_responses.S3Response, "put_object", _atomic(s3_responses.S3Response.put_object))
    )
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        stack.enter_context(_answered_last(_DESCRIBE_STACKS, _describe_stacks(log)))
        stack.enter_context(mock_aws())
        _ACTIVE_LOGS.append(log)
        stack.callback(_ACTIVE_LOGS.pop)
        yield log


def _atomic(put_object: Callable[..., Any]) -> Callable[..., Any]:
    """S3 applies a conditional write atomically: one writer at a time through moto's check and write."""
    lock = threading.Lock()

    @functools.wraps(put_object)
    def put(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return put_object(self, *args, **kwargs)

    return put


class Organization:
    """Builds and inspects the simulated organization through the public APIs (boto3)."""

    def __init__(self, *, organization_id: str | None = None, root_id: str | None = None) -> None:
        self.organizations = boto3.client("organizations", region_name="us-east-1")
        self.account = boto3.client("account", region_name="us-east-1")
        with _fixed_id("make_random_org_id", organization_id), _fixed_id("make_random_root_id", root_id):
            self.organizations.create_organization(FeatureSet="ALL")
        self.management_account_id: str = self.organizations.describe_organization()["Organization"]["MasterAccountId"]
        self.root_id: str = self.organizations.list_roots()["Roots"][0]["Id"]

    def create_ou(self, name: str, parent_id: str | None = None, *, ou_id: str | None = None) -> str:
        with _fixed_id("make_random_ou_id", ou_id):
            ou = self.organizations.create_organizational_unit(ParentId=parent_id or self.root_id, Name=name)
        return str(ou["OrganizationalUnit"]["Id"])

    def create_account(
        self, name: str, *, parent_id: str | None = None, account_id: str | None = None, email: str | None = None
    ) -> str:
        with _fixed_id("make_random_account_id", account_id):
            status = self.organizations.create_account(AccountName=name, Email=email or f"{name}@example.com")
        new_id = str(status["CreateAccountStatus"]["AccountId"])
        if parent_id and parent_id != self.root_id:
            self.organizations.move_account(
                AccountId=new_id, SourceParentId=self.root_id, DestinationParentId=parent_id
            )
        return new_id

    def set_status(self, account_id: str, status: str) -> None:
        account = _org_backend().get_account_by_id(account_id)
        account.status = status  # the deprecated field
        account.state = status  # its replacement, which also knows PENDING_CLOSURE

    def enable_trusted_access(self, principal: str = ACCOUNT_SERVICE_PRINCIPAL) -> None:
        self.organizations.enable_aws_service_access(ServicePrincipal=principal)

    def trusted_principals(self) -> set[str]:
        services = self.organizations.list_aws_service_access_for_organization()["EnabledServicePrincipals"]
        return {service["ServicePrincipal"] for service in services}

    def delegated_administrators(self, principal: str = ACCOUNT_SERVICE_PRINCIPAL) -> set[str]:
        admins = self.organizations.list_delegated_administrators(ServicePrincipal=principal)
        return {admin["Id"] for admin in admins["DelegatedAdministrators"]}

    def register_delegated_administrator(self, account_id: str, principal: str = ACCOUNT_SERVICE_PRINCIPAL) -> None:
        self.organizations.register_delegated_administrator(AccountId=account_id, ServicePrincipal=principal)

    def put_contact(self, account_id: str, contact_type: str, contact: Mapping[str, str]) -> None:
        target = {} if account_id == self.management_account_id else {"AccountId": account_id}
        self.account.put_alternate_contact(AlternateContactType=contact_type, **target, **contact)

    def contacts(self, account_id: str) -> dict[str, dict[str, str]]:
        """The account's contacts as the API returns them, read behind the API's back (not counted)."""
        from moto.account.models import account_backends

        backend = account_backends[account_id][PARTITION]
        return {
            contact_type: {
                "Name": contact.name,
                "Title": contact.title,
                "EmailAddress": contact.email_address,
                "PhoneNumber": contact.phone_number,
            }
            for contact_type, contact in backend._alternate_contacts.items()
        }

    def set_contacts(self, account_id: str, contacts: Mapping[str, Mapping[str, str]]) -> None:
        """Replace the account's contacts behind the API's back (not counted, no checks): the state a
        seed or a snapshot describes, which the API may refuse to write (a SUSPENDED account)."""
        from moto.account.models import AlternateContact, account_backends

        account_backends[account_id][PARTITION]._alternate_contacts = {
            contact_type: AlternateContact(
                alternate_contact_type=contact_type,
                name=contact["Name"],
                title=contact["Title"],
                email_address=contact["EmailAddress"],
                phone_number=contact["PhoneNumber"],
            )
            for contact_type, contact in contacts.items()
        }

    def primary_contact(self, account_id: str) -> dict[str, str] | None:
        """The account's primary contact as the API returns it, read behind the API's back."""
        found = getattr(_account_backend(account_id), "contact_information", None)
        return dict(found) if found is not None else None

    def set_primary_contact(
        self, account_id: str, contact: Mapping[str, str] | None, verification: str | None = None
    ) -> None:
        """Replace the account's primary contact behind the API's back (not counted, no checks), and
        the phone's verification status (VERIFIED when not given)."""
        backend = _account_backend(account_id)
        backend.contact_information = dict(contact) if contact is not None else None
        if contact is not None:
            _phone_statuses(backend)[str(contact.get("PhoneNumber"))] = verification or VERIFIED

    def phone_verification(self, account_id: str) -> str | None:
        """The primary contact phone's verification status, read behind the API's back; None without one."""
        backend = _account_backend(account_id)
        if getattr(backend, "contact_information", None) is None:
            return None
        return _phone_status(backend)

    def regions(self, account_id: str, log: ApiLog) -> dict[str, str]:
        """The account's opt-in Regions that are not DISABLED, with their status now (not counted)."""
        opt_in = partitions.opt_in_regions(PARTITION)
        found = {region: region_status(account_id, region, log) for region in sorted(opt_in)}
        return {region: status for region, status in found.items() if status != DISABLED}

    def set_regions(self, account_id: str, statuses: Mapping[str, str], log: ApiLog) -> None:
        """Put the account's opt-in Regions in these states behind the API's back; ENABLING and
        DISABLING start now on ``log.clock``; Regions not named are DISABLED."""
        now = log.clock()
        with log.region_lock:
            states = _region_states(account_id)
            states.clear()
            states.update({region: (status, now) for region, status in statuses.items() if status != DISABLED})

    # -- the whole organization as data: a seed file's contents, or a snapshot to restore later ---

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], log: ApiLog | None = None) -> Organization:
        """Build the organization ``to_mapping`` describes (also the format of an organization file):
        ``id``, ``root_id``, ``management_account_id``, ``trusted_access`` (principals),
        ``delegated_administrators`` (principal -> account IDs), ``organizational_units`` (``id``,
        ``name``, ``parent``) and ``accounts`` (``id``, ``name``, ``email``, ``parent``, ``status``,
        ``contacts``, ``tags``, ``primary_contact``, ``regions``: opt-in Region -> status). IDs are kept; a
        missing parent is the root. Run inside :func:`strict_aws` with ``management_account`` set to
        the organization's management account; ``log``: the one it yields (by default)."""
        org = cls(organization_id=data.get("id"), root_id=data.get("root_id"))
        expected = data.get("management_account_id", org.management_account_id)
        if expected != org.management_account_id:
            raise ValueError(f"management account {expected}: enter strict_aws(management_account={expected!r})")
        # Built in moto's backend directly, not through the API (a 300-account organization's
        # ~1,000 seeding calls would cost seconds of every local command).
        backend = _org_backend()
        created = {org.root_id}
        pending = list(data.get("organizational_units", []))
        while pending:  # parents before children, whatever the order given
            ready = [ou for ou in pending if ou.get("parent", org.root_id) in created]
            if not ready:
                raise ValueError(f"organizational units with unknown parents: {[ou['id'] for ou in pending]}")
            for ou in ready:
                with _fixed_id("make_random_ou_id", ou.get("id")):
                    made = backend.create_organizational_unit(ParentId=ou.get("parent", org.root_id), Name=ou["name"])
                created.add(made["OrganizationalUnit"]["Id"])
                pending.remove(ou)
        accounts = list(data.get("accounts", []))
        for account in accounts:
            if account["id"] == org.management_account_id:
                found = backend.get_account_by_id(account["id"])
                found.name = account.get("name", found.name)
                found.email = account.get("email", found.email)
                found.parent_id = account.get("parent", org.root_id)
            else:
                email = account.get("email") or f"{account['name']}@example.com"
                with _fixed_id("make_random_account_id", account["id"]):
                    backend.create_account(AccountName=account["name"], Email=email)
                parent = account.get("parent", org.root_id)
                if parent != org.root_id:
                    if parent not in created:
                        raise ValueError(f"account {account['id']}: no organizational unit {parent}")
                    backend.get_account_by_id(account["id"]).parent_id = parent
        for principal in data.get("trusted_access", []):
            org.enable_trusted_access(principal)
        for principal, account_ids in data.get("delegated_administrators", {}).items():
            for account_id in account_ids:
                org.register_delegated_administrator(account_id, principal)
        for account in accounts:  # last: the API refuses to register an account that is not ACTIVE
            org.set_contacts(account["id"], account.get("contacts", {}))
            org.set_primary_contact(account["id"], account.get("primary_contact"), account.get("phone_verification"))
            if account.get("regions"):
                org.set_regions(account["id"], account["regions"], log or _ACTIVE_LOGS[-1])
            if account.get("tags"):
                backend.get_account_by_id(account["id"]).tags.update(account["tags"])
            if account.get("status", "ACTIVE") != "ACTIVE":
                org.set_status(account["id"], account["status"])
        return org

    def to_mapping(self, log: ApiLog | None = None) -> dict[str, Any]:
        """The whole organization, read behind the API's back (not counted), for :meth:`from_mapping`
        (``log``: strict_aws's, by default)."""
        backend = _org_backend()
        assert backend.org is not None
        admins: dict[str, list[str]] = {}
        for admin in backend.admins:
            for principal in admin.services:
                admins.setdefault(principal, []).append(admin.account.id)
        return {
            "id": backend.org.id,
            "root_id": backend.org.root_id,
            "management_account_id": backend.org.master_account_id,
            "trusted_access": [service["ServicePrincipal"] for service in backend.services],
            "delegated_administrators": {principal: sorted(ids) for principal, ids in sorted(admins.items())},
            "organizational_units": [
                {"id": ou.id, "name": ou.name, "parent": ou.parent_id} for ou in backend.ou if ou.type != "ROOT"
            ],
            "accounts": [
                {
                    "id": account.id,
                    "name": account.name,
                    "email": account.email,
                    "parent": account.parent_id,
                    "status": account.state,
                    "contacts": self.contacts(account.id),
                    **_present("primary_contact", self.primary_contact(account.id)),
                    **_present("phone_verification", self.phone_verification(account.id)),
                    **_present("regions", self.regions(account.id, log or _ACTIVE_LOGS[-1])),
                    **({"tags": dict(account.tags)} if account.tags else {}),
                }
                for account in backend.accounts
            ],
        }


def _phone_statuses(backend: Any) -> dict[str, str]:
    """The verification status of each phone number the account's primary contact has had."""
    if not hasattr(backend, "phone_statuses"):
        backend.phone_statuses = {}
    statuses: dict[str, str] = backend.phone_statuses
    return statuses


def _phone_status(backend: Any) -> str:
    phone = str((getattr(backend, "contact_information", None) or {}).get("PhoneNumber"))
    return _phone_statuses(backend).get(phone, VERIFIED)


def _present(key: str, value: Any) -> dict[str, Any]:
    return {key: value} if value else {}


def _fixed_id(generator: str, value: str | None) -> contextlib.AbstractContextManager[Any]:
    """moto draws IDs at random; a seeded organization keeps the IDs it was given."""
    if value is None:
        return contextlib.nullcontext()
    return mock.patch.object(org_models.utils, generator, return_value=value)
