"""Builds the app's stacks from a config; ``app.py`` and the tests share this one wiring."""

from __future__ import annotations

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.config import BootstrapConfig
from stacks.management_account import ManagementAccountStack


def build_app(config: BootstrapConfig, app: App | None = None) -> tuple[App, ManagementAccountStack]:
    app = app or App()
    env = Environment(account=config.management_account_id, region=config.region)
    stack = ManagementAccountStack(
        app,
        "OrgBootstrapManagement",
        config=config,
        env=env,
        description="AWS Account Management bootstrap: trusted access, delegated administrator, alternate contacts",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack
