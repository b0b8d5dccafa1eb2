"""The one user-tuned config: a TOML file, loaded and validated at ``cdk synth``.

Every problem is reported at once, each naming the config field and the rule it breaks; unknown
keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from org_bootstrap.aws.partitions import COMMERCIAL, partition_of
from org_bootstrap.engine.registry import SETTINGS
from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.handlers.preflight import ConfigIds
from org_bootstrap.handlers.resource import REMOVAL_POLICIES
from org_bootstrap.settings.alternate_contacts.spec import CONTACT_FIELD_RULES, DELETE, ContactSpec
from org_bootstrap.validation import (
    ACCOUNT_ID_SCHEMA,
    EVENTS_REGION,
    REGION_SCHEMA,
    Field,
    InvalidInputError,
    account_id_problem,
    choice_schema,
    field_names,
    region_problem,
    string_schema,
)
from stacks.pipeline_config import PIPELINE_FIELDS, PipelineConfig
from stacks.toml_file import read_toml

CONFIG_DIRECTORY = Path(__file__).resolve().parent.parent / "config"
DEFAULT_CONFIG = CONFIG_DIRECTORY / "example.toml"
# Where the member accounts' contacts and their automation are deployed.
MANAGEMENT_ACCOUNT_MODE = "management_account"
DELEGATED_ADMINISTRATOR_MODE = "delegated_administrator"
DEPLOYMENT_MODES = (MANAGEMENT_ACCOUNT_MODE, DELEGATED_ADMINISTRATOR_MODE)
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)\Z", re.ASCII)
AUTOMATION_FIELDS = (
    Field(
        "enabled",
        "Keep every configured setting correct after the deploy (needs a setting section and region us-east-1)",
        {"type": "boolean"},
    ),
    Field(
        "drift_schedule",
        "How often every targeted account is compared with the config: rate(N minutes|hours|days), "
        "singular for 1, at least rate(1 hour)",
        string_schema(_RATE),
    ),
    Field("report_only", "true: the drift check only reports; its role can only read contacts", {"type": "boolean"}),
    Field(
        "notification_email",
        "Subscribed to the topic that gets drift summaries and alarms",
        CONTACT_FIELD_RULES["EmailAddress"].schema(),
    ),
    Field(
        "dashboard",
        "A CloudWatch dashboard in each stack that runs settings: jobs, drift, throttling, queues, alarms "
        "(default true)",
        {"type": "boolean"},
    ),
)
CONFIG_FIELDS = (
    Field(
        "management_account_id",
        "The organization's management account (12 digits, quoted); the stack deploys here",
        ACCOUNT_ID_SCHEMA,
        required=True,
    ),
    Field("region", "Where the stack and its Lambda functions live", REGION_SCHEMA, required=True),
    Field(
        "delegated_administrator_account_id",
        "Registered as delegated administrator for account.amazonaws.com (not the management account)",
        ACCOUNT_ID_SCHEMA,
    ),
    Field(
        "removal",
        "On delete: retain leaves trusted access and the registration; undo reverts what the stack did",
        choice_schema(REMOVAL_POLICIES),
    ),
    Field(
        "settings_deployed_in",
        "Where the member accounts' settings and their automation run: management_account or delegated_administrator",
        choice_schema(DEPLOYMENT_MODES),
    ),
    # A section per account setting, declared by the setting itself (targets, overrides, removal...).
    *(setting.spec_type.config_section() for setting in SETTINGS),
    Field(
        "automation",
        "Keep every configured setting correct after the deploy: new and moved accounts, and a drift check",
        fields=AUTOMATION_FIELDS,
    ),
    Field("pipeline", "A CDK Pipelines pipeline that deploys the app (docs/pipeline.md)", fields=PIPELINE_FIELDS),
)
_KEYS = field_names(CONFIG_FIELDS)
# Keys that were renamed when the app grew from alternate contacts into account settings: a config
# written with the former name keeps working.
FORMER_KEYS = {"contacts_deployed_in": "settings_deployed_in"}


def _renamed_keys(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``data`` with every former key under its current name; both names at once is a problem."""
    renamed, problems = dict(data), []
    for former, current in FORMER_KEYS.items():
        if former in renamed:
            if current in renamed:
                problems.append(f"{former}: the former name of {current}; give only {current}")
            renamed.setdefault(current, renamed.pop(former))
    return renamed, problems


