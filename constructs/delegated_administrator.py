"""A member account registered as delegated administrator for a service, as a construct."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam

from constructs import Construct
from constructs.nag_findings import acknowledge
from constructs.org_provider import OrgProvider, RuntimeFunction
from org_bootstrap.validation import ACCOUNT_SERVICE_PRINCIPAL

RESOURCE_TYPE = "Custom::DelegatedAdministrator"


class DelegatedAdministrator(Construct):
    """Registers ``account_id`` as delegated administrator for ``service_principal``.

    Adopts the same account when it is already registered; ``removal="undo"`` deregisters it on
    delete, but only if this stack registered it. Register it after trusted access is on:
    ``delegated_administrator.node.add_dependency(trusted_access)``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        account_id: str,
        service_principal: str = ACCOUNT_SERVICE_PRINCIPAL,
        removal: str = "retain",
    ) -> None:
        super().__init__(scope, construct_id)
        self.account_id = account_id
        handler = RuntimeFunction(
            self,
            "Handler",
            handler="org_bootstrap.handlers.delegated_administrator.on_event",
            description=f"Registers the delegated administrator for {service_principal}",
        )
        condition = {"StringEquals": {"organizations:ServicePrincipal": service_principal}}
        handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="RegisterForThisPrincipalOnly",
                actions=[
                    "organizations:RegisterDelegatedAdministrator",
                    "organizations:DeregisterDelegatedAdministrator",
                ],
                # Any member account of this organization: an Update that changes the account
                # deregisters the previous one, whichever it was.
                resources=[f"arn:{Aws.PARTITION}:organizations::{Aws.ACCOUNT_ID}:account/o-*/*"],
                conditions=condition,
            )
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(
                # The new account is checked (a member, ACTIVE) before any registration changes.
                sid="DescribeOrganizationAccount",
                actions=["organizations:DescribeAccount"],
                resources=[f"arn:{Aws.PARTITION}:organizations::{Aws.ACCOUNT_ID}:account/o-*/*"],
            )
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadOrganizationAndDelegatedAdministrators",
                actions=["organizations:DescribeOrganization", "organizations:ListDelegatedAdministrators"],
                resources=["*"],
            )
        )
        acknowledge(
            handler.role,
            "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:organizations::<AWS::AccountId>:account/o-*/*]",
            "Register/Deregister (conditioned on organizations:ServicePrincipal) and DescribeAccount are limited to "
            "the accounts of the organization managed from this account (its ID is unknown at synth).",
        )
        acknowledge(
            handler.role,
            "AwsSolutions-IAM5[Resource::*]",
            "DescribeOrganization and ListDelegatedAdministrators have no resource type (IAM accepts only '*') "
            "and only read.",
        )
        provider = OrgProvider(self, "Provider", on_event=handler)
        self.resource = provider.custom_resource(
            self,
            "Resource",
            resource_type=RESOURCE_TYPE,
            properties={"ServicePrincipal": service_principal, "AccountId": account_id, "Removal": removal},
        )
        self.node.default_child = self.resource
