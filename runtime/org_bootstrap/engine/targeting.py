"""The one vocabulary every account setting's config shares: targets, exclusions, overrides.

A setting's section (``[alternate_contacts]``, ``[primary_contact]``, ``[regions]``) says which
accounts it covers (``targets``: every account, some OUs, or some accounts, narrowed by the
Organizations tags they carry, minus exclusions), what they get (the setting's own keys), what an
OU, the accounts with some tags, or an account gets instead (``overrides``, the most specific
winning key by key: account, then tags, then the deepest OU), what removal does (``removal``) and
how many accounts may fail (``failure_tolerance``). :class:`SettingSpec` parses, checks, serializes and answers "is this
account covered, and what does it get" once for all of them; a setting only says how to read its
own keys (:meth:`SettingSpec.parse_values`) and write them back (:meth:`SettingSpec.dump_values`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from org_bootstrap.validation import (
    ACCOUNT_ID_SCHEMA,
    OU_ID_SCHEMA,
    TAG_KEY_SCHEMA,
    TAG_VALUE_SCHEMA,
    Field,
    InvalidInputError,
    account_id_problem,
    choice_schema,
    ou_id_problem,
    tag_key_problem,
    tag_value_problem,
)

V = TypeVar("V")

TARGET_KEYS = (
    "accounts",
    "organizational_units",
    "tags",
    "exclude_accounts",
    "exclude_organizational_units",
    "exclude_tags",
)
ID_KEYS = ("accounts", "organizational_units", "exclude_accounts", "exclude_organizational_units")
TAG_KEYS = ("tags", "exclude_tags")
# A tag selector: each key with the values any of which it may have (every key must match).
TagSelector = tuple[tuple[str, tuple[str, ...]], ...]
# An account's Organizations tags, as ListTagsForResource answers them.
AccountTags = Mapping[str, str]
# Which side of the organization a deployment of a setting covers. With a delegated administrator
# running the settings, the management account's stack covers only its own account and the
# delegated administrator's stack every other one.
SCOPES = ("organization", "management_account", "member_accounts")
# What an item becomes under ``removal = "delete"`` (and what ``delete = true`` asks for): deleted.
DELETE = "DELETE"
COMMON_KEYS = ("targets", "overrides", "removal", "failure_tolerance", "scope")


def _ids(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": schema}


def _tags_schema(*, empty: bool) -> dict[str, Any]:
    value = {"oneOf": [TAG_VALUE_SCHEMA, {"type": "array", "items": TAG_VALUE_SCHEMA, "minItems": 1}]}
    return {
        "type": "object",
        "propertyNames": TAG_KEY_SCHEMA,
        "additionalProperties": value,
        **({} if empty else {"minProperties": 1}),
    }


# The shared vocabulary as config fields (for the editor schema; the validators are below).
TARGET_FIELDS = (
    Field(
        "accounts",
        "Only these accounts (not together with organizational_units; omit for every account)",
        {**_ids(ACCOUNT_ID_SCHEMA), "minItems": 1},
    ),
    Field(
        "organizational_units",
        "Only accounts in these OUs or roots, nested OUs included (not together with accounts; omit for every account)",
        {**_ids(OU_ID_SCHEMA), "minItems": 1},
    ),
    Field(
        "tags",
        "Only accounts carrying these Organizations tags: every key must match, a list means any of its values "
        '(e.g. { environment = "production", team = ["payments", "orders"] }); narrows accounts or OUs',
        _tags_schema(empty=False),
    ),
    Field("exclude_accounts", "Never touched; exclusions win over targets", _ids(ACCOUNT_ID_SCHEMA)),
    Field(
        "exclude_organizational_units",
        "Accounts in these OUs (nested included) are never touched; exclusions win over targets",
        _ids(OU_ID_SCHEMA),
    ),
    Field(
        "exclude_tags",
        "Accounts carrying these tags (every key matching, a list: any of its values) are never touched",
        _tags_schema(empty=True),
    ),
)
OVERRIDE_PLACE_FIELDS = (
    Field("organizational_unit", "The OU (or root) whose accounts, nested OUs included, this applies to", OU_ID_SCHEMA),
    Field(
        "tags",
        "The accounts carrying these tags (every key matching, a list: any of its values); "
        "beats an OU override, an account override beats it",
        _tags_schema(empty=False),
    ),
    Field("account", "The account this applies to", ACCOUNT_ID_SCHEMA),
)
PLACE_KEYS = ("organizational_unit", "tags", "account")


def tags_match(selector: TagSelector, tags: AccountTags) -> bool:
    """Whether an account's tags match a selector: every key present with one of its values."""
    return all(tags.get(key) in values for key, values in selector)


