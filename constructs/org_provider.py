"""A Python Lambda from the shared runtime folder behind a CDK Provider framework.

Every custom resource of this app is built here the same way: the newest Python runtime on
arm64, a role with no managed policies (each construct grants exactly what its handler calls),
a log group with a retention, the Provider framework answering CloudFormation, and a
``ServiceTimeout`` that leaves the handler's answer at least ``ANSWER_MARGIN`` before it.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import Aws, CfnElement, CustomResource, Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr

from constructs import Construct, IConstruct
from constructs.nag_findings import acknowledge
from org_bootstrap.handlers.resource import PROPERTIES_OBJECT, PROPERTIES_OBJECT_EXTENSION

RUNTIME_ASSET = Path(__file__).resolve().parent.parent / "runtime"
PYTHON_RUNTIME = lambda_.Runtime.PYTHON_3_14
LOG_RETENTION = logs.RetentionDays.ONE_YEAR
# CloudFormation's longest wait for a custom resource (ServiceTimeout is 1-3600 seconds).
MAX_SERVICE_TIMEOUT = Duration.hours(1)
# How long before CloudFormation's limit every answer arrives, at the latest.
ANSWER_MARGIN = Duration.minutes(5)
# A custom resource's properties up to this size stay in the template; larger ones go to an object
# of the bootstrap bucket. An Update's request carries them twice: 2 x 64 KiB and the request's own
# fields stay under Step Functions' 256 KiB, and two such resources under the template's 1 MB.
INLINE_PROPERTIES_LIMIT = 65_536


class RuntimeFunction(Construct):
    """One handler of the shared runtime package, with a role that starts empty."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        timeout: Duration | None = None,
        environment: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs {handler}",
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN)
        self.timeout = timeout or Duration.minutes(5)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=PYTHON_RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            code=lambda_.Code.from_asset(str(RUNTIME_ASSET), exclude=["**/__pycache__", "**/*.pyc"]),
            handler=handler,
            description=description,
            timeout=self.timeout,
            memory_size=256,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            environment=environment,
        )
        self.logical_id = logical_id_of(self.function)
        # The function writes only to its own log group.
        self.log_group.grant_write(self.role)


