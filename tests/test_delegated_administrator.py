"""Delegated-administrator handler lifecycle against the strict simulated organization."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from botocore.exceptions import ClientError

from org_bootstrap.handlers import delegated_administrator
from org_bootstrap.validation import InvalidInputError
from simulation.organization import ApiLog, Organization
from tests.conftest import cfn_event

PRINCIPAL = "account.amazonaws.com"


def props(account_id: str, removal: str = "undo") -> dict[str, str]:
    return {"ServicePrincipal": PRINCIPAL, "AccountId": account_id, "Removal": removal}


def create(account_id: str, removal: str = "undo") -> dict[str, Any]:
    return delegated_administrator.on_event(cfn_event("Create", props(account_id, removal)))


def update(old_physical_id: str, old_account: str, new_account: str) -> dict[str, Any]:
    event = cfn_event("Update", props(new_account), physical_id=old_physical_id, old_properties=props(old_account))
    return delegated_administrator.on_event(event)


def delete(physical_id: str, account_id: str, removal: str = "undo") -> dict[str, Any]:
    return delegated_administrator.on_event(cfn_event("Delete", props(account_id, removal), physical_id=physical_id))


@pytest.fixture
def trusted(org: Organization) -> Organization:
    org.enable_trusted_access()
    return org


def members(org: Organization) -> list[str]:
    return org.members  # type: ignore[attr-defined]


def test_simulated_organization_requires_trusted_access_first(org: Organization) -> None:
    with pytest.raises(ClientError, match="enable trusted access"):
        create(members(org)[0])
    assert org.delegated_administrators() == set()


def test_create_registers_and_delete_deregisters(trusted: Organization) -> None:
    account = members(trusted)[0]
    result = create(account)
    assert trusted.delegated_administrators() == {account}
    assert result["PhysicalResourceId"] == f"org-bootstrap/delegated-administrator/{PRINCIPAL}/{account}/created"
    delete(result["PhysicalResourceId"], account)
    assert trusted.delegated_administrators() == set()


def test_same_account_already_registered_is_adopted_and_left_on_delete(trusted: Organization) -> None:
    account = members(trusted)[0]
    trusted.organizations.register_delegated_administrator(AccountId=account, ServicePrincipal=PRINCIPAL)
    result = create(account)
    assert result["Data"]["Origin"] == "adopted"
    delete(result["PhysicalResourceId"], account)
    assert trusted.delegated_administrators() == {account}


def test_another_account_registered_fails_naming_it(trusted: Organization) -> None:
    other, wanted = members(trusted)[1], members(trusted)[0]
    trusted.organizations.register_delegated_administrator(AccountId=other, ServicePrincipal=PRINCIPAL)
    with pytest.raises(RuntimeError, match=f"already has delegated administrator {other}"):
        create(wanted)
    assert trusted.delegated_administrators() == {other}


def test_changing_the_account_swaps_registrations(trusted: Organization) -> None:
    first, second = members(trusted)[0], members(trusted)[1]
    created = create(first)
    updated = update(created["PhysicalResourceId"], first, second)
    assert trusted.delegated_administrators() == {second}
    assert updated["PhysicalResourceId"] != created["PhysicalResourceId"]
    # CloudFormation's Delete of the replaced resource finds nothing left to undo.
    delete(created["PhysicalResourceId"], first)
    assert trusted.delegated_administrators() == {second}


def test_retain_leaves_the_registration(trusted: Organization) -> None:
    account = members(trusted)[0]
    result = create(account, removal="retain")
    delete(result["PhysicalResourceId"], account, removal="retain")
    assert trusted.delegated_administrators() == {account}


def test_management_account_is_refused_before_any_change(trusted: Organization) -> None:
    with pytest.raises(InvalidInputError, match="is the management account"):
        create(trusted.management_account_id)
    assert trusted.delegated_administrators() == set()


def test_bad_account_id_is_refused(trusted: Organization) -> None:
    with pytest.raises(InvalidInputError, match=r"AccountId: '12345' is not an AWS account ID"):
        create("12345")


def test_rerun_is_idempotent(trusted: Organization) -> None:
    account = members(trusted)[0]
    first = create(account)
    again = update(first["PhysicalResourceId"], account, account)
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert trusted.delegated_administrators() == {account}


def test_delete_of_a_failed_create_does_nothing(trusted: Organization) -> None:
    account = members(trusted)[0]
    trusted.organizations.register_delegated_administrator(AccountId=account, ServicePrincipal=PRINCIPAL)
    delete("request-1", account)
    assert trusted.delegated_administrators() == {account}


# -- changing the delegated administrator safely ---------------------------------------------------


def swap(old_physical_id: str, old_account: str, new_account: str, removal: str = "undo") -> dict[str, Any]:
    event = cfn_event(
        "Update", props(new_account, removal), physical_id=old_physical_id, old_properties=props(old_account, removal)
    )
    return delegated_administrator.on_event(event)


def rollback(old_physical_id: str, old_account: str, failed_account: str) -> dict[str, Any]:
    """CloudFormation's rollback of a failed Update: back to the old properties and physical ID."""
    event = cfn_event("Update", props(old_account), physical_id=old_physical_id, old_properties=props(failed_account))
    return delegated_administrator.on_event(event)


