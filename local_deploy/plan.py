"""What a deploy would change, read without changing anything, from the simulated or a real organization.

Resource by resource: the change set (Create, Update, Delete or no change, from the stack's record;
a real organization has none, so everything is a Create, as in a first deploy) with what the
organization has now. Account by account and contact type by type: the engine's own planning
(:func:`org_bootstrap.engine.jobs.plan`) gives each account's targets, and
:func:`org_bootstrap.engine.reconcile.reconcile_account` with ``apply=False`` reads and compares them.
The calls are organizations ``Describe*``/``List*`` and ``account:GetAlternateContact`` only.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from local_deploy.cloudformation import CREATE, DELETE, UPDATE, Change, LocalCloudFormation
from local_deploy.stack import StackState
from local_deploy.template import Template, is_custom
from org_bootstrap.aws.organization import Account, Tree, read_tree
from org_bootstrap.engine.jobs import Job
from org_bootstrap.engine.jobs import plan as plan_job
from org_bootstrap.engine.reconcile import (
    RESTORE,
    THROTTLED,
    AccountApi,
    Comparison,
    Snapshots,
    Target,
    reconcile_account,
)
from org_bootstrap.engine.registry import SETTINGS, specs_of
from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.handlers.preflight import RESOURCE_TYPE as PREFLIGHT_RESOURCE
from org_bootstrap.handlers.preflight import ConfigIds, Findings, check
from org_bootstrap.handlers.resource import ObjectReader, expanded
from org_bootstrap.settings.alternate_contacts import FIELDS
from org_bootstrap.settings.alternate_contacts.spec import Contact
from org_bootstrap.validation import InvalidInputError

SETTINGS_RESOURCE = "Custom::AlternateContacts"
TRUSTED_ACCESS_RESOURCE = "Custom::TrustedServiceAccess"
DELEGATED_ADMINISTRATOR_RESOURCE = "Custom::DelegatedAdministrator"
CONCURRENCY = 8  # reads overlap their latency; the engine's rate limiter keeps them at the quota

# What a contact line shows, in the order totals list them.
CREATE_CONTACT, UPDATE_CONTACT, DELETE_CONTACT, RESTORE_CONTACT = "create", "update", "delete", "restore"
ENABLE_REGION, DISABLE_REGION = "enable", "disable"
IN_SYNC, LEFT_ALONE = "in sync", "left alone"
ACTIONS = (
    CREATE_CONTACT,
    UPDATE_CONTACT,
    DELETE_CONTACT,
    RESTORE_CONTACT,
    ENABLE_REGION,
    DISABLE_REGION,
    IN_SYNC,
    LEFT_ALONE,
)
WRITES = (CREATE_CONTACT, UPDATE_CONTACT, DELETE_CONTACT, RESTORE_CONTACT, ENABLE_REGION, DISABLE_REGION)


class PlanError(RuntimeError):
    pass


@dataclass(frozen=True)
class OrganizationFacts:
    organization_id: str
    management_account_id: str
    trusted_access: frozenset[str]
    delegated_administrators: Mapping[str, list[str]]  # per service principal the template names
    accounts: list[Account]
    ou_names: Mapping[str, str]
    parents: frozenset[str] = frozenset()  # the roots and every OU, empty ones included

    @property
    def tree(self) -> Tree:
        return Tree(self.accounts, self.parents)

    def path_names(self, account: Account) -> str:
        return " / ".join(self.ou_names.get(parent, parent) for parent in account.path[1:]) or "(root)"


@dataclass(frozen=True)
class ResourceLine:
    change: Change
    current: str
    desired: str


@dataclass(frozen=True)
class SettingLine:
    contact_type: str
    current: Contact | None
    wanted: Contact | str | None
    action: str  # one of ACTIONS
    fields: tuple[str, ...] = ()  # what an update changes
    by_deploy: bool = True  # False: the config did not change, so a deploy sends no event for it (drift)


@dataclass
class AccountLine:
    account: Account
    contacts: list[SettingLine] = field(default_factory=list)
    skipped: str = ""  # the status of an account that is not ACTIVE
    failed: str = ""  # why it could not be read
    targeted: bool = True

    @property
    def changes(self) -> list[SettingLine]:
        return [line for line in self.contacts if line.by_deploy and line.action not in (IN_SYNC, LEFT_ALONE)]


@dataclass(frozen=True)
class Totals:
    accounts: int
    changing: int
    in_sync: int
    skipped: int
    failed: int
    untargeted: int
    contacts: Counter[str]  # by action: what the deploy would do, and what is in sync
    drifted: int  # contact types that differ but that the deploy leaves alone


@dataclass
class Plan:
    facts: OrganizationFacts
    resources: list[ResourceLine]
    supporting: list[Change]  # changes to IAM, Lambda, logs and other resources around the handlers
    accounts: list[AccountLine]
    contacts_change: Change | None
    preflight: Findings | None = None  # what the deploy's preflight would find (its problems fail it)

    @property
    def problems(self) -> list[str]:
        return self.preflight.problems if self.preflight else []

    def totals(self) -> Totals:
        targeted = [line for line in self.accounts if line.targeted]
        contacts: Counter[str] = Counter()
        drifted = 0
        for account in targeted:
            for line in account.contacts:
                if line.by_deploy or line.action in (IN_SYNC, LEFT_ALONE):
                    contacts[line.action] += 1
                else:
                    drifted += 1
        readable = [line for line in targeted if not line.skipped and not line.failed]
        return Totals(
            accounts=len(self.accounts),
            changing=sum(1 for line in readable if line.changes),
            in_sync=sum(1 for line in readable if not line.changes),
            skipped=sum(1 for line in targeted if line.skipped),
            failed=sum(1 for line in targeted if line.failed),
            untargeted=len(self.accounts) - len(targeted),
            contacts=contacts,
            drifted=drifted,
        )


def read_organization(organizations: Any, principals: Iterable[str]) -> OrganizationFacts:
    description = organizations.describe_organization()["Organization"]
    pages = organizations.get_paginator("list_aws_service_access_for_organization").paginate()
    trusted = frozenset(s["ServicePrincipal"] for page in pages for s in page.get("EnabledServicePrincipals", []))
    admins: dict[str, list[str]] = {}
    for principal in sorted(set(principals)):
        found = organizations.get_paginator("list_delegated_administrators").paginate(ServicePrincipal=principal)
        admins[principal] = sorted(admin["Id"] for page in found for admin in page.get("DelegatedAdministrators", []))
    tree = read_tree(organizations)
    accounts = tree.accounts
    ou_ids = {parent for account in accounts for parent in account.path[1:]}
    ou_names = {
        ou_id: organizations.describe_organizational_unit(OrganizationalUnitId=ou_id)["OrganizationalUnit"]["Name"]
        for ou_id in sorted(ou_ids)
    }
    return OrganizationFacts(
        description["Id"], description["MasterAccountId"], trusted, admins, accounts, ou_names, tree.parents
    )


def build_plan(
    template: Template,
    stack: StackState,
    organizations: Any,
    api: AccountApi,
    *,
    snapshots: Snapshots | None = None,
    read_object: ObjectReader | None = None,
    on_account: Callable[[str], None] | None = None,
    on_accounts: Callable[[int], None] | None = None,
) -> Plan:
    """``api`` calls from the account the stack deploys to (``stack.account``), as the handlers do.
    ``read_object`` reads a properties object (``PropertiesObject``), by default from S3.
    ``on_accounts`` hears how many accounts will be read, ``on_account`` each one read."""
    changes = LocalCloudFormation(stack).change_set(template)
    custom = [change for change in changes if change.custom]
    # Properties kept in the bootstrap bucket are read from it: the plan shows the spec in full.
    new_properties = {
        c.logical_id: expanded(template.properties(c.logical_id), read=read_object)
        for c in custom
        if c.action != DELETE
    }
    old_properties = {
        lid: expanded(resource.properties, read=read_object) if is_custom(resource.type) else resource.properties
        for lid, resource in stack.resources.items()
    }
    principals = {
        str(properties["ServicePrincipal"])
        for properties in [*new_properties.values(), *old_properties.values()]
        if isinstance(properties.get("ServicePrincipal"), str)
    }
    facts = read_organization(organizations, principals)
    resources = [
        ResourceLine(change, *_describe(change, new_properties.get(lid) or old_properties.get(lid, {}), facts))
        for change in custom
        for lid in [change.logical_id]
    ]
    supporting = [change for change in changes if not change.custom and change.action in (CREATE, UPDATE, DELETE)]
    findings = _preflight(organizations, custom, new_properties, old_properties, facts)
    if findings is not None and findings.problems:  # the deploy would stop there: nothing else runs
        return Plan(facts, resources, supporting, [], None, findings)
    contacts = [change for change in custom if change.resource_type == SETTINGS_RESOURCE]
    if len(contacts) > 1:
        raise PlanError(f"the plan reads one {SETTINGS_RESOURCE} resource; the template has {len(contacts)}")
    accounts = [AccountLine(account, targeted=False) for account in facts.accounts]
    if contacts:
        change = contacts[0]
        new = _spec(new_properties.get(change.logical_id))
        old = _spec(old_properties.get(change.logical_id))
        scope = {"caller_account_id": api.own_account_id, "management_account_id": facts.management_account_id}
        accounts = _contact_lines(
            facts.accounts, new, old, change.action, api, snapshots, scope, on_account, on_accounts
        )
    return Plan(facts, resources, supporting, accounts, contacts[0] if contacts else None, findings)


def _preflight(
    organizations: Any,
    custom: list[Change],
    new_properties: Mapping[str, Mapping[str, Any]],
    old_properties: Mapping[str, Mapping[str, Any]],
    facts: OrganizationFacts,
) -> Findings | None:
    """The deploy's first step, with the handler's own check: only when the deploy would run it."""
    change = next((c for c in custom if c.resource_type == PREFLIGHT_RESOURCE and c.action in (CREATE, UPDATE)), None)
    if change is None:
        return None
    ids = ConfigIds.from_properties(new_properties[change.logical_id])
    accepted = None
    if change.action == UPDATE:
        with contextlib.suppress(InvalidInputError):
            accepted = ConfigIds.from_properties(old_properties.get(change.logical_id, {}))
    return check(organizations, ids, accepted=accepted, tree=facts.tree)


def _describe(change: Change, properties: Mapping[str, Any], facts: OrganizationFacts) -> tuple[str, str]:
    """What the organization has now and what the resource asks for, in words."""
    principal = str(properties.get("ServicePrincipal", ""))
    if change.resource_type == TRUSTED_ACCESS_RESOURCE:
        now = "on" if principal in facts.trusted_access else "off"
        wanted = f"on (removal: {properties.get('Removal', 'retain')})" if change.action != DELETE else "by removal"
        return f"{principal}: {now}", wanted
    if change.resource_type == DELEGATED_ADMINISTRATOR_RESOURCE:
        registered = ", ".join(facts.delegated_administrators.get(principal, [])) or "none"
        wanted = str(properties.get("AccountId", "")) if change.action != DELETE else "by removal"
        return f"registered: {registered}", wanted
    if change.resource_type == SETTINGS_RESOURCE:
        named = [setting.title for setting in SETTINGS if setting.resource_property in properties]
        return ", ".join(named) or "account settings", "see the accounts below"
    if change.resource_type == PREFLIGHT_RESOURCE:
        return f"organization {facts.organization_id}", "every ID the config names in it"
    return "", ""


def _spec(properties: Mapping[str, Any] | None) -> dict[str, SettingSpec[Any]] | None:
    """Every setting the resource's properties carry (the handler's own reading), or None."""
    return specs_of(properties) or None if properties else None


def _contact_lines(
    accounts: list[Account],
    new: Mapping[str, SettingSpec[Any]] | None,
    old: Mapping[str, SettingSpec[Any]] | None,
    action: str,
    api: AccountApi,
    snapshots: Snapshots | None,
    scope: Mapping[str, Any],  # who calls: caller and management account IDs
    on_account: Callable[[str], None] | None,
    on_accounts: Callable[[int], None] | None,
) -> list[AccountLine]:
    # What the config manages, and what this deploy's event would do (nothing when the resource is
    # unchanged: CloudFormation sends no event, so a difference found then is drift).
    caller, management = scope["caller_account_id"], scope["management_account_id"]
    full = (
        plan_job("plan", accounts, new, None, apply=False, caller_account_id=caller, management_account_id=management)
        if new
        else Job("plan", {}, [])
    )
    deploy = Job("plan", {}, [])
    if action in (CREATE, UPDATE, DELETE) and (new or old):
        deploy = plan_job(
            "plan",
            accounts,
            new,
            old if action != CREATE else None,
            apply=False,
            caller_account_id=caller,
            management_account_id=management,
        )
    targets: dict[str, dict[str, Target]] = {}
    for job in (full, deploy):
        for account_id, key in job.items:
            targets.setdefault(account_id, {}).update(job.target_sets[key])
    by_deploy = {account_id: set(deploy.target_sets[key]) for account_id, key in deploy.items}
    skipped = dict(full.skipped + deploy.skipped)
    if snapshots is None and any(RESTORE in wanted.values() for wanted in targets.values()):
        raise PlanError("restoring contacts needs the stack's snapshot table, which only a deployed stack has")
    if on_accounts:
        on_accounts(len(targets))

    def read(account_id: str) -> AccountLine:
        outcome = reconcile_account(api, account_id, targets[account_id], snapshots=snapshots, apply=False)
        while outcome.status == THROTTLED:  # never a failure: the pacing has slowed down, read again
            outcome = reconcile_account(api, account_id, targets[account_id], snapshots=snapshots, apply=False)
        if on_account:
            on_account(account_id)
        line = AccountLine(by_id[account_id], failed=outcome.reason)
        line.contacts = [_line(c, c.contact_type in by_deploy.get(account_id, set())) for c in outcome.compared]
        return line

    by_id = {account.id: account for account in accounts}
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        read_lines = dict(zip(targets, pool.map(read, targets), strict=True))
    lines = []
    for account in accounts:
        if account.id in read_lines:
            lines.append(read_lines[account.id])
        elif account.id in skipped:
            lines.append(AccountLine(account, skipped=skipped[account.id]))
        else:
            lines.append(AccountLine(account, targeted=False))
    return lines


def _line(comparison: Comparison, by_deploy: bool) -> SettingLine:
    current, wanted = comparison.current, comparison.wanted
    if comparison.restoring and wanted is None:
        action = LEFT_ALONE  # nothing recorded: the stack never changed this type
    elif comparison.action is None:
        action = IN_SYNC
    elif comparison.restoring:
        action = RESTORE_CONTACT
    elif comparison.action == "delete":
        action = DELETE_CONTACT
    elif comparison.action in (ENABLE_REGION, DISABLE_REGION):
        action = comparison.action
    else:
        action = CREATE_CONTACT if current is None else UPDATE_CONTACT
    fields: tuple[str, ...] = ()
    if action == UPDATE_CONTACT and isinstance(current, Mapping) and isinstance(wanted, Mapping):
        names = FIELDS if set(wanted) <= set(FIELDS) else tuple(dict.fromkeys([*wanted, *current]))
        fields = tuple(name for name in names if current.get(name) != wanted.get(name))
    return SettingLine(comparison.contact_type, current, wanted, action, fields, by_deploy)
