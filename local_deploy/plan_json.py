"""The plan for machines (``plan --output json``): the same plan the table shows, every account and
item, in a versioned schema documented in docs/plan.md. People's data is masked as in the table
unless ``--show-values`` (the document says which fields and whether).

A change that removes or renames a key, or changes what a value means, raises FORMAT_VERSION; a
new key does not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from local_deploy.plan import ACCOUNT_STATUSES, ACTIONS, WRITES, AccountLine, Plan, SettingLine
from local_deploy.plan_view import action_text, item_title, plan_line
from local_deploy.stack import StackState
from org_bootstrap.engine.registry import setting_of
from org_bootstrap.validation import MASKED_FIELDS

FORMAT_VERSION = 1


def plan_document(plans: Sequence[tuple[Plan, StackState]], *, show_values: bool, real: bool) -> dict[str, Any]:
    """One document for every stack planned (the management account's first)."""
    facts = plans[0][0].facts
    return {
        "format_version": FORMAT_VERSION,
        "masked": not show_values,
        "masked_fields": [] if show_values else sorted(MASKED_FIELDS),
        "organization": {
            "id": facts.organization_id,
            "real": real,
            "management_account_id": facts.management_account_id,
            "accounts": len(facts.accounts),
            "organizational_units": len(facts.ou_names),
            "trusted_access": sorted(facts.trusted_access),
        },
        "stacks": [_stack(plan, stack, show_values) for plan, stack in plans],
    }


def _stack(plan: Plan, stack: StackState, show_values: bool) -> dict[str, Any]:
    totals = plan.totals()
    statuses = Counter(line.status for line in plan.accounts)
    return {
        "name": stack.name,
        "account": stack.account,
        "region": stack.region,
        "status": stack.status if stack.deployed else "not deployed",
        "resources": [
            {
                "logical_id": line.change.logical_id,
                "type": line.change.resource_type,
                "action": line.change.action,
                "changed_properties": list(line.change.properties),
                "now": line.current,
                "wants": line.desired,
            }
            for line in plan.resources
        ],
        "supporting_resources": dict(sorted(Counter(change.action for change in plan.supporting).items())),
        "preflight": None
        if plan.preflight is None
        else {"problems": list(plan.preflight.problems), "warnings": list(plan.preflight.warnings)},
        "settings": plan.contacts_change is not None,
        "accounts": [_account(line, plan, show_values) for line in plan.accounts],
        "totals": {
            "writes": sum(totals.contacts[action] for action in WRITES),
            "actions": {action: totals.contacts[action] for action in ACTIONS},
            "drifted_items": totals.drifted,
            "accounts": {"total": len(plan.accounts)} | {status: statuses[status] for status in ACCOUNT_STATUSES},
            "by_setting": [
                {
                    "setting": setting.name,
                    "title": setting.title,
                    "writes": setting.writes,
                    "actions": {action: setting.actions[action] for action in ACTIONS},
                    "drifted": setting.drifted,
                }
                for setting in plan.by_setting()
            ],
            "by_organizational_unit": [
                {"id": ou.id, "path": ou.path, "accounts": ou.accounts, "changing": ou.changing, "writes": ou.writes}
                for ou in plan.by_organizational_unit()
            ],
        },
        "summary": plan_line(plan).plain,
    }


def _account(line: AccountLine, plan: Plan, show_values: bool) -> dict[str, Any]:
    path = line.account.path
    return {
        "id": line.account.id,
        "name": line.account.name,
        "organizational_unit": {"id": path[-1] if path else "", "path": plan.facts.path_names(line.account)},
        "status": line.status,
        "reason": line.failed or line.skipped,
        "items": [_item(item, show_values) for item in line.contacts],
    }


def _item(line: SettingLine, show_values: bool) -> dict[str, Any]:
    setting, item = setting_of(line.contact_type)
    return {
        "key": line.contact_type,
        "setting": setting.name,
        "item": item,
        "title": item_title(line),
        "action": line.action,
        "summary": action_text(line),
        "by_deploy": line.by_deploy,
        "fields": list(line.fields),
        "now": setting.shown(line.current, show_values=show_values, against=line.wanted),
        "wants": setting.shown(line.wanted, show_values=show_values, against=line.current),
    }
