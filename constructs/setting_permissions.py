"""The IAM statements of the roles that read and write account settings, from what each setting
declares (``Setting.permissions``, ``Setting.removal_writes``): its actions on the organization's
accounts, under its own condition keys, and explicit denials of the writes its config rules out.

Resources are the calling account's own account ARN and the organization's member accounts (whose
ARNs carry the management account's ID, wherever the caller is):
https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsaccountmanagement.html
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Aws
from aws_cdk import aws_iam as iam

from org_bootstrap.aws.partitions import COMMERCIAL
from org_bootstrap.engine.registry import BY_NAME
from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.settings import Setting

ORG_PATHS = "account:AccountResourceOrgPaths"  # the member account's OU path: o-xxx/r-xxx/ou-xxx/.../
# The member account's Organizations tag <key>. The Service Authorization Reference types
# account:AccountResourceOrgTags/${TagKey} String (single-valued, unlike AccountResourceOrgPaths'
# ArrayOfString): plain StringEquals / StringNotEquals, no ForAnyValue:/ForAllValues: set operator.
# A key absent from the request context makes StringEquals false and StringNotEquals true.
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsaccountmanagement.html
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
ORG_TAGS = "account:AccountResourceOrgTags"


def org_tag_key(key: str) -> str:
    return f"{ORG_TAGS}/{key}"


def account_resources(management_account_id: str | None = None) -> list[str]:
    management = management_account_id or Aws.ACCOUNT_ID
    return [
        f"arn:{Aws.PARTITION}:account::{Aws.ACCOUNT_ID}:account",
        f"arn:{Aws.PARTITION}:account::{management}:account/o-*/*",
    ]


def setting_statements(
    specs: Mapping[str, SettingSpec[Any]],
    *,
    write: bool,
    management_account_id: str | None = None,
    partition: str = COMMERCIAL,
) -> list[iam.PolicyStatement]:
    """Each setting's Account Management statements (``specs`` by setting name): reads, and with
    ``write`` its writes and, as a second line of defence behind the engine's own targeting, the
    denials of the writes its config rules out (:func:`write_denials`)."""
    statements: list[iam.PolicyStatement] = []
    for name, spec in specs.items():
        setting = BY_NAME[name]
        statements += [
            iam.PolicyStatement(
                sid=permission.sid,
                actions=list(permission.actions),
                resources=account_resources(management_account_id),
                conditions={test: dict(values) for test, values in permission.conditions.items()} or None,
            )
            for permission in setting.permissions(spec, write=write, partition=partition)
        ]
        if write:
            statements += write_denials(setting, spec, management_account_id)
    return statements


def write_denials(
    setting: Setting, spec: SettingSpec[Any], management_account_id: str | None = None
) -> list[iam.PolicyStatement]:
    """Deny the setting's writes the config says never to make, so that even a bug cannot make
    them: in the excluded accounts and OUs, and outside the targeted accounts or OUs.

    A member account is addressed as ``arn:<partition>:account::<management>:account/o-*/<id>`` and
    carries its OU path in ``account:AccountResourceOrgPaths`` (``o-xxx/r-xxx/ou-xxx/.../``); the
    calling account's own (the management account's, called without AccountId) is
    ``arn:<partition>:account::<id>:account``, which has no OU path: an excluded or untargeted
    account is denied in both forms, an OU rule reaches member accounts only.
    https://docs.aws.amazon.com/accounts/latest/reference/security_iam_service-with-iam.html

    Tag targets are denied the same way on member accounts, by their tags in
    ``account:AccountResourceOrgTags/<key>``: outside the targeted tags (one statement per key,
    since any key that does not match leaves the account out) and with the excluded tags. The
    management account addressing itself has no organization tags in the request context, so its
    own writes are guarded by the engine's targeting alone (a deny there would also hit it when
    it does carry the tags).

    What the removal mode must still do there is left allowed (``Setting.removal_writes``: the
    alternate contacts' ``delete`` deletes the managed types of an account no longer targeted,
    ``restore`` puts earlier values back). Overrides never widen the targets (an override outside
    them applies to no account), so they add no permission.
    """
    kept = setting.removal_writes(spec.removal)
    denied = [f"account:{operation}" for operation in setting.write_operations if operation not in kept]
    if not denied:
        return []
    management = management_account_id or Aws.ACCOUNT_ID
    members = f"arn:{Aws.PARTITION}:account::{management}:account/o-*"

    def arns(account_ids: tuple[str, ...]) -> list[str]:
        return [arn for a in account_ids for arn in (f"{members}/{a}", f"arn:{Aws.PARTITION}:account::{a}:account")]

    members_only = {"resources": [f"{members}/*"]}
    # (statement ID, where) for each rule the spec has: the accounts it names, or the member
    # accounts under a condition on their OU path (also when the key is absent: ForAllValues of
    # nothing holds, and a member account always has a path).
    rules: list[tuple[str, dict[str, Any]]] = []
    if spec.exclude_accounts:
        rules.append(("ToExcludedAccounts", {"resources": arns(spec.exclude_accounts)}))
    if spec.exclude_organizational_units:
        excluded = org_path_patterns(spec.exclude_organizational_units)
        condition = {"ForAnyValue:StringLike": {ORG_PATHS: excluded}}
        rules.append(("InExcludedOrganizationalUnits", {**members_only, "conditions": condition}))
    if spec.organizational_units:
        targeted = org_path_patterns(spec.organizational_units)
        condition = {"ForAllValues:StringNotLike": {ORG_PATHS: targeted}}
        rules.append(("OutsideTargetedOrganizationalUnits", {**members_only, "conditions": condition}))
    if spec.accounts:
        rules.append(("OutsideTargetedAccounts", {"not_resources": arns(spec.accounts)}))
    targeting = spec.targeting
    if targeting.exclude_tags:
        # Every key must match for the account to be excluded: the keys of one operator are ANDed,
        # the values of one key ORed; an account without the key is not excluded.
        condition = {"StringEquals": {org_tag_key(k): list(v) for k, v in targeting.exclude_tags}}
        rules.append(("WithExcludedTags", {**members_only, "conditions": condition}))
    for index, (key, values) in enumerate(targeting.tags, start=1):
        # Any key that does not match leaves the account outside: one statement per key (ORed).
        # StringNotEquals with several values is their NOR, and holds for an account without the
        # key, so an untagged account is denied too.
        condition = {"StringNotEquals": {org_tag_key(key): list(values)}}
        rules.append((f"WithoutTargetedTag{index}", {**members_only, "conditions": condition}))
    return [
        iam.PolicyStatement(sid=f"Deny{setting.label}Writes{rule}", effect=iam.Effect.DENY, actions=denied, **where)
        for rule, where in rules
    ]


def org_path_patterns(parents: tuple[str, ...]) -> list[str]:
    """``account:AccountResourceOrgPaths`` patterns for the accounts anywhere under these OUs or roots
    (IAM's ``*`` matches ``/`` too, so ``r-*`` also spans the OUs above a nested one)."""
    return [f"o-*/{parent}/*" if parent.startswith("r-") else f"o-*/r-*/{parent}/*" for parent in parents]
