"""How the account-settings automation is doing, on one CloudWatch dashboard.

Built only from metrics the app already has: the deploy and drift jobs' progress and the pacing's
throttles and rate (Embedded Metric Format lines of :mod:`org_bootstrap.engine.metrics`), the drift
check's counts (:mod:`org_bootstrap.handlers.drift`: in total and per setting), the account-events
queue and the dead-letter queue (SQS), the handlers' errors and durations (Lambda), and the state
of every alarm the stack raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from org_bootstrap.engine.metrics import (
    CALL_RATE,
    JOB_DIMENSION,
    NAMESPACE,
    OPERATION_DIMENSION,
    THROTTLED_CALLS,
)
from org_bootstrap.handlers.drift import METRIC_NAMES, SETTING_DIMENSION

if TYPE_CHECKING:
    from constructs.account_settings import AccountSettings
    from constructs.settings_automation import SettingsAutomation

PERIOD = Duration.minutes(5)
DRIFT_PERIOD = Duration.hours(1)  # checks run at most hourly (automation.drift_schedule)
WIDTH = 24  # a dashboard row's grid units
JOBS = ("deploy", "drift")


class SettingsDashboard(Construct):
    """A CloudWatch dashboard of the settings' jobs, drift, throttling, queues, handlers and alarms.

    ``settings``: the names of the settings the stack runs (one drift graph each). ``functions``:
    the handlers by a label a person reads. ``alarms``: every alarm to show the state of. The
    queues and the drift graphs appear when the automation runs here (``queue`` given, ``drift``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Sequence[str],
        functions: Mapping[str, lambda_.IFunction],
        alarms: Sequence[cloudwatch.IAlarm],
        queue: sqs.IQueue | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
        drift: bool = False,
        namespace: str = NAMESPACE,
    ) -> None:
        super().__init__(scope, construct_id)
        self.namespace = namespace
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.days(7),
            period_override=cloudwatch.PeriodOverride.INHERIT,
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown="# Account settings\nJobs, drift, throttling, queues and alarms of the account-settings "
                "automation. The coverage of every account: `python -m local_deploy report --from <report>.json` "
                "on a drift report from the jobs' bucket (docs/reporting.md).",
                width=WIDTH,
                height=2,
            )
        )
        if alarms:
            self.dashboard.add_widgets(
                cloudwatch.AlarmStatusWidget(alarms=list(alarms), title="Alarms", width=WIDTH, height=3)
            )
        self.dashboard.add_widgets(self._job_progress(), self._job_outcomes())
        if drift:
            self.dashboard.add_widgets(self._drift_totals(), *self._drift_by_setting(settings))
        self.dashboard.add_widgets(self._throttled_calls(), self._call_rate())
        if queue is not None:
            self.dashboard.add_widgets(*self._queues(queue, dead_letter_queue))
        self.dashboard.add_widgets(*self._handlers(functions))

    @classmethod
    def of(
        cls,
        scope: Construct,
        construct_id: str,
        *,
        account_settings: AccountSettings | None,
        automation: SettingsAutomation | None = None,
        alarms: Sequence[cloudwatch.IAlarm] = (),
    ) -> SettingsDashboard:
        """The dashboard of what a stack runs: its deploy-time settings, its automation, or both."""
        functions: dict[str, lambda_.IFunction] = {}
        found = list(alarms)
        settings: list[str] = []
        if account_settings is not None:
            settings += list(account_settings.specs)
            functions["deploy: plan"] = account_settings.on_event.function
            functions["deploy: work"] = account_settings.is_complete.function
            found.append(account_settings.workflow.alarm)
        if automation is not None:
            settings += [name for name in automation.settings if name not in settings]
            functions["account events"] = automation.account_events.function
            functions["drift check"] = automation.drift.function
            found += [automation.failed_events_alarm, automation.stuck_events_alarm, automation.workflow.alarm]
        return cls(
            scope,
            construct_id,
            settings=settings,
            functions=functions,
            alarms=found,
            queue=automation.queue if automation is not None else None,
            dead_letter_queue=automation.dead_letter_queue if automation is not None else None,
            drift=automation is not None,
            namespace=automation.metric_namespace if automation is not None else NAMESPACE,
        )

    def _metric(self, name: str, dimensions: Mapping[str, str], statistic: str, period: Duration) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self.namespace,
            metric_name=name,
            dimensions_map=dict(dimensions),
            statistic=statistic,
            period=period,
            label=" ".join([name, *dimensions.values()]),
        )

    def _job_progress(self) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title="Jobs: accounts planned and done",
            left=[
                self._metric(name, {JOB_DIMENSION: job}, "Maximum", PERIOD)
                for job in JOBS
                for name in ("JobAccountsPlanned", "JobAccountsDone")
            ],
            width=12,
        )

    def _job_outcomes(self) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title="Jobs: accounts changed, failed, retrying (throttled)",
            left=[
                self._metric(name, {JOB_DIMENSION: job}, "Maximum", PERIOD)
                for job in JOBS
                for name in ("JobAccountsChanged", "JobAccountsFailed", "JobAccountsRetrying")
            ],
            width=12,
        )

    def _drift_totals(self) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title="Drift checks: accounts checked, drifted, fixed, failed",
            left=[self._metric(name, {}, "Maximum", DRIFT_PERIOD) for name in METRIC_NAMES],
            width=12,
        )

    def _drift_by_setting(self, settings: Sequence[str]) -> list[cloudwatch.IWidget]:
        return [
            cloudwatch.GraphWidget(
                title=f"Drift: {setting.replace('_', ' ')}",
                left=[
                    self._metric(name, {SETTING_DIMENSION: setting}, "Maximum", DRIFT_PERIOD) for name in METRIC_NAMES
                ],
                width=12,
            )
            for setting in settings
        ]

    def _search(self, metric: str, statistic: str, label: str) -> cloudwatch.MathExpression:
        """Every operation's ``metric``: the operations are whichever the settings call."""
        return cloudwatch.MathExpression(
            expression=f"SEARCH('{{{self.namespace},{OPERATION_DIMENSION}}} MetricName=\"{metric}\"', "
            f"'{statistic}', {int(PERIOD.to_seconds())})",
            using_metrics={},
            label=label,
            period=PERIOD,
        )

    def _throttled_calls(self) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title="Throttled calls, by operation",
            left=[self._search(THROTTLED_CALLS, "Sum", "Throttled")],
            width=12,
        )

    def _call_rate(self) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(
            title="Adaptive call rate (calls/s), by operation",
            left=[self._search(CALL_RATE, "Minimum", "Rate")],
            width=12,
        )

    def _queues(self, queue: sqs.IQueue, dead_letter_queue: sqs.IQueue | None) -> list[cloudwatch.IWidget]:
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Account events: waiting, and the oldest's age (s)",
                left=[queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")],
                right=[queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum")],
                width=12,
            )
        ]
        if dead_letter_queue is not None:
            widgets.append(
                cloudwatch.GraphWidget(
                    title="Dead-letter queue: failed events and checks",
                    left=[
                        dead_letter_queue.metric_approximate_number_of_messages_visible(
                            period=PERIOD, statistic="Maximum"
                        )
                    ],
                    width=12,
                )
            )
        return widgets

    def _handlers(self, functions: Mapping[str, lambda_.IFunction]) -> list[cloudwatch.IWidget]:
        errors = [
            function.metric_errors(period=PERIOD, statistic="Sum", label=label) for label, function in functions.items()
        ]
        durations = [
            function.metric_duration(period=PERIOD, statistic="Maximum", label=label)
            for label, function in functions.items()
        ]
        return [
            cloudwatch.GraphWidget(title="Handlers: errors", left=errors, width=12),
            cloudwatch.GraphWidget(title="Handlers: duration, maximum (ms)", left=durations, width=12),
        ]
