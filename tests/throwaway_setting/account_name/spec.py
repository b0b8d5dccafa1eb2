"""The account name's config section: ``[account_name] name = "..."``, an account's own name in overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.validation import Field, field_problems, model_field_rules

NAME = "NAME"  # the setting's one item: an account has one name
# https://docs.aws.amazon.com/accounts/latest/reference/API_PutAccountName.html
NAME_RULES = model_field_rules("PutAccountNameRequest", {}, exclude=("AccountId",))


class AccountNameSpec(SettingSpec[str]):
    SECTION = "account_name"
    REMOVAL_MODES = ("retain", "restore")
    DESCRIPTION = "The name of the organization's accounts"
    VALUE_FIELDS = (Field("name", "The name of every targeted account", NAME_RULES["AccountName"].schema()),)
    OVERRIDE_VALUE_FIELDS = (Field("name", "The name there", NAME_RULES["AccountName"].schema()),)
    OVERRIDES_DESCRIPTION = "The name of an OU's accounts or of one account"
    REMOVAL_DESCRIPTION = "On removal: retain, or restore the name from before the stack"

    @classmethod
    def parse_values(cls, where: str, table: Mapping[str, Any], problems: list[str], **context: Any) -> dict[str, str]:
        if "name" not in table:
            return {}
        found = field_problems(where, {"AccountName": table["name"]}, NAME_RULES)
        problems += [problem.replace(f"{where}.AccountName", f"{where}.name") for problem in found]
        return {} if found else {NAME: str(table["name"])}

    @classmethod
    def dump_values(cls, values: Mapping[str, str]) -> dict[str, Any]:
        return {"name": values[NAME]} if NAME in values else {}

    @classmethod
    def nothing_set(cls, where: str) -> str:
        return f"{where}.name: set the account name"
