"""Which stacks land in which account: the one place the app and the pipeline take them from.

``cdk deploy`` (through ``add_org_stacks``) and the pipeline (through ``pipeline_stages``) build the
same stacks with the same CloudFormation stack names, so moving from one to the other updates the
stacks in place instead of creating a second copy of every custom resource.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aws_cdk import Environment, Stack, Stage

from constructs import Construct
from stacks.config import BootstrapConfig
from stacks.delegated_administrator_account import DelegatedAdministratorStack
from stacks.management_account import ManagementAccountStack

MANAGEMENT_STACK_NAME = "OrgBootstrapManagement"
DELEGATED_ADMINISTRATOR_STACK_NAME = "OrgBootstrapDelegatedAdministrator"
MANAGEMENT_STAGE = "Management"
DELEGATED_ADMINISTRATOR_STAGE = "DelegatedAdministrator"

# Builds one stack in a scope: the app (for ``cdk deploy``) or an account's pipeline stage.
StackFactory = Callable[[Construct], Stack]


def management_account_stacks(config: BootstrapConfig) -> list[StackFactory]:
    """The stacks deployed in the organization's management account."""

    def management(scope: Construct) -> Stack:
        return ManagementAccountStack(
            scope,
            MANAGEMENT_STACK_NAME,
            config=config,
            stack_name=MANAGEMENT_STACK_NAME,
            env=Environment(account=config.management_account_id, region=config.region),
            description="AWS Account Management bootstrap: trusted access, delegated administrator, alternate contacts",
        )

    return [management]


def delegated_administrator_stacks(config: BootstrapConfig) -> list[StackFactory]:
    """The stacks deployed in the delegated administrator account: with
    ``settings_deployed_in = "delegated_administrator"``, the member accounts' contacts and their
    automation; otherwise none.

    ``add_org_stacks`` puts them in the app for ``cdk deploy`` after the management account's stack,
    and ``pipeline_stages`` deploys them in a ``DelegatedAdministrator`` stage after the
    management-account stage.
    """
    if not config.delegated_administrator_mode:
        return []
    account = config.delegated_administrator_account_id

    def delegated_administrator(scope: Construct) -> Stack:
        return DelegatedAdministratorStack(
            scope,
            DELEGATED_ADMINISTRATOR_STACK_NAME,
            config=config,
            stack_name=DELEGATED_ADMINISTRATOR_STACK_NAME,
            env=Environment(account=account, region=config.region),
            description="AWS Account Management bootstrap: member accounts' alternate contacts, from the "
            "delegated administrator",
        )

    return [delegated_administrator]


def add_org_stacks(scope: Construct, *, config: BootstrapConfig) -> list[Stack]:
    """Every stack of the app, management account first, in one scope (the app, for ``cdk deploy``).

    The delegated administrator's stacks depend on the management account's, so that
    ``cdk deploy --all`` registers the delegated administrator before anything runs there.
    """
    management = [build(scope) for build in management_account_stacks(config)]
    delegated = [build(scope) for build in delegated_administrator_stacks(config)]
    for stack in delegated:
        for first in management:
            stack.add_stack_dependency(first, "the delegated administrator must be registered first")
    return management + delegated


class AccountStage(Stage):
    """One account's share of the app, as a CDK Pipelines stage deploys it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        account_id: str,
        region: str,
        stacks: Sequence[StackFactory],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, env=Environment(account=account_id, region=region), **kwargs)
        self.account_id = account_id
        self.stacks: list[Stack] = [build(self) for build in stacks]


def pipeline_stages(scope: Construct, *, config: BootstrapConfig) -> list[AccountStage]:
    """The pipeline's stages in deployment order: the management account, then the delegated administrator.

    The management account goes first: it enables trusted access and registers the delegated
    administrator, which the delegated administrator's stacks need. The delegated-administrator
    stage exists only when ``delegated_administrator_stacks`` returns stacks for this config.
    """
    stages = [
        AccountStage(
            scope,
            MANAGEMENT_STAGE,
            account_id=config.management_account_id,
            region=config.region,
            stacks=management_account_stacks(config),
        )
    ]
    delegated = delegated_administrator_stacks(config)
    if delegated:
        if not config.delegated_administrator_account_id:
            raise ValueError("delegated_administrator_stacks returned stacks without a delegated administrator")
        stages.append(
            AccountStage(
                scope,
                DELEGATED_ADMINISTRATOR_STAGE,
                account_id=config.delegated_administrator_account_id,
                region=config.region,
                stacks=delegated,
            )
        )
    return stages
