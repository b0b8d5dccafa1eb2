"""The organization as a job's report needs it for a coverage view: every account (targeted or
not), where it sits, and which settings target it.

A job's outcomes name only the accounts it worked; a view of "does every account have its
settings?" also needs the accounts no setting targets, the ones skipped, and the OU tree. This
is the compact form the drift check adds to its report (``organization``): one short row per
account, so 10,000 accounts stay well under a megabyte (benchmarks/coverage_benchmark.py).

    {"format": 1,
     "settings": ["alternate_contacts", "regions"],          # the settings the config manages
     "units": {"r-ab12": ["Root", ""], "ou-ab12-x": ["Workloads", "r-ab12"]},  # name, parent
     "accounts": [["123456789012", "name", "ou-ab12-x", "ACTIVE", 3], ...]}

The last number of an account's row is a bit mask: bit ``i`` set when ``settings[i]`` targets it.
No contact values are in it: account IDs, account names, OU names and states only.
"""

from __future__ import annotations

from typing import Any

from org_bootstrap.aws.organization import Tree
from org_bootstrap.engine.jobs import Specs, by_setting
from org_bootstrap.engine.registry import SETTINGS

FORMAT = 1
REPORT_KEY = "organization"  # where a report carries it


def organization_snapshot(tree: Tree, specs: Specs, management_account_id: str | None) -> dict[str, Any]:
    """Every account of ``tree`` with its parent, state and the settings of ``specs`` that target it."""
    found = by_setting(specs)
    names = [setting.name for setting in SETTINGS if setting.name in found]
    rows = []
    for account in tree.accounts:
        mask = 0
        for bit, name in enumerate(names):
            if found[name].targets(account.id, account.path, management_account_id):
                mask |= 1 << bit
        rows.append([account.id, account.name, account.path[-1] if account.path else "", account.status, mask])
    return {
        "format": FORMAT,
        "settings": names,
        "units": {unit: [name, parent] for unit, (name, parent) in sorted(tree.units.items())},
        "accounts": rows,
    }
