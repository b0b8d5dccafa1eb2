"""The stack deployed in the delegated administrator account, when it runs the account settings.

It covers every account of the organization but the management account (whose own settings stay
with the management account's stack, since a delegated administrator cannot change them), for
every setting the config has (alternate contacts, primary contact, Regions), and the automation
that keeps them correct, fed by the events the management account forwards.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack

from constructs import Construct
from constructs.account_settings import AccountSettings
from constructs.org_provider import logical_id_of
from constructs.organization_event_forwarding import OrganizationEventReceiver
from constructs.organization_preflight import OrganizationPreflight
from constructs.settings_automation import SettingsAutomation
from constructs.settings_dashboard import SettingsDashboard
from org_bootstrap.aws.partitions import partition_of
from stacks.config import BootstrapConfig, member_account_settings, preflight_ids


class DelegatedAdministratorStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: BootstrapConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        management = config.management_account_id
        settings = member_account_settings(config.settings, management)
        assert settings, "the config requires a setting that reaches a member account in this mode"
        # Checked here again: this stack can be deployed on its own, and its resources wait for it.
        self.preflight = OrganizationPreflight(self, "Preflight", ids=preflight_ids(config))
        self.account_settings = AccountSettings(
            self,
            "AlternateContacts",
            settings=settings,
            partition=partition_of(config.region),
            management_account_id=management,
            notification_email=config.automation.notification_email if config.automation is not None else None,
        )
        self.event_receiver: OrganizationEventReceiver | None = None
        self.automation: SettingsAutomation | None = None
        if config.automation is not None and config.automation.enabled:
            self.event_receiver = OrganizationEventReceiver(self, "OrganizationEvents", source_account_id=management)
            self.automation = SettingsAutomation(
                self,
                "ContactAutomation",  # a deployed logical ID prefix: kept from when contacts were all
                settings=settings,
                management_account_id=management,
                partition=partition_of(config.region),
                event_bus=self.event_receiver.bus,
                drift_interval=Duration.minutes(config.automation.drift_interval_minutes),
                report_only=config.automation.report_only,
                notification_email=config.automation.notification_email,
                state=self.account_settings.state,
                # One topic for the jobs' alarms, the drift reports and the automation's alarms.
                notifications=(self.account_settings.topic_key, self.account_settings.topic),
                deploy_job_pointer=logical_id_of(self.account_settings.resource),
            )
            self.automation.node.add_dependency(self.account_settings)
        self.dashboard: SettingsDashboard | None = None
        if config.dashboard_enabled:  # how the settings run here are doing (automation.dashboard = false: none)
            self.dashboard = SettingsDashboard.of(
                self, "SettingsDashboard", account_settings=self.account_settings, automation=self.automation
            )
