"""The opt-in Regions desired state: which opt-in Regions each account has enabled or disabled.

Only opt-in Regions of the deployment's partition can be named (a Region enabled by default, or
unknown in the partition, is an error). A Region is disabled only when a config lists it under
``disable``: disabling removes all IAM access to the account's resources in that Region
(https://docs.aws.amazon.com/accounts/latest/reference/API_DisableRegion.html), so it is never
what removal does by default: removal is ``retain`` or ``restore`` (the state before the stack).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from org_bootstrap.partitions import COMMERCIAL, opt_in_region_problem
from org_bootstrap.targeting import SettingSpec

ENABLED, DISABLED = "ENABLED", "DISABLED"  # what a Region should become
REMOVAL_MODES = ("retain", "restore")


class RegionSpec(SettingSpec[str]):
    SECTION = "regions"
    VALUE_KEYS = ("enable", "disable")
    REMOVAL_MODES = REMOVAL_MODES

    @classmethod
    def parse_values(
        cls, where: str, table: Mapping[str, Any], problems: list[str], *, partition: str = COMMERCIAL, **context: Any
    ) -> dict[str, str]:
        wanted: dict[str, str] = {}
        for key, status in (("enable", ENABLED), ("disable", DISABLED)):
            listed = table.get(key, [])
            if not isinstance(listed, list):
                problems.append(f"{where}.{key}: must be a list of opt-in Region names")
                continue
            for i, region in enumerate(listed):
                at = f"{where}.{key}[{i}]"
                problem = opt_in_region_problem(at, region, partition)
                if problem:
                    problems.append(problem)
                elif region in wanted:
                    both = "both enabled and disabled" if wanted[region] != status else "given twice"
                    problems.append(f"{at}: {region!r} is {both}")
                else:
                    wanted[region] = status
        return wanted

    @classmethod
    def dump_values(cls, values: Mapping[str, str]) -> dict[str, Any]:
        dumped = {
            key: sorted(region for region, wanted in values.items() if wanted == status)
            for key, status in (("enable", ENABLED), ("disable", DISABLED))
        }
        return {key: regions for key, regions in dumped.items() if regions}

    @classmethod
    def nothing_set(cls, where: str) -> str:
        return f"{where}.enable: list at least one opt-in Region to enable (or to disable, under disable)"

    def named(self) -> frozenset[str]:
        """Every Region the spec names, in the section or an override: the only Regions it may change."""
        return frozenset(self.values).union(*(o.values for o in self.overrides))

    def disabled(self) -> frozenset[str]:
        """The Regions the config lists explicitly as disabled, anywhere."""
        return frozenset(
            region
            for values in (self.values, *(o.values for o in self.overrides))
            for region, wanted in values.items()
            if wanted == DISABLED
        )
