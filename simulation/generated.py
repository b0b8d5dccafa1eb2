"""Large, heterogeneous organizations for rehearsals, benchmarks and tests, drawn from a seed.

A real organization is not empty: its accounts sit in nested OUs, most share the company's
alternate contacts and primary contact while some OUs and accounts differ, some lack a contact
type, some OUs have opt-in Regions, people tag accounts (``environment``, ``team``), and a few
accounts are suspended. :func:`generated_organization` draws such an organization, in the format of
an organization file (:mod:`local_deploy.organization_file`), the same for the same seed;
:func:`generated_config` is an app config with all three settings for it.

    python -m simulation.generated --accounts 300 --ous 85 --seed 1 \\
        --organization /tmp/org.toml --config /tmp/config.toml
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MANAGEMENT = "111111111111"
DELEGATED = "222222222222"
ORGANIZATION_ID = "o-generated01"
ROOT_ID = "r-gen1"
OPT_IN_REGIONS = ("ap-east-1", "me-central-1", "af-south-1", "eu-south-1")
ENVIRONMENTS = ("production", "staging", "development", "sandbox")
TEAMS = ("payments", "orders", "search", "identity", "data", "platform")
COMPANY = {
    "BILLING": {
        "Name": "Finance Operations",
        "Title": "Cloud cost owner",
        "EmailAddress": "aws-billing@example.com",
        "PhoneNumber": "+1 206 555 0100",
    },
    "OPERATIONS": {
        "Name": "Platform On-Call",
        "Title": "Operations",
        "EmailAddress": "aws-ops@example.com",
        "PhoneNumber": "+1 206 555 0101",
    },
    "SECURITY": {
        "Name": "Security Operations Center",
        "Title": "Security",
        "EmailAddress": "aws-security@example.com",
        "PhoneNumber": "+1 206 555 0102",
    },
}
PRIMARY = {
    "FullName": "Example Corp Cloud Platform",
    "CompanyName": "Example Corp",
    "AddressLine1": "410 Terry Ave N",
    "City": "Seattle",
    "StateOrRegion": "WA",
    "PostalCode": "98109",
    "CountryCode": "US",
    "PhoneNumber": "+1 206 555 0100",
}


def generated_organization(accounts: int = 300, ous: int = 85, *, seed: int = 1) -> dict[str, Any]:
    """An organization of ``accounts`` accounts (the management account included) in ``ous`` nested
    OUs, in the organization file's format. Heterogeneous, as a real one: see the module docstring."""
    if accounts < 1 or ous < 0:
        raise ValueError("accounts must be at least 1 and ous at least 0")
    rng = random.Random(seed)
    units: list[dict[str, Any]] = []
    depth = {ROOT_ID: 0}
    for index in range(ous):
        parents = [parent for parent, level in depth.items() if level < 4]
        parent = rng.choice(parents)
        ou_id = f"ou-{ROOT_ID[2:]}-{index:08d}"
        units.append({"id": ou_id, "name": f"Unit {index:03d}", **({"parent": parent} if parent != ROOT_ID else {})})
        depth[ou_id] = depth[parent] + 1
    # What an OU's accounts have, beyond the company's: a subtree may have its own SECURITY contact,
    # its own primary contact, its Regions; each inherited by the OUs below it.
    traits: dict[str, dict[str, Any]] = {ROOT_ID: {"contacts": dict(COMPANY), "primary": PRIMARY, "regions": {}}}
    for unit in units:
        inherited = traits[unit.get("parent", ROOT_ID)]
        own: dict[str, Any] = {
            "contacts": dict(inherited["contacts"]),
            "primary": inherited["primary"],
            "regions": dict(inherited["regions"]),
        }
        roll = rng.random()
        if roll < 0.15:
            own["contacts"]["SECURITY"] = {
                **COMPANY["SECURITY"],
                "Name": f"{unit['name']} security",
                "EmailAddress": f"security-{unit['id'][-4:]}@example.com",
            }
        elif roll < 0.22:
            own["primary"] = {**PRIMARY, "FullName": f"Example Corp {unit['name']}"}
        if rng.random() < 0.2:
            own["regions"][rng.choice(OPT_IN_REGIONS)] = "ENABLED"
        traits[unit["id"]] = own
    placed = [ROOT_ID, *(unit["id"] for unit in units)]
    members: list[dict[str, Any]] = []
    for index in range(accounts):
        # the second account is the config's delegated administrator: it must be a member
        account_id = {0: MANAGEMENT, 1: DELEGATED}.get(index, f"{300000000000 + index * 7919:012d}")
        parent = ROOT_ID if index == 0 else rng.choice(placed)
        have = traits[parent]
        contacts = dict(have["contacts"])
        roll = rng.random()
        if roll < 0.05:
            contacts["BILLING"] = {**COMPANY["BILLING"], "EmailAddress": f"billing-{index}@example.com"}
        elif roll < 0.10:
            contacts.pop("OPERATIONS")
        elif roll < 0.12:
            contacts = {}
        account: dict[str, Any] = {
            "id": account_id,
            "name": "Management" if index == 0 else f"account-{index:05d}",
            "email": f"aws-{account_id}@example.com",
            **({"parent": parent} if parent != ROOT_ID else {}),
            **({"contacts": contacts} if contacts else {}),
            "primary_contact": have["primary"] if rng.random() < 0.97 else {**PRIMARY, "City": "Tacoma"},
            **({"regions": dict(have["regions"])} if have["regions"] else {}),
            "tags": {"environment": rng.choice(ENVIRONMENTS), "team": rng.choice(TEAMS)},
        }
        if index > 1 and rng.random() < 0.01:
            account["status"] = "SUSPENDED"
        members.append(account)
    return {
        "id": ORGANIZATION_ID,
        "root_id": ROOT_ID,
        "management_account_id": MANAGEMENT,
        "trusted_access": ["account.amazonaws.com"],
        "organizational_units": units,
        "accounts": members,
    }


