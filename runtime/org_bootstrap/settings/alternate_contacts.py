"""The BILLING, OPERATIONS and SECURITY alternate contacts of an account: GetAlternateContact,
PutAlternateContact and DeleteAlternateContact, one contact type per item.

Their keys are the bare contact types (``BILLING``): the keys their jobs and snapshots stored
before there were other settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.clients import error_code
from org_bootstrap.contact_spec import ContactSpec
from org_bootstrap.settings import DELETE, AccountCalls, Setting
from org_bootstrap.validation import CONTACT_FIELD_RULES, mask

GET, PUT, REMOVE = "GetAlternateContact", "PutAlternateContact", "DeleteAlternateContact"
FIELDS = tuple(CONTACT_FIELD_RULES)  # Name, Title, EmailAddress, PhoneNumber


class AlternateContacts(Setting):
    name = "alternate_contacts"
    spec_type = ContactSpec
    read_operations = (GET,)
    write_operations = (PUT, REMOVE)
    absent = DELETE  # restoring a type the account did not have deletes it

    @property
    def resource_property(self) -> str:
        return "Spec"  # the property the alternate contacts had when they were the only setting

    def key(self, item: str) -> str:
        return item

    def read(self, api: AccountCalls, account_id: str, items: Sequence[str]) -> dict[str, Any]:
        return {contact_type: get(api, account_id, contact_type) for contact_type in items}

    def action(self, current: Any, wanted: Any) -> str | None:
        if isinstance(wanted, Mapping):
            return None if same(current, wanted) else "put"
        return "delete" if current is not None else None

    def write(self, api: AccountCalls, account_id: str, item: str, wanted: Any, action: str) -> None:
        if action == "put":
            api.call(PUT, account_id, AlternateContactType=item, **wanted)
            return
        try:
            api.call(REMOVE, account_id, AlternateContactType=item)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise

    def logged(self, action: str, account_id: str, item: str, wanted: Any) -> str:
        if action == "put":
            return f"put {item} contact of {account_id} (e-mail {mask('EmailAddress', wanted['EmailAddress'])})"
        return f"deleted {item} contact of {account_id}"


SETTING = AlternateContacts()


def get(api: AccountCalls, account_id: str, contact_type: str) -> dict[str, str] | None:
    try:
        found = api.call(GET, account_id, AlternateContactType=contact_type)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return None
        raise
    return {key: found["AlternateContact"][key] for key in FIELDS}


def same(current: Mapping[str, str] | None, wanted: Mapping[str, str]) -> bool:
    return current is not None and all(current.get(key) == wanted.get(key) for key in FIELDS)
