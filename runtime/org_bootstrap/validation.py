"""Input rules shared by the synth-time config and the handlers.

The limits and patterns are the Account Management and Organizations service models' own
(botocore ``account`` and ``organizations`` shapes), so a value that passes here is one the API
accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import cache
from typing import Any

import botocore
import botocore.session

from org_bootstrap.aws.partitions import known_regions

ACCOUNT_SERVICE_PRINCIPAL = "account.amazonaws.com"
# Organizations is a global service: its CloudTrail events reach EventBridge only in us-east-1.
# https://docs.aws.amazon.com/organizations/latest/userguide/orgs_cloudtrail-integration.html
EVENTS_REGION = "us-east-1"

# AWS's patterns (botocore's models are written for ECMAScript and Java) read \d and \w as ASCII,
# and a pattern matches the whole value: so re.ASCII, and a match that must end at \Z (Python's $
# also matches before a final newline). Full-width digits and jörg@ pass Python's defaults, not AWS.
_ACCOUNT_ID = re.compile(r"^\d{12}\Z", re.ASCII)
_OU_ID = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}\Z")
_ROOT_ID = re.compile(r"^r-[0-9a-z]{4,32}\Z")
REGION_PATTERN = r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d"
_REGION = re.compile(rf"^{REGION_PATTERN}\Z", re.ASCII)
_SERVICE_PRINCIPAL = re.compile(r"^[\w+=,.@-]+\.amazonaws\.com\Z", re.ASCII)


@dataclass(frozen=True)
class Field:
    """One key of a config table: its meaning and the JSON Schema of its value.

    Each table's validator takes its allowed keys from its tuple of fields, and the editor schema
    (``config/schema.json``, made by ``stacks/config_schema.py``) is generated from the same tuples;
    the ``schema`` fragments are built from the validators' own patterns, limits and choices. Rules
    that span fields stay in the validators (the schema is what an editor can check as you type).
    A field with ``fields`` is a table of them (a list of such tables with ``many``); ``internal``
    fields are set by the app itself, not written in a config file.
    """

    name: str
    description: str
    schema: Mapping[str, Any] = dataclass_field(default_factory=dict)
    fields: tuple[Field, ...] = ()
    many: bool = False
    required: bool = False
    internal: bool = False

    def json_schema(self) -> dict[str, Any]:
        if self.fields:
            table = table_schema(self.fields)
            value = {"type": "array", "items": table} if self.many else table
        else:
            value = dict(self.schema)
        return {"description": self.description, **value}


def table_schema(fields: Iterable[Field]) -> dict[str, Any]:
    """The JSON Schema of a table of fields: no other keys (the validators refuse unknown keys too)."""
    public = [field for field in fields if not field.internal]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {field.name: field.json_schema() for field in public},
        "additionalProperties": False,
    }
    required = [field.name for field in public if field.required]
    if required:
        schema["required"] = required
    return schema


def field_names(fields: Iterable[Field]) -> tuple[str, ...]:
    return tuple(field.name for field in fields)


def portable_pattern(pattern: re.Pattern[str]) -> str | None:
    """A Python pattern as every editor's JSON Schema reads it, or None where the dialects part:
    Python's named groups become plain groups; lookarounds, which some editors' regex engines lack
    (taplo's), leave the rule to the synth alone. Python's end of text ``\\Z`` is JSON Schema's ``$``."""
    text = re.sub(r"\(\?P<\w+>", "(", pattern.pattern).replace(r"\Z", "$")
    return None if "(?" in text else text


def string_schema(pattern: re.Pattern[str] | None = None, **limits: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    schema.update({key: value for key, value in limits.items()})
    portable = portable_pattern(pattern) if pattern is not None else None
    if portable is not None:
        schema["pattern"] = portable
    return schema


def choice_schema(choices: Iterable[str]) -> dict[str, Any]:
    return {"type": "string", "enum": list(choices)}


@dataclass(frozen=True)
class FieldRule:
    min_length: int
    max_length: int
    pattern: re.Pattern[str] | None = None
    pattern_text: str = ""
    required: bool = True
    description: str = ""

    def schema(self) -> dict[str, Any]:
        return string_schema(self.pattern, minLength=self.min_length, maxLength=self.max_length)


@cache
def _account_model() -> Any:
    # botocore ships with boto3 (in Lambda too): its service model is the API's own definition.
    return botocore.session.get_session().get_service_model("account")


def model_field_rules(
    shape_name: str,
    pattern_texts: Mapping[str, str],
    *,
    exclude: tuple[str, ...] = (),
    descriptions: Mapping[str, str] | None = None,
) -> Mapping[str, FieldRule]:
    """The string fields of an Account Management shape with their limits, as the service model
    declares them. The model's patterns must match the whole value (anchored, as the API docs show them);
    ``pattern_texts`` says each pattern in words, for error messages."""
    shape = _account_model().shape_for(shape_name)
    rules: dict[str, FieldRule] = {}
    for name, member in shape.members.items():
        if member.type_name != "string" or getattr(member, "enum", None) or name in exclude:
            continue
        meta = member.metadata
        pattern = meta.get("pattern")
        rules[name] = FieldRule(
            int(meta.get("min", 0)),
            int(meta.get("max", 2**31)),
            re.compile(rf"^({pattern})\Z", re.ASCII) if pattern else None,
            pattern_texts.get(name, f"the pattern {pattern}" if pattern else ""),
            required=name in shape.required_members,
            description=(descriptions or {}).get(name, ""),
        )
    return rules


class InvalidInputError(ValueError):
    """Raised with every problem found, each naming the field and the rule it breaks."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


ACCOUNT_ID_SCHEMA = string_schema(_ACCOUNT_ID)
# An organizational unit, or a root (which holds every account).
OU_ID_SCHEMA = {"type": "string", "pattern": f"({portable_pattern(_OU_ID)})|({portable_pattern(_ROOT_ID)})"}
REGION_SCHEMA = string_schema(_REGION)


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


def field_problems(
    field: str, value: object, rules: Mapping[str, FieldRule], *, show_values: bool = False
) -> list[str]:
    """Check a table of string fields against their rules: unknown, missing, too short or long,
    not matching the pattern. Values that break a pattern are masked unless ``show_values``."""
    if not isinstance(value, Mapping):
        return [f"{field}: must be a table with {', '.join(k for k, r in rules.items() if r.required)}"]
    problems = [f"{field}.{key}: unknown field (allowed: {', '.join(rules)})" for key in value if key not in rules]
    for key, rule in rules.items():
        found: Any = value.get(key)
        where = f"{field}.{key}"
        if found is None:
            if rule.required:
                problems.append(f"{where}: is required")
        elif not isinstance(found, str):
            problems.append(f"{where}: must be a string")
        elif not rule.min_length <= len(found) <= rule.max_length:
            problems.append(
                f"{where}: is {len(found)} characters long (must be {rule.min_length} to {rule.max_length})"
            )
        elif rule.pattern is not None and not rule.pattern.match(found):
            shown = found if show_values else mask(key, found)
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
