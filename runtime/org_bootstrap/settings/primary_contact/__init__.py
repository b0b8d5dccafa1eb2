"""The primary contact of an account: GetContactInformation and PutContactInformation.

PutContactInformation replaces the whole record, so two records are the same only when every
field the model declares is the same (an optional field left out is cleared). The API cannot
delete a primary contact: restoring an account that had none leaves the stack's in place. In the
China partition an account's CountryCode and CompanyName cannot change through the API: a put that
would change them is refused before it is sent.
https://docs.aws.amazon.com/accounts/latest/reference/API_PutContactInformation.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.aws.clients import error_code
from org_bootstrap.aws.partitions import CHINA, COMMERCIAL, partition_here
from org_bootstrap.settings import AccountCalls, Quota, Refused, Setting
from org_bootstrap.settings.primary_contact.spec import (
    PRIMARY_CONTACT,
    PRIMARY_CONTACT_FIELD_RULES,
    ContactInformation,
    PrimaryContactSpec,
    primary_contact_change_problems,
)
from org_bootstrap.validation import mask

GET, PUT = "GetContactInformation", "PutContactInformation"


# Published per calling account: https://docs.aws.amazon.com/accounts/latest/reference/quotas.html
QUOTAS: Mapping[str, Mapping[str, Quota]] = {
    COMMERCIAL: {PUT: Quota(5, 8), GET: Quota(10, 15)},
    CHINA: {PUT: Quota(1, 2), GET: Quota(3, 5)},
}


class PrimaryContact(Setting):
    name = "primary_contact"
    title = "primary contact"
    spec_type = PrimaryContactSpec
    read_operations = (GET,)
    write_operations = (PUT,)
    quotas = QUOTAS
    absent = None

    def read(self, api: AccountCalls, account_id: str, items: Sequence[str]) -> dict[str, Any]:
        assert list(items) == [PRIMARY_CONTACT], items
        try:
            found = api.call(GET, account_id)["ContactInformation"]
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return {PRIMARY_CONTACT: None}
            raise
        return {PRIMARY_CONTACT: {key: found[key] for key in PRIMARY_CONTACT_FIELD_RULES if found.get(key) is not None}}

    def action(self, current: Any, wanted: Any) -> str | None:
        if same(current, wanted):
            return None
        unchangeable = primary_contact_change_problems(self.name, current, wanted, partition_here())
        if unchangeable:
            raise Refused("; ".join(unchangeable))
        return "put"

    def write(self, api: AccountCalls, account_id: str, item: str, wanted: Any, action: str) -> None:
        api.call(PUT, account_id, ContactInformation=dict(wanted))

    def logged(self, action: str, account_id: str, item: str, wanted: Any) -> str:
        return f"put primary contact of {account_id} (phone {mask('PhoneNumber', wanted['PhoneNumber'])})"

    def text(self, value: Any, *, show_values: bool = False) -> str:
        phone = value.get("PhoneNumber", "")
        shown = phone if show_values else mask("PhoneNumber", phone)
        return f"{value.get('FullName', '')} · {value.get('CountryCode', '')} · {shown}"

    def state_text(self, state: Any, *, show_values: bool = False) -> str:
        return self.text(state, show_values=show_values)  # an account has one primary contact


SETTING = PrimaryContact()


def same(current: ContactInformation | None, wanted: ContactInformation) -> bool:
    return current is not None and all(current.get(key) == wanted.get(key) for key in PRIMARY_CONTACT_FIELD_RULES)


def differing_fields(current: ContactInformation | None, wanted: ContactInformation) -> tuple[str, ...]:
    """The fields a put changes (for the plan view); every wanted field when there is none yet."""
    if current is None:
        return tuple(key for key in PRIMARY_CONTACT_FIELD_RULES if key in wanted)
    return tuple(key for key in PRIMARY_CONTACT_FIELD_RULES if current.get(key) != wanted.get(key))
