"""Custom resource: every ID the config names, checked against the organization before anything changes.

The stack's other custom resources depend on this one, so an unknown account or OU (a typo in an
exclusion protects nothing, silently) fails the deploy here, naming the config field and the ID,
before trusted access, the registration or any contact is touched. Its properties are the config's
IDs, so it runs again whenever one of them changes. The local deploy's ``plan`` runs the same
:func:`check` before any deploy.

Tag targets and tag overrides are shown with the accounts they select now; a tag key or value that
no account carries is a warning, never a problem (tags change: the events and the drift check
follow them).

Accounts that exist but are not ACTIVE are reported (the contacts engine skips them), not refused;
the delegated administrator must be ACTIVE, a member, and not the management account.

On an Update, an ID the previous properties also named, which has left the organization since, is
reported instead of refused: the change does not introduce it. CloudFormation's rollback (an
Update back to the previous properties, which this check accepted when they were deployed) is not
checked at all and reads nothing: a rollback must not fail on a check, nor on a throttling storm
that a check's reads would meet.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from org_bootstrap.aws import clients
from org_bootstrap.aws.organization import Account, Tree, read_tree, with_tags
from org_bootstrap.engine.targeting import SettingSpec, TagSelector, dump_tags, tag_selector, tags_match
from org_bootstrap.handlers.resource import log_event, old_properties, properties, rolling_back
from org_bootstrap.validation import InvalidInputError, account_id_problem, ou_id_problem

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)
PHYSICAL_ID = "org-bootstrap/preflight"
RESOURCE_TYPE = "Custom::OrganizationPreflight"
MANAGEMENT_FIELD = "management_account_id"
DELEGATED_ADMINISTRATOR_FIELD = "delegated_administrator_account_id"
_DATA_LIMIT = 2000  # characters of warnings in the response (CloudFormation allows 4 KB in all)


@dataclass(frozen=True)
class ConfigIds:
    """The IDs a config names, each under the config field that names it."""

    management_account_id: str
    delegated_administrator_account_id: str | None = None
    accounts: Mapping[str, str] = field(default_factory=dict)  # field -> account ID
    organizational_units: Mapping[str, str] = field(default_factory=dict)  # field -> OU or root ID
    tags: Mapping[str, TagSelector] = field(default_factory=dict)  # field -> tag selector

    @classmethod
    def of(
        cls,
        *,
        management_account_id: str,
        delegated_administrator_account_id: str | None = None,
        spec: SettingSpec[Any] | None = None,
        where: str = "alternate_contacts",
    ) -> ConfigIds:
        accounts: dict[str, str] = {}
        units: dict[str, str] = {}
        tags: dict[str, TagSelector] = {}
        if spec is not None:
            for key, ids, into in (
                ("accounts", spec.accounts, accounts),
                ("exclude_accounts", spec.exclude_accounts, accounts),
                ("organizational_units", spec.organizational_units, units),
                ("exclude_organizational_units", spec.exclude_organizational_units, units),
            ):
                into.update({f"{where}.targets.{key}[{i}]": value for i, value in enumerate(ids)})
            for i, override in enumerate(spec.overrides):
                if override.account:
                    accounts[f"{where}.overrides[{i}].account"] = override.account
                if override.organizational_unit:
                    units[f"{where}.overrides[{i}].organizational_unit"] = override.organizational_unit
            tags.update({f"{where}.{key}": selector for key, selector in spec.tag_selectors()})
        return cls(management_account_id, delegated_administrator_account_id, accounts, units, tags)

    # -- as the custom resource's properties (CloudFormation sends strings) -----------------------

    def to_properties(self) -> dict[str, str]:
        found = {"ManagementAccountId": self.management_account_id}
        if self.delegated_administrator_account_id:
            found["DelegatedAdministratorAccountId"] = self.delegated_administrator_account_id
        found["Accounts"] = _json(self.accounts)
        found["OrganizationalUnits"] = _json(self.organizational_units)
        if self.tags:  # only where the config names tags: other configs' templates stay as they were
            found["Tags"] = json.dumps(
                {where: dump_tags(selector) for where, selector in self.tags.items()}, sort_keys=True
            )
        return found

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> ConfigIds:
        """Parse and check the form of every ID; raises InvalidInputError naming each bad one."""
        problems: list[str] = []
        management = props.get("ManagementAccountId")
        problems += _present(account_id_problem(MANAGEMENT_FIELD, management))
        delegated = props.get("DelegatedAdministratorAccountId") or None
        if delegated is not None:
            problems += _present(account_id_problem(DELEGATED_ADMINISTRATOR_FIELD, delegated))
        accounts = _id_map("Accounts", props.get("Accounts", "{}"), problems)
        units = _id_map("OrganizationalUnits", props.get("OrganizationalUnits", "{}"), problems)
        problems += [p for where, value in accounts.items() if (p := account_id_problem(where, value))]
        problems += [p for where, value in units.items() if (p := ou_id_problem(where, value))]
        tags = _tag_map(props.get("Tags", "{}"), problems)
        if problems:
            raise InvalidInputError(problems)
        return cls(str(management), delegated, accounts, units, tags)

    def values(self) -> set[str]:
        named = {self.management_account_id, *self.accounts.values(), *self.organizational_units.values()}
        return named | ({self.delegated_administrator_account_id} if self.delegated_administrator_account_id else set())


@dataclass
class Findings:
    organization_id: str
    problems: list[str] = field(default_factory=list)  # any of them fails the deploy
    warnings: list[str] = field(default_factory=list)  # reported; the deploy goes on
    selected: dict[str, list[str]] = field(default_factory=dict)  # tag field -> the account IDs it selects now


def check(
    organizations: Any, ids: ConfigIds, *, accepted: ConfigIds | None = None, tree: Tree | None = None
) -> Findings:
    """Every ID of ``ids`` against the organization ``organizations`` reads. ``accepted``: the IDs of
    the previous properties (an Update); ``tree``: the organization, when the caller has read it."""
    description = organizations.describe_organization()["Organization"]
    organization_id, management = str(description["Id"]), str(description["MasterAccountId"])
    tree = tree or read_tree(organizations)
    accounts = {account.id: account for account in tree.accounts}
    findings = Findings(organization_id)
    before = accepted.values() if accepted is not None else set()

    def unknown(problem: str, value: str) -> None:
        if value in before:
            findings.warnings.append(f"{problem}; it was accepted before and has left the organization since")
        else:
            findings.problems.append(problem)

    if ids.management_account_id != management:
        findings.problems.append(
            f"{MANAGEMENT_FIELD}: {ids.management_account_id} is not the management account of organization "
            f"{organization_id} (its management account is {management}); deploy with that account's credentials "
            "and name it here"
        )
    if ids.delegated_administrator_account_id is not None:
        account_id = ids.delegated_administrator_account_id
        found = delegated_administrator_problem(
            DELEGATED_ADMINISTRATOR_FIELD, account_id, accounts.get(account_id), management, organization_id
        )
        if found and account_id not in accounts:
            unknown(found, account_id)
        elif found:
            findings.problems.append(found)
    for where, account_id in ids.accounts.items():
        account = accounts.get(account_id)
        if account is None:
            unknown(
                f"{where}: {account_id} is not an account of organization {organization_id} (every account the "
                "config names must be in it)",
                account_id,
            )
        elif not account.active:
            findings.warnings.append(
                f"{where}: account {account_id} is {account.status}, not ACTIVE; Account Management cannot change "
                "its contacts until it is ACTIVE again (it is skipped and reported)"
            )
    for where, unit_id in ids.organizational_units.items():
        if unit_id not in tree.parents:
            unknown(
                f"{where}: {unit_id} is not an organizational unit or root of organization {organization_id} (every "
                "OU the config names must be in it)",
                unit_id,
            )
    if ids.tags:
        tagged = (
            tree.accounts if all(a.tags is not None for a in tree.accounts) else with_tags(organizations, tree.accounts)
        )
        check_tags(ids.tags, tagged, findings)
    return findings


def check_tags(selectors: Mapping[str, TagSelector], accounts: list[Account], findings: Findings) -> None:
    """Which accounts each tag selector selects now; a key or a value no account carries is a
    warning (a typo selects nothing, silently; but tags change, so it never stops a deploy)."""
    carried: dict[str, set[str]] = {}
    for account in accounts:
        for key, value in (account.tags or {}).items():
            carried.setdefault(key, set()).add(value)
    for where, selector in selectors.items():
        findings.selected[where] = [a.id for a in accounts if tags_match(selector, a.tags or {})]
        for key, values in selector:
            if key not in carried:
                findings.warnings.append(f"{where}: no account carries the tag key {key!r} (it selects no account now)")
                continue
            missing = [value for value in values if value not in carried[key]]
            if missing:
                findings.warnings.append(
                    f"{where}.{key}: no account carries {key}={', '.join(repr(v) for v in missing)} "
                    f"(values in use: {', '.join(repr(v) for v in sorted(carried[key])[:5])})"
                )


def delegated_administrator_problem(
    where: str, account_id: str, account: Account | None, management_account_id: str, organization_id: str
) -> str | None:
    """Why ``account_id`` cannot be registered as delegated administrator, or None."""
    if account_id == management_account_id:
        return f"{where}: {account_id} is the management account, which cannot be a delegated administrator"
    if account is None:
        return (
            f"{where}: {account_id} is not an account of organization {organization_id}; a delegated "
            "administrator must be a member account"
        )
    if not account.active:
        return f"{where}: account {account_id} is {account.status}; a delegated administrator must be ACTIVE"
    return None


@clients.until_invocation_ends
def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    log_event(event)
    if event["RequestType"] == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID)}
    if event["RequestType"] == "Update" and rolling_back(event):
        LOG.info("a rollback to properties accepted when they were deployed: not checked again")
        return {"PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID)}
    ids = ConfigIds.from_properties(properties(event))
    accepted = _accepted(old_properties(event)) if event["RequestType"] == "Update" else None
    findings = check(clients.client("organizations"), ids, accepted=accepted)
    for warning in findings.warnings:
        LOG.warning("%s", warning)
    if findings.problems:
        raise InvalidInputError(findings.problems)
    LOG.info("every ID the config names is in organization %s", findings.organization_id)
    for where, selected in findings.selected.items():
        LOG.info("%s selects %d accounts: %s", where, len(selected), ", ".join(selected[:50]))
    return {
        "PhysicalResourceId": PHYSICAL_ID,
        "Data": {
            "OrganizationId": findings.organization_id,
            "Checked": str(len(ids.values())),
            "Warnings": "; ".join(findings.warnings)[:_DATA_LIMIT],
            **(
                {"TagSelections": "; ".join(f"{w}: {len(ids)}" for w, ids in findings.selected.items())[:_DATA_LIMIT]}
                if findings.selected
                else {}
            ),
        },
    }


def _accepted(props: Mapping[str, Any]) -> ConfigIds | None:
    """The previous properties' IDs; None when they do not parse (they were accepted as they were)."""
    try:
        return ConfigIds.from_properties(props)
    except InvalidInputError:
        return None


def _id_map(where: str, text: object, problems: list[str]) -> dict[str, str]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        problems.append(f"{where}: must be a JSON object of config field to ID")
        return {}
    return {str(key): str(item) for key, item in value.items()}


def _tag_map(text: object, problems: list[str]) -> dict[str, TagSelector]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        problems.append("Tags: must be a JSON object of config field to tags")
        return {}
    return {str(where): tag_selector(f"Tags.{where}", tags, problems) for where, tags in value.items()}


def _json(ids: Mapping[str, str]) -> str:
    return json.dumps(dict(ids), sort_keys=True, separators=(",", ":"))


def _present(problem: str | None) -> list[str]:
    return [problem] if problem else []
