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

from org_bootstrap.aws.partitions import COMMERCIAL, opt_in_region_problem, opt_in_regions
from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.validation import Field, FieldRule, model_field_rules

# https://docs.aws.amazon.com/accounts/latest/reference/API_EnableRegion.html
REGION_NAME_RULE: FieldRule = model_field_rules("EnableRegionRequest", {})["RegionName"]


ENABLED, DISABLED = "ENABLED", "DISABLED"  # what a Region should become
REMOVAL_MODES = ("retain", "restore")
# The editor schema offers the commercial partition's opt-in Regions (synth checks the deployment's).
_REGION_LIST: Mapping[str, Any] = {"type": "array", "items": {"enum": sorted(opt_in_regions(COMMERCIAL))}}


class RegionSpec(SettingSpec[str]):
    SECTION = "regions"
    REMOVAL_MODES = REMOVAL_MODES
    DESCRIPTION = "Opt-in Regions of the organization's accounts: enabled, or disabled where listed"
    VALUE_FIELDS = (
        Field("enable", "Opt-in Regions to enable", _REGION_LIST),
        Field("disable", "Opt-in Regions to disable (removes all IAM access to resources there)", _REGION_LIST),
    )
    OVERRIDE_VALUE_FIELDS = (
        Field("enable", "Opt-in Regions to enable there", _REGION_LIST),
        Field("disable", "Opt-in Regions to disable there", _REGION_LIST),
    )
    OVERRIDES_DESCRIPTION = "Regions of an OU or one account"
    REMOVAL_DESCRIPTION = "On removal: retain, or restore each Region's state from before the stack"

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
