"""Trusted access for a service principal in AWS Organizations, as a construct."""

from __future__ import annotations

from aws_cdk import aws_iam as iam

from constructs import Construct
from constructs.nag_findings import acknowledge
from constructs.org_provider import OrgProvider, RuntimeFunction
from org_bootstrap.validation import ACCOUNT_SERVICE_PRINCIPAL

RESOURCE_TYPE = "Custom::TrustedServiceAccess"


class TrustedServiceAccess(Construct):
    """Enables trusted access for ``service_principal``; adopts it when it is already on.

    ``removal="undo"`` disables it when the resource is deleted, but only if this stack enabled it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service_principal: str = ACCOUNT_SERVICE_PRINCIPAL,
        removal: str = "retain",
    ) -> None:
        super().__init__(scope, construct_id)
        self.service_principal = service_principal
        handler = RuntimeFunction(
            self,
            "Handler",
            handler="org_bootstrap.handlers.trusted_access.on_event",
            description=f"Enables trusted access for {service_principal} in AWS Organizations",
        )
        condition = {"StringEquals": {"organizations:ServicePrincipal": service_principal}}
        handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="ChangeTrustedAccessForThisPrincipalOnly",
                actions=["organizations:EnableAWSServiceAccess", "organizations:DisableAWSServiceAccess"],
                resources=["*"],
                conditions=condition,
            )
        )
        handler.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTrustedAccessAndDelegatedAdministrators",
                actions=[
                    "organizations:ListAWSServiceAccessForOrganization",
                    "organizations:ListDelegatedAdministrators",
                ],
                resources=["*"],
            )
        )
        acknowledge(
            handler.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Organizations' service-access actions have no resource type, so IAM accepts only '*'; "
            "Enable/Disable are conditioned on organizations:ServicePrincipal, and the List actions only read.",
        )
        provider = OrgProvider(self, "Provider", on_event=handler)
        self.resource = provider.custom_resource(
            self,
            "Resource",
            resource_type=RESOURCE_TYPE,
            properties={"ServicePrincipal": service_principal, "Removal": removal},
        )
        self.node.default_child = self.resource
