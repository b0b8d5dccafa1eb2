"""How long calls take at AWS's published quotas: the estimates the plan and the progress print.

The floor of a set of Account Management calls is set by the slowest operation: after the
service's burst, each operation runs at its published rate (the pacing's own bucket,
:mod:`org_bootstrap.engine.pacing`, starts with that burst and then keeps to the rate). Region
opt-in requests add their own floor: at most 50 in progress in the organization
(:data:`org_bootstrap.settings.regions.REGION_OPT_LIMITS`), each taking the Region's enabling time
and seen done at the job's next read of it (every ``FOLLOW_EVERY_SECONDS``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from local_deploy.plan import (
    CREATE_CONTACT,
    DELETE_CONTACT,
    DISABLE_REGION,
    ENABLE_REGION,
    RESTORE_CONTACT,
    UPDATE_CONTACT,
    Plan,
)
from local_deploy.simulated_time import REGION_OPT_SECONDS, duration
from org_bootstrap.aws.partitions import partition_here
from org_bootstrap.engine.jobs import FOLLOW_EVERY_SECONDS, Job
from org_bootstrap.engine.pacing import ACCOUNT_QUOTAS
from org_bootstrap.engine.reconcile import RESTORE
from org_bootstrap.engine.registry import SETTINGS, setting_of
from org_bootstrap.settings import DELETE, Setting
from org_bootstrap.settings import regions as regions_setting

ENABLE, DISABLE = regions_setting.ENABLE, regions_setting.DISABLE
FOLLOW_UP = regions_setting.GET  # a Region request's reads until it has got there


@dataclass(frozen=True)
class Estimate:
    """Calls by operation, by setting, and the least time AWS's published quotas allow for them."""

    calls: Counter[str]  # operation -> calls
    by_setting: Mapping[str, Counter[str]] = field(default_factory=dict)  # setting title -> operation -> calls
    region_requests: int = 0
    region_seconds: float = REGION_OPT_SECONDS

    @property
    def seconds(self) -> float:
        return quota_floor(self.calls, region_requests=self.region_requests, region_seconds=self.region_seconds)

    def text(self) -> str:
        """``alternate contacts: 897 GetAlternateContact, 228 PutAlternateContact; ...``."""
        parts = []
        for title, calls in self.by_setting.items():
            if calls:
                parts.append(f"{title}: " + ", ".join(f"{count} {operation}" for operation, count in calls.items()))
        return "; ".join(parts) or "no Account Management calls"


def quota_floor(
    calls: Mapping[str, int],
    *,
    region_requests: int = 0,
    region_seconds: float = REGION_OPT_SECONDS,
    follow_every: float = FOLLOW_EVERY_SECONDS,
) -> float:
    """The least time ``calls`` (operation -> count) take at the published quotas, with
    ``region_requests`` Region requests that each take ``region_seconds`` to get there."""
    floors = {
        operation: max(0, count - quota.burst) / quota.per_second
        for operation, count in calls.items()
        if (quota := ACCOUNT_QUOTAS.get(operation)) is not None and count
    }
    floor = max(floors.values(), default=0.0)
    if region_requests:
        # the Region requests' own follow-up reads come with their wait, not before it
        others = max((seconds for operation, seconds in floors.items() if operation != FOLLOW_UP), default=0.0)
        floor = max(floor, _regions_floor(region_requests, others, region_seconds, follow_every))
    return floor


def _regions_floor(requests: int, others: float, region_seconds: float, follow_every: float) -> float:
    """When the last of ``requests`` Region requests is seen done: each starts once a slot is free
    (at most the organization's limit in progress) and not before the job reaches its account (the
    accounts are worked through in ``others`` seconds), at EnableRegion's rate."""
    limits = regions_setting.SETTING.opt_limits(partition_here())
    assert limits is not None
    rate = ACCOUNT_QUOTAS[ENABLE].per_second
    seen_done: list[float] = []
    for index in range(requests):
        start = max(index / rate, others * index / requests)
        if index >= limits.per_organization:
            start = max(start, seen_done[index - limits.per_organization])
        seen_done.append(start + region_seconds + follow_every / 2)  # read again every follow_every
    return max(seen_done)


