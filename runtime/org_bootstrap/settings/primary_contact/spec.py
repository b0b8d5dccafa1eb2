"""The primary-contact desired state: one ContactInformation per account, checked against the
service model's limits. The API cannot delete a primary contact, so removal is ``retain`` or
``restore`` (put back what was there before the stack first changed it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.validation import PRIMARY_CONTACT_FIELD_RULES, Field, primary_contact_problems

PRIMARY_CONTACT = "PRIMARY"  # the one key of the setting: an account has one primary contact
REMOVAL_MODES = ("retain", "restore")

ContactInformation = Mapping[str, str]  # FullName, AddressLine1, City, PostalCode, CountryCode, PhoneNumber...
CONTACT_INFORMATION_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {key: {**rule.schema(), "description": key} for key, rule in PRIMARY_CONTACT_FIELD_RULES.items()},
    "required": [key for key, rule in PRIMARY_CONTACT_FIELD_RULES.items() if rule.required],
    "additionalProperties": False,
}


class PrimaryContactSpec(SettingSpec[ContactInformation]):
    SECTION = "primary_contact"
    REMOVAL_MODES = REMOVAL_MODES
    DESCRIPTION = "The primary contact (company address and phone) of the organization's accounts"
    VALUE_FIELDS = (Field("contact", "The primary contact of every targeted account", CONTACT_INFORMATION_SCHEMA),)
    OVERRIDE_VALUE_FIELDS = (Field("contact", "The primary contact there", CONTACT_INFORMATION_SCHEMA),)
    OVERRIDES_DESCRIPTION = "The primary contact of an OU or one account"
    REMOVAL_DESCRIPTION = "On removal: retain, or restore the one from before the stack"

    @property
    def contact(self) -> ContactInformation | None:
        return self.values.get(PRIMARY_CONTACT)

    @classmethod
    def parse_values(
        cls, where: str, table: Mapping[str, Any], problems: list[str], **context: Any
    ) -> dict[str, ContactInformation]:
        if "contact" not in table:
            return {}
        contact = table["contact"]
        found = primary_contact_problems(f"{where}.contact", contact, show_values=bool(context.get("show_values")))
        problems += found
        if found or not isinstance(contact, Mapping):
            return {}
        return {PRIMARY_CONTACT: {key: str(contact[key]) for key in sorted(contact)}}

    @classmethod
    def dump_values(cls, values: Mapping[str, ContactInformation]) -> dict[str, Any]:
        return {"contact": dict(values[PRIMARY_CONTACT])} if PRIMARY_CONTACT in values else {}

    @classmethod
    def nothing_set(cls, where: str) -> str:
        required = ", ".join(name for name, rule in PRIMARY_CONTACT_FIELD_RULES.items() if rule.required)
        return f"{where}.contact: set the primary contact ({required})"
