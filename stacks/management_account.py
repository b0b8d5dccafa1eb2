"""The stack deployed in the organization's management account."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Stack

from constructs import Construct
from constructs.account_settings import AccountSettings
from constructs.delegated_administrator import DelegatedAdministrator
from constructs.org_provider import logical_id_of
from constructs.organization_event_forwarding import OrganizationEventForwarding
from constructs.organization_preflight import OrganizationPreflight
from constructs.settings_automation import SettingsAutomation
from constructs.settings_dashboard import SettingsDashboard
from constructs.trusted_service_access import TrustedServiceAccess
from org_bootstrap.aws.partitions import partition_of
from org_bootstrap.validation import ACCOUNT_SERVICE_PRINCIPAL
from stacks.config import BootstrapConfig, management_account_settings, preflight_ids


class ManagementAccountStack(Stack):
    """Trusted access for Account Management, then its delegated administrator, and the account
    settings: all of them, or (with ``settings_deployed_in = "delegated_administrator"``) the
    management account's own, with the account events forwarded to the delegated administrator."""

    def __init__(self, scope: Construct, construct_id: str, *, config: BootstrapConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Every ID the config names (both stacks' in delegated-administrator mode), checked first.
        self.preflight = OrganizationPreflight(self, "Preflight", ids=preflight_ids(config))
        self.trusted_access = TrustedServiceAccess(
            self, "TrustedAccess", service_principal=ACCOUNT_SERVICE_PRINCIPAL, removal=config.removal
        )
        self.delegated_administrator: DelegatedAdministrator | None = None
        if config.delegated_administrator_account_id:
            self.delegated_administrator = DelegatedAdministrator(
                self,
                "DelegatedAdministrator",
                account_id=config.delegated_administrator_account_id,
                service_principal=ACCOUNT_SERVICE_PRINCIPAL,
                removal=config.removal,
            )
            # Registration needs trusted access; deletion runs in reverse, deregistering first.
            self.delegated_administrator.node.add_dependency(self.trusted_access)
        self.account_settings: AccountSettings | None = None
        self.event_forwarding: OrganizationEventForwarding | None = None
        self.automation: SettingsAutomation | None = None
        if config.delegated_administrator_mode:
            # The management account keeps only its own settings (those whose targets reach it); the
            # delegated administrator's stack runs every other account's, and receives the account
            # events from here.
            assert config.settings and config.delegated_administrator_account_id is not None
            own = management_account_settings(config.settings, config.management_account_id)
            if own:
                self.account_settings = AccountSettings(
                    self,
                    "AlternateContacts",  # construct IDs are deployed logical IDs: named when contacts were all
                    settings=own,
                    partition=partition_of(config.region),
                    notification_email=_notification_email(config),
                )
                self.account_settings.node.add_dependency(self.trusted_access)
            if config.automation_enabled:
                self.event_forwarding = OrganizationEventForwarding(
                    self,
                    "ForwardOrganizationEvents",
                    target_account_id=config.delegated_administrator_account_id,
                    target_region=config.region,
                )
            self._dashboard(config)
            return
        if config.settings:
            self.account_settings = AccountSettings(
                self,
                "AlternateContacts",  # construct IDs are deployed logical IDs: named when contacts were all
                settings=config.settings,
                partition=partition_of(config.region),
                notification_email=_notification_email(config),
            )
            # The Account Management API addresses member accounts only once trusted access is on.
            self.account_settings.node.add_dependency(self.trusted_access)
        if config.automation is not None and config.automation.enabled:
            assert config.settings and self.account_settings is not None  # the config checks
            self.automation = SettingsAutomation(
                self,
                "ContactAutomation",  # a deployed logical ID prefix: kept from when contacts were all
                settings=config.settings,
                management_account_id=config.management_account_id,
                partition=partition_of(config.region),
                drift_interval=Duration.minutes(config.automation.drift_interval_minutes),
                report_only=config.automation.report_only,
                notification_email=config.automation.notification_email,
                # The same snapshots as the deploy-time apply, so that removal = "restore" puts back
                # what was there before the app first changed a contact, whichever path changed it.
                state=self.account_settings.state,
                # One topic for the jobs' alarms, the drift reports and the automation's alarms.
                notifications=(self.account_settings.topic_key, self.account_settings.topic),
                deploy_job_pointer=logical_id_of(self.account_settings.resource),
            )
            # Account events and the drift check start after the deploy-time apply has finished.
            self.automation.node.add_dependency(self.account_settings)
        self._dashboard(config)

    def _dashboard(self, config: BootstrapConfig) -> None:
        """How the settings run here are doing, where any run (``automation.dashboard = false``: none)."""
        self.dashboard: SettingsDashboard | None = None
        if config.dashboard_enabled and self.account_settings is not None:
            forwarding = [self.event_forwarding.alarm] if self.event_forwarding is not None else []
            self.dashboard = SettingsDashboard.of(
                self,
                "SettingsDashboard",
                account_settings=self.account_settings,
                automation=self.automation,
                alarms=forwarding,
            )


def _notification_email(config: BootstrapConfig) -> str | None:
    """Whoever hears about drift also hears about a contacts job whose continuation failed."""
    return config.automation.notification_email if config.automation is not None else None