_AUTOMATION_KEYS = field_names(AUTOMATION_FIELDS)
_MINUTES = {"minute": 1, "hour": 60, "day": 1440}
# A full drift check reads every targeted account's contacts at the GetAlternateContact quota
# (10 per second): 10,000 accounts take about 50 minutes, so checks never run closer than this.
MIN_DRIFT_MINUTES = 60


class ConfigError(ValueError):
    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid config {source}:\n{lines}")


@dataclass(frozen=True)
class AutomationConfig:
    """Keeping every configured setting correct after the deploy: new and moved accounts, and a drift schedule."""

    enabled: bool = True
    drift_schedule: str = "rate(1 day)"  # an EventBridge Scheduler rate expression
    report_only: bool = False  # the drift check reports what differs and changes nothing
    notification_email: str | None = None  # subscribed to the topic that reports drift and failures
    dashboard: bool = True  # a CloudWatch dashboard in each stack that runs settings

    @property
    def drift_interval_minutes(self) -> int:
        return _rate_minutes(self.drift_schedule) or 0

    @classmethod
    def parse(cls, data: object, where: str = "automation") -> tuple[AutomationConfig | None, list[str]]:
        if not isinstance(data, Mapping):
            return None, [f"{where}: must be a table"]
        allowed = ", ".join(_AUTOMATION_KEYS)
        problems = [f"{where}.{key}: unknown key (allowed: {allowed})" for key in data if key not in _AUTOMATION_KEYS]
        for key in ("enabled", "report_only", "dashboard"):
            if key in data and not isinstance(data[key], bool):
                problems.append(f"{where}.{key}: {data[key]!r} must be true or false")
        schedule = data.get("drift_schedule", cls.drift_schedule)
        problems += _present(_rate_problem(f"{where}.drift_schedule", schedule))
        email = data.get("notification_email")
        rule = CONTACT_FIELD_RULES["EmailAddress"]
        if email is not None and not (
            isinstance(email, str) and len(email) <= rule.max_length and rule.pattern and rule.pattern.match(email)
        ):
            problems.append(f"{where}.notification_email: {email!r} is not an e-mail address (such as ops@example.com)")
        if problems:
            return None, problems
        return (
            cls(
                enabled=bool(data.get("enabled", True)),
                drift_schedule=str(schedule),
                report_only=bool(data.get("report_only", False)),
                notification_email=str(email).strip() if email is not None else None,
                dashboard=bool(data.get("dashboard", True)),
            ),
            [],
        )


def _rate_minutes(expression: str) -> int | None:
    found = _RATE.match(expression)
    if not found:
        return None
    value, unit = int(found.group(1)), found.group(2)
    return value * _MINUTES[unit.rstrip("s")]


def _rate_problem(field: str, value: object) -> str | None:
    found = _RATE.match(value) if isinstance(value, str) else None
    if not isinstance(value, str) or not found:
        return f"{field}: {value!r} is not a rate expression such as rate(1 day) or rate(12 hours)"
    amount, unit = int(found.group(1)), found.group(2)
    if amount > 0 and (amount == 1) != (not unit.endswith("s")):
        return f"{field}: {value!r}: write the unit singular for 1 and plural otherwise (rate(1 day), rate(2 days))"
    minutes = _rate_minutes(value) or 0
    if minutes < MIN_DRIFT_MINUTES:
        return (
            f"{field}: {value!r} is more often than rate(1 hour); a full check reads every account's "
            "contacts at the GetAlternateContact quota and must finish before the next one starts"
        )
    return None


