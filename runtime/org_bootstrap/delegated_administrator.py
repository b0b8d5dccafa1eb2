"""Custom resource: a member account registered as delegated administrator for a service.

Create registers the account, or adopts it when it is already registered. Another account
already registered is an error naming it. Changing the account deregisters the old one first
(``account.amazonaws.com`` allows one delegated administrator at a time), then registers the new
one; the new physical ID makes CloudFormation send a Delete for the old, which then finds nothing
left to do. Delete deregisters only an account the stack registered, and only under ``undo``.
"""

from __future__ import annotations

import logging
from typing import Any

from org_bootstrap import clients
from org_bootstrap.resource import ADOPTED, CREATED, REMOVAL_POLICIES, Ownership, log_event, properties
from org_bootstrap.validation import InvalidInputError, account_id_problem, service_principal_problem

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)
KIND = "delegated-administrator"


def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    log_event(event)
    organizations = clients.client("organizations")
    props = properties(event)
    if event["RequestType"] == "Delete":
        return delete(organizations, event["PhysicalResourceId"], removal=props.get("Removal", "retain"))
    principal, account_id = parse(props)
    current = Ownership.parse(event.get("PhysicalResourceId", ""), KIND)
    return ensure_registered(organizations, principal, account_id, current)


def parse(props: dict[str, Any]) -> tuple[str, str]:
    principal = props.get("ServicePrincipal")
    account_id = props.get("AccountId")
    removal = props.get("Removal", "retain")
    problems = [service_principal_problem("ServicePrincipal", principal), account_id_problem("AccountId", account_id)]
    if removal not in REMOVAL_POLICIES:
        problems.append(f"Removal: {removal!r} is not one of {', '.join(REMOVAL_POLICIES)}")
    found = [problem for problem in problems if problem]
    if found:
        raise InvalidInputError(found)
    return str(principal), str(account_id)


def registered(organizations: Any, principal: str) -> list[str]:
    pages = organizations.get_paginator("list_delegated_administrators").paginate(ServicePrincipal=principal)
    return [admin["Id"] for page in pages for admin in page.get("DelegatedAdministrators", [])]


def ensure_registered(organizations: Any, principal: str, account_id: str, current: Ownership | None) -> dict[str, Any]:
    management_account = organizations.describe_organization()["Organization"]["MasterAccountId"]
    if account_id == management_account:
        raise InvalidInputError(
            [f"AccountId: {account_id} is the management account, which cannot be a delegated administrator"]
        )
    admins = registered(organizations, principal)
    previous = current.key[1] if current is not None and current.key[0] == principal else None
    if previous is not None and previous != account_id and previous in admins:
        # The configured account changed: the old registration goes first, because the service
        # may allow only one delegated administrator at a time.
        _deregister(organizations, principal, previous)
        admins.remove(previous)
    if account_id in admins:
        origin = current.origin if current is not None and current.key == (principal, account_id) else ADOPTED
        LOG.info("%s is already delegated administrator for %s (%s)", account_id, principal, origin)
    elif admins:
        raise RuntimeError(
            f"{principal} already has delegated administrator {', '.join(admins)}, which this stack did not "
            f"register; deregister it (organizations deregister-delegated-administrator --account-id "
            f"{admins[0]} --service-principal {principal}) or set delegated_administrator_account_id to it"
        )
    else:
        organizations.register_delegated_administrator(AccountId=account_id, ServicePrincipal=principal)
        origin = CREATED
        LOG.info("registered %s as delegated administrator for %s", account_id, principal)
    ownership = Ownership(KIND, (principal, account_id), origin)
    return {
        "PhysicalResourceId": ownership.physical_id,
        "Data": {"AccountId": account_id, "ServicePrincipal": principal, "Origin": origin},
    }


def _deregister(organizations: Any, principal: str, account_id: str) -> None:
    organizations.deregister_delegated_administrator(AccountId=account_id, ServicePrincipal=principal)
    LOG.info("deregistered %s as delegated administrator for %s", account_id, principal)


def delete(organizations: Any, physical_id: str, *, removal: str) -> dict[str, Any]:
    ownership = Ownership.parse(physical_id, KIND)
    if ownership is None:
        LOG.info("nothing to delete: %s was never created", physical_id)
        return {"PhysicalResourceId": physical_id}
    principal, account_id = ownership.key
    if removal != "undo":
        LOG.info("removal policy is %s: leaving %s registered for %s", removal, account_id, principal)
    elif ownership.origin != CREATED:
        LOG.info("%s was adopted, not registered by this stack: leaving it registered", account_id)
    elif account_id not in registered(organizations, principal):
        LOG.info("%s is no longer delegated administrator for %s: nothing to undo", account_id, principal)
    else:
        _deregister(organizations, principal, account_id)
    return {"PhysicalResourceId": physical_id}