@pytest.fixture(params=["created", "adopted"])
def registered_first(request: pytest.FixtureRequest, trusted: Organization) -> tuple[str, str]:
    """The first member registered by the stack (created) or found registered (adopted): its physical ID."""
    first = members(trusted)[0]
    if request.param == "adopted":
        trusted.register_delegated_administrator(first)
    result = create(first)
    assert result["Data"]["Origin"] == request.param
    return first, str(result["PhysicalResourceId"])


def test_a_new_account_outside_the_organization_is_refused_before_the_old_one_is_touched(
    trusted: Organization, registered_first: tuple[str, str]
) -> None:
    first, physical_id = registered_first
    before = trusted.to_mapping()
    with pytest.raises(InvalidInputError, match="AccountId: 999999999999 is not an account of organization o-"):
        swap(physical_id, first, "999999999999")
    assert trusted.to_mapping() == before


@pytest.mark.parametrize("status", ["SUSPENDED", "PENDING_CLOSURE"])
def test_a_new_account_that_is_not_active_is_refused_before_the_old_one_is_touched(
    trusted: Organization, registered_first: tuple[str, str], status: str
) -> None:
    first, physical_id = registered_first
    second = members(trusted)[1]
    trusted.set_status(second, status)
    before = trusted.to_mapping()
    with pytest.raises(InvalidInputError, match=f"AccountId: account {second} is {status}; .* must be ACTIVE"):
        swap(physical_id, first, second)
    assert trusted.to_mapping() == before


def test_the_management_account_as_the_new_one_is_refused_before_the_old_one_is_touched(
    trusted: Organization, registered_first: tuple[str, str]
) -> None:
    first, physical_id = registered_first
    before = trusted.to_mapping()
    with pytest.raises(InvalidInputError, match="is the management account"):
        swap(physical_id, first, trusted.management_account_id)
    assert trusted.to_mapping() == before


def test_a_failed_registration_registers_the_old_account_again_and_the_rollback_keeps_its_ownership(
    trusted: Organization, registered_first: tuple[str, str], api_log: ApiLog
) -> None:
    first, physical_id = registered_first
    second = members(trusted)[1]
    api_log.failing_registrations.add(second)
    before = trusted.to_mapping()
    with pytest.raises(ClientError, match=f"simulated failure registering {second}"):
        swap(physical_id, first, second)
    assert trusted.to_mapping() == before  # the old one is registered again
    rolled_back = rollback(physical_id, first, second)
    assert rolled_back["PhysicalResourceId"] == physical_id  # created stays created, adopted stays adopted
    assert trusted.to_mapping() == before


def test_when_registering_the_old_account_again_fails_too_the_rollback_restores_it_with_its_ownership(
    trusted: Organization, registered_first: tuple[str, str], api_log: ApiLog
) -> None:
    first, physical_id = registered_first
    second = members(trusted)[1]
    before = trusted.to_mapping()
    api_log.failing_registrations.update({first, second})
    with pytest.raises(RuntimeError, match=f"registering {first} again failed too") as caught:
        swap(physical_id, first, second)
    assert "has no delegated administrator now" in str(caught.value)
    assert trusted.delegated_administrators() == set()
    api_log.failing_registrations.clear()  # the outage is over when CloudFormation rolls back
    rolled_back = rollback(physical_id, first, second)
    assert rolled_back["PhysicalResourceId"] == physical_id
    assert trusted.to_mapping() == before


def test_rolling_back_a_completed_change_releases_the_new_account_and_keeps_the_old_ownership(
    trusted: Organization, registered_first: tuple[str, str]
) -> None:
    """The change succeeded, a later resource failed: CloudFormation rolls this one back too."""
    first, physical_id = registered_first
    second = members(trusted)[1]
    before = trusted.to_mapping()
    changed = swap(physical_id, first, second)
    assert trusted.delegated_administrators() == {second}
    rolled_back = rollback(physical_id, first, second)
    assert rolled_back["PhysicalResourceId"] == physical_id
    # The rollback's cleanup deletes the new physical ID, which finds nothing left to undo.
    delete(str(changed["PhysicalResourceId"]), second)
    assert trusted.to_mapping() == before


def test_the_delete_after_a_change_says_the_old_account_is_no_longer_registered(
    trusted: Organization, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = members(trusted)[0], members(trusted)[1]
    created = create(first, removal="retain")
    swap(str(created["PhysicalResourceId"]), first, second, removal="retain")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        delete(str(created["PhysicalResourceId"]), first, removal="retain")
    assert f"{first} is no longer delegated administrator" in caplog.text
    assert f"leaving {first} registered" not in caplog.text
    assert trusted.delegated_administrators() == {second}
