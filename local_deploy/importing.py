"""``import``: write the config that reproduces what an organization's accounts have now.

Three steps, each its own function:

1. :func:`read_accounts` reads every ACTIVE account's settings with each setting's own ``read``,
   through :class:`~org_bootstrap.engine.reconcile.AccountApi`: paced per operation at the
   published quotas (adaptive, shared by the threads), a throttle retried until the account is
   read, so no account is ever lost. An account that is not ACTIVE, or whose read fails for any
   other reason, is reported as such and never guessed.
2. :func:`fewest_entries` finds, item by item (a contact type, the primary contact, a Region),
   the fewest config entries that give every account exactly what it has: a section default, an
   override per OU (its whole subtree, nested OUs included) and per account, the most specific
   winning, as :meth:`~org_bootstrap.engine.targeting.SettingSpec.desired` reads them. It is exact
   (a dynamic program over the OU tree, as for a parsimony tree: for each node and each value it
   could inherit, the least number of entries below it), so the value most accounts share becomes
   the default and an OU gets an override where its subtree agrees, whenever that is fewest.
3. :func:`imported_config` turns the entries into the config's mapping, and :func:`config_text`
   into a commented TOML file, which :func:`write_atomically` writes (a temporary file in the
   same directory, renamed at the end: an interrupted import leaves nothing partial).

What "has nothing" means per setting, in the config's own vocabulary:

- an alternate contact type an account lacks: the key left out of the section (leave it alone)
  where no entry above the account sets the type; where one does (the type's default, or its OU's
  override), an override ``{ delete = true }``, the only way the vocabulary says "none here": the
  account has none, so the delete writes nothing. The solver counts such deletes after entries,
  so of two equally short configs it takes the one with fewer, and a type most accounts lack
  never gets a default (it would need a delete in each of them);
- a Region: only ENABLED (or ENABLING) is written; a DISABLED one is left out, or listed under
  ``disable`` where an entry above enables it (disabling a disabled Region writes nothing);
- the primary contact: the API cannot delete one, so an account without one (or with a value the
  config's rules refuse, in any setting) is excluded from the section (``targets.exclude_accounts``),
  which leaves it exactly as it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import textwrap
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_deploy import plan
from org_bootstrap.aws.clients import error_code, is_throttle
from org_bootstrap.aws.organization import Account
from org_bootstrap.aws.partitions import opt_in_regions
from org_bootstrap.engine.reconcile import AccountApi
from org_bootstrap.engine.registry import BY_NAME
from org_bootstrap.settings import Setting
from org_bootstrap.settings.alternate_contacts.spec import CONTACT_FIELD_RULES, CONTACT_TYPES, DELETE
from org_bootstrap.settings.primary_contact.spec import PRIMARY_CONTACT, PRIMARY_CONTACT_FIELD_RULES
from org_bootstrap.settings.regions.spec import DISABLED, ENABLED
from org_bootstrap.validation import InvalidInputError
from simulation.generated import toml_key, toml_value

WIDTH = 100  # the longest line the file's overrides write inline
IMPORTED_SETTINGS = ("alternate_contacts", "primary_contact", "regions")
CONCURRENCY = 16  # reads overlap their latency; the pacing keeps each operation at its quota
ACCOUNT_SERVICE_PRINCIPAL = "account.amazonaws.com"

ABSENT = "(none)"  # an item an account does not have: no contact of the type, a Region not enabled
_LEAVE = "(left out)"  # what an account inherits where nothing above it names the item


# -- 1. reading --------------------------------------------------------------------------------


@dataclass
class AccountSettings:
    """What one account has now, per setting and item (None: it has none), or why it was not read."""

    account: Account
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    not_read: str = ""  # the status of an account that is not ACTIVE, or why its read failed


def items_of(setting: Setting, partition: str) -> list[str]:
    """The items an import reads of a setting: every contact type, the primary contact, every
    opt-in Region of the partition."""
    if setting.name == "alternate_contacts":
        return list(CONTACT_TYPES)
    if setting.name == "primary_contact":
        return [PRIMARY_CONTACT]
    return sorted(opt_in_regions(partition))


def read_accounts(
    api: AccountApi,
    accounts: Sequence[Account],
    settings: Sequence[str],
    partition: str,
    *,
    concurrency: int = CONCURRENCY,
    on_account: Callable[[str], None] | None = None,
) -> list[AccountSettings]:
    """Every account's items of ``settings``, in the accounts' order. Only ACTIVE accounts are read."""
    wanted = [(BY_NAME[name], items_of(BY_NAME[name], partition)) for name in settings]

    def read(account: Account) -> AccountSettings:
        found = AccountSettings(account)
        if not account.active:
            found.not_read = account.status
        else:
            try:
                for setting, items in wanted:
                    found.values[setting.name] = _read_until_answered(setting, api, account.id, items)
            except ClientError as error:  # access denied, an SCP, an account being closed: never guessed
                found.values, found.not_read = {}, f"{error_code(error) or 'error'}: not read"
        if on_account:
            on_account(account.id)
        return found

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(read, accounts))


def _read_until_answered(setting: Setting, api: AccountApi, account_id: str, items: list[str]) -> dict[str, Any]:
    """A throttle the pacing could not wait out is no answer: the pacing has slowed down, read again."""
    while True:
        try:
            return setting.read(api, account_id, items)
        except ClientError as error:
            if not is_throttle(error):
                raise


def read_organization(
    organizations: Any,
    api: AccountApi,
    settings: Sequence[str],
    partition: str,
    *,
    on_accounts: Callable[[int], None] | None = None,
    on_account: Callable[[str], None] | None = None,
) -> Organization:
    """The organization's tree and facts (Organizations' Describe and List calls), then every
    account's settings (:func:`read_accounts`)."""
    facts = plan.read_organization(organizations, [ACCOUNT_SERVICE_PRINCIPAL])
    if on_accounts:
        on_accounts(len(facts.accounts))
    accounts = read_accounts(api, facts.accounts, settings, partition, on_account=on_account)
    registered = facts.delegated_administrators.get(ACCOUNT_SERVICE_PRINCIPAL, [])
    return Organization(
        facts.organization_id,
        facts.management_account_id,
        accounts,
        facts.ou_names,
        delegated_administrator=registered[0] if registered else None,
        trusted_access=ACCOUNT_SERVICE_PRINCIPAL in facts.trusted_access,
    )


# -- 2. the fewest entries -----------------------------------------------------------------------

Cost = tuple[int, int, int]  # entries, deletes (or disables), account entries: fewest first, in this order
_FREE: Cost = (0, 0, 0)
_DONT_CARE = object()  # an account that was not read, or is excluded: any value will do


def _plus(*costs: Cost) -> Cost:
    return (sum(c[0] for c in costs), sum(c[1] for c in costs), sum(c[2] for c in costs))


@dataclass
class _Node:
    id: str
    children: list[_Node] = field(default_factory=list)
    value: Any = _DONT_CARE  # an account's (a leaf's) value
    leaf: bool = False
    table: dict[Hashable, Cost] = field(default_factory=dict)  # inherited value -> least cost below
    other: Cost = _FREE  # the least cost below for any value not in ``table``
    label: Hashable = None  # the best value to give this node, and its cost with everything below
    label_cost: Cost | None = None

    def cost(self, inherited: Hashable) -> Cost:
        return self.table.get(inherited, self.other)


def _tree(accounts: Sequence[Account]) -> list[_Node]:
    """The roots, with every OU that holds an account somewhere below it, and the accounts."""
    nodes: dict[str, _Node] = {}
    roots: list[_Node] = []
    for account in accounts:
        parent: _Node | None = None
        for place in account.path:
            node = nodes.get(place)
            if node is None:
                node = nodes[place] = _Node(place)
                (parent.children if parent else roots).append(node)
            parent = node
        leaf = _Node(account.id, leaf=True)
        nodes[account.id] = leaf
        if parent is None:
            roots.append(leaf)
        else:
            parent.children.append(leaf)
    return roots


