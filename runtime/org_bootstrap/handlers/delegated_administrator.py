"""Custom resource: a member account registered as delegated administrator for a service.

Create registers the account, or adopts it when it is already registered. Another account
already registered is an error naming it. The account is checked first (a member of the
organization, ACTIVE, not the management account), so a bad config changes nothing.

Changing the account deregisters the old one first (``account.amazonaws.com`` allows one delegated
administrator at a time), then registers the new one; if that fails, the old one is registered
again before the error is raised, so the organization keeps its delegated administrator and the
stack keeps its physical ID, and with it the old registration's ownership (created or adopted).
The new physical ID of a successful change makes CloudFormation send a Delete for the old, which
then finds nothing left to do. CloudFormation's rollback of a failed Update is an Update back to
the old account with the old physical ID: the account of the failed properties is released and the
old one registered with the ownership its physical ID records. Delete deregisters only an account
the stack registered, and only under ``undo``.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.aws import clients
from org_bootstrap.aws.organization import Account, account_of
from org_bootstrap.handlers.preflight import delegated_administrator_problem
from org_bootstrap.handlers.resource import (
    ADOPTED,
    CREATED,
    REMOVAL_POLICIES,
    Ownership,
    log_event,
    old_properties,
    properties,
)
from org_bootstrap.validation import InvalidInputError, account_id_problem, service_principal_problem

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)
KIND = "delegated-administrator"


@clients.until_invocation_ends
def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    log_event(event)
    organizations = clients.client("organizations")
    props = properties(event)
    if event["RequestType"] == "Delete":
        return delete(organizations, event["PhysicalResourceId"], removal=props.get("Removal", "retain"))
    principal, account_id = parse(props)
    current = Ownership.parse(event.get("PhysicalResourceId", ""), KIND)
    # The account of the properties this Update replaces: a rollback's are the failed ones.
    replaced = old_properties(event).get("AccountId") if event["RequestType"] == "Update" else None
    return ensure_registered(
        organizations, principal, account_id, current, replaced=replaced if isinstance(replaced, str) else None
    )


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


def ensure_registered(
    organizations: Any, principal: str, account_id: str, current: Ownership | None, *, replaced: str | None = None
) -> dict[str, Any]:
    organization = organizations.describe_organization()["Organization"]
    account = _account(organizations, account_id)
    problem = delegated_administrator_problem(
        "AccountId", account_id, account, organization["MasterAccountId"], organization["Id"]
    )
    if problem:
        raise InvalidInputError([problem])
    admins = registered(organizations, principal)
    # What this stack registered under its previous properties: the account its physical ID names
    # and, in a rollback, the account of the failed Update.
    ours = current is not None and current.key[0] == principal
    previous = [
        other
        for other in dict.fromkeys([current.key[1] if ours and current is not None else None, replaced])
        if other is not None and other != account_id and other in admins
    ]
    # The origin a registration the physical ID records keeps, whoever registers it again.
    recorded = current.origin if current is not None and current.key == (principal, account_id) else None
    if account_id in admins:
        origin = recorded or ADOPTED
        LOG.info("%s is already delegated administrator for %s (%s)", account_id, principal, origin)
    else:
        others = [admin for admin in admins if admin not in previous]
        if others:
            raise RuntimeError(
                f"{principal} already has delegated administrator {', '.join(others)}, which this stack did not "
                f"register; deregister it (organizations deregister-delegated-administrator --account-id "
                f"{others[0]} --service-principal {principal}) or set delegated_administrator_account_id to it"
            )
        # The configured account changed: the old registration goes first, because the service
        # may allow only one delegated administrator at a time.
        for other in previous:
            _deregister(organizations, principal, other)
        try:
            _register(organizations, principal, account_id)
        except ClientError as error:
            _register_again(organizations, principal, previous, error)
            raise
        origin = recorded or CREATED
    ownership = Ownership(KIND, (principal, account_id), origin)
    return {
        "PhysicalResourceId": ownership.physical_id,
        "Data": {"AccountId": account_id, "ServicePrincipal": principal, "Origin": origin},
    }


def _account(organizations: Any, account_id: str) -> Account | None:
    try:
        item = organizations.describe_account(AccountId=account_id)["Account"]
    except ClientError as error:
        if clients.error_code(error) == "AccountNotFoundException":
            return None
        raise
    return account_of(item)


def _register(organizations: Any, principal: str, account_id: str) -> None:
    organizations.register_delegated_administrator(AccountId=account_id, ServicePrincipal=principal)
    LOG.info("registered %s as delegated administrator for %s", account_id, principal)


def _register_again(organizations: Any, principal: str, previous: list[str], failure: ClientError) -> None:
    """After a failed change, put the previous registration back; the caller raises ``failure``."""
    for account_id in previous:
        LOG.error("registering the new account failed (%s): registering %s again", failure, account_id)
        try:
            _register(organizations, principal, account_id)
        except ClientError as again:
            raise RuntimeError(
                f"registering the new delegated administrator failed ({failure}), and registering {account_id} "
                f"again failed too ({again}): {principal} has no delegated administrator now; CloudFormation's "
                f"rollback registers {account_id} again"
            ) from failure


def _deregister(organizations: Any, principal: str, account_id: str) -> None:
    organizations.deregister_delegated_administrator(AccountId=account_id, ServicePrincipal=principal)
    LOG.info("deregistered %s as delegated administrator for %s", account_id, principal)


def delete(organizations: Any, physical_id: str, *, removal: str) -> dict[str, Any]:
    ownership = Ownership.parse(physical_id, KIND)
    if ownership is None:
        LOG.info("nothing to delete: %s was never created", physical_id)
        return {"PhysicalResourceId": physical_id}
    principal, account_id = ownership.key
    if account_id not in registered(organizations, principal):
        # After a change of account, the old one was deregistered by the Update already.
        LOG.info("%s is no longer delegated administrator for %s: nothing to leave or undo", account_id, principal)
    elif removal != "undo":
        LOG.info("removal policy is %s: leaving %s registered for %s", removal, account_id, principal)
    elif ownership.origin != CREATED:
        LOG.info("%s was adopted, not registered by this stack: leaving it registered", account_id)
    else:
        _deregister(organizations, principal, account_id)
    return {"PhysicalResourceId": physical_id}
