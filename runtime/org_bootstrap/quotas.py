"""The Account Management API's published quotas, per partition: the one table pacing reads.

Rates are per calling account (requests per second and burst). The China partition publishes
its own, lower, quotas and has no Region opt-in operations; partitions that publish none of their
own use the commercial partition's.
https://docs.aws.amazon.com/accounts/latest/reference/quotas.html
https://docs.amazonaws.cn/en_us/accounts/latest/reference/quotas.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from org_bootstrap.partitions import CHINA, COMMERCIAL


@dataclass(frozen=True)
class Quota:
    per_second: float
    burst: int


@dataclass(frozen=True)
class RegionOptLimits:
    """Region opt-in requests in progress (ENABLING or DISABLING) at any one time."""

    per_account: int
    per_organization: int


ACCOUNT_QUOTAS_BY_PARTITION: Mapping[str, Mapping[str, Quota]] = {
    COMMERCIAL: {
        "PutAlternateContact": Quota(5, 8),
        "GetAlternateContact": Quota(10, 15),
        "DeleteAlternateContact": Quota(1, 6),
        "PutContactInformation": Quota(5, 8),
        "GetContactInformation": Quota(10, 15),
        "EnableRegion": Quota(1, 1),
        "DisableRegion": Quota(1, 1),
        "GetRegionOptStatus": Quota(5, 5),
        "ListRegions": Quota(5, 5),
    },
    CHINA: {
        "PutAlternateContact": Quota(1, 6),
        "GetAlternateContact": Quota(3, 5),
        "DeleteAlternateContact": Quota(1, 6),
        "PutContactInformation": Quota(1, 2),
        "GetContactInformation": Quota(3, 5),
    },
}

REGION_OPT_LIMITS_BY_PARTITION: Mapping[str, RegionOptLimits] = {
    COMMERCIAL: RegionOptLimits(per_account=6, per_organization=50),
}


def account_quotas(partition: str) -> Mapping[str, Quota]:
    return ACCOUNT_QUOTAS_BY_PARTITION.get(partition, ACCOUNT_QUOTAS_BY_PARTITION[COMMERCIAL])


def region_opt_limits(partition: str) -> RegionOptLimits | None:
    """None where the partition has no Region opt-in (China publishes no such operations)."""
    if partition in ACCOUNT_QUOTAS_BY_PARTITION and "EnableRegion" not in ACCOUNT_QUOTAS_BY_PARTITION[partition]:
        return None
    return REGION_OPT_LIMITS_BY_PARTITION.get(partition, REGION_OPT_LIMITS_BY_PARTITION[COMMERCIAL])
