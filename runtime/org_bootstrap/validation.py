"""Input rules shared by the synth-time config and the handlers.

The limits and patterns are the Account Management and Organizations service models' own
(botocore ``account`` and ``organizations`` shapes), so a value that passes here is one the API
accepts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore
import botocore.exceptions
import botocore.loaders

ACCOUNT_SERVICE_PRINCIPAL = "account.amazonaws.com"
# Organizations is a global service: its CloudTrail events reach EventBridge only in us-east-1.
# https://docs.aws.amazon.com/organizations/latest/userguide/orgs_cloudtrail-integration.html
EVENTS_REGION = "us-east-1"
CONTACT_TYPES = ("BILLING", "OPERATIONS", "SECURITY")

_ACCOUNT_ID = re.compile(r"^\d{12}$")
_OU_ID = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$")
_ROOT_ID = re.compile(r"^r-[0-9a-z]{4,32}$")
REGION_PATTERN = r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d"
_REGION = re.compile(rf"^{REGION_PATTERN}$")
_SERVICE_PRINCIPAL = re.compile(r"^[\w+=,.@-]+\.amazonaws\.com$")


@dataclass(frozen=True)
class FieldRule:
    min_length: int
    max_length: int
    pattern: re.Pattern[str] | None = None
    pattern_text: str = ""


# https://docs.aws.amazon.com/accounts/latest/reference/API_AlternateContact.html
CONTACT_FIELD_RULES: Mapping[str, FieldRule] = {
    "Name": FieldRule(1, 64),
    "Title": FieldRule(1, 50),
    "EmailAddress": FieldRule(
        1,
        254,
        re.compile(r"^[\s]*[\w+=.#|!&-]+@[\w.-]+\.[\w]+[\s]*$"),
        "an e-mail address such as ops@example.com",
    ),
    "PhoneNumber": FieldRule(1, 25, re.compile(r"^[\s0-9()+-]+$"), "digits, spaces, parentheses, + and - only"),
}


class InvalidInputError(ValueError):
    """Raised with every problem found, each naming the field and the rule it breaks."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def account_id_problem(field: str, value: object) -> str | None:
    if value is None:
        return f"{field}: is required (an AWS account ID: 12 digits, quoted)"
    if isinstance(value, int) and not isinstance(value, bool):
        return f'{field}: {value} must be a quoted string ("{value}"); unquoted, TOML reads it as a number'
    if not isinstance(value, str) or not _ACCOUNT_ID.match(value):
        return f"{field}: {value!r} is not an AWS account ID (exactly 12 digits)"
    return None


def ou_id_problem(field: str, value: object) -> str | None:
    if not isinstance(value, str) or not (_OU_ID.match(value) or _ROOT_ID.match(value)):
        return f"{field}: {value!r} is not an organizational unit or root ID (ou-xxxx-yyyyyyyy or r-xxxx)"
    return None


@functools.cache
def known_regions() -> frozenset[str]:
    """Every Region of every AWS partition in botocore's endpoint data (partitions.json and
    endpoints.json), without the partitions' ``*-global`` pseudo-Regions."""
    loader = botocore.loaders.create_loader()
    regions: set[str] = set()
    for name in ("partitions", "endpoints"):
        try:
            data = loader.load_data(name)
        except botocore.exceptions.DataNotFoundError:
            continue
        for partition in data.get("partitions", []):
            regions.update(partition.get("regions", {}))
    return frozenset(region for region in regions if not region.endswith("-global"))


def region_problem(field: str, value: object) -> str | None:
    if value is None:
        return f"{field}: is required (an AWS Region name such as us-east-1)"
    if not isinstance(value, str) or not _REGION.match(value):
        return f"{field}: {value!r} is not an AWS Region name (such as us-east-1)"
    if value not in known_regions():
        return (
            f"{field}: {value!r} is not a Region of any AWS partition (botocore {botocore.__version__}'s endpoint "
            "data; for a Region newer than that, upgrade boto3)"
        )
    return None


def service_principal_problem(field: str, value: object) -> str | None:
    if not isinstance(value, str) or not _SERVICE_PRINCIPAL.match(value):
        return f"{field}: {value!r} is not a service principal (such as {ACCOUNT_SERVICE_PRINCIPAL})"
    return None


def contact_problems(field: str, contact: object, *, show_values: bool = False) -> list[str]:
    """Check one alternate contact (Name, Title, EmailAddress, PhoneNumber) against the model.
    E-mail addresses and phone numbers are masked unless ``show_values`` (the user's own config file
    at synth: they need to see which value is wrong; a handler's log masks them)."""
    if not isinstance(contact, Mapping):
        return [f"{field}: must be a table with {', '.join(CONTACT_FIELD_RULES)}"]
    problems = [
        f"{field}.{key}: unknown field (allowed: {', '.join(CONTACT_FIELD_RULES)})"
        for key in contact
        if key not in CONTACT_FIELD_RULES
    ]
    for key, rule in CONTACT_FIELD_RULES.items():
        value: Any = contact.get(key)
        where = f"{field}.{key}"
        if value is None:
            problems.append(f"{where}: is required")
        elif not isinstance(value, str):
            problems.append(f"{where}: must be a string")
        elif not rule.min_length <= len(value) <= rule.max_length:
            problems.append(
                f"{where}: is {len(value)} characters long (must be {rule.min_length} to {rule.max_length})"
            )
        elif rule.pattern is not None and not rule.pattern.match(value):
            shown = value if show_values else mask(key, value)
            problems.append(f"{where}: {shown!r} is not valid ({rule.pattern_text})")
    return problems


def mask(field: str, value: str) -> str:
    """Mask e-mail addresses and phone numbers so that logs never carry them in full."""
    if field == "EmailAddress":
        local, _, domain = value.strip().partition("@")
        return f"{local[:1]}***@{domain}" if domain else "***"
    if field == "PhoneNumber":
        digits = [c for c in value if c.isdigit()]
        return f"***{''.join(digits[-2:])}"
    return value
