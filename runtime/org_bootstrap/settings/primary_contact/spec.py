"""The primary-contact desired state: one ContactInformation per account, checked against the
service model's limits. The API cannot delete a primary contact, so removal is ``retain`` or
``restore`` (put back what was there before the stack first changed it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from org_bootstrap.aws.partitions import CHINA
from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.validation import Field, FieldRule, field_problems, model_field_rules

PRIMARY_CONTACT = "PRIMARY"  # the one key of the setting: an account has one primary contact
REMOVAL_MODES = ("retain", "restore")

# https://docs.aws.amazon.com/accounts/latest/reference/API_ContactInformation.html
PRIMARY_CONTACT_FIELD_RULES: Mapping[str, FieldRule] = model_field_rules(
    "ContactInformation", {"PhoneNumber": "a + then digits, spaces, parentheses and - only"}
)
# The rules the API reference adds to the model's limits. StateOrRegion: "This field is required in
# the following countries: US, CA, GB, DE, JP, IN, and BR."
# https://docs.aws.amazon.com/accounts/latest/reference/API_ContactInformation.html
STATE_OR_REGION_REQUIRED_IN = ("US", "CA", "GB", "DE", "JP", "IN", "BR")
# In the China partition "You can't change the Country code or Company name for your primary
# account contact. To change these values, contact Customer Support."
# https://docs.amazonaws.cn/en_us/aws/latest/userguide/account-management.html
UNCHANGEABLE_PRIMARY_CONTACT_FIELDS: Mapping[str, tuple[str, ...]] = {CHINA: ("CountryCode", "CompanyName")}


def primary_contact_problems(field: str, contact: object, *, show_values: bool = False) -> list[str]:
    """Check one primary contact (ContactInformation) against the model and the API reference."""
    problems = field_problems(field, contact, PRIMARY_CONTACT_FIELD_RULES, show_values=show_values)
    if isinstance(contact, Mapping):
        country = contact.get("CountryCode")
        required_here = isinstance(country, str) and country.upper() in STATE_OR_REGION_REQUIRED_IN
        if required_here and contact.get("StateOrRegion") is None:
            problems.append(
                f"{field}.StateOrRegion: is required when CountryCode is {country!r} "
                f"(AWS requires it for {', '.join(STATE_OR_REGION_REQUIRED_IN)})"
            )
    return problems


def primary_contact_change_problems(
    field: str, current: Mapping[str, Any] | None, wanted: Mapping[str, Any], partition: str
) -> list[str]:
    """What putting ``wanted`` over the account's ``current`` record would change that accounts in
    ``partition`` cannot change through the API (only AWS Support can)."""
    if current is None:
        return []  # nothing set yet: setting is not changing
    return [
        f"{field}.{key}: accounts in the {partition} partition cannot change it through the API "
        f"(it is {current.get(key)!r}, the config asks for {wanted.get(key)!r}); AWS Support changes it"
        for key in UNCHANGEABLE_PRIMARY_CONTACT_FIELDS.get(partition, ())
        if current.get(key) != wanted.get(key)
    ]


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