class OrgProvider(Construct):
    """A Provider framework around one on-event handler (and an optional is-complete handler)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        on_event: RuntimeFunction,
        is_complete: RuntimeFunction | None = None,
        query_interval: Duration | None = None,
        total_timeout: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._on_event = on_event
        # CloudFormation's requests do not say when they roll a failed deploy back; the stack's
        # status does, and the handler undoes what that deploy did.
        on_event.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadOwnStackStatus", actions=["cloudformation:DescribeStacks"], resources=[Aws.STACK_ID]
            )
        )
        # A synchronous handler answers within its own timeout; an asynchronous one within the
        # framework's total timeout (its handler keeps to it: see org_bootstrap.handlers.account_settings).
        answered_within = (total_timeout or MAX_SERVICE_TIMEOUT) if is_complete else on_event.timeout
        self.service_timeout = Duration.seconds(
            min(answered_within.to_seconds() + ANSWER_MARGIN.to_seconds(), MAX_SERVICE_TIMEOUT.to_seconds())
        )
        log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION, removal_policy=RemovalPolicy.RETAIN)
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=on_event.function,
            is_complete_handler=is_complete.function if is_complete else None,
            query_interval=query_interval,
            total_timeout=total_timeout,
            log_group=log_group,
            disable_waiter_state_machine_logging=False if is_complete else None,
            # Every waiter event, without execution data: the inputs carry the contacts spec.
            waiter_state_machine_log_options=cr.LogOptions(
                destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            )
            if is_complete
            else None,
        )
        acknowledge(
            self.provider,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "The Provider framework's own functions use AWSLambdaBasicExecutionRole for their logs; "
            "the handlers it invokes have roles without managed policies.",
        )
        invoked = [function.logical_id for function in (on_event, is_complete) if function is not None]
        invoked += [
            logical_id_of(child) for child in self.provider.node.find_all() if isinstance(child, lambda_.CfnFunction)
        ]
        for logical_id in invoked:
            acknowledge(
                self.provider,
                f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
                "The Provider framework invokes any version ('<arn>:*') of the functions it is made of.",
            )
        if is_complete is not None:
            acknowledge(
                self.provider.node.find_child("waiter-state-machine"),
                "AwsSolutions-IAM5[Resource::*]",
                "Step Functions logging needs the CloudWatch Logs log-delivery actions (logs:CreateLogDelivery and "
                "related), which IAM accepts only on '*'.",
            )
            acknowledge(
                self.provider,
                "AwsSolutions-SF2",
                "The Provider framework's waiter state machine only polls is-complete; it offers no X-Ray option, "
                "and the handlers log every step in JSON.",
            )

    @property
    def service_token(self) -> str:
        return self.provider.service_token

    def custom_resource(
        self, scope: Construct, construct_id: str, *, resource_type: str, properties: dict[str, Any]
    ) -> CustomResource:
        """The custom resource this provider answers for, with its ServiceTimeout.

        Properties up to ``INLINE_PROPERTIES_LIMIT`` bytes are the resource's own, in the template.
        Larger ones (a config with thousands of overrides) would pass CloudFormation's template
        limit and the Provider framework's request limits (``docs/limits.md``): their plain strings
        go to a file asset, which ``cdk deploy`` uploads to the CDK bootstrap bucket under its
        content hash, and the resource's ``PropertiesObject`` names it (bucket, key, SHA-256), so a
        change is still a change of the resource (``cdk diff`` shows the new hash). The on-event
        handler reads it (``org_bootstrap.handlers.resource.properties``).
        """
        return CustomResource(
            scope,
            construct_id,
            service_token=self.service_token,
            resource_type=resource_type,
            properties=self._within_limits(scope, construct_id, properties),
            service_timeout=self.service_timeout,
        )

    def _within_limits(self, scope: Construct, construct_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        movable = {
            key: value for key, value in properties.items() if isinstance(value, str) and not Token.is_unresolved(value)
        }
        size = len(json.dumps(properties, separators=(",", ":"), default=str))
        if size <= INLINE_PROPERTIES_LIMIT or not movable:
            return properties
        content = json.dumps(movable, sort_keys=True, separators=(",", ":")).encode()
        digest = hashlib.sha256(content).hexdigest()
        folder = Path(tempfile.gettempdir()) / f"org-bootstrap-properties-{digest[:16]}"
        folder.mkdir(exist_ok=True)
        path = folder / f"properties{PROPERTIES_OBJECT_EXTENSION}"
        path.write_bytes(content)
        asset = s3_assets.Asset(scope, f"{construct_id}Properties", path=str(path))
        # Every properties object of the bucket: an Update and its rollback read the previous one too.
        objects = asset.bucket.arn_for_objects(f"*{PROPERTIES_OBJECT_EXTENSION}")
        self._on_event.role.add_to_principal_policy(
            iam.PolicyStatement(sid="ReadPropertiesObjects", actions=["s3:GetObject"], resources=[objects])
        )
        acknowledge(
            self._on_event.role,
            f"AwsSolutions-IAM5[Resource::{nag_text(Stack.of(scope).resolve(objects))}]",
            "Reads the custom resources' properties objects of the CDK bootstrap bucket (named by content hash, "
            "so unknown before synth): an Update reads the previous deploy's object as well as its own.",
        )
        location = {"Bucket": asset.s3_bucket_name, "Key": asset.s3_object_key, "Sha256": digest}
        return {**{key: value for key, value in properties.items() if key not in movable}, PROPERTIES_OBJECT: location}


def logical_id_of(construct: IConstruct) -> str:
    """The CloudFormation logical ID of an L1 element (or of an L2's default child)."""
    element = construct if isinstance(construct, CfnElement) else construct.node.default_child
    assert isinstance(element, CfnElement), construct.node.path
    return str(Stack.of(element).resolve(Stack.of(element).get_logical_id(element)))


def nag_text(resolved: Any) -> str:
    """A resolved value as cdk-nag prints it in a finding: references as ``<Name>``, ``<Name.Attribute>``."""
    if isinstance(resolved, str):
        return resolved
    if isinstance(resolved, dict) and "Ref" in resolved:
        return f"<{resolved['Ref']}>"
    if isinstance(resolved, dict) and "Fn::GetAtt" in resolved:
        return "<" + ".".join(resolved["Fn::GetAtt"]) + ">"
    if isinstance(resolved, dict) and "Fn::Join" in resolved:
        separator, parts = resolved["Fn::Join"]
        return str(separator).join(nag_text(part) for part in parts)
    if isinstance(resolved, dict) and "Fn::Sub" in resolved:
        return re.sub(r"\$\{([^}]+)\}", r"<\1>", str(resolved["Fn::Sub"]))
    return str(resolved)
