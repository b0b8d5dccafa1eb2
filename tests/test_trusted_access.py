"""Trusted-access handler lifecycle against the strict simulated organization."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from org_bootstrap.handlers import trusted_access
from org_bootstrap.validation import InvalidInputError
from simulation.organization import ApiLog, Organization, Storm
from tests.conftest import cfn_event

PRINCIPAL = "account.amazonaws.com"


def create(removal: str = "undo", principal: str = PRINCIPAL) -> dict[str, Any]:
    return trusted_access.on_event(cfn_event("Create", {"ServicePrincipal": principal, "Removal": removal}))


def delete(physical_id: str, removal: str = "undo", principal: str = PRINCIPAL) -> dict[str, Any]:
    event = cfn_event("Delete", {"ServicePrincipal": principal, "Removal": removal}, physical_id=physical_id)
    return trusted_access.on_event(event)


def test_create_enables_and_delete_undoes(org: Organization) -> None:
    result = create()
    assert PRINCIPAL in org.trusted_principals()
    assert result["PhysicalResourceId"] == "org-bootstrap/trusted-access/account.amazonaws.com/created"
    assert result["Data"]["Origin"] == "created"
    delete(result["PhysicalResourceId"])
    assert PRINCIPAL not in org.trusted_principals()


def test_create_adopts_and_delete_leaves_it_on(org: Organization) -> None:
    org.enable_trusted_access()
    result = create()
    assert result["PhysicalResourceId"].endswith("/adopted")
    delete(result["PhysicalResourceId"])
    assert PRINCIPAL in org.trusted_principals()


def test_rerun_keeps_created_origin(org: Organization) -> None:
    first = create()
    event = cfn_event(
        "Update",
        {"ServicePrincipal": PRINCIPAL, "Removal": "undo"},
        physical_id=first["PhysicalResourceId"],
        old_properties={"ServicePrincipal": PRINCIPAL, "Removal": "undo"},
    )
    again = trusted_access.on_event(event)
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]


def test_retain_leaves_enabled_access_on(org: Organization) -> None:
    result = create(removal="retain")
    delete(result["PhysicalResourceId"], removal="retain")
    assert PRINCIPAL in org.trusted_principals()


def test_changed_principal_enables_new_and_replacement_delete_disables_old(org: Organization) -> None:
    first = create()
    update = cfn_event(
        "Update",
        {"ServicePrincipal": "ssm.amazonaws.com", "Removal": "undo"},
        physical_id=first["PhysicalResourceId"],
        old_properties={"ServicePrincipal": PRINCIPAL, "Removal": "undo"},
    )
    second = trusted_access.on_event(update)
    assert second["PhysicalResourceId"] != first["PhysicalResourceId"], "a new ID makes CloudFormation delete the old"
    assert {PRINCIPAL, "ssm.amazonaws.com"} <= org.trusted_principals()
    # CloudFormation then deletes the old physical resource, with the old properties.
    delete(first["PhysicalResourceId"])
    assert org.trusted_principals() == {"ssm.amazonaws.com"}


def test_delete_keeps_access_while_an_unmanaged_delegated_administrator_remains(org: Organization) -> None:
    result = create()
    org.organizations.register_delegated_administrator(AccountId=org.members[0], ServicePrincipal=PRINCIPAL)  # type: ignore[attr-defined]
    delete(result["PhysicalResourceId"])
    assert PRINCIPAL in org.trusted_principals()


def test_delete_of_a_failed_create_does_nothing(org: Organization) -> None:
    org.enable_trusted_access()
    delete("request-1")
    assert PRINCIPAL in org.trusted_principals()


def test_bad_input_fails_before_any_change(org: Organization) -> None:
    with pytest.raises(InvalidInputError, match=r"ServicePrincipal: 'account' is not a service principal"):
        create(principal="account")
    with pytest.raises(InvalidInputError, match=r"Removal: 'drop' is not one of retain, undo"):
        create(removal="drop")
    assert org.trusted_principals() == set()


def test_concurrent_modification_is_retried(org: Organization, api_log: ApiLog) -> None:
    api_log.add_storm(Storm({"EnableAWSServiceAccess"}, calls=2, code="ConcurrentModificationException"))
    with mock.patch("botocore.endpoint.time.sleep") as slept:
        create()
    assert api_log.faults["EnableAWSServiceAccess", "ConcurrentModificationException"] == 2
    assert api_log.organizations_calls["EnableAWSServiceAccess"] == 3
    assert slept.call_count == 2
    assert PRINCIPAL in org.trusted_principals()


def test_other_errors_fail_with_the_service_message(org: Organization) -> None:
    # Organizations refuses unknown principals: the error reaches CloudFormation as raised.
    with pytest.raises(ClientError, match="unrecognized service principal"):
        delete("org-bootstrap/trusted-access/unknown.amazonaws.com/created", principal="unknown.amazonaws.com")