def generated_config(organization: Mapping[str, Any]) -> dict[str, Any]:
    """An app config with all three settings for ``organization``: the company's contacts and primary
    contact everywhere, a Region for the first OU and a SECURITY contact of its own for the second."""
    units = [unit["id"] for unit in organization.get("organizational_units", [])]
    config: dict[str, Any] = {
        "management_account_id": organization["management_account_id"],
        "region": "us-east-1",
        "delegated_administrator_account_id": DELEGATED,
        "alternate_contacts": {"contacts": COMPANY},
        "primary_contact": {"contact": PRIMARY},
        "regions": {"enable": []},
    }
    if units:
        config["regions"]["overrides"] = [{"organizational_unit": units[0], "enable": [OPT_IN_REGIONS[0]]}]
    if len(units) > 1:
        security = {**COMPANY["SECURITY"], "EmailAddress": "soc-second@example.com"}
        config["alternate_contacts"]["overrides"] = [
            {"organizational_unit": units[1], "contacts": {"SECURITY": security}}
        ]
    return config


def to_toml(data: Mapping[str, Any]) -> str:
    """``data`` as TOML: scalars and tables of scalars first, then arrays of tables (JSON strings are
    TOML basic strings)."""
    lines: list[str] = []
    later: list[tuple[str, Any]] = []
    for key, value in data.items():
        tables = isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value)
        if tables or isinstance(value, Mapping):
            later.append((key, value))
        else:
            lines.append(f"{key} = {toml_value(value)}")
    for key, value in later:
        if isinstance(value, Mapping):
            lines += ["", f"[{key}]", *(f"{k} = {toml_value(v)}" for k, v in value.items())]
        else:
            for item in value:
                lines += ["", f"[[{key}]]", *(f"{k} = {toml_value(v)}" for k, v in item.items())]
    return "\n".join(lines) + "\n"


def toml_key(key: str) -> str:
    """A key as TOML writes it: bare when it may be, else quoted."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """One value as TOML: JSON strings are TOML basic strings; tables are written inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    return "[" + ", ".join(toml_value(item) for item in value) + "]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulation.generated", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--ous", type=int, default=85)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--organization", type=Path, required=True, help="the organization file to write")
    parser.add_argument("--config", type=Path, help="also write an app config with all three settings for it")
    args = parser.parse_args(argv)
    organization = generated_organization(args.accounts, args.ous, seed=args.seed)
    args.organization.write_text(to_toml(organization), encoding="utf-8")
    if args.config:
        args.config.write_text(to_toml_config(generated_config(organization)), encoding="utf-8")
    return 0


def to_toml_config(config: Mapping[str, Any]) -> str:
    """The config as TOML: its settings' sections as tables, their overrides as arrays of tables."""
    top = {key: value for key, value in config.items() if not isinstance(value, Mapping)}
    text = to_toml(top)
    for section, body in config.items():
        if not isinstance(body, Mapping):
            continue
        text += f"\n[{section}]\n"
        for key, value in body.items():
            if key != "overrides":
                text += f"{key} = {toml_value(value)}\n"
        for override in body.get("overrides", []):
            text += f"\n[[{section}.overrides]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in override.items())
    return text


if __name__ == "__main__":
    raise SystemExit(main())
