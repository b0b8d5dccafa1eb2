"""One retry policy for every client: Organizations reads and writes retried on
ConcurrentModificationException and throttling, paginators included; the paced Account Management
throttles handed back to the pacing; errors a retry cannot fix raised at once."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from org_bootstrap.aws import clients
from org_bootstrap.aws.organization import list_accounts, management_account_id
from org_bootstrap.engine import clock as clocks
from simulation.organization import ApiLog, Organization, Storm

CME = "ConcurrentModificationException"


@pytest.fixture
def slept() -> Iterator[mock.MagicMock]:
    with mock.patch("botocore.endpoint.time.sleep") as sleep:
        yield sleep


def test_a_read_through_a_paginator_is_retried_on_concurrent_modification(
    org: Organization, api_log: ApiLog, slept: mock.MagicMock
) -> None:
    organizations = clients.client("organizations")
    api_log.add_storm(Storm({"ListAccountsForParent"}, calls=3, code=CME))

    accounts = list_accounts(organizations)

    assert {account.id for account in accounts} == {org.management_account_id, *org.members}  # type: ignore[attr-defined]
    assert api_log.faults["ListAccountsForParent", CME] == 3
    assert slept.call_count == 3
    delays = [call.args[0] for call in slept.call_args_list]
    assert all(0 <= delay <= clients.BASE_DELAY_SECONDS * 2**attempt for attempt, delay in enumerate(delays))


def test_describe_organization_is_retried_on_concurrent_modification_and_throttling(
    org: Organization, api_log: ApiLog, slept: mock.MagicMock
) -> None:
    organizations = clients.client("organizations")
    before = api_log.organizations_calls["DescribeOrganization"]
    api_log.add_storm(Storm({"DescribeOrganization"}, calls=2, code=CME))
    api_log.add_storm(Storm({"DescribeOrganization"}, calls=2))  # then TooManyRequestsException

    assert management_account_id(organizations) == org.management_account_id
    assert api_log.organizations_calls["DescribeOrganization"] - before == 5
    assert api_log.faults["DescribeOrganization", "TooManyRequestsException"] == 2


def test_retries_stop_after_the_last_attempt(org: Organization, api_log: ApiLog, slept: mock.MagicMock) -> None:
    organizations = clients.client("organizations")
    before = api_log.organizations_calls["ListRoots"]
    api_log.add_storm(Storm({"ListRoots"}, code=CME))  # never ends
    with pytest.raises(ClientError, match=CME):
        list_accounts(organizations)
    assert api_log.organizations_calls["ListRoots"] - before == clients.MAX_ATTEMPTS


class _Invocation:
    """A Lambda context with ``seconds`` left, on a clock that the retries' sleeps move forward."""

    def __init__(self, seconds: float) -> None:
        self.now = 0.0
        self.ends = seconds

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def wait(self, condition: object, timeout: float) -> None:
        self.now += timeout

    def notify_all(self, condition: object) -> None:
        pass

    def get_remaining_time_in_millis(self) -> int:
        return int((self.ends - self.now) * 1000)


@pytest.fixture
def invocation(slept: mock.MagicMock) -> Iterator[_Invocation]:
    invocation = _Invocation(900.0)  # a 15-minute Lambda
    slept.side_effect = invocation.sleep
    with clocks.use(invocation):
        yield invocation


@clients.until_invocation_ends
def _list_accounts_handler(event: object, context: object = None) -> int:
    return len(list_accounts(clients.client("organizations")))


def test_in_an_invocation_a_throttling_storm_is_retried_until_its_end_not_ten_times(
    org: Organization, api_log: ApiLog, invocation: _Invocation
) -> None:
    # A storm of 30 throttles on one read (seeds 9 and 19 of the chaos run: a rollback failed on one).
    api_log.add_storm(Storm({"ListRoots"}, calls=30))

    assert _list_accounts_handler({}, invocation) == 1 + len(org.members)  # type: ignore[attr-defined]
    assert api_log.faults["ListRoots", "TooManyRequestsException"] == 30
    assert invocation.now < invocation.ends - clients.INVOCATION_MARGIN_SECONDS


def test_in_an_invocation_retries_stop_before_its_end_leaving_the_margin(
    org: Organization, api_log: ApiLog, invocation: _Invocation
) -> None:
    api_log.add_storm(Storm({"ListRoots"}, code=CME))  # never ends

    with pytest.raises(ClientError, match=CME):
        _list_accounts_handler({}, invocation)
    assert api_log.faults["ListRoots", CME] > clients.MAX_ATTEMPTS
    assert invocation.ends - clients.INVOCATION_MARGIN_SECONDS - clients.MAX_DELAY_SECONDS <= invocation.now
    assert invocation.now < invocation.ends - clients.INVOCATION_MARGIN_SECONDS


def test_in_an_invocation_an_outage_still_stops_after_the_last_attempt(
    org: Organization, api_log: ApiLog, invocation: _Invocation
) -> None:
    # A 5xx is not contention: a deploy fails in a minute, saying why, rather than at its timeout.
    api_log.add_storm(Storm({"ListRoots"}, code="ServiceUnavailableException", message="down"))  # answered 503
    with pytest.raises(ClientError, match="ServiceUnavailableException"):
        _list_accounts_handler({}, invocation)
    assert api_log.faults["ListRoots", "ServiceUnavailableException"] == clients.MAX_ATTEMPTS


def test_without_a_context_throttles_stop_after_the_last_attempt(
    org: Organization, api_log: ApiLog, slept: mock.MagicMock
) -> None:
    api_log.add_storm(Storm({"ListRoots"}, calls=30))
    with pytest.raises(ClientError, match="TooManyRequestsException"):
        _list_accounts_handler({})
    assert api_log.faults["ListRoots", "TooManyRequestsException"] == clients.MAX_ATTEMPTS


def test_an_error_a_retry_cannot_fix_is_raised_at_once(
    org: Organization, api_log: ApiLog, slept: mock.MagicMock
) -> None:
    organizations = clients.client("organizations")
    api_log.add_storm(Storm({"DescribeAccount"}, code="AccessDeniedException", message="not allowed"))
    before = api_log.organizations_calls["DescribeAccount"]
    with pytest.raises(ClientError, match="AccessDeniedException"):
        organizations.describe_account(AccountId=org.members[0])  # type: ignore[attr-defined]
    assert api_log.organizations_calls["DescribeAccount"] - before == 1
    assert slept.call_count == 0


def test_account_management_throttles_go_back_to_the_pacing_unretried(
    org: Organization, api_log: ApiLog, slept: mock.MagicMock
) -> None:
    # The adaptive pacing must see every throttle to slow down; botocore must not hide them.
    org.enable_trusted_access()
    account = clients.client("account")
    api_log.throttle_rate = {"GetAlternateContact": 1.0}
    with pytest.raises(ClientError, match="TooManyRequestsException"):
        account.get_alternate_contact(AccountId=org.members[0], AlternateContactType="BILLING")  # type: ignore[attr-defined]
    assert api_log.calls["GetAlternateContact"] == 1
    assert slept.call_count == 0
