"""Which Regions a partition has, and which of them are opt-in: from botocore's partition data.

This module is the one reader of that data. botocore (shipped with boto3, so available at synth
and in Lambda) lists every Region of every partition, with the pattern a partition's Region names
follow, in two files: ``partitions.json``, which its endpoint rules read and which gets a new Region
first, and the older ``endpoints.json``; a Region either lists is one botocore knows. Neither
carries an opt-in flag. What tells opt-in Regions apart is AWS's rule, not per-Region data: every Region
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
import botocore.exceptions
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
    """Each partition (``partition``, ``regionRegex``, ``regions``) with the Regions of both files,
    without the ``*-global`` pseudo-Regions of ``partitions.json``."""
    loader = botocore.loaders.create_loader()
    merged: dict[str, dict[str, Any]] = {}
    for name in ("endpoints", "partitions"):
        try:
            data = loader.load_data(name)
        except botocore.exceptions.DataNotFoundError:
            continue  # a botocore older than partitions.json
        for found in data.get("partitions", []):
            partition = found.get("partition") or found["id"]  # endpoints.json says partition, partitions.json id
            entry = merged.setdefault(partition, {"partition": partition, "regionRegex": found["regionRegex"]})
            regions = [region for region in found.get("regions", {}) if not region.endswith("-global")]
            entry["regions"] = {**entry.get("regions", {}), **dict.fromkeys(regions)}
    return tuple(merged.values())


def partition_here() -> str:
    """The partition of the Region this code runs in (Lambda sets ``AWS_REGION``)."""
    return partition_of(os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")


def partition_names() -> tuple[str, ...]:
    return tuple(p["partition"] for p in _partitions())


@cache
def known_regions() -> frozenset[str]:
    """Every Region of every partition."""
    return frozenset(region for found in _partitions() for region in found["regions"])


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