@dataclass(frozen=True)
class BootstrapConfig:
    management_account_id: str
    region: str
    delegated_administrator_account_id: str | None = None
    removal: str = "retain"
    # Every account setting the config has a section for, by section name, in SETTINGS' order.
    settings: Mapping[str, SettingSpec[Any]] = field(default_factory=dict)
    automation: AutomationConfig | None = None
    settings_deployed_in: str = MANAGEMENT_ACCOUNT_MODE
    pipeline: PipelineConfig | None = None

    @property
    def alternate_contacts(self) -> ContactSpec | None:
        found = self.settings.get("alternate_contacts")
        assert found is None or isinstance(found, ContactSpec)
        return found

    @property
    def automation_enabled(self) -> bool:
        return self.automation is not None and self.automation.enabled

    @property
    def dashboard_enabled(self) -> bool:
        """A dashboard in each stack that runs settings, unless ``automation.dashboard = false``."""
        return self.automation is None or self.automation.dashboard

    @property
    def delegated_administrator_mode(self) -> bool:
        return self.settings_deployed_in == DELEGATED_ADMINISTRATOR_MODE

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<config>") -> BootstrapConfig:
        data, problems = _renamed_keys(data)
        problems += [f"{key}: unknown key (allowed: {', '.join(_KEYS)})" for key in data if key not in _KEYS]
        management = data.get("management_account_id")
        problems += _present(account_id_problem("management_account_id", management))
        region = data.get("region")
        problems += _present(region_problem("region", region))
        delegated = data.get("delegated_administrator_account_id")
        if delegated is not None:
            problems += _present(account_id_problem("delegated_administrator_account_id", delegated))
            if delegated == management:
                problems.append(
                    "delegated_administrator_account_id: is the management account, which cannot be "
                    "registered as a delegated administrator"
                )
        removal = data.get("removal", "retain")
        if removal not in REMOVAL_POLICIES:
            problems.append(
                f"removal: {removal!r} is not one of {', '.join(REMOVAL_POLICIES)} "
                "(retain leaves trusted access and the registration; undo reverts what the stack did)"
            )
        mode = data.get("settings_deployed_in", MANAGEMENT_ACCOUNT_MODE)
        if mode not in DEPLOYMENT_MODES:
            problems.append(f"settings_deployed_in: {mode!r} is not one of {', '.join(DEPLOYMENT_MODES)}")
        elif mode == DELEGATED_ADMINISTRATOR_MODE and delegated is None:
            problems.append(
                "settings_deployed_in: 'delegated_administrator' needs delegated_administrator_account_id, the "
                "account the member accounts' contacts are deployed in"
            )
        # Which Regions are opt-in depends on the partition the stack deploys to.
        partition = partition_of(str(region)) if region_problem("region", region) is None else COMMERCIAL
        settings: dict[str, SettingSpec[Any]] = {}
        # The user's own file: a bad e-mail address or phone number is shown as written.
        for setting in SETTINGS:
            if setting.name in data:
                try:
                    settings[setting.name] = setting.spec_type.parse(
                        data[setting.name], partition=partition, show_values=True
                    )
                except InvalidInputError as error:
                    problems += error.problems
        pipeline = None
        if "pipeline" in data:
            try:
                pipeline = PipelineConfig.parse(data["pipeline"], default_account_id=management)
            except InvalidInputError as error:
                problems += error.problems
        automation = None
        if "automation" in data:
            automation, found = AutomationConfig.parse(data["automation"])
            problems += found
        if automation is not None and automation.enabled:
            if not any(setting.name in data for setting in SETTINGS):
                sections = ", ".join(f"[{setting.name}]" for setting in SETTINGS)
                problems.append(
                    f"automation.enabled: needs a setting to keep correct: a section of {sections} "
                    "(add one, or set enabled = false)"
                )
            if region_problem("region", region) is None and region != EVENTS_REGION:
                problems.append(
                    f"automation.enabled: Organizations and Control Tower account events arrive only in "
                    f"{EVENTS_REGION}, but region is {region!r} (deploy to {EVENTS_REGION}, or set enabled = false)"
                )
        if mode == DELEGATED_ADMINISTRATOR_MODE and not any(setting.name in data for setting in SETTINGS):
            problems.append(
                "settings_deployed_in: 'delegated_administrator' deploys the member accounts' settings there, "
                "but there is no setting section: add [alternate_contacts], [primary_contact] or [regions], "
                "or remove settings_deployed_in"
            )
        if mode == DELEGATED_ADMINISTRATOR_MODE and settings and delegated is not None:
            problems += delegated_administrator_problems(settings, str(management), str(delegated))
        if problems:
            raise ConfigError(source, problems)
        return cls(
            management_account_id=str(management),
            region=str(region),
            delegated_administrator_account_id=str(delegated) if delegated is not None else None,
            removal=str(removal),
            settings=settings,
            automation=automation,
            settings_deployed_in=str(mode),
            pipeline=pipeline,
        )