def _solve(node: _Node, *, root: bool = False) -> None:
    """Fill ``node.table``/``node.other`` bottom-up (see :func:`fewest_entries`)."""
    if node.leaf:
        if node.value is _DONT_CARE:
            node.table, node.other = {}, _FREE
        else:
            node.table = {node.value: _FREE, **({_LEAVE: _FREE} if node.value == ABSENT else {})}
            node.other = (1, int(node.value == ABSENT), 1)  # an override of the account itself
        return
    for child in node.children:
        _solve(child)
    values = {value for child in node.children for value in child.table}
    keep = {value: _plus(*(child.cost(value) for child in node.children)) for value in values}
    keep_other = _plus(*(child.other for child in node.children))
    # A default is an entry; an OU's override too (and a delete, when it names none). A root's
    # default of none would delete everywhere: leaving the item out (_LEAVE) always does better.
    candidates = sorted((v for v in values if v != _LEAVE and not (root and v == ABSENT)), key=repr)
    best: tuple[Cost, Hashable] | None = None
    for value in candidates:
        cost = _plus((1, int(value == ABSENT), 0), keep[value])
        if best is None or cost < best[0]:
            best = (cost, value)
    node.table = dict(keep)
    node.other = keep_other
    if best is not None:
        node.label_cost, node.label = best
        node.table = {value: min(cost, best[0]) for value, cost in keep.items()}
        node.other = min(keep_other, best[0])


def _assign(node: _Node, inherited: Hashable, labels: dict[str, Hashable]) -> None:
    if node.leaf:
        fits = node.value is _DONT_CARE or node.value == inherited or (inherited == _LEAVE and node.value == ABSENT)
        if not fits:
            labels[node.id] = node.value
        return
    keep = _plus(*(child.cost(inherited) for child in node.children))
    if node.label_cost is not None and node.label_cost < keep:
        labels[node.id] = node.label
        inherited = node.label
    for child in node.children:
        _assign(child, inherited, labels)


def fewest_entries(accounts: Sequence[Account], values: Mapping[str, Hashable]) -> dict[str, Hashable]:
    """The fewest places (a root: the section's default; an OU; an account) that, each given a
    value, give every account in ``values`` exactly its value (or, for ABSENT, nothing at all),
    the most specific place winning. Accounts not in ``values`` may get anything (not read, or
    excluded). Ties go to fewer ABSENT entries (deletes), then to fewer account entries."""
    roots = _tree(accounts)
    leaves: dict[str, _Node] = {}

    def collect(node: _Node) -> None:
        if node.leaf:
            leaves[node.id] = node
        for child in node.children:
            collect(child)

    for root in roots:
        collect(root)
    for account_id, value in values.items():
        leaves[account_id].value = value
    labels: dict[str, Hashable] = {}
    for root in roots:
        _solve(root, root=True)
        _assign(root, _LEAVE, labels)
    return labels


# -- 3. the config -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Organization:
    """What the import read: the organization's facts and every account's settings."""

    organization_id: str
    management_account_id: str
    accounts: list[AccountSettings]
    ou_names: Mapping[str, str]
    delegated_administrator: str | None = None
    trusted_access: bool = True


@dataclass
class Section:
    """One setting's imported section: its mapping, and what the file's comments say about it."""

    name: str
    data: dict[str, Any] | None  # None: nothing to manage (the file says why)
    why_none: str = ""
    default_shares: dict[str, tuple[int, int]] = field(default_factory=dict)  # item -> (accounts with it, read)
    excluded: dict[str, str] = field(default_factory=dict)  # account -> why the section leaves it alone
    override_notes: list[str] = field(default_factory=list)  # one comment per override, in order

    def counts(self) -> tuple[int, int, int]:
        """(items set in the default, OU overrides, account overrides)."""
        if not self.data:
            return (0, 0, 0)
        overrides = self.data.get("overrides", [])
        ous = sum(1 for o in overrides if "organizational_unit" in o)
        default = _default_items(self.name, self.data)
        return (default, ous, len(overrides) - ous)


