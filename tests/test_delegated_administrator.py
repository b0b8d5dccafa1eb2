"""Delegated-administrator handler lifecycle against the strict simulated organization."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from org_bootstrap import delegated_administrator
from org_bootstrap.validation import InvalidInputError
from simulation.organization import Organization
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
