"""Shared fixtures: the strict simulated organization and the synthesized app (once a session)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from stacks import silence_jsii_node_notices

silence_jsii_node_notices()  # before anything imports aws_cdk

from org_bootstrap.engine.quotas import Quota  # noqa: E402
from org_bootstrap.engine.registry import account_quotas  # noqa: E402
from simulation.organization import ApiLog, Organization, strict_aws  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# Every Account Management operation's quota, lifted: for tests of what the handlers do, not of how
# they pace themselves (test_pacing, test_throttling and the benchmarks test that, on their clocks).
LIFTED_QUOTAS = {operation: Quota(10_000, 10_000) for operation in account_quotas("aws")}
# A valid primary contact (ContactInformation) in the US, where StateOrRegion is required.
US_PRIMARY_CONTACT = {
    "FullName": "Example Corp Cloud Team",
    "AddressLine1": "410 Terry Ave N",
    "City": "Seattle",
    "StateOrRegion": "WA",
    "PostalCode": "98109",
    "CountryCode": "US",
    "PhoneNumber": "+1 206 555 0100",
}


@pytest.fixture(scope="session", autouse=True)
def one_botocore_data_loader() -> Iterator[None]:
    """Every test starts a fresh simulated AWS, whose new boto3 sessions would each parse the same
    service models and endpoint data again (about a fifth of the suite's CPU): in a test process
    they share one data loader, as the clients of one long-lived session do."""
    import botocore.loaders
    import botocore.session

    loader = botocore.loaders.create_loader()

    def shared(search_path_string: str | None = None) -> botocore.loaders.Loader:
        return loader if search_path_string is None else botocore.loaders.create_loader(search_path_string)

    with mock.patch.object(botocore.session, "create_loader", shared):
        yield


@contextlib.contextmanager
def at_simulation_speed() -> Iterator[None]:
    """Handlers run by the local deploy's tests as fast as the simulation allows, in simulated time
    too: every quota lifted, a Region enabled at once and read again at once
    (``REGION_FOLLOW_SECONDS``, the handlers' environment knob, which the template leaves unset, is
    0). The local tools' own defaults (the real quotas, Regions taking minutes on the simulated
    clock) are tested in tests/test_local_simulated_time.py."""
    from org_bootstrap.engine.pacing import RateLimits

    with (
        mock.patch("org_bootstrap.engine.reconcile.shared_limits", lambda caller: RateLimits(LIFTED_QUOTAS)),
        mock.patch.dict(os.environ, {"REGION_FOLLOW_SECONDS": "0"}),
        mock.patch("local_deploy.world.REGION_OPT_SECONDS", 0.0),
    ):
        yield


@pytest.fixture
def api_log() -> Iterator[ApiLog]:
    with strict_aws() as log:
        yield log


@pytest.fixture
def org(api_log: ApiLog) -> Organization:
    """An organization with all features, no trusted access yet, and three member accounts."""
    organization = Organization()
    organization.members = [  # type: ignore[attr-defined]
        organization.create_account("security", account_id="222222222222"),
        organization.create_account("workloads", account_id="333333333333"),
        organization.create_account("sandbox", account_id="444444444444"),
    ]
    return organization


def create_snapshot_table(name: str) -> None:
    """The snapshot table as constructs.account_settings.SettingsState defines it, in the simulation."""
    from org_bootstrap.aws import clients

    clients.client("dynamodb").create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "AccountId", "KeyType": "HASH"},
            {"AttributeName": "ContactType", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "AccountId", "AttributeType": "S"},
            {"AttributeName": "ContactType", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def cfn_event(
    request_type: str,
    properties: dict[str, str],
    *,
    physical_id: str | None = None,
    old_properties: dict[str, str] | None = None,
    logical_id: str = "Resource",
) -> dict[str, object]:
    """A CloudFormation custom-resource event as the Provider framework hands it on (strings only)."""
    assert all(isinstance(value, str) for value in properties.values()), "CloudFormation sends strings"
    event: dict[str, object] = {
        "RequestType": request_type,
        "LogicalResourceId": logical_id,
        "RequestId": "request-1",
        "StackId": "arn:aws:cloudformation:us-east-1:111111111111:stack/OrgBootstrapManagement/guid",
        "ResourceType": "Custom::Test",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:111111111111:function:x", **properties},
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if old_properties is not None:
        event["OldResourceProperties"] = {"ServiceToken": "x", **old_properties}
    return event


@pytest.fixture(scope="session")
def example_app() -> object:
    """The app built from the example config and synthesized once (cdk-nag runs in the synth)."""
    from stacks.app_builder import build_app
    from stacks.config import load_config

    app, stack = build_app(load_config())
    assembly = app.synth()
    return {"app": app, "stack": stack, "assembly": assembly}