def _default_items(name: str, data: Mapping[str, Any]) -> int:
    if name == "alternate_contacts":
        return len(data.get("contacts", {}))
    if name == "primary_contact":
        return int("contact" in data)
    return len(data.get("enable", []))


def _now(name: str, found: AccountSettings) -> dict[str, Any]:
    """What an account has of a setting, item by item (None: nothing). A Region on its way to
    ENABLED (ENABLING) counts as enabled: the deploy follows it there and writes nothing."""
    values = found.values[name]
    if name == "regions":
        return {region: ENABLED if status in (ENABLED, "ENABLING") else None for region, status in values.items()}
    return values


def _hashable(value: Any) -> Hashable:
    """A value as a dictionary key: a contact becomes its canonical JSON."""
    if value is None:
        return ABSENT
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    return str(value)


def _config_value(name: str, value: Hashable) -> Any:
    """An entry's value as the config writes it, per setting."""
    if name == "regions":
        return DISABLED if value == ABSENT else ENABLED
    if value == ABSENT:
        return DELETE
    found = json.loads(str(value))  # in the API's order of fields, as the config's example writes them
    order = list(CONTACT_FIELD_RULES if name == "alternate_contacts" else PRIMARY_CONTACT_FIELD_RULES)
    return {key: found[key] for key in sorted(found, key=lambda key: (order.index(key) if key in order else 99, key))}


def _problems(name: str, item: str, value: Any, partition: str) -> list[str]:
    """What the config's own rules refuse in ``value`` (fields named, no values shown)."""
    spec = BY_NAME[name].spec_type
    table = {
        "alternate_contacts": lambda: {"contacts": {item: value}},
        "primary_contact": lambda: {"contact": value},
        "regions": lambda: {"enable": [item]},
    }[name]()
    try:
        spec.parse(table, partition=partition)
    except InvalidInputError as error:
        return [problem.split(":", 1)[0] for problem in error.problems]
    return []


def imported_section(name: str, organization: Organization, partition: str) -> Section:
    """The fewest entries of one setting that give every read account what it has."""
    setting = BY_NAME[name]
    read = [a for a in organization.accounts if not a.not_read]
    tree = [a.account for a in organization.accounts]
    section = Section(name, None)
    # Accounts whose state the section cannot say: excluded, so left exactly as they are. One
    # that could not be read is among them: a deploy must never overwrite what nobody has seen.
    for found in organization.accounts:
        if found.not_read and found.account.active:
            section.excluded[found.account.id] = f"could not be read ({found.not_read.removesuffix(': not read')})"
    refused: dict[tuple[str, Hashable], list[str]] = {}
    for found in read:
        for item, value in _now(name, found).items():
            if value is None:
                if name == "primary_contact":
                    section.excluded[found.account.id] = "has no primary contact (the API cannot delete one)"
                continue
            key = (item, _hashable(value))
            if key not in refused:
                refused[key] = _problems(name, item, value, partition)
            if refused[key]:
                fields = ", ".join(sorted(set(refused[key])))
                section.excluded[found.account.id] = f"its {item} is refused by the config's rules ({fields})"
    items = items_of(setting, partition)
    labels: dict[str, dict[str, Hashable]] = {}  # place -> item -> value
    for item in items:
        values = {
            a.account.id: _hashable(_now(name, a).get(item)) for a in read if a.account.id not in section.excluded
        }
        with_it = sum(1 for value in values.values() if value != ABSENT)
        if not with_it:
            continue  # no account has it: the section leaves it out
        for place, value in fewest_entries(tree, values).items():
            labels.setdefault(place, {})[item] = value
        section.default_shares[item] = (with_it, len(values))
    # An account that has none of the section's items, whose override would delete every one of
    # them, is excluded instead: left alone, which is what it has, and nothing to delete later.
    for found in read if name == "alternate_contacts" else ():
        place, has = found.account.id, _now(name, found)
        if place in labels and all(v is None for v in has.values()) and set(labels[place].values()) == {ABSENT}:
            del labels[place]
            section.excluded[place] = "has no alternate contact: left alone rather than deleted"
            section.default_shares = {item: (n, total - 1) for item, (n, total) in section.default_shares.items()}
    roots = {a.account.path[0] for a in organization.accounts if a.account.path}
    default = {item: v for root in roots for item, v in labels.pop(root, {}).items()}
    if not default and not labels:
        section.why_none = {
            "alternate_contacts": "no account read has an alternate contact",
            "primary_contact": "no account read has a primary contact the config can hold",
            "regions": "no account read has an opt-in Region enabled",
        }[name]
        return section
    spec = setting.spec_type
    data: dict[str, Any] = {}
    data.update(spec.dump_values({item: _config_value(name, v) for item, v in default.items()}))
    if section.excluded:
        data["targets"] = {"exclude_accounts": sorted(section.excluded)}
    data["removal"] = "retain"
    overrides = []
    depth = {a.account.id: len(a.account.path) for a in organization.accounts}
    ou_depth = {ou: i for a in organization.accounts for i, ou in enumerate(a.account.path)}
    names = {a.account.id: a.account.name for a in organization.accounts}
    for place in sorted(labels, key=lambda p: (p in depth, ou_depth.get(p, depth.get(p, 0)), p)):
        values = spec.dump_values({item: _config_value(name, v) for item, v in labels[place].items()})
        is_account = place in depth
        overrides.append({("account" if is_account else "organizational_unit"): place, **values})
        if is_account:
            note = f"account {place}" + (f" ({names[place]})" if names.get(place) else "")
        else:
            note = f"OU {organization.ou_names.get(place, place)} ({place}) and the OUs below it"
        deleting = [item for item, v in labels[place].items() if v == ABSENT]
        if deleting and name == "alternate_contacts":
            note += f"\nhas no {', '.join(deleting)} contact now: delete = true says so (and deletes nothing)"
        elif deleting:
            note += f"\n{', '.join(deleting)} disabled, as now (and disabling changes nothing)"
        section.override_notes.append(note)
    if overrides:
        data["overrides"] = overrides
    section.data = data
    return section


