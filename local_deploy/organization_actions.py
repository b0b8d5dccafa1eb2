"""Day two on the simulated organization: what people and AWS do to it, and the events AWS logs.

Each action changes the simulated organization through its API, as the person or service would,
and returns the events CloudTrail logs for it, each with the account whose default event bus
receives it (``simulation.cloudtrail`` builds them, in the shapes the handler tests use):

- create an account, as Organizations does (CreateAccount: the account starts in the root;
  ``CreateAccountResult`` and ``AccountJoinedOrganization`` CREATED, then ``MoveAccount`` into its
  OU) or as Control Tower does (the same calls by Control Tower, then ``CreateManagedAccount``);
- invite an account, which accepts (``InviteAccountToOrganization`` in the management account,
  ``AcceptHandshake`` in the invited account's own trail, ``AccountJoinedOrganization`` INVITED in
  the management account), then optionally move it into an OU;
- move an account (``MoveAccount`` with ``sourceParentId`` and ``destinationParentId``);
- suspend (close) an account (``CloseAccount``), tag an account (``TagResource``);
- change an alternate contact by hand, from the account itself (``PutAlternateContact``, source
  ``aws.account``, in that account's trail).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from org_bootstrap.settings.alternate_contacts.spec import CONTACT_TYPES, contact_problems
from org_bootstrap.validation import account_id_problem
from simulation import cloudtrail
from simulation.organization import Organization, acting_as


class ActionError(ValueError):
    """An action the organization refuses, or a name it does not know; says which."""


@dataclass
class Action:
    summary: str
    account_id: str
    events: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (event, receiving account)
    by_hand: dict[str, str] = field(default_factory=dict)  # contact type -> what a person did


def _logged(event: dict[str, Any]) -> dict[str, Any]:
    event["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event["detail"]["eventTime"] = event["time"]
    return event


def parent_id(org: Organization, name_or_id: str) -> str:
    """An OU (or the root) by ID or by name, as typed on the command line."""
    ous = org.to_mapping()["organizational_units"]
    if name_or_id in (org.root_id, "root", "Root"):
        return org.root_id
    for ou in ous:
        if name_or_id in (ou["id"], ou["name"]) or name_or_id.lower() == str(ou["name"]).lower():
            return str(ou["id"])
    known = ", ".join(f"{ou['name']} ({ou['id']})" for ou in ous)
    raise ActionError(f"--ou {name_or_id!r}: no such OU (the root, or one of: {known})")


def _account(org: Organization, account_id: str) -> Mapping[str, Any]:
    for account in org.to_mapping()["accounts"]:
        if account["id"] == account_id:
            return account
    raise ActionError(f"account {account_id!r} is not in the simulated organization")


def _move(org: Organization, account_id: str, destination: str) -> dict[str, Any]:
    source = str(_account(org, account_id)["parent"])
    org.organizations.move_account(AccountId=account_id, SourceParentId=source, DestinationParentId=destination)
    return _logged(cloudtrail.move_account(account_id, source, destination, org.management_account_id))


def create_account(
    org: Organization, name: str, ou: str, *, control_tower: bool = False, account_id: str | None = None
) -> Action:
    _new_id(account_id)
    management = org.management_account_id
    destination = parent_id(org, ou)
    email = f"aws-{''.join(c if c.isalnum() else '-' for c in name.lower())}@example.com"
    new = org.create_account(name, account_id=account_id, email=email)  # CreateAccount: into the root
    events = [
        _logged(cloudtrail.create_account_result(new, management)),
        _logged(cloudtrail.account_joined(new, management, method="CREATED")),
    ]
    if destination != org.root_id:
        events.append(_move(org, new, destination))
    how = "as Organizations does (CreateAccount, then MoveAccount)"
    if control_tower:
        events.append(_logged(cloudtrail.managed_account("CreateManagedAccount", new, destination, management)))
        how = "as Control Tower's Account Factory does (CreateAccount and MoveAccount, then CreateManagedAccount)"
    return Action(f"Created account {new} ({name}) in {_where(org, destination)}, {how}", new, _to(events, management))


def _new_id(account_id: str | None) -> None:
    problem = account_id_problem("account ID", account_id) if account_id is not None else None
    if problem:
        raise ActionError(problem)


def invite_account(org: Organization, account_id: str, name: str, ou: str | None) -> Action:
    _new_id(account_id)
    management = org.management_account_id
    if any(account["id"] == account_id for account in org.to_mapping()["accounts"]):
        raise ActionError(f"account {account_id} is already in the organization")
    invite = cloudtrail.api_call(
        "InviteAccountToOrganization",
        management,
        {"target": {"id": account_id, "type": "ACCOUNT"}},
        None,
        management,
    )
    org.create_account(name, account_id=account_id)  # the invited account, once it has accepted
    events = [
        (_logged(invite), management),
        (_logged(cloudtrail.accept_handshake(account_id, management)), account_id),  # the invited account's trail
        (_logged(cloudtrail.account_joined(account_id, management, method="INVITED")), management),
    ]
    summary = f"Invited account {account_id} ({name}); it accepted and joined the root"
    if ou is not None and parent_id(org, ou) != org.root_id:
        destination = parent_id(org, ou)
        events.append((_move(org, account_id, destination), management))
        summary += f", then was moved to {_where(org, destination)}"
    return Action(summary, account_id, events)


def move_account(org: Organization, account_id: str, ou: str) -> Action:
    source = str(_account(org, account_id)["parent"])
    destination = parent_id(org, ou)
    event = _move(org, account_id, destination)
    summary = f"Moved account {account_id} from {_where(org, source)} to {_where(org, destination)}"
    return Action(summary, account_id, _to([event], org.management_account_id))


def suspend_account(org: Organization, account_id: str) -> Action:
    _account(org, account_id)
    if account_id == org.management_account_id:
        raise ActionError("the management account cannot be closed from the organization")
    org.set_status(account_id, "SUSPENDED")
    management = org.management_account_id
    event = cloudtrail.api_call("CloseAccount", management, {"accountId": account_id}, None, management)
    return Action(f"Closed account {account_id}: it is SUSPENDED", account_id, _to([_logged(event)], management))


def tag_account(org: Organization, account_id: str, key: str, value: str) -> Action:
    _account(org, account_id)
    org.organizations.tag_resource(ResourceId=account_id, Tags=[{"Key": key, "Value": value}])
    management = org.management_account_id
    request = {"resourceId": account_id, "tags": [{"key": key, "value": value}]}
    event = cloudtrail.api_call("TagResource", management, request, None, management)
    return Action(f"Tagged account {account_id} {key}={value}", account_id, _to([_logged(event)], management))


def edit_contact(org: Organization, account_id: str, contact_type: str, fields: Mapping[str, str]) -> Action:
    """Someone in the account changes one of its alternate contacts in the console."""
    account = _account(org, account_id)
    if contact_type not in CONTACT_TYPES:
        raise ActionError(f"contact type {contact_type!r}: one of {', '.join(CONTACT_TYPES)}")
    contact = {**dict(account["contacts"].get(contact_type) or {}), **fields}
    problems = contact_problems(f"{contact_type} contact", contact)
    if problems:
        raise ActionError("; ".join(problems))
    with acting_as(account_id):  # from the account itself: no AccountId
        org.account.put_alternate_contact(AlternateContactType=contact_type, **contact)
    request = {"alternateContactType": contact_type, "name": "HIDDEN_DUE_TO_SECURITY_REASONS"}
    event = cloudtrail.account_api_call("PutAlternateContact", account_id, request, org.management_account_id)
    summary = f"Changed the {contact_type} contact of {account_id} by hand (from the account itself)"
    return Action(summary, account_id, [(_logged(event), account_id)], {contact_type: "put by hand"})


def _to(events: list[dict[str, Any]], account: str) -> list[tuple[dict[str, Any], str]]:
    return [(event, account) for event in events]


def _where(org: Organization, parent: str) -> str:
    if parent == org.root_id:
        return "the root"
    names = {ou["id"]: ou["name"] for ou in org.to_mapping()["organizational_units"]}
    return f"{names.get(parent, parent)} ({parent})"
