"""The one user-tuned config: a TOML file, loaded and validated at ``cdk synth``.

Every problem is reported at once, each naming the config field and the rule it breaks; unknown
keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from org_bootstrap.contact_spec import ContactSpec
from org_bootstrap.resource import REMOVAL_POLICIES
from org_bootstrap.validation import InvalidInputError, account_id_problem

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "example.toml"
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_KEYS = (
    "management_account_id",
    "region",
    "delegated_administrator_account_id",
    "removal",
    "alternate_contacts",
)


class ConfigError(ValueError):
    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid config {source}:\n{lines}")


@dataclass(frozen=True)
class BootstrapConfig:
    management_account_id: str
    region: str
    delegated_administrator_account_id: str | None = None
    removal: str = "retain"
    alternate_contacts: ContactSpec | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<config>") -> BootstrapConfig:
        problems = [f"{key}: unknown key (allowed: {', '.join(_KEYS)})" for key in data if key not in _KEYS]
        management = data.get("management_account_id")
        problems += _present(account_id_problem("management_account_id", management))
        region = data.get("region")
        if not isinstance(region, str) or not _REGION.match(region):
            problems.append(f"region: {region!r} is not an AWS Region name (such as us-east-1)")
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
        contacts = None
        if "alternate_contacts" in data:
            try:
                contacts = ContactSpec.parse(data["alternate_contacts"])
            except InvalidInputError as error:
                problems += error.problems
        if problems:
            raise ConfigError(source, problems)
        return cls(
            management_account_id=str(management),
            region=str(region),
            delegated_administrator_account_id=str(delegated) if delegated is not None else None,
            removal=str(removal),
            alternate_contacts=contacts,
        )


def load_config(path: str | Path = DEFAULT_CONFIG) -> BootstrapConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), ["the file does not exist"]) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), [f"not valid TOML: {error}"]) from None
    return BootstrapConfig.from_mapping(data, str(path))


def _present(problem: str | None) -> list[str]:
    return [problem] if problem else []
