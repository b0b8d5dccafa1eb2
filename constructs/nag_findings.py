"""Acknowledging a cdk-nag finding next to the construct it concerns, with a checkable reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations

from constructs import IConstruct

PACK = "AwsSolutions"


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one finding (``AwsSolutions-IAM5[Resource::*]``) on ``scope`` and its children.

    Name the finding, not the whole rule, so that a new wildcard elsewhere still fails the synth.
    """
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{finding}", reason=reason))
