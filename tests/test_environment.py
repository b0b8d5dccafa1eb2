"""The handlers' one reader of their Lambda environment: the three handlers' dependencies built from
the variables the constructs set, against the strict simulated organization, and a clear error
naming the variable when one is missing or malformed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from org_bootstrap.aws import clients
from org_bootstrap.engine.stores import DynamoDbSnapshots
from org_bootstrap.handlers import account_events, account_settings, drift
from org_bootstrap.handlers.environment import EnvironmentVariableError, HandlerEnvironment
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec
from simulation.organization import Organization

from .conftest import create_snapshot_table

CONTACT = {"Name": "Security", "Title": "Owner", "EmailAddress": "sec@example.com", "PhoneNumber": "+1 555 0100"}


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "contact-spec.json"
    # each setting's spec in its own property, as the automation's spec layer carries them
    spec = json.dumps({"contacts": {"SECURITY": CONTACT}})
    path.write_text(json.dumps({"Spec": spec}), encoding="utf-8")
    return path


@pytest.fixture
def stores(org: Organization) -> dict[str, str]:
    clients.client("s3").create_bucket(Bucket="jobs")
    create_snapshot_table("snapshots")
    return {"JOB_BUCKET": "jobs", "SNAPSHOT_TABLE": "snapshots"}


def test_the_contacts_handler_reads_the_management_account_from_the_organization(
    org: Organization, stores: dict[str, str]
) -> None:
    deps = account_settings.Dependencies.from_environment(HandlerEnvironment(stores))

    assert deps.management_account_id == org.management_account_id
    assert deps.api.own_account_id == org.management_account_id  # no CALLER_ACCOUNT_ID: the management account
    assert deps.jobs.bucket == "jobs"
    assert deps.snapshots.table == "snapshots"
    assert (deps.deploy_wait_seconds, deps.concurrency) == (2700, 8)
    assert deps.region_follow_seconds is None  # not set: the jobs' own interval

    variables = {**stores, "CALLER_ACCOUNT_ID": "222222222222", "DEPLOY_WAIT_SECONDS": "60", "CONCURRENCY": "3"}
    variables["REGION_FOLLOW_SECONDS"] = "2.5"
    deps = account_settings.Dependencies.from_environment(HandlerEnvironment(variables))
    assert deps.api.own_account_id == "222222222222"
    assert (deps.deploy_wait_seconds, deps.concurrency, deps.region_follow_seconds) == (60, 3, 2.5)


def test_the_drift_check_and_the_account_events_read_the_same_variables(
    org: Organization, stores: dict[str, str], spec_file: Path
) -> None:
    variables = {
        **stores,
        "SPEC_FILE": str(spec_file),
        "MANAGEMENT_ACCOUNT_ID": org.management_account_id,
        "CALLER_ACCOUNT_ID": "222222222222",
        "TOPIC_ARN": "arn:aws:sns:us-east-1:222222222222:notifications",
        "REPORT_ONLY": "true",
    }
    checked = drift.Dependencies.from_environment(HandlerEnvironment(variables))
    events = account_events.Dependencies.from_environment(HandlerEnvironment(variables))

    for deps in (checked, events):
        assert deps.management_account_id == org.management_account_id
        assert deps.caller_account_id == deps.api.own_account_id == "222222222222"
        assert isinstance(deps.spec, dict) and set(deps.spec) == {"alternate_contacts"}
        assert deps.spec["alternate_contacts"] == ContactSpec.parse({"contacts": {"SECURITY": CONTACT}})
        assert isinstance(deps.snapshots, DynamoDbSnapshots) and deps.snapshots.table == "snapshots"
    assert checked.report_only is True
    assert checked.topic_arn == variables["TOPIC_ARN"]
    assert (checked.namespace, checked.concurrency) == (drift.DEFAULT_NAMESPACE, 8)
    assert checked.region_follow_seconds is None
    variables["REGION_FOLLOW_SECONDS"] = "0"
    assert drift.Dependencies.from_environment(HandlerEnvironment(variables)).region_follow_seconds == 0.0

    # A report-only drift check is deployed without the snapshot table: it writes nothing.
    del variables["SNAPSHOT_TABLE"]
    assert drift.Dependencies.from_environment(HandlerEnvironment(variables)).snapshots is None


@pytest.mark.parametrize(
    ("handler", "missing"),
    [
        (account_settings, "JOB_BUCKET"),
        (account_settings, "SNAPSHOT_TABLE"),
        (drift, "TOPIC_ARN"),
        (drift, "SPEC_FILE"),
        (account_events, "SPEC_FILE"),
    ],
)
def test_a_missing_variable_is_named(
    handler: object, missing: str, org: Organization, stores: dict[str, str], spec_file: Path
) -> None:
    variables = {**stores, "SPEC_FILE": str(spec_file), "TOPIC_ARN": "arn:aws:sns:us-east-1:1:t"}
    del variables[missing]
    with pytest.raises(EnvironmentVariableError, match=f"^{missing}: must be set"):
        handler.Dependencies.from_environment(HandlerEnvironment(variables))  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("CONCURRENCY", "eight", "a positive whole number"),
        ("CONCURRENCY", "0", "a positive whole number"),
        ("DEPLOY_WAIT_SECONDS", "-1", "a number of seconds"),
        ("DEPLOY_WAIT_SECONDS", "nan", "a number of seconds"),
        ("REGION_FOLLOW_SECONDS", "soon", "a number of seconds"),
        ("REPORT_ONLY", "yes", "'true' or 'false'"),
    ],
)
def test_a_malformed_value_is_named_with_its_rule(name: str, value: str, rule: str) -> None:
    env = HandlerEnvironment({name: value})
    read = {
        "CONCURRENCY": env.concurrency,
        "DEPLOY_WAIT_SECONDS": lambda: env.seconds(name, 1),
        "REGION_FOLLOW_SECONDS": env.region_follow_seconds,
        "REPORT_ONLY": lambda: env.flag(name),
    }
    with pytest.raises(EnvironmentVariableError, match=f"^{name}: must be {rule}, not '{value}'"):
        read[name]()


def test_an_unreadable_spec_file_is_named(tmp_path: Path) -> None:
    env = HandlerEnvironment({"SPEC_FILE": str(tmp_path / "absent.json")})
    with pytest.raises(EnvironmentVariableError, match=r"^SPEC_FILE: cannot read .*absent\.json"):
        env.specs()