def imported_config(
    organization: Organization, settings: Sequence[str], *, region: str, partition: str
) -> tuple[dict[str, Any], list[Section]]:
    """The config's mapping (as ``stacks.config.BootstrapConfig.from_mapping`` reads it) and its sections."""
    config: dict[str, Any] = {"management_account_id": organization.management_account_id, "region": region}
    if organization.delegated_administrator:
        config["delegated_administrator_account_id"] = organization.delegated_administrator
    sections = [imported_section(name, organization, partition) for name in settings]
    for section in sections:
        if section.data is not None:
            config[section.name] = section.data
    return config, sections


# -- the file ------------------------------------------------------------------------------------

_TITLES = {
    "alternate_contacts": "Alternate contacts (BILLING, OPERATIONS, SECURITY)",
    "primary_contact": "The primary contact",
    "regions": "Opt-in Regions",
}


def config_text(
    organization: Organization,
    config: Mapping[str, Any],
    sections: Sequence[Section],
    *,
    source: str,
    at: str,
    schema: str = "./schema.json",
) -> str:
    """The imported config as a commented TOML file (``schema``: the path to config/schema.json from it)."""
    accounts = organization.accounts
    not_read = [a for a in accounts if a.not_read]
    lines = [
        f"#:schema {schema}",
        f"# Imported from AWS Organization {organization.organization_id} at {at}",
        f"# ({source})",
        "# by `python -m local_deploy import`: what its accounts have now, in the fewest entries. Each",
        "# section's default is what most accounts have; an OU's override covers its OUs below it, an",
        "# account's only what is left; the most specific wins. A first deploy of this file writes",
        "# nothing: `python -m local_deploy plan --config <this file>` shows 0 writes. Removal is",
        "# retain everywhere: deleting the stack leaves every setting as it is.",
        f"# Accounts: {len(accounts)}, of which {len(accounts) - len(not_read)} read.",
    ]
    if not_read:
        lines.append("# Not read, so not described here: the deploy skips an account that is not ACTIVE, and one")
        lines.append("# that could not be read is excluded from every section below (import again once it can be):")
        lines += [f"#   {a.account.id} {a.account.name}: {a.not_read}".rstrip() for a in not_read]
    if not organization.trusted_access:
        lines.append(f"# Trusted access for {ACCOUNT_SERVICE_PRINCIPAL} is off: the deploy turns it on.")
    lines.append("")
    lines.append(f"management_account_id = {toml_value(config['management_account_id'])}")
    lines.append(f"region = {toml_value(config['region'])}")
    if "delegated_administrator_account_id" in config:
        lines.append(f"# Registered for {ACCOUNT_SERVICE_PRINCIPAL} now: the stack adopts the registration.")
        lines.append(f"delegated_administrator_account_id = {toml_value(config['delegated_administrator_account_id'])}")
    for section in sections:
        lines += ["", "# " + "-" * 93, f"# {_TITLES[section.name]}"]
        if section.data is None:
            lines.append(f"# Not imported: {section.why_none}.")
            continue
        lines += _section_lines(section, organization)
    return "\n".join(lines) + "\n"