def delegated_administrator_problems(
    settings: Mapping[str, SettingSpec[Any]], management: str, delegated: str
) -> list[str]:
    """What a config asks of the delegated administrator that only the management account can do.

    The management account's own settings are set by the management account's stack; a config
    whose every setting targets the management account alone leaves the delegated administrator
    nothing to run, and one that deletes the delegated administrator's own contacts would take
    them from the account that runs the automation.
    """
    problems = []
    if not member_account_settings(settings, management):
        problems.append(
            f"settings_deployed_in: the only targeted account is the management account ({', '.join(settings)}), "
            "whose settings a delegated administrator cannot change; they are set from the management account, "
            f"so use settings_deployed_in = '{MANAGEMENT_ACCOUNT_MODE}'"
        )
    for name, spec in settings.items():
        for i, override in enumerate(spec.overrides):
            if override.account == delegated and any(c == DELETE for c in override.values.values()):
                problems.append(
                    f"{name}.overrides[{i}]: deletes contacts of the delegated administrator account "
                    f"{delegated}, the account that runs the settings' automation in this mode; set them instead"
                )
    return problems


def management_account_settings(
    settings: Mapping[str, SettingSpec[Any]], management: str
) -> dict[str, SettingSpec[Any]]:
    """The settings the management account's stack runs for its own account when a delegated
    administrator runs the rest, each covering the management account only: every setting whose
    targets can reach it. It sits in the organization's root, so OU targets reach it only when they
    name the root (``r-``)."""

    def reaches(spec: SettingSpec[Any]) -> bool:
        if management in spec.exclude_accounts:
            return False
        if spec.accounts:
            return management in spec.accounts
        return not spec.organizational_units or any(ou.startswith("r-") for ou in spec.organizational_units)

    return {name: spec.scoped("management_account") for name, spec in settings.items() if reaches(spec)}


def member_account_settings(settings: Mapping[str, SettingSpec[Any]], management: str) -> dict[str, SettingSpec[Any]]:
    """The settings the delegated administrator's stack runs, each covering the member accounts
    only: every setting but one that targets the management account alone (whose settings only
    the management account's own stack can change)."""
    return {name: spec.scoped("member_accounts") for name, spec in settings.items() if spec.accounts != (management,)}


def preflight_ids(config: BootstrapConfig) -> ConfigIds:
    """Every account and OU ID the config names, under the field that names it."""
    found = [
        ConfigIds.of(
            management_account_id=config.management_account_id,
            delegated_administrator_account_id=config.delegated_administrator_account_id,
            spec=spec,  # any setting: the same targets and overrides vocabulary
            where=name,
        )
        for name, spec in config.settings.items()
    ] or [
        ConfigIds.of(
            management_account_id=config.management_account_id,
            delegated_administrator_account_id=config.delegated_administrator_account_id,
        )
    ]
    return dataclasses.replace(
        found[0],
        accounts={field: value for ids in found for field, value in ids.accounts.items()},
        organizational_units={field: value for ids in found for field, value in ids.organizational_units.items()},
    )


def config_path(path: str | Path) -> Path:
    """The config file a ``-c config=...`` value names: the path as given, or, for a bare file name
    that is not in the working directory, that name in ``config/`` (where the README's
    ``cp config/example.toml config/my-org.toml`` puts it)."""
    given = Path(path)
    if given.exists() or given.parent != Path("."):
        return given
    in_config_directory = CONFIG_DIRECTORY / given
    return in_config_directory if in_config_directory.exists() else given


def load_config(path: str | Path = DEFAULT_CONFIG) -> BootstrapConfig:
    path = config_path(path)
    data, problem = read_toml(path)
    if data is None:
        missing = not path.exists() and path.parent == Path(".")
        where = f" (nor {CONFIG_DIRECTORY.name}/{path.name})" if missing else ""
        raise ConfigError(str(path), [f"{problem}{where}"])
    return BootstrapConfig.from_mapping(data, str(path))


def _present(problem: str | None) -> list[str]:
    return [problem] if problem else []
