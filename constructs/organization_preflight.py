"""Every ID the config names, checked against the organization before the stack changes anything."""

from __future__ import annotations

import jsii
from aws_cdk import Aspects, CfnResource, IAspect, Stack
from aws_cdk import aws_iam as iam

from constructs import Construct, IConstruct
from constructs.nag_findings import acknowledge
from constructs.org_provider import OrgProvider, RuntimeFunction
from org_bootstrap.handlers.preflight import RESOURCE_TYPE, ConfigIds

READ_ACTIONS = [
    "organizations:DescribeOrganization",
    "organizations:ListRoots",
    "organizations:ListAccountsForParent",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListTagsForResource",  # which accounts a tag target selects
]


@jsii.implements(IAspect)
class OrganizationPreflight(Construct):
    """A custom resource that fails the deploy, naming the config field, when an ID the config names
    is not in the organization; every other custom resource of its stack depends on it.

    Its properties are the config's IDs, so it runs again whenever one of them changes, and first:
    CloudFormation starts a dependent resource only once it succeeded.
    """

    def __init__(self, scope: Construct, construct_id: str, *, ids: ConfigIds) -> None:
        super().__init__(scope, construct_id)
        handler = RuntimeFunction(
            self,
            "Handler",
            handler="org_bootstrap.handlers.preflight.on_event",
            description="Checks every account and OU the config names against the organization",
        )
        handler.role.add_to_policy(iam.PolicyStatement(sid="ReadOrganization", actions=READ_ACTIONS, resources=["*"]))
        acknowledge(
            handler.role,
            "AwsSolutions-IAM5[Resource::*]",
            "Organizations' describe and list actions have no resource type; IAM accepts only '*'. Read only.",
        )
        provider = OrgProvider(self, "Provider", on_event=handler)
        self.resource = provider.custom_resource(
            self,
            "Resource",
            resource_type=RESOURCE_TYPE,
            properties=ids.to_properties(),
        )
        self.node.default_child = self.resource
        # At synth, every custom resource of the stack (also those added after this one) waits for it.
        Aspects.of(Stack.of(self)).add(self)

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource) or not _is_custom(node.cfn_resource_type):
            return
        if node.node.path.startswith(self.node.path + "/"):
            return
        node.node.add_dependency(self.resource)


def _is_custom(resource_type: str) -> bool:
    return resource_type.startswith("Custom::") or resource_type == "AWS::CloudFormation::CustomResource"