def of_plan(plan: Plan) -> Estimate:
    """The calls the deploy of ``plan`` makes: each account's reads of the items the deploy's job
    carries, and a write for each change it shows."""
    by_setting: dict[str, Counter[str]] = {setting.title: Counter() for setting in SETTINGS}
    region_requests = 0
    for account in plan.accounts:
        if not account.targeted or account.skipped or account.failed:
            continue
        items: dict[Setting, list[str]] = {}
        for line in account.contacts:
            if not line.by_deploy:
                continue
            setting, item = setting_of(line.contact_type)
            items.setdefault(setting, []).append(item)
            operation = _write(setting, line.action, line.wanted)
            if operation is not None:
                by_setting[setting.title][operation] += 1
                region_requests += operation in (ENABLE, DISABLE)
        for setting, named in items.items():
            by_setting[setting.title].update(setting.reads(named))
    return _estimate(by_setting, region_requests)


def of_job(job: Job) -> tuple[Estimate, Estimate]:
    """What a job will call: (its reads, which it makes in full; its reads and every write it
    could make, when every item differs)."""
    reads: dict[str, Counter[str]] = {setting.title: Counter() for setting in SETTINGS}
    writes: dict[str, Counter[str]] = {setting.title: Counter() for setting in SETTINGS}
    region_requests = 0
    for _, key in job.items:
        items: dict[Setting, list[str]] = {}
        for engine_key, target in job.target_sets[key].items():
            setting, item = setting_of(engine_key)
            items.setdefault(setting, []).append(item)
            operation = _write(setting, None, target)
            if operation is not None:
                writes[setting.title][operation] += 1
                region_requests += operation in (ENABLE, DISABLE)
        for setting, named in items.items():
            reads[setting.title].update(setting.reads(named))
    most = {title: reads[title] + writes[title] for title in reads}
    return _estimate(reads, 0), _estimate(most, region_requests)


def _estimate(by_setting: Mapping[str, Counter[str]], region_requests: int) -> Estimate:
    shown = {title: calls for title, calls in by_setting.items() if calls}
    total: Counter[str] = Counter()
    for calls in shown.values():
        total.update(calls)
    return Estimate(total, shown, region_requests)


def _write(setting: Setting, action: str | None, wanted: Any) -> str | None:
    """The write operation a plan line's action (or, with none, a job's target) makes, or None."""
    if action is not None and action not in (
        CREATE_CONTACT,
        UPDATE_CONTACT,
        DELETE_CONTACT,
        RESTORE_CONTACT,
        ENABLE_REGION,
        DISABLE_REGION,
    ):
        return None
    if setting is regions_setting.SETTING:
        return DISABLE if wanted == regions_setting.DISABLED else ENABLE
    deleting = action == DELETE_CONTACT or wanted == DELETE or (action == RESTORE_CONTACT and wanted is None)
    if wanted == RESTORE and action is None:  # a job's restore: put or delete, as the snapshot says;
        deleting = True  # at most, the slower (DeleteAlternateContact: 1/s)
    found = [operation for operation in setting.write_operations if operation.startswith("Delete") == deleting]
    found = found or list(setting.write_operations)  # a setting without a delete writes the other way
    return found[0] if found else None


def plan_line(estimate: Estimate) -> str:
    """What the plan prints about the deploy's calls and their time at AWS's quotas."""
    regions = f", {estimate.region_requests} Region requests of ~{duration(estimate.region_seconds)} each"
    return (
        f"The deploy's Account Management calls: {estimate.text()}"
        + (regions if estimate.region_requests else "")
        + f". At AWS's published quotas: about {duration(estimate.seconds)}."
    )
