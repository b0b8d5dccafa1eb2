"""The CloudFormation, Lambda and Step Functions limits a synthesized stack meets when deployed,
checked at synth so that a config that cannot deploy is refused before anything changes.

Figures and how each applies: ``docs/limits.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
# A template uploaded to S3 (cdk deploy uploads any over 50 KB): "1 MB", read as 1,000,000 bytes as
# aws-cdk-lib's own template-size check reads it (the smaller reading).
TEMPLATE_BODY_S3 = 1_000_000
TEMPLATE_BODY_INLINE = 51_200  # a template passed in the request (--template-body)
CUSTOM_RESOURCE_RESPONSE = 4_096  # the response a custom resource's provider sends back
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
LAMBDA_SYNC_PAYLOAD = 6_291_456  # request and response of a synchronous invocation
LAMBDA_ASYNC_PAYLOAD = 1_048_576  # an asynchronous invocation (Event), as CloudFormation invokes
# https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
STATE_PAYLOAD = 262_144  # a state's (and an execution's) input or output

# What the Provider framework adds to a custom resource's properties in the event it passes on:
# CloudFormation's request fields (ARNs, URLs, IDs; the presigned ResponseURL alone is ~1 KB),
# the on-event handler's answer and the framework's own. Measured from real events, rounded up.
EVENT_OVERHEAD = 4_096


def provider_update_event_bytes(properties: Mapping[str, Any]) -> int:
    """The largest request a custom resource's properties cause: an Update, whose event carries
    them twice (``ResourceProperties``, ``OldResourceProperties``), through the Provider framework
    (CloudFormation -> the framework's function -> on-event; its waiter state machine -> is-complete)."""
    return 2 * len(json.dumps(dict(properties), separators=(",", ":"))) + EVENT_OVERHEAD


def template_problems(stack_name: str, template: Mapping[str, Any], template_bytes: int) -> list[str]:
    """What in a synthesized stack's template a deploy would meet as a limit, each naming it and the size."""
    problems = []
    if template_bytes > TEMPLATE_BODY_S3:
        problems.append(
            f"{stack_name}: the template is {template_bytes:,} bytes, over CloudFormation's limit of "
            f"{TEMPLATE_BODY_S3:,} bytes (1 MB) for a template in S3"
        )
    for logical_id, resource in template.get("Resources", {}).items():
        if not str(resource.get("Type", "")).startswith("Custom::"):
            continue
        event = provider_update_event_bytes(resource.get("Properties", {}))
        if event > STATE_PAYLOAD:
            problems.append(
                f"{stack_name}/{logical_id}: an Update of this custom resource is an event of about {event:,} bytes "
                f"(its properties twice), over Step Functions' limit of {STATE_PAYLOAD:,} bytes (256 KB) for the "
                "input of the Provider framework's waiter"
            )
    return problems


class StackLimitError(ValueError):
    """A synthesized stack that a deploy would refuse; every limit met, with the sizes."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"the synthesized app cannot be deployed:\n{lines}")


def check_assembly(assembly: Any) -> None:
    """Raise StackLimitError for any stack of the cloud assembly ``app.synth()`` returned that
    meets a limit (nested stages included)."""
    from pathlib import Path

    problems: list[str] = []
    pending = [assembly]
    while pending:
        current = pending.pop()
        for stack in current.stacks:
            path = Path(current.directory) / stack.template_file
            problems += template_problems(stack.stack_name, stack.template, path.stat().st_size)
        pending += [nested.nested_assembly for nested in current.nested_assemblies]  # a pipeline's stages
    if problems:
        raise StackLimitError(problems)
