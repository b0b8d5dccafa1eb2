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
