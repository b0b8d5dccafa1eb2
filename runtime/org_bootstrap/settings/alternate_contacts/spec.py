"""The alternate-contacts desired state: parsed and validated once, used at synth and in Lambda.

The section's own key is ``contacts`` (a contact, or DELETE, per contact type); targets,
overrides, removal and failure tolerance are the vocabulary every setting shares
(:mod:`org_bootstrap.engine.targeting`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from org_bootstrap.engine.targeting import DELETE, SCOPES, Override, SettingSpec
from org_bootstrap.validation import Field, FieldRule, field_problems, model_field_rules

__all__ = ["DELETE", "REMOVAL_MODES", "SCOPES", "Contact", "ContactSet", "ContactSpec", "Override"]

REMOVAL_MODES = ("retain", "delete", "restore")
CONTACT_TYPES = ("BILLING", "OPERATIONS", "SECURITY")

# https://docs.aws.amazon.com/accounts/latest/reference/API_PutAlternateContact.html
CONTACT_FIELD_RULES: Mapping[str, FieldRule] = model_field_rules(
    "PutAlternateContactRequest",
    {
        "EmailAddress": "an e-mail address such as ops@example.com",
        "PhoneNumber": "digits, spaces, parentheses, + and - only",
    },
    exclude=("AccountId",),
    descriptions={
        "Name": "The contact's name, 1-64 characters",
        "Title": "The contact's title, 1-50 characters",
        "EmailAddress": "The contact's e-mail address, 1-254 characters",
        "PhoneNumber": "The contact's phone number, 1-25 digits, spaces, ( ) + and -",
    },
)
CONTACT_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        key: {**rule.schema(), "description": rule.description} for key, rule in CONTACT_FIELD_RULES.items()
    },
    "required": list(CONTACT_FIELD_RULES),
    "additionalProperties": False,
}


def contact_problems(field: str, contact: object, *, show_values: bool = False) -> list[str]:
    """Check one alternate contact (Name, Title, EmailAddress, PhoneNumber) against the model.
    E-mail addresses and phone numbers are masked unless ``show_values`` (the user's own config file
    at synth: they need to see which value is wrong; a handler's log masks them)."""
    return field_problems(field, contact, CONTACT_FIELD_RULES, show_values=show_values)


Contact = Mapping[str, str]  # Name, Title, EmailAddress, PhoneNumber
# For each contact type: a contact to put, DELETE, or absent (left alone).
ContactSet = Mapping[str, "Contact | str"]

DELETE_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {"delete": {"const": True, "description": "Delete this contact type"}},
    "required": ["delete"],
    "additionalProperties": False,
}
CONTACT_SET_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        contact_type: {"description": f"The {contact_type} contact", "oneOf": [CONTACT_SCHEMA, DELETE_SCHEMA]}
        for contact_type in CONTACT_TYPES
    },
    "additionalProperties": False,
}


class ContactSpec(SettingSpec["Contact | str"]):
    SECTION = "alternate_contacts"
    REMOVAL_MODES = REMOVAL_MODES
    DESCRIPTION = "The BILLING, OPERATIONS and SECURITY contacts of the organization's accounts"
    VALUE_FIELDS = (
        Field(
            "contacts",
            "The contact set for every targeted account, by type; leave a type out to leave it alone",
            CONTACT_SET_SCHEMA,
        ),
    )
    OVERRIDE_VALUE_FIELDS = (
        Field(
            "contacts",
            "Contact sets by type; per type the account override wins over the deepest OU",
            CONTACT_SET_SCHEMA,
        ),
    )
    OVERRIDES_DESCRIPTION = "Contact sets for an OU or one account"
    REMOVAL_DESCRIPTION = "What deleting the stack, dropping a type or excluding an account does to the contacts"

    @property
    def contacts(self) -> ContactSet:
        return self.values

    @classmethod
    def parse_values(
        cls, where: str, table: Mapping[str, Any], problems: list[str], **context: Any
    ) -> dict[str, Contact | str]:
        show_values = bool(context.get("show_values", False))
        return _contact_set(f"{where}.contacts", table.get("contacts", {}), problems, show_values)

    @classmethod
    def dump_values(cls, values: Mapping[str, Contact | str]) -> dict[str, Any]:
        return {
            "contacts": {
                t: (dict(c) if isinstance(c, Mapping) else {"delete": True}) for t, c in sorted(values.items())
            }
        }

    @classmethod
    def nothing_set(cls, where: str) -> str:
        return f"{where}.contacts: set at least one of {', '.join(CONTACT_TYPES)}"


def _contact_set(where: str, value: object, problems: list[str], show_values: bool) -> dict[str, Contact | str]:
    if not isinstance(value, Mapping):
        problems.append(f"{where}: must be a table keyed by contact type ({', '.join(CONTACT_TYPES)})")
        return {}
    result: dict[str, Contact | str] = {}
    for contact_type, contact in value.items():
        at = f"{where}.{contact_type}"
        if contact_type not in CONTACT_TYPES:
            problems.append(f"{at}: unknown contact type (allowed: {', '.join(CONTACT_TYPES)})")
        elif contact == DELETE or (isinstance(contact, Mapping) and dict(contact) == {"delete": True}):
            result[contact_type] = DELETE
        elif isinstance(contact, Mapping) and "delete" in contact:
            problems.append(f"{at}.delete: must be true and alone, to delete this contact type")
        else:
            found = contact_problems(at, contact, show_values=show_values)
            problems += found
            if not found and isinstance(contact, Mapping):
                result[contact_type] = {key: str(contact[key]) for key in sorted(contact)}
    return result