def _section_lines(section: Section, organization: Organization) -> list[str]:
    name, data = section.name, section.data or {}
    lines: list[str] = []
    if section.default_shares:
        shares = ", ".join(f"{item} {n}" for item, (n, _) in section.default_shares.items())
        total = max(total for _, total in section.default_shares.values())
        said = f"Accounts that have it: {shares} (of the {total} this section describes)."
        lines += textwrap.wrap(said, WIDTH, initial_indent="# ", subsequent_indent="#   ")
    if name == "alternate_contacts":
        lines.append("# A type left out of the default is one most accounts do not have: left alone there.")
    lines.append(f"[{name}]")
    for key, value in data.items():
        if key in ("overrides", "contacts", "contact", "targets"):
            continue
        lines.append(f"{key} = {toml_value(value)}")
    if section.excluded:
        names = {a.account.id: a.account.name for a in organization.accounts}
        lines += ["", "# Left exactly as they are (what each has, this section cannot say, or need not)."]
        lines.append(f"[{name}.targets]")
        lines.append("exclude_accounts = [")
        for account, why in sorted(section.excluded.items()):
            lines.append(f"    {toml_value(account)},  # {names.get(account) or ''}: {why}".replace(" : ", " "))
        lines.append("]")
    for key in ("contacts", "contact"):
        if key not in data:
            continue
        if key == "contact":
            lines += ["", f"[{name}.contact]", *(f"{k} = {toml_value(v)}" for k, v in data["contact"].items())]
            continue
        for contact_type, contact in data["contacts"].items():
            lines += ["", f"[{name}.contacts.{contact_type}]"]
            lines += [f"{k} = {toml_value(v)}" for k, v in contact.items()]
    for override, note in zip(data.get("overrides", []), section.override_notes, strict=True):
        lines += ["", *(f"# {line}" for line in note.splitlines()), f"[[{name}.overrides]]"]
        lines += _override_lines(name, override)
    return lines


def _override_lines(name: str, override: Mapping[str, Any]) -> list[str]:
    """One override's keys: contacts inline when every line fits in ``WIDTH`` columns, else each
    as a table of its own (``[alternate_contacts.overrides.contacts.SECURITY]``)."""
    plain = [f"{key} = {toml_value(value)}" for key, value in override.items() if not isinstance(value, Mapping)]
    tables = {
        f"{key}.{toml_key(inner)}" if key == "contacts" else key: contact
        for key, value in override.items()
        if isinstance(value, Mapping)
        for inner, contact in (value.items() if key == "contacts" else [("", value)])
    }
    inline = [f"{path} = {toml_value(table)}" for path, table in tables.items()]
    if all(len(line) <= WIDTH for line in inline):
        return plain + inline
    lines = list(plain)
    for path, table in tables.items():
        lines += [f"[{name}.overrides.{path}]", *(f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items())]
    return lines


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a temporary file beside it, renamed at the end."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def counts(sections: Sequence[Section]) -> dict[str, tuple[int, int, int]]:
    """Per section: (items in the default, OU overrides, account overrides)."""
    return {section.name: section.counts() for section in sections if section.data is not None}
