"""The IAM statements each account setting's handlers need: exact actions on the organization's
accounts, and the setting's own condition keys.

Resources are the calling account's own account ARN and the organization's member accounts (whose
ARNs carry the management account's ID, wherever the caller is):
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsaccountmanagement.html
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws
from aws_cdk import aws_iam as iam

from org_bootstrap.partitions import opt_in_regions
from org_bootstrap.primary_contact_spec import PrimaryContactSpec
from org_bootstrap.region_spec import RegionSpec
from org_bootstrap.settings import primary_contact, regions


def account_resources(management_account_id: str | None = None) -> list[str]:
    management = management_account_id or Aws.ACCOUNT_ID
    return [
        f"arn:{Aws.PARTITION}:account::{Aws.ACCOUNT_ID}:account",
        f"arn:{Aws.PARTITION}:account::{management}:account/o-*/*",
    ]


def primary_contact_statements(
    spec: PrimaryContactSpec, *, write: bool, management_account_id: str | None = None
) -> list[iam.PolicyStatement]:
    """GetContactInformation, and PutContactInformation when the handler writes."""
    setting = primary_contact.SETTING
    actions: Sequence[str] = (*setting.read_actions, *(setting.write_actions if write else ()))
    return [
        iam.PolicyStatement(
            sid="PrimaryContactOfOrganizationAccounts",
            actions=list(actions),
            resources=account_resources(management_account_id),
        )
    ]


def managed_regions(spec: RegionSpec, partition: str = "aws") -> list[str]:
    """The Regions the role may enable or disable: those the spec names, or every opt-in Region
    of the partition when removal may restore one the config no longer names (the role's policy
    is updated before the resource on an Update)."""
    if spec.removal != "retain":
        return sorted(opt_in_regions(partition))
    return sorted(spec.named())


def regions_statements(
    spec: RegionSpec, *, write: bool, management_account_id: str | None = None, partition: str = "aws"
) -> list[iam.PolicyStatement]:
    """ListRegions and GetRegionOptStatus; EnableRegion and DisableRegion, when the handler
    writes, only for the Regions the config manages (``account:TargetRegion``)."""
    statements = [
        iam.PolicyStatement(
            sid="RegionStatusOfOrganizationAccounts",
            actions=list(regions.SETTING.read_actions),
            resources=account_resources(management_account_id),
        )
    ]
    if write:
        statements.append(
            iam.PolicyStatement(
                sid="OptInRegionsOfOrganizationAccounts",
                actions=list(regions.SETTING.write_actions),
                resources=account_resources(management_account_id),
                conditions={"StringEquals": {"account:TargetRegion": managed_regions(spec, partition)}},
            )
        )
    return statements
