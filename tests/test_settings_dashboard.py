"""The settings dashboard in the synthesized templates: its widgets, from the metrics the app
emits, the queues, the handlers and every alarm; on by default, off by `automation.dashboard`."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest
from aws_cdk.assertions import Template

from org_bootstrap.engine.metrics import JOB_METRICS
from org_bootstrap.handlers.drift import METRIC_NAMES
from stacks.app_builder import build_app
from stacks.config import DEFAULT_CONFIG, BootstrapConfig, ConfigError
from tests.test_delegated_administrator_mode import CONFIG as DELEGATED_CONFIG

EXAMPLE = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
DASHBOARD = "AWS::CloudWatch::Dashboard"


def body(template: Template) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dashboard's body with each reference as ``<logical ID>`` (or ``<logical ID>.<attribute>``),
    and the template's resources."""
    (dashboard,) = template.find_resources(DASHBOARD).values()
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    text = "".join(
        part if isinstance(part, str) else f"<{part['Ref']}>" if "Ref" in part else f"<{'.'.join(part['Fn::GetAtt'])}>"
        for part in parts
    )
    return json.loads(text), template.to_json()["Resources"]


def titles(found: dict[str, Any]) -> list[str]:
    return [widget["properties"].get("title", "") for widget in found["widgets"]]


def metric_names(found: dict[str, Any], title: str) -> set[str]:
    (widget,) = [widget for widget in found["widgets"] if widget["properties"].get("title") == title]
    return {str(metric[1]) for metric in widget["properties"]["metrics"] if len(metric) > 1}


@pytest.fixture(scope="module")
def automated() -> tuple[dict[str, Any], dict[str, Any]]:
    config = {**EXAMPLE, "automation": {"enabled": True}}
    _, stack = build_app(BootstrapConfig.from_mapping(config))  # cdk-nag fails the synth on any finding
    return body(Template.from_stack(stack))


def test_every_part_of_the_settings_has_its_widgets(automated: tuple[dict[str, Any], dict[str, Any]]) -> None:
    found, _ = automated

    assert titles(found) == [
        "",  # the heading
        "Alarms",
        "Jobs: accounts planned and done",
        "Jobs: accounts changed, failed, retrying (throttled)",
        "Drift checks: accounts checked, drifted, fixed, failed",
        "Drift: alternate contacts",
        "Drift: primary contact",
        "Drift: regions",
        "Throttled calls, by operation",
        "Adaptive call rate (calls/s), by operation",
        "Account events: waiting, and the oldest's age (s)",
        "Dead-letter queue: failed events and checks",
        "Handlers: errors",
        "Handlers: duration, maximum (ms)",
    ]
    assert metric_names(found, "Drift: regions") == set(METRIC_NAMES)
    assert metric_names(found, "Drift checks: accounts checked, drifted, fixed, failed") == set(METRIC_NAMES)
    jobs = metric_names(found, "Jobs: accounts planned and done") | metric_names(
        found, "Jobs: accounts changed, failed, retrying (throttled)"
    )
    assert jobs == set(JOB_METRICS)
    assert metric_names(found, "Handlers: errors") == {"Errors"}
    assert metric_names(found, "Handlers: duration, maximum (ms)") == {"Duration"}


def test_the_drift_metrics_are_the_ones_the_drift_check_publishes(
    automated: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    found, resources = automated
    (widget,) = [w for w in found["widgets"] if w["properties"].get("title") == "Drift: primary contact"]
    drift_roles = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    namespaces = {
        f["Properties"]["Environment"]["Variables"].get("METRIC_NAMESPACE")
        for f in drift_roles
        if "Environment" in f["Properties"]
    } - {None}
    (namespace,) = namespaces
    for metric in widget["properties"]["metrics"]:
        assert metric[0] == namespace
        assert metric[2:4] == ["Setting", "primary_contact"]


def test_the_alarm_widget_shows_every_alarm_of_the_stack(automated: tuple[dict[str, Any], dict[str, Any]]) -> None:
    found, resources = automated
    alarms = {logical_id for logical_id, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    (widget,) = [w for w in found["widgets"] if w["properties"].get("title") == "Alarms"]

    assert len(alarms) == 4  # the deploy job's workflow, the drift workflow, failed and stuck events
    assert {arn.strip("<>").removesuffix(".Arn") for arn in widget["properties"]["alarms"]} == alarms


def test_the_throttling_widgets_search_every_operation_in_the_apps_namespace(
    automated: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    found, _ = automated
    (widget,) = [w for w in found["widgets"] if w["properties"].get("title") == "Throttled calls, by operation"]
    (expression,) = widget["properties"]["metrics"]

    assert expression[0]["expression"] == (
        "SEARCH('{OrgBootstrap/AlternateContacts,Operation} MetricName=\"ThrottledCalls\"', 'Sum', 300)"
    )


def test_the_queue_widgets_read_the_account_events_queue_and_the_dead_letter_queue(
    automated: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    found, resources = automated
    queues = {logical_id for logical_id, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}
    named = set()
    for title in ("Account events: waiting, and the oldest's age (s)", "Dead-letter queue: failed events and checks"):
        (widget,) = [w for w in found["widgets"] if w["properties"].get("title") == title]
        named |= {metric[3].strip("<>").removesuffix(".QueueName") for metric in widget["properties"]["metrics"]}
    assert named == queues


def test_without_the_automation_the_deploy_jobs_have_a_dashboard_without_drift_or_queues() -> None:
    _, stack = build_app(BootstrapConfig.from_mapping(EXAMPLE))  # the example: no [automation] section
    found, _ = body(Template.from_stack(stack))

    assert "Jobs: accounts planned and done" in titles(found)
    assert not [title for title in titles(found) if title.startswith(("Drift", "Account events", "Dead-letter"))]


def test_the_switch_turns_it_off() -> None:
    config = {**EXAMPLE, "automation": {"enabled": True, "dashboard": False}}
    _, stack = build_app(BootstrapConfig.from_mapping(config))

    Template.from_stack(stack).resource_count_is(DASHBOARD, 0)


def test_the_switch_must_be_true_or_false() -> None:
    with pytest.raises(ConfigError, match=r"automation\.dashboard: 'no' must be true or false"):
        BootstrapConfig.from_mapping({**EXAMPLE, "automation": {"dashboard": "no"}})


def test_in_delegated_administrator_mode_each_stack_that_runs_settings_has_one() -> None:
    app, _ = build_app(BootstrapConfig.from_mapping(DELEGATED_CONFIG))
    assembly = app.synth()
    management = Template.from_json(assembly.get_stack_by_name("OrgBootstrapManagement").template)
    delegated = Template.from_json(assembly.get_stack_by_name("OrgBootstrapDelegatedAdministrator").template)

    delegated.resource_count_is(DASHBOARD, 1)
    assert "Drift: alternate contacts" in titles(body(delegated)[0])
    management.resource_count_is(DASHBOARD, 1)  # the management account's own contacts
    found, _ = body(management)
    (alarms,) = [w for w in found["widgets"] if w["properties"].get("title") == "Alarms"]
    assert any("Undelivered" in arn for arn in alarms["properties"]["alarms"])  # the forwarding's alarm