def dump_tags(selector: TagSelector) -> dict[str, str | list[str]]:
    """A selector as the config writes it: one value as a string, several as a list."""
    return {key: values[0] if len(values) == 1 else list(values) for key, values in selector}


class TagsNotRead(AssertionError):
    """A spec that targets by tags was asked about an account whose tags were not read."""


@dataclass(frozen=True)
class Targets:
    """Which accounts a setting covers: every account, or the listed accounts, or the accounts in
    the listed OUs, narrowed to those carrying ``tags``. Exclusions (accounts, OUs, tags) win."""

    accounts: tuple[str, ...] = ()
    organizational_units: tuple[str, ...] = ()
    exclude_accounts: tuple[str, ...] = ()
    exclude_organizational_units: tuple[str, ...] = ()
    scope: str = "organization"
    tags: TagSelector = ()
    exclude_tags: TagSelector = ()

    @classmethod
    def parse(cls, where: str, data: object, scope: object, problems: list[str]) -> Targets:
        if not isinstance(data, Mapping):
            problems.append(f"{where}: must be a table")
            data = {}
        problems += unknown_keys(where, data, TARGET_KEYS)
        for key in ("accounts", "organizational_units", "tags"):
            if key in data and not data[key] and isinstance(data[key], (list, Mapping)):
                problems.append(
                    f"{where}.{key}: is empty, which would target no account; "
                    'remove the key to target every account ("every account" is the default)'
                )
        lists = {key: _id_list(f"{where}.{key}", data.get(key, []), problems) for key in ID_KEYS}
        tags = {key: tag_selector(f"{where}.{key}", data.get(key, {}), problems) for key in TAG_KEYS}
        if lists["accounts"] and lists["organizational_units"]:
            problems.append(f"{where}: give accounts or organizational_units, not both (omit both for every account)")
        if scope not in SCOPES:
            problems.append(f"{where.rpartition('.')[0]}.scope: {scope!r} is not one of {', '.join(SCOPES)}")
        return cls(
            accounts=lists["accounts"],
            organizational_units=lists["organizational_units"],
            exclude_accounts=lists["exclude_accounts"],
            exclude_organizational_units=lists["exclude_organizational_units"],
            scope=str(scope),
            tags=tags["tags"],
            exclude_tags=tags["exclude_tags"],
        )

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {key: list(getattr(self, key)) for key in ID_KEYS if getattr(self, key)}
        found.update({key: dump_tags(getattr(self, key)) for key in TAG_KEYS if getattr(self, key)})
        return {key: found[key] for key in TARGET_KEYS if key in found}

    @property
    def uses_tags(self) -> bool:
        return bool(self.tags or self.exclude_tags)

    def covers(
        self,
        account_id: str,
        path: Sequence[str],
        management_account_id: str | None = None,
        tags: AccountTags | None = None,
    ) -> bool:
        """Whether an account is targeted; ``path`` is its parents from the root down, ``tags``
        its Organizations tags (needed when the targets name tags). A scoped target needs
        ``management_account_id`` to tell the two sides apart."""
        if self.scope != "organization":
            assert management_account_id, "a scoped spec needs the management account ID"
            if (account_id == management_account_id) != (self.scope == "management_account"):
                return False
        if account_id in self.exclude_accounts or any(p in self.exclude_organizational_units for p in path):
            return False
        if self.uses_tags and tags is None:
            raise TagsNotRead(f"targets by tags, and the tags of {account_id} were not read")
        if self.exclude_tags and tags_match(self.exclude_tags, tags or {}):
            return False
        if self.tags and not tags_match(self.tags, tags or {}):
            return False
        if self.accounts:
            return account_id in self.accounts
        if self.organizational_units:
            return any(p in self.organizational_units for p in path)
        return True


