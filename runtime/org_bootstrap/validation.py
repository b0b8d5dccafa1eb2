"""Input rules shared by the synth-time config and the handlers.

The limits and patterns are the Account Management and Organizations service models' own
(botocore ``account`` and ``organizations`` shapes), so a value that passes here is one the API
accepts.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
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


# Organizations' tags (accounts, OUs, roots, policies): key 1-128 and value 0-256 characters of
# ``[\p{L}\p{Z}\p{N}_.:/=+\-@]``: https://docs.aws.amazon.com/organizations/latest/APIReference/API_Tag.html
# Python's ``re`` has no ``\p{...}``: the same classes are Unicode's general categories L*, Z*, N*.
TAG_KEY_LENGTH = (1, 128)
TAG_VALUE_LENGTH = (0, 256)
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
TAG_KEY_SCHEMA = {"type": "string", "minLength": TAG_KEY_LENGTH[0], "maxLength": TAG_KEY_LENGTH[1]}
TAG_VALUE_SCHEMA = {"type": "string", "minLength": TAG_VALUE_LENGTH[0], "maxLength": TAG_VALUE_LENGTH[1]}


def _tag_character(character: str) -> bool:
    return character in _TAG_PUNCTUATION or unicodedata.category(character)[0] in "LZN"


def _tag_problem(field: str, value: object, what: str, limits: tuple[int, int]) -> str | None:
    low, high = limits
    if not isinstance(value, str):
        return f"{field}: {value!r} must be a string (an Organizations tag {what})"
    if not low <= len(value) <= high:
        return f"{field}: {value!r} must be {low}-{high} characters long (an Organizations tag {what})"
    bad = sorted({character for character in value if not _tag_character(character)})
    if bad:
        return (
            f"{field}: {value!r} has {', '.join(repr(c) for c in bad)}: an Organizations tag {what} holds only "
            "letters, digits, spaces and _ . : / = + - @"
        )
    return None


def tag_key_problem(field: str, key: object) -> str | None:
    return _tag_problem(field, key, "key", TAG_KEY_LENGTH)


def tag_value_problem(field: str, value: object) -> str | None:
    return _tag_problem(field, value, "value", TAG_VALUE_LENGTH)


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


# People's data a view masks unless asked: e-mail addresses, phone numbers, street addresses.
MASKED_FIELDS = frozenset({"EmailAddress", "PhoneNumber", "AddressLine1", "AddressLine2", "AddressLine3"})
_REVEALED_AT_MOST = 0.5  # of a masked part (or 2 characters): past that, a fingerprint tells values apart


def mask(field: str, value: str) -> str:
    """Mask e-mail addresses, phone numbers and street addresses so that logs never carry them in full."""
    return mask_against(field, value, None)


def mask_against(field: str, value: str, other: str | None) -> str:
    """``value`` masked as :func:`mask` does, but showing that it differs from ``other`` (the value it
    replaces, or is replaced by) when it does: the first letters of an e-mail's local part up to
    the first that differs, more of a phone's last digits, the first letters of each differing word
    of an address. Where that would show more than half of a part (and more than 2 characters), a
    short fingerprint (``#1a2b``, from a hash) tells the two apart instead. The domain of an e-mail is always shown."""
    if field not in MASKED_FIELDS:
        return value
    differs = other is not None and other != value
    if field == "EmailAddress":
        local, _, domain = value.strip().partition("@")
        other_local, _, other_domain = (other or "").strip().partition("@")
        if not domain:
            return "***" + (_fingerprint(value) if differs else "")
        shown = _prefix(local, other_local) + 1 if differs and other_domain == domain else 1
        return f"{_part(local, shown, value)}@{domain}"
    if field == "PhoneNumber":
        digits = "".join(c for c in value if c.isdigit())[::-1]  # read from the end
        other_digits = "".join(c for c in (other or "") if c.isdigit())[::-1]
        shown = max(2, _prefix(digits, other_digits) + 1) if differs else 2
        if shown > 2 and shown > len(digits) * _REVEALED_AT_MOST:
            return f"***{digits[:2][::-1]}{_fingerprint(value)}"
        return f"***{digits[:shown][::-1]}"
    words, other_words = value.split(), (other or "").split()
    masked = []
    for index, word in enumerate(words):
        facing = other_words[index] if differs and index < len(other_words) else word
        masked.append(_part(word, _prefix(word, facing) + 1 if facing != word else 1, word))
    text = " ".join(masked)
    if differs and text == " ".join(_part(word, 1, word) for word in other_words):
        text += _fingerprint(value)  # the same words, only spaced differently: still a difference
    return text


def _prefix(first: str, second: str) -> int:
    """How many leading characters the two share."""
    count = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        count += 1
    return count


def _part(part: str, shown: int, value: str) -> str:
    """The first ``shown`` characters of ``part`` and ``***``; a fingerprint of ``value`` where
    that would show more than half of it."""
    if shown > max(2, len(part) * _REVEALED_AT_MOST):
        return f"{part[:1]}***{_fingerprint(value)}"
    return f"{part[:shown]}***"


def _fingerprint(value: str) -> str:
    """Four hex digits of the value's SHA-256: tells two values apart without showing either."""
    return "#" + hashlib.sha256(value.encode()).hexdigest()[:4]
