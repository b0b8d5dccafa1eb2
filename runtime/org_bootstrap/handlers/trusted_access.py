"""Custom resource: trusted access for a service principal in AWS Organizations.

Create enables trusted access, or adopts it when it is already on. Delete disables it only when
the stack enabled it and the removal policy is ``undo``, or when CloudFormation rolls back the
deploy that enabled it. A changed service principal gets a new physical ID, so CloudFormation sends
a Delete for the old principal after the Update.
"""

from __future__ import annotations

import logging
from typing import Any

from org_bootstrap.aws import clients
from org_bootstrap.handlers.resource import (
    ADOPTED,
    CREATED,
    REMOVAL_POLICIES,
    Ownership,
    log_event,
    properties,
    rolling_back,
)
from org_bootstrap.validation import InvalidInputError, service_principal_problem

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)
KIND = "trusted-access"


@clients.until_invocation_ends
def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    log_event(event)
    organizations = clients.client("organizations")
    if event["RequestType"] == "Delete":
        removal = properties(event).get("Removal", "retain")
        if removal != "undo" and rolling_back(event):
            removal = "undo"  # the deploy that enabled it failed: it goes, as the rest of that deploy
        return delete(organizations, event["PhysicalResourceId"], removal=removal)
    principal, _ = parse(properties(event))
    current = Ownership.parse(event.get("PhysicalResourceId", ""), KIND)
    return ensure_enabled(organizations, principal, current)


def parse(props: dict[str, Any]) -> tuple[str, str]:
    principal = props.get("ServicePrincipal")
    removal = props.get("Removal", "retain")
    problems = [service_principal_problem("ServicePrincipal", principal)]
    if removal not in REMOVAL_POLICIES:
        problems.append(f"Removal: {removal!r} is not one of {', '.join(REMOVAL_POLICIES)}")
    found = [problem for problem in problems if problem]
    if found:
        raise InvalidInputError(found)
    return str(principal), str(removal)


def enabled_principals(organizations: Any) -> set[str]:
    paginator = organizations.get_paginator("list_aws_service_access_for_organization")
    return {
        service["ServicePrincipal"]
        for page in paginator.paginate()
        for service in page.get("EnabledServicePrincipals", [])
    }


def ensure_enabled(organizations: Any, principal: str, current: Ownership | None) -> dict[str, Any]:
    if principal in enabled_principals(organizations):
        # Already on: keep what we knew about it (we enabled it earlier), or record the adoption.
        origin = current.origin if current is not None and current.key == (principal,) else ADOPTED
        LOG.info("trusted access for %s is already enabled (%s)", principal, origin)
    else:
        organizations.enable_aws_service_access(ServicePrincipal=principal)
        origin = CREATED
        LOG.info("enabled trusted access for %s", principal)
    ownership = Ownership(KIND, (principal,), origin)
    return {"PhysicalResourceId": ownership.physical_id, "Data": {"ServicePrincipal": principal, "Origin": origin}}


def delete(organizations: Any, physical_id: str, *, removal: str) -> dict[str, Any]:
    ownership = Ownership.parse(physical_id, KIND)
    if ownership is None:
        LOG.info("nothing to delete: %s was never created", physical_id)
    elif removal != "undo":
        LOG.info("removal policy is %s: leaving trusted access for %s on", removal, ownership.key[0])
    elif ownership.origin != CREATED:
        LOG.info("trusted access for %s was adopted, not enabled by this stack: leaving it on", ownership.key[0])
    else:
        principal = ownership.key[0]
        admins = organizations.get_paginator("list_delegated_administrators").paginate(ServicePrincipal=principal)
        remaining = [admin["Id"] for page in admins for admin in page.get("DelegatedAdministrators", [])]
        if remaining:
            # Disabling trusted access under a delegated administrator the stack does not manage
            # would break that account's tooling; leave both as they are and say so.
            LOG.warning(
                "not disabling trusted access for %s: delegated administrators still registered: %s",
                principal,
                ", ".join(remaining),
            )
        else:
            organizations.disable_aws_service_access(ServicePrincipal=principal)
            LOG.info("disabled trusted access for %s", principal)
    return {"PhysicalResourceId": physical_id}
