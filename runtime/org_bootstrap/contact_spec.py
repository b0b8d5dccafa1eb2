"""The alternate-contacts desired state: parsed and validated once, used at synth and in Lambda.

The same mapping is read from the user's config by ``cdk synth`` and from the custom resource's
``Spec`` property by the handler, so both apply the same rules and name fields the same way.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from org_bootstrap.validation import (
    ACCOUNT_ID_SCHEMA,
    CONTACT_SCHEMA,
    CONTACT_TYPES,
    OU_ID_SCHEMA,
    Field,
    InvalidInputError,
    account_id_problem,
    choice_schema,
    contact_problems,
    field_names,
    ou_id_problem,
)

REMOVAL_MODES = ("retain", "delete", "restore")
# Which side of the organization a deployment of the spec covers. With a delegated administrator
# running the contacts, the management account's stack covers only its own account and the
# delegated administrator's stack every other one.
SCOPES = ("organization", "management_account", "member_accounts")
DELETE = "DELETE"  # a contact type marked for deletion

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


def _ids(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": schema}


TARGET_FIELDS = (
    Field("accounts", "Only these accounts (not together with organizational_units)", _ids(ACCOUNT_ID_SCHEMA)),
    Field(
        "organizational_units",
        "Only accounts in these OUs or roots, nested OUs included (not together with accounts)",
        _ids(OU_ID_SCHEMA),
    ),
    Field("exclude_accounts", "Never touched; exclusions win over targets", _ids(ACCOUNT_ID_SCHEMA)),
    Field(
        "exclude_organizational_units",
        "Accounts in these OUs (nested included) are never touched; exclusions win over targets",
        _ids(OU_ID_SCHEMA),
    ),
)
OVERRIDE_FIELDS = (
    Field(
        "organizational_unit", "The OU (or root) whose accounts, nested OUs included, get these contacts", OU_ID_SCHEMA
    ),
    Field("account", "The account that gets these contacts", ACCOUNT_ID_SCHEMA),
    Field(
        "contacts", "Contact sets by type; per type the account override wins over the deepest OU", CONTACT_SET_SCHEMA
    ),
)
SPEC_FIELDS = (
    Field(
        "contacts",
        "The contact set for every targeted account, by type; leave a type out to leave it alone",
        CONTACT_SET_SCHEMA,
    ),
    Field("targets", "Which accounts (default: all, the management account included)", fields=TARGET_FIELDS),
    Field("overrides", "Contact sets for an OU or one account", fields=OVERRIDE_FIELDS, many=True),
    Field(
        "removal",
        "What deleting the stack, dropping a type or excluding an account does to the contacts",
        choice_schema(REMOVAL_MODES),
    ),
    Field(
        "failure_tolerance",
        "How many accounts may fail before the deploy fails (every failure is in the report)",
        {"type": "integer", "minimum": 0},
    ),
    Field(
        "scope", "Which side of the organization a stack covers (set by the app)", choice_schema(SCOPES), internal=True
    ),
)
_TOP_KEYS = field_names(SPEC_FIELDS)
_TARGET_KEYS = field_names(TARGET_FIELDS)


@dataclass(frozen=True)
class Override:
    organizational_unit: str | None
    account: str | None
    contacts: ContactSet


@dataclass(frozen=True)
class ContactSpec:
    contacts: ContactSet
    accounts: tuple[str, ...] = ()
    organizational_units: tuple[str, ...] = ()
    exclude_accounts: tuple[str, ...] = ()
    exclude_organizational_units: tuple[str, ...] = ()
    overrides: tuple[Override, ...] = ()
    removal: str = "retain"
    failure_tolerance: int = 0
    scope: str = "organization"
    _ou_overrides: Mapping[str, ContactSet] = field(default_factory=dict, compare=False, repr=False)
    _account_overrides: Mapping[str, ContactSet] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_ou_overrides", {o.organizational_unit: o.contacts for o in self.overrides if o.organizational_unit}
        )
        object.__setattr__(self, "_account_overrides", {o.account: o.contacts for o in self.overrides if o.account})

    # -- parsing ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, data: object, where: str = "alternate_contacts", *, show_values: bool = False) -> ContactSpec:
        """Validate a mapping and build the spec; raises InvalidInputError naming every bad field.
        ``show_values``: bad e-mail addresses and phone numbers appear in full (the user's own config
        file, at synth), not masked as in a handler's log."""
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise InvalidInputError([f"{where}: must be a table"])
        problems += _unknown_keys(where, data, _TOP_KEYS)
        contacts = _contact_set(f"{where}.contacts", data.get("contacts", {}), problems, show_values)
        targets = data.get("targets", {})
        if not isinstance(targets, Mapping):
            problems.append(f"{where}.targets: must be a table")
            targets = {}
        problems += _unknown_keys(f"{where}.targets", targets, _TARGET_KEYS)
        lists = {key: _id_list(f"{where}.targets.{key}", targets.get(key, []), problems) for key in _TARGET_KEYS}
        if lists["accounts"] and lists["organizational_units"]:
            problems.append(
                f"{where}.targets: give accounts or organizational_units, not both (omit both for every account)"
            )
        overrides = _overrides(f"{where}.overrides", data.get("overrides", []), problems, show_values)
        removal = data.get("removal", "retain")
        if removal not in REMOVAL_MODES:
            problems.append(f"{where}.removal: {removal!r} is not one of {', '.join(REMOVAL_MODES)}")
        tolerance = data.get("failure_tolerance", 0)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
            problems.append(f"{where}.failure_tolerance: {tolerance!r} must be a whole number of accounts, 0 or more")
        scope = data.get("scope", "organization")
        if scope not in SCOPES:
            problems.append(f"{where}.scope: {scope!r} is not one of {', '.join(SCOPES)}")
        if not data.get("contacts") and not any(o.contacts for o in overrides):
            problems.append(f"{where}.contacts: set at least one of {', '.join(CONTACT_TYPES)}")
        if problems:
            raise InvalidInputError(problems)
        return cls(
            contacts=contacts,
            accounts=lists["accounts"],
            organizational_units=lists["organizational_units"],
            exclude_accounts=lists["exclude_accounts"],
            exclude_organizational_units=lists["exclude_organizational_units"],
            overrides=tuple(overrides),
            removal=str(removal),
            failure_tolerance=int(tolerance),
            scope=str(scope),
        )

    @classmethod
    def from_json(cls, text: str) -> ContactSpec:
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as error:
            raise InvalidInputError([f"Spec: is not valid JSON ({error})"]) from None
        return cls.parse(data, "Spec")

    def to_dict(self) -> dict[str, Any]:
        targets = {
            key: list(value)
            for key, value in (
                ("accounts", self.accounts),
                ("organizational_units", self.organizational_units),
                ("exclude_accounts", self.exclude_accounts),
                ("exclude_organizational_units", self.exclude_organizational_units),
            )
            if value
        }
        return {
            "contacts": _dump_set(self.contacts),
            "targets": targets,
            "overrides": [
                {
                    **({"organizational_unit": o.organizational_unit} if o.organizational_unit else {}),
                    **({"account": o.account} if o.account else {}),
                    "contacts": _dump_set(o.contacts),
                }
                for o in self.overrides
            ],
            "removal": self.removal,
            "failure_tolerance": self.failure_tolerance,
            **({"scope": self.scope} if self.scope != "organization" else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    # -- meaning -----------------------------------------------------------------------------

    def scoped(self, scope: str) -> ContactSpec:
        """The same spec, covering only one side of the organization (see ``SCOPES``)."""
        assert scope in SCOPES, scope
        return dataclasses.replace(self, scope=scope)

    def targets(self, account_id: str, path: Sequence[str], management_account_id: str | None = None) -> bool:
        """Whether an account is targeted; ``path`` is its parents from the root down. A scoped spec
        needs ``management_account_id`` to tell the two sides apart."""
        if self.scope != "organization":
            assert management_account_id, "a scoped spec needs the management account ID"
            if (account_id == management_account_id) != (self.scope == "management_account"):
                return False
        if account_id in self.exclude_accounts or any(p in self.exclude_organizational_units for p in path):
            return False
        if self.accounts:
            return account_id in self.accounts
        if self.organizational_units:
            return any(p in self.organizational_units for p in path)
        return True

    def desired(self, account_id: str, path: Sequence[str]) -> dict[str, Contact | str]:
        """The contact types to manage for one account; the most specific override wins per type."""
        merged: dict[str, Contact | str] = dict(self.contacts)
        for parent in path:
            merged.update(self._ou_overrides.get(parent, {}))
        merged.update(self._account_overrides.get(account_id, {}))
        return merged


def _unknown_keys(where: str, data: Mapping[str, Any], allowed: Sequence[str]) -> list[str]:
    return [f"{where}.{key}: unknown key (allowed: {', '.join(allowed)})" for key in data if key not in allowed]


def _id_list(where: str, value: object, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list):
        problems.append(f"{where}: must be a list")
        return ()
    check = ou_id_problem if "organizational_units" in where else account_id_problem
    problems += [p for i, item in enumerate(value) if (p := check(f"{where}[{i}]", item))]
    return tuple(str(item) for item in value)


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


def _overrides(where: str, value: object, problems: list[str], show_values: bool) -> list[Override]:
    if not isinstance(value, list):
        problems.append(f"{where}: must be a list of tables")
        return []
    overrides: list[Override] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{at}: must be a table")
            continue
        problems += _unknown_keys(at, item, field_names(OVERRIDE_FIELDS))
        ou, account = item.get("organizational_unit"), item.get("account")
        if (ou is None) == (account is None):
            problems.append(f"{at}: give exactly one of organizational_unit or account")
            continue
        scope = ou if ou is not None else account
        problem = (
            ou_id_problem(f"{at}.organizational_unit", ou)
            if ou is not None
            else account_id_problem(f"{at}.account", account)
        )
        if problem:
            problems.append(problem)
        elif scope in seen:
            problems.append(f"{at}: a second override for {scope} (give one per account or unit)")
        seen.add(str(scope))
        contacts = _contact_set(f"{at}.contacts", item.get("contacts", {}), problems, show_values)
        overrides.append(Override(ou, account, contacts))
    return overrides


def _dump_set(contacts: ContactSet) -> dict[str, Any]:
    return {t: (dict(c) if isinstance(c, Mapping) else {"delete": True}) for t, c in sorted(contacts.items())}
