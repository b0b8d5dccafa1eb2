"""The organization file: what the simulated organization starts as (``config/example-organization.toml``).

Checked like the app's config: every problem at once, each naming the field; unknown keys are errors.
The format is the one :meth:`simulation.organization.Organization.from_mapping` builds from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from org_bootstrap.aws import partitions
from org_bootstrap.settings.alternate_contacts.spec import CONTACT_TYPES, contact_problems
from org_bootstrap.settings.primary_contact.spec import primary_contact_problems
from org_bootstrap.validation import account_id_problem, service_principal_problem
from stacks.toml_file import read_toml

KEYS = (
    "id",
    "root_id",
    "management_account_id",
    "trusted_access",
    "delegated_administrators",
    "organizational_units",
    "accounts",
)
OU_KEYS = ("id", "name", "parent")
ACCOUNT_KEYS = ("id", "name", "email", "parent", "status", "contacts", "primary_contact", "regions", "tags")
# The statuses an opt-in Region of a seeded account can start in (DISABLED is the default).
REGION_STATUSES = ("ENABLED", "ENABLING", "DISABLING", "DISABLED")
STATUSES = ("ACTIVE", "SUSPENDED", "PENDING_CLOSURE")
_ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
_ROOT_ID = re.compile(r"^r-[0-9a-z]{4,32}$")


class OrganizationFileError(ValueError):
    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid organization file {source}:\n{lines}")


def load_organization_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    data, problem = read_toml(path)
    if data is None:
        raise OrganizationFileError(str(path), [problem or "cannot be read"])
    problems = organization_problems(data)
    if problems:
        raise OrganizationFileError(str(path), problems)
    return data


def organization_problems(data: Mapping[str, Any]) -> list[str]:
    problems = [f"{key}: unknown key (allowed: {', '.join(KEYS)})" for key in data if key not in KEYS]
    management = data.get("management_account_id")
    problems += _some(account_id_problem("management_account_id", management))
    if "id" in data and not _ORGANIZATION_ID.match(str(data["id"])):
        problems.append(f"id: {data['id']!r} is not an organization ID (o- and 10 to 32 letters or digits)")
    root = data.get("root_id")
    if root is not None and not _ROOT_ID.match(str(root)):
        problems.append(f"root_id: {root!r} is not a root ID (r- and 4 to 32 letters or digits)")
    ous = _tables(data, "organizational_units", problems)
    accounts = _tables(data, "accounts", problems)
    parents = {root} | {ou.get("id") for ou in ous}
    for index, ou in enumerate(ous):
        where = f"organizational_units[{index}]"
        problems += [f"{where}.{key}: unknown key (allowed: {', '.join(OU_KEYS)})" for key in ou if key not in OU_KEYS]
        if not isinstance(ou.get("name"), str) or not ou.get("name"):
            problems.append(f"{where}.name: is required")
        ou_id = ou.get("id")
        if root is None:
            problems.append(f"{where}.id: give root_id too (an OU ID embeds its root's)")
        elif not re.match(rf"^ou-{re.escape(str(root)[2:])}-[a-z0-9]{{8,32}}$", str(ou_id)):
            problems.append(f"{where}.id: {ou_id!r} is not an OU ID of root {root} (ou-{str(root)[2:]}-xxxxxxxx)")
        if ou.get("parent", root) not in parents - {ou_id}:
            problems.append(f"{where}.parent: {ou.get('parent')!r} is neither the root nor an OU of this file")
    problems += _duplicates("organizational_units", [ou.get("id") for ou in ous])
    for index, account in enumerate(accounts):
        problems += _account_problems(f"accounts[{index}]", account, parents)
    ids = [account.get("id") for account in accounts]
    problems += _duplicates("accounts", ids)
    status = {account.get("id"): account.get("status", "ACTIVE") for account in accounts}
    if management in status and status[management] != "ACTIVE":
        problems.append("accounts: the management account must be ACTIVE")
    trusted = data.get("trusted_access", [])
    if not isinstance(trusted, list):
        problems.append("trusted_access: must be a list of service principals")
        trusted = []
    problems += [
        p for i, principal in enumerate(trusted) if (p := service_principal_problem(f"trusted_access[{i}]", principal))
    ]
    admins = data.get("delegated_administrators", {})
    if not isinstance(admins, Mapping):
        problems.append("delegated_administrators: must be a table of service principal = [account IDs]")
        admins = {}
    for principal, registered in admins.items():
        where = f"delegated_administrators.{principal}"
        if principal not in trusted:
            problems.append(f"{where}: needs trusted access for {principal} (add it to trusted_access)")
        for account_id in registered if isinstance(registered, list) else [registered]:
            if account_id == management:
                problems.append(f"{where}: {account_id} is the management account, which cannot be registered")
            elif status.get(account_id) != "ACTIVE":
                problems.append(f"{where}: {account_id!r} is not an ACTIVE account of this file")
    return problems


def _account_problems(where: str, account: Mapping[str, Any], parents: set[Any]) -> list[str]:
    problems = [
        f"{where}.{key}: unknown key (allowed: {', '.join(ACCOUNT_KEYS)})" for key in account if key not in ACCOUNT_KEYS
    ]
    problems += _some(account_id_problem(f"{where}.id", account.get("id")))
    if not isinstance(account.get("name"), str) or not account.get("name"):
        problems.append(f"{where}.name: is required")
    if "parent" in account and account["parent"] not in parents:
        problems.append(f"{where}.parent: {account['parent']!r} is neither the root nor an OU of this file")
    if account.get("status", "ACTIVE") not in STATUSES:
        problems.append(f"{where}.status: {account.get('status')!r} is not one of {', '.join(STATUSES)}")
    if "primary_contact" in account:
        problems += primary_contact_problems(f"{where}.primary_contact", account["primary_contact"])
    regions = account.get("regions", {})
    if not isinstance(regions, Mapping):
        problems.append(f"{where}.regions: must be a table of opt-in Region = status")
        regions = {}
    for region, status in regions.items():
        problems += _some(partitions.opt_in_region_problem(f"{where}.regions.{region}", region, partitions.COMMERCIAL))
        if status not in REGION_STATUSES:
            problems.append(f"{where}.regions.{region}: {status!r} is not one of {', '.join(REGION_STATUSES)}")
    tags = account.get("tags", {})
    if not isinstance(tags, Mapping) or not all(isinstance(v, str) for v in tags.values()):
        problems.append(f'{where}.tags: must be a table of key = "value" strings')
    contacts = account.get("contacts", {})
    if not isinstance(contacts, Mapping):
        return [*problems, f"{where}.contacts: must be a table keyed by contact type"]
    for contact_type, contact in contacts.items():
        if contact_type not in CONTACT_TYPES:
            problems.append(
                f"{where}.contacts.{contact_type}: unknown contact type (allowed: {', '.join(CONTACT_TYPES)})"
            )
        else:
            problems += contact_problems(f"{where}.contacts.{contact_type}", contact)
    return problems


def _tables(data: Mapping[str, Any], key: str, problems: list[str]) -> list[Mapping[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        problems.append(f"{key}: must be a list of tables ([[{key}]])")
        return []
    return value


def _duplicates(where: str, ids: list[Any]) -> list[str]:
    return [f"{where}: {value!r} is given twice" for value in sorted({i for i in ids if ids.count(i) > 1}, key=str)]


def _some(problem: str | None) -> list[str]:
    return [problem] if problem else []
