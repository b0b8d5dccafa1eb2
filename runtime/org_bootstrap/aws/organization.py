"""Which accounts the organization has, where they sit, and whether they can be updated.

The tree is walked from the root with the Organizations paginators, so every account comes with
its path of parents (root first), which OU targeting and overrides need. botocore's standard
retry mode backs off on Organizations' ``TooManyRequestsException``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Account:
    id: str
    status: str
    path: tuple[str, ...]  # parent IDs from the root down to the account's own parent
    name: str = ""

    @property
    def active(self) -> bool:
        return self.status == "ACTIVE"


def management_account_id(organizations: Any) -> str:
    return str(organizations.describe_organization()["Organization"]["MasterAccountId"])


def _pages(organizations: Any, operation: str, key: str, **kwargs: str) -> Iterator[dict[str, Any]]:
    for page in organizations.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


@dataclass(frozen=True)
class Tree:
    """The whole organization: every account, and every parent (the roots and the OUs)."""

    accounts: list[Account]
    parents: frozenset[str]
    # Every root and OU: its name and its parent's ID ("" for a root), for views by OU.
    units: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def read_tree(organizations: Any) -> Tree:
    """Every account of the organization with its status and its path of parents, and every OU."""
    accounts: list[Account] = []
    units: dict[str, tuple[str, str]] = {}
    pending: list[tuple[str, tuple[str, ...]]] = []
    for root in _pages(organizations, "list_roots", "Roots"):
        units[root["Id"]] = (root.get("Name", "Root"), "")
        pending.append((root["Id"], (root["Id"],)))
    parents: set[str] = set()
    while pending:
        parent, path = pending.pop()
        parents.add(parent)
        for item in _pages(organizations, "list_accounts_for_parent", "Accounts", ParentId=parent):
            accounts.append(Account(item["Id"], _status(item), path, item.get("Name", "")))
        for ou in _pages(organizations, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent):
            units[ou["Id"]] = (ou.get("Name", ou["Id"]), parent)
            pending.append((ou["Id"], (*path, ou["Id"])))
    return Tree(sorted(accounts, key=lambda account: account.id), frozenset(parents), units)


def list_accounts(organizations: Any) -> list[Account]:
    """Every account of the organization with its status and its path of parents."""
    return read_tree(organizations).accounts


def describe_account(organizations: Any, account_id: str) -> Account:
    """One account with its path, for event-driven updates of a single account."""
    item = organizations.describe_account(AccountId=account_id)["Account"]
    (parent,) = organizations.list_parents(ChildId=account_id)["Parents"]
    return Account(item["Id"], _status(item), path_to(organizations, parent["Id"]), item.get("Name", ""))


def path_to(organizations: Any, parent_id: str) -> tuple[str, ...]:
    """The path of an account whose parent is ``parent_id`` (a root or an OU): root first, the
    parent last. Where an account was before a move, from the move's ``sourceParentId``."""
    path = [parent_id]
    while not path[0].startswith("r-"):
        (parent,) = organizations.list_parents(ChildId=path[0])["Parents"]
        path.insert(0, parent["Id"])
    return tuple(path)


def account_of(item: dict[str, Any], path: tuple[str, ...] = ()) -> Account:
    """An account as ``DescribeAccount`` or ``ListAccountsForParent`` returns it."""
    return Account(item["Id"], _status(item), path, item.get("Name", ""))


def _status(item: dict[str, Any]) -> str:
    # ``State`` replaces the deprecated ``Status`` (and adds PENDING_CLOSURE); read either.
    return str(item.get("State") or item.get("Status") or "ACTIVE")
