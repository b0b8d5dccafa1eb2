"""Which Regions a partition has, and which of them are opt-in: from botocore's partition data.

botocore's ``endpoints.json`` (shipped with boto3, so available at synth and in Lambda) lists every
Region of every partition, with the pattern a partition's Region names follow. It carries no
opt-in flag. What tells opt-in Regions apart is AWS's rule, not per-Region data: every Region
launched after 20 March 2019 is opt-in, every earlier one is enabled by default in every account
and can be neither enabled nor disabled
(https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html). So the Regions
enabled by default form a closed set that can never grow: :data:`ENABLED_BY_DEFAULT` names them,
and every other Region that botocore knows in the partition is opt-in. The other partitions (China,
GovCloud, the isolated ones) have no opt-in Regions: all their Regions are enabled by default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import botocore
import botocore.loaders

COMMERCIAL = "aws"
CHINA = "aws-cn"

# The aws partition's Regions launched before 20 March 2019: enabled by default, not opt-in.
ENABLED_BY_DEFAULT: Mapping[str, frozenset[str]] = {
    COMMERCIAL: frozenset(
        {
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-southeast-1",
            "ap-southeast-2",
            "ca-central-1",
            "eu-central-1",
            "eu-north-1",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        }
    ),
}


@cache
def _partitions() -> tuple[dict[str, Any], ...]:
    return tuple(botocore.loaders.create_loader().load_data("endpoints")["partitions"])


def partition_here() -> str:
    """The partition of the Region this code runs in (Lambda sets ``AWS_REGION``)."""
    return partition_of(os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")


def partition_names() -> tuple[str, ...]:
    return tuple(p["partition"] for p in _partitions())


def regions_of(partition: str) -> frozenset[str]:
    """Every Region botocore knows in ``partition`` (empty for an unknown partition)."""
    for found in _partitions():
        if found["partition"] == partition:
            return frozenset(found["regions"])
    return frozenset()


def partition_of(region: str) -> str:
    """The partition a Region belongs to: the one listing it, else the one whose pattern it
    matches (a Region newer than botocore's data), else the commercial partition."""
    for found in _partitions():
        if region in found["regions"]:
            return str(found["partition"])
    for found in _partitions():
        if re.match(found["regionRegex"], region):
            return str(found["partition"])
    return COMMERCIAL


def enabled_by_default(partition: str) -> frozenset[str]:
    """The Regions of ``partition`` that every account has and no account can opt out of."""
    return ENABLED_BY_DEFAULT.get(partition, regions_of(partition))


def opt_in_regions(partition: str) -> frozenset[str]:
    return regions_of(partition) - enabled_by_default(partition)


def opt_in_region_problem(field: str, region: object, partition: str) -> str | None:
    """Why ``region`` cannot be enabled or disabled in ``partition``, or None."""
    if not isinstance(region, str) or not region:
        return f"{field}: {region!r} is not a Region name (such as ap-east-1)"
    if region not in regions_of(partition):
        return (
            f"{field}: {region!r} is not a Region of the {partition} partition "
            f"(botocore {botocore.__version__} knows {', '.join(sorted(regions_of(partition))) or 'none'})"
        )
    if region in enabled_by_default(partition):
        optional = ", ".join(sorted(opt_in_regions(partition))) or "none in this partition"
        return (
            f"{field}: {region!r} is enabled by default in every account and can be neither enabled nor "
            f"disabled; only opt-in Regions can ({optional})"
        )
    return None
