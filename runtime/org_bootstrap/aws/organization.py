"""Which accounts the organization has, where they sit, and whether they can be updated.

The tree is walked from the root with the Organizations paginators, so every account comes with
its path of parents (root first), which OU targeting and overrides need. botocore's standard
retry mode backs off on Organizations' ``TooManyRequestsException``.

Where a config targets by tags, each account's Organizations tags are read with the tree, once
per job (``ListTagsForResource``, paged), paced by a token bucket and retried by the clients'
policy on a throttle (:mod:`org_bootstrap.aws.clients`): never once per item or per setting.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.aws.clients import error_code

# Organizations publishes no per-operation rate for ListTagsForResource; its list calls share the
# organization's throttling (TooManyRequestsException). A steady 5 calls a second (the Account
# Management reads' order) reads 1,000 accounts' tags in 200 s and leaves room for other callers;
# a throttle is retried with backoff by the client.
TAG_READS_PER_SECOND = 5.0
TAG_READS_BURST = 5


@dataclass(frozen=True)
class Account:
    id: str
    status: str
    path: tuple[str, ...]  # parent IDs from the root down to the account's own parent
    name: str = ""
    # Its Organizations tags, read when a config targets by tags (None: not read).
    tags: Mapping[str, str] | None = field(default=None, hash=False)

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


def tag_pacing() -> Any:
    """The token bucket (:class:`org_bootstrap.engine.pacing.TokenBucket`) the tag reads of one job share."""
    from org_bootstrap.engine.pacing import TokenBucket  # the engine imports this module

    return TokenBucket(TAG_READS_PER_SECOND, TAG_READS_BURST)


def read_tags(organizations: Any, resource_id: str, pacing: Any = None) -> dict[str, str]:
    """One account's (or OU's) Organizations tags, every page."""
    pacing = pacing or tag_pacing()
    tags: dict[str, str] = {}
    token = ""
    while True:
        pacing.acquire()
        page = organizations.list_tags_for_resource(ResourceId=resource_id, **({"NextToken": token} if token else {}))
        tags.update({tag["Key"]: tag["Value"] for tag in page.get("Tags", [])})
        token = page.get("NextToken") or ""
        if not token:
            return tags


def with_tags(organizations: Any, accounts: list[Account], pacing: Any = None) -> list[Account]:
    """The accounts with their tags read, one ListTagsForResource (a page) each."""
    pacing = pacing or tag_pacing()
    return [
        Account(account.id, account.status, account.path, account.name, read_tags(organizations, account.id, pacing))
        for account in accounts
    ]


def read_tree(organizations: Any, *, tags: bool = False) -> Tree:
    """Every account of the organization with its status and its path of parents, and every OU;
    with ``tags``, each account's tags too."""
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
    found = sorted(accounts, key=lambda account: account.id)
    return Tree(with_tags(organizations, found) if tags else found, frozenset(parents), units)


def list_accounts(organizations: Any, *, tags: bool = False) -> list[Account]:
    """Every account of the organization with its status and its path of parents (and its tags)."""
    return read_tree(organizations, tags=tags).accounts


def describe_account(organizations: Any, account_id: str, *, tags: bool = False) -> Account:
    """One account with its path (and its tags), for event-driven updates of a single account."""
    item = organizations.describe_account(AccountId=account_id)["Account"]
    (parent,) = organizations.list_parents(ChildId=account_id)["Parents"]
    path = path_to(organizations, parent["Id"])
    return Account(
        item["Id"], _status(item), path, item.get("Name", ""), read_tags(organizations, account_id) if tags else None
    )


def standing(organizations: Any, account_id: str) -> str | None:
    """Why ``account_id`` is no longer an account to work (closed, suspended or removed from the
    organization since it was listed), or None while it is an ACTIVE member."""
    try:
        item = organizations.describe_account(AccountId=account_id)["Account"]
    except ClientError as error:
        if error_code(error) == "AccountNotFoundException":
            return "no longer a member of the organization"
        raise
    status = _status(item)
    return None if status == "ACTIVE" else f"{status} since the job was planned"


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
