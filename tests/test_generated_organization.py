"""The generated organizations are valid files, the same for a seed, and as varied as a real one."""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

from local_deploy.organization_file import organization_problems
from simulation.generated import generated_config, generated_organization, main, to_toml
from simulation.organization import Organization, strict_aws
from stacks.config import BootstrapConfig


def test_a_seed_draws_the_same_organization_and_another_seed_another() -> None:
    assert generated_organization(120, 30, seed=3) == generated_organization(120, 30, seed=3)
    assert generated_organization(120, 30, seed=3) != generated_organization(120, 30, seed=4)


def test_the_organization_is_a_valid_file_with_the_variety_of_a_real_one() -> None:
    organization = tomllib.loads(to_toml(generated_organization(300, 85, seed=1)))
    assert organization_problems(organization) == []
    accounts = organization["accounts"]
    assert len(accounts) == 300 and len(organization["organizational_units"]) == 85
    security = Counter(account.get("contacts", {}).get("SECURITY", {}).get("EmailAddress") for account in accounts)
    assert len(security) > 3, "some subtrees have a SECURITY contact of their own"
    assert any("OPERATIONS" not in account.get("contacts", {"OPERATIONS": 1}) for account in accounts)
    assert any(account.get("regions") for account in accounts)
    assert any(account.get("status") == "SUSPENDED" for account in accounts)
    assert {account["tags"]["environment"] for account in accounts} >= {"production", "sandbox"}
    depth = {organization["root_id"]: 0}
    for unit in organization["organizational_units"]:
        depth[unit["id"]] = depth[unit.get("parent", organization["root_id"])] + 1
    assert max(depth.values()) >= 3, "OUs are nested"


def test_the_config_validates_and_the_simulated_organization_seeds_from_the_file(tmp_path: Path) -> None:
    assert (
        main(
            [
                "--accounts",
                "40",
                "--ous",
                "8",
                "--organization",
                str(tmp_path / "org.toml"),
                "--config",
                str(tmp_path / "config.toml"),
            ]
        )
        == 0
    )
    data = tomllib.loads((tmp_path / "org.toml").read_text(encoding="utf-8"))
    config = BootstrapConfig.from_mapping(tomllib.loads((tmp_path / "config.toml").read_text(encoding="utf-8")))
    assert sorted(config.settings) == ["alternate_contacts", "primary_contact", "regions"]
    assert config == BootstrapConfig.from_mapping(generated_config(data))
    with strict_aws(management_account=data["management_account_id"]) as log:
        org = Organization.from_mapping(data, log)
        assert org.to_mapping(log)["accounts"][5]["tags"] == data["accounts"][5]["tags"]
