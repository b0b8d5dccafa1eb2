"""The BILLING, OPERATIONS and SECURITY alternate contacts of an account: GetAlternateContact,
PutAlternateContact and DeleteAlternateContact, one contact type per item.

Their keys are the bare contact types (``BILLING``): the keys their jobs and snapshots stored
before there were other settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.aws.clients import error_code
from org_bootstrap.aws.partitions import CHINA, COMMERCIAL
from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.settings import DELETE, AccountCalls, Permission, Quota, Setting
from org_bootstrap.settings.alternate_contacts.spec import CONTACT_FIELD_RULES, CONTACT_TYPES, ContactSpec
from org_bootstrap.validation import mask

GET, PUT, REMOVE = "GetAlternateContact", "PutAlternateContact", "DeleteAlternateContact"
FIELDS = tuple(CONTACT_FIELD_RULES)  # Name, Title, EmailAddress, PhoneNumber


# Published per calling account: https://docs.aws.amazon.com/accounts/latest/reference/quotas.html
QUOTAS: Mapping[str, Mapping[str, Quota]] = {
    COMMERCIAL: {PUT: Quota(5, 8), GET: Quota(10, 15), REMOVE: Quota(1, 6)},
    # https://docs.amazonaws.cn/en_us/accounts/latest/reference/quotas.html
    CHINA: {PUT: Quota(1, 6), GET: Quota(3, 5), REMOVE: Quota(1, 6)},
}


class AlternateContacts(Setting):
    name = "alternate_contacts"
    title = "alternate contacts"
    spec_type = ContactSpec
    read_operations = (GET,)
    write_operations = (PUT, REMOVE)
    quotas = QUOTAS
    absent = DELETE  # restoring a type the account did not have deletes it

    @property
    def resource_property(self) -> str:
        return "Spec"  # the property the alternate contacts had when they were the only setting

    def key(self, item: str) -> str:
        return item

    def permissions(self, spec: SettingSpec[Any], *, write: bool, partition: str) -> list[Permission]:
        """Only for the contact types the role may touch (``account:AlternateContactTypes``)."""
        (allowed,) = super().permissions(spec, write=write, partition=partition)
        assert isinstance(spec, ContactSpec)
        types = {"ForAllValues:StringEquals": {"account:AlternateContactTypes": managed_contact_types(spec)}}
        return [Permission(allowed.sid, allowed.actions, types)]

    def removal_writes(self, removal: str) -> tuple[str, ...]:
        # ``delete`` deletes the managed types where the stack no longer manages them.
        return {"retain": (), "delete": (REMOVE,)}.get(removal, self.write_operations)

    def read(self, api: AccountCalls, account_id: str, items: Sequence[str]) -> dict[str, Any]:
        return {contact_type: get(api, account_id, contact_type) for contact_type in items}

    def reads(self, items: Sequence[str]) -> dict[str, int]:
        return {GET: len(items)} if items else {}  # one GetAlternateContact per contact type

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

    def text(self, value: Any, *, show_values: bool = False) -> str:
        if value == DELETE:
            return "(deleted)"
        email, phone = value.get("EmailAddress", ""), value.get("PhoneNumber", "")
        if not show_values:
            return f"{value.get('Name', '')} · {mask('EmailAddress', email)}"
        return f"{value.get('Name', '')} · {email} · {phone}"


SETTING = AlternateContacts()


def managed_contact_types(spec: ContactSpec) -> list[str]:
    """The types the role may touch: those the spec names, or all three when removal may release
    any of them later (the role's policy is updated before the resource on an Update)."""
    if spec.removal != "retain":
        return list(CONTACT_TYPES)
    named = set(spec.contacts).union(*(override.values for override in spec.overrides))
    return sorted(named)


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