@dataclass(frozen=True)
class Override(Generic[V]):
    """What one OU (and the OUs nested in it), the accounts carrying some tags, or one account
    gets instead, key by key."""

    organizational_unit: str | None
    account: str | None
    values: Mapping[str, V]
    tags: TagSelector = ()

    @property
    def contacts(self) -> Mapping[str, V]:
        """The alternate contacts' name for an override's values (their only key is ``contacts``)."""
        return self.values


@dataclass(frozen=True)
class SettingSpec(Generic[V]):
    """A setting's desired state across the organization, parsed and validated once and used at
    synth and in Lambda alike: the same mapping comes from the user's config at ``cdk synth`` and
    from the custom resource's ``Spec`` property in the handler."""

    values: Mapping[str, V]  # what every targeted account gets, key by key
    targeting: Targets = Targets()
    overrides: tuple[Override[V], ...] = ()
    removal: str = "retain"
    failure_tolerance: int = 0
    _ou_overrides: Mapping[str, Mapping[str, V]] = field(default_factory=dict, compare=False, repr=False)
    _account_overrides: Mapping[str, Mapping[str, V]] = field(default_factory=dict, compare=False, repr=False)
    _tag_overrides: tuple[Override[V], ...] = field(default=(), compare=False, repr=False)

    SECTION: ClassVar[str]  # the config section, and the start of every field name in a problem
    REMOVAL_MODES: ClassVar[tuple[str, ...]]
    # The section as the config declares it (its validation is parse_values'; config/schema.json is
    # generated from these): what it is, the setting's own keys at the top and in one override,
    # and what overrides and removal mean for this setting.
    DESCRIPTION: ClassVar[str]
    VALUE_FIELDS: ClassVar[tuple[Field, ...]]
    OVERRIDE_VALUE_FIELDS: ClassVar[tuple[Field, ...]]
    OVERRIDES_DESCRIPTION: ClassVar[str]
    REMOVAL_DESCRIPTION: ClassVar[str]
    VALUE_KEYS: ClassVar[tuple[str, ...]]  # the names of VALUE_FIELDS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "VALUE_FIELDS" in cls.__dict__:
            cls.VALUE_KEYS = tuple(value.name for value in cls.VALUE_FIELDS)
            assert tuple(value.name for value in cls.OVERRIDE_VALUE_FIELDS) == cls.VALUE_KEYS, cls

    @classmethod
    def config_fields(cls) -> tuple[Field, ...]:
        """Every key of the section: the setting's own, then the shared vocabulary."""
        return (
            *cls.VALUE_FIELDS,
            Field("targets", "Which accounts (default: all, the management account included)", fields=TARGET_FIELDS),
            Field(
                "overrides",
                cls.OVERRIDES_DESCRIPTION,
                fields=(*OVERRIDE_PLACE_FIELDS, *cls.OVERRIDE_VALUE_FIELDS),
                many=True,
            ),
            Field("removal", cls.REMOVAL_DESCRIPTION, choice_schema(cls.REMOVAL_MODES)),
            Field(
                "failure_tolerance",
                "How many accounts may fail before the deploy fails (every failure is in the report)",
                {"type": "integer", "minimum": 0},
            ),
            Field(
                "scope",
                "Which side of the organization a stack covers (set by the app)",
                choice_schema(SCOPES),
                internal=True,
            ),
        )

    @classmethod
    def config_section(cls) -> Field:
        return Field(cls.SECTION, cls.DESCRIPTION, fields=cls.config_fields())

    def __post_init__(self) -> None:
        ous = {o.organizational_unit: o.values for o in self.overrides if o.organizational_unit}
        object.__setattr__(self, "_ou_overrides", ous)
        object.__setattr__(self, "_account_overrides", {o.account: o.values for o in self.overrides if o.account})
        # Two tag overrides that both match: the one naming more keys wins, then the later one.
        by_keys = sorted((o for o in self.overrides if o.tags), key=lambda o: len(o.tags))
        object.__setattr__(self, "_tag_overrides", tuple(by_keys))

    # -- what a setting says about itself ---------------------------------------------------

    @classmethod
    def parse_values(cls, where: str, table: Mapping[str, Any], problems: list[str], **context: Any) -> dict[str, V]:
        """Read the setting's own keys (``VALUE_KEYS``) of the section or of one override."""
        raise NotImplementedError

    @classmethod
    def dump_values(cls, values: Mapping[str, V]) -> dict[str, Any]:
        """The inverse of :meth:`parse_values`: the table that parses back to ``values``."""
        raise NotImplementedError

    @classmethod
    def nothing_set(cls, where: str) -> str:
        """The problem reported when neither the section nor any override sets anything."""
        raise NotImplementedError

    # -- parsing -----------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: object, where: str | None = None, **context: Any) -> Self:
        """Validate a mapping and build the spec; raises InvalidInputError naming every bad field."""
        where = where or cls.SECTION
        if not isinstance(data, Mapping):
            raise InvalidInputError([f"{where}: must be a table"])
        problems: list[str] = unknown_keys(where, data, (*cls.VALUE_KEYS, *COMMON_KEYS))
        values = cls.parse_values(where, data, problems, **context)
        targeting = Targets.parse(
            f"{where}.targets", data.get("targets", {}), data.get("scope", "organization"), problems
        )
        overrides = _overrides(cls, f"{where}.overrides", data.get("overrides", []), problems, context)
        removal = data.get("removal", "retain")
        if removal not in cls.REMOVAL_MODES:
            problems.append(f"{where}.removal: {removal!r} is not one of {', '.join(cls.REMOVAL_MODES)}")
        tolerance = data.get("failure_tolerance", 0)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
            problems.append(f"{where}.failure_tolerance: {tolerance!r} must be a whole number of accounts, 0 or more")
        if not any(data.get(key) for key in cls.VALUE_KEYS) and not any(o.values for o in overrides):
            problems.append(cls.nothing_set(where))
        if problems:
            raise InvalidInputError(problems)
        return cls(
            values=values,
            targeting=targeting,
            overrides=tuple(overrides),
            removal=str(removal),
            failure_tolerance=int(tolerance),
        )

    @classmethod
    def from_json(cls, text: str, **context: Any) -> Self:
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as error:
            raise InvalidInputError([f"Spec: is not valid JSON ({error})"]) from None
        return cls.parse(data, "Spec", **context)

    def to_dict(self) -> dict[str, Any]:
        scope = self.targeting.scope
        return {
            **self.dump_values(self.values),
            "targets": self.targeting.to_dict(),
            "overrides": [
                {
                    **({"organizational_unit": o.organizational_unit} if o.organizational_unit else {}),
                    **({"tags": dump_tags(o.tags)} if o.tags else {}),
                    **({"account": o.account} if o.account else {}),
                    **self.dump_values(o.values),
                }
                for o in self.overrides
            ],
            "removal": self.removal,
            "failure_tolerance": self.failure_tolerance,
            **({"scope": scope} if scope != "organization" else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    # -- meaning -----------------------------------------------------------------------------

    @property
    def scope(self) -> str:
        return self.targeting.scope

    @property
    def accounts(self) -> tuple[str, ...]:
        return self.targeting.accounts

    @property
    def organizational_units(self) -> tuple[str, ...]:
        return self.targeting.organizational_units

    @property
    def exclude_accounts(self) -> tuple[str, ...]:
        return self.targeting.exclude_accounts

    @property
    def exclude_organizational_units(self) -> tuple[str, ...]:
        return self.targeting.exclude_organizational_units

    @property
    def uses_tags(self) -> bool:
        """Whether which accounts it covers, or what they get, depends on their tags."""
        return self.targeting.uses_tags or bool(self._tag_overrides)

    def tag_selectors(self) -> list[tuple[str, TagSelector]]:
        """Every tag selector of the spec, with the config field that holds it (for the plan)."""
        found = [(f"targets.{key}", getattr(self.targeting, key)) for key in TAG_KEYS if getattr(self.targeting, key)]
        return found + [(f"overrides[{i}].tags", o.tags) for i, o in enumerate(self.overrides) if o.tags]

    def scoped(self, scope: str) -> Self:
        """The same spec, covering only one side of the organization (see ``SCOPES``)."""
        assert scope in SCOPES, scope
        return dataclasses.replace(self, targeting=dataclasses.replace(self.targeting, scope=scope))

    def targets(
        self,
        account_id: str,
        path: Sequence[str],
        management_account_id: str | None = None,
        tags: AccountTags | None = None,
    ) -> bool:
        """Whether an account is targeted (see :meth:`Targets.covers`)."""
        return self.targeting.covers(account_id, path, management_account_id, tags)

    def desired(self, account_id: str, path: Sequence[str], tags: AccountTags | None = None) -> dict[str, V]:
        """What one account gets, key by key: the account's override wins over the tag overrides
        that match its tags (the one naming more keys first, then the later one), which win over
        the deepest OU's, which wins over the section's own values."""
        merged: dict[str, V] = dict(self.values)
        for parent in path:
            merged.update(self._ou_overrides.get(parent, {}))
        if self._tag_overrides:
            if tags is None:
                raise TagsNotRead(f"overrides by tags, and the tags of {account_id} were not read")
            for override in self._tag_overrides:
                if tags_match(override.tags, tags):
                    merged.update(override.values)
        merged.update(self._account_overrides.get(account_id, {}))
        return merged


def unknown_keys(where: str, data: Mapping[str, Any], allowed: Sequence[str]) -> list[str]:
    return [f"{where}.{key}: unknown key (allowed: {', '.join(allowed)})" for key in data if key not in allowed]


def tag_selector(where: str, value: object, problems: list[str]) -> TagSelector:
    """A TOML inline table of tags: each key with one value (a string) or any of several (a list)."""
    if not isinstance(value, Mapping):
        problems.append(f'{where}: must be a table of tags, e.g. {{ environment = "production" }}')
        return ()
    selector: list[tuple[str, tuple[str, ...]]] = []
    for key, values in value.items():
        at = f"{where}.{key}" if isinstance(key, str) and key.isidentifier() else f"{where}[{key!r}]"
        problem = tag_key_problem(f"{where} key", key)
        if problem:
            problems.append(problem)
            continue
        listed = values if isinstance(values, list) else [values]
        if not listed:
            problems.append(f"{at}: is an empty list, which no account matches; give one value or several")
            continue
        problems += [
            p
            for i, item in enumerate(listed)
            if (p := tag_value_problem(f"{at}[{i}]" if isinstance(values, list) else at, item))
        ]
        selector.append((str(key), tuple(str(item) for item in listed)))
    return tuple(selector)


def _id_list(where: str, value: object, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list):
        problems.append(f"{where}: must be a list")
        return ()
    check = ou_id_problem if "organizational_units" in where else account_id_problem
    problems += [p for i, item in enumerate(value) if (p := check(f"{where}[{i}]", item))]
    return tuple(str(item) for item in value)


def _overrides(
    spec: type[SettingSpec[V]], where: str, value: object, problems: list[str], context: Mapping[str, Any]
) -> list[Override[V]]:
    if not isinstance(value, list):
        problems.append(f"{where}: must be a list of tables")
        return []
    overrides: list[Override[V]] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{at}: must be a table")
            continue
        problems += unknown_keys(at, item, (*PLACE_KEYS, *spec.VALUE_KEYS))
        ou, account, tags = item.get("organizational_unit"), item.get("account"), item.get("tags")
        if sum(place is not None for place in (ou, account, tags)) != 1:
            problems.append(f"{at}: give exactly one of organizational_unit, tags or account")
            continue
        selector: TagSelector = ()
        scope: object
        if tags is not None:
            before = len(problems)
            if isinstance(tags, Mapping) and not tags:
                problems.append(f"{at}.tags: is empty; an override for every account is the section's own values")
            selector = tag_selector(f"{at}.tags", tags, problems)
            valid = len(problems) == before
            scope = json.dumps(dump_tags(selector), sort_keys=True)
        else:
            scope = ou if ou is not None else account
            problem = (
                ou_id_problem(f"{at}.organizational_unit", ou)
                if ou is not None
                else account_id_problem(f"{at}.account", account)
            )
            if problem:
                problems.append(problem)
            valid = problem is None
        if valid and scope in seen:
            problems.append(f"{at}: a second override for {scope} (give one per account, unit or set of tags)")
        seen.add(str(scope))
        overrides.append(Override(ou, account, spec.parse_values(at, item, problems, **context), selector))
    return overrides
