"""The config: the example loads, and every bad value stops the synth naming field and rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacks.config import DEFAULT_CONFIG, BootstrapConfig, ConfigError, config_path, load_config

VALID = {
    "management_account_id": "111111111111",
    "region": "us-east-1",
    "delegated_administrator_account_id": "222222222222",
    "removal": "undo",
}


def problems_of(data: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        BootstrapConfig.from_mapping(data)
    return caught.value.problems


def test_example_config_loads() -> None:
    config = load_config(DEFAULT_CONFIG)
    assert config.management_account_id == "111111111111"
    assert config.delegated_administrator_account_id == "222222222222"
    assert config.removal == "retain"


def test_valid_mapping_is_typed() -> None:
    config = BootstrapConfig.from_mapping(VALID)
    assert config == BootstrapConfig("111111111111", "us-east-1", "222222222222", "undo")


def test_delegated_administrator_is_optional_and_removal_defaults_to_retain() -> None:
    config = BootstrapConfig.from_mapping({"management_account_id": "111111111111", "region": "eu-west-1"})
    assert config.delegated_administrator_account_id is None
    assert config.removal == "retain"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"management_account_id": "1234"},
            "management_account_id: '1234' is not an AWS account ID (exactly 12 digits)",
        ),
        (
            {"management_account_id": 111111111111},
            'management_account_id: 111111111111 must be a quoted string ("111111111111")',
        ),
        ({"region": "us-fake-9"}, "region: 'us-fake-9' is not a Region of any AWS partition"),
        ({"delegated_administrator_account_id": "22222222222a"}, "delegated_administrator_account_id: '22222222222a'"),
        (
            {"delegated_administrator_account_id": "111111111111"},
            "delegated_administrator_account_id: is the management",
        ),
        ({"region": "useast1"}, "region: 'useast1' is not an AWS Region name"),
        ({"removal": "destroy"}, "removal: 'destroy' is not one of retain, undo"),
        ({"delegated_admin": "222222222222"}, "delegated_admin: unknown key"),
    ],
)
def test_bad_values_name_the_field_and_rule(change: dict[str, object], expected: str) -> None:
    found = problems_of({**VALID, **change})
    assert any(problem.startswith(expected) for problem in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems_of({"management_account_id": "x", "region": "nowhere", "removal": "drop", "extra": 1})
    assert len(found) == 4


def test_missing_file_and_bad_toml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("management_account_id = ", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_a_bare_file_name_is_found_in_the_config_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cp config/example.toml config/my-org.toml` then `npx cdk synth -c config=my-org.toml` finds it."""
    monkeypatch.chdir(tmp_path)
    assert config_path("example.toml") == DEFAULT_CONFIG
    assert load_config("example.toml") == load_config(DEFAULT_CONFIG)
    (tmp_path / "example.toml").write_text('management_account_id = "999999999999"\nregion = "eu-west-1"\n')
    assert config_path("example.toml") == Path("example.toml")  # the working directory's file wins
    assert load_config("example.toml").management_account_id == "999999999999"
    with pytest.raises(ConfigError, match=r"the file does not exist \(nor config/my-org.toml\)"):
        load_config("my-org.toml")
    with pytest.raises(ConfigError, match=r"the file does not exist$"):
        load_config("elsewhere/example.toml")  # a path with a directory is taken as given


def test_app_refuses_to_synth_a_bad_config(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text('management_account_id = "1"\nregion = "us-east-1"\n', encoding="utf-8")
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, str(root / "app.py")],
        env={"CDK_CONTEXT_JSON": f'{{"config": "{bad}"}}', "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "management_account_id: '1' is not an AWS account ID" in result.stderr


def test_pipeline_section_is_parsed_and_validated_with_the_rest() -> None:
    source = {"codecommit": {"repository": "org-bootstrap", "branch": "main"}}
    parsed = BootstrapConfig.from_mapping({**VALID, "pipeline": source})
    assert parsed.pipeline is not None
    assert parsed.pipeline.account_and_region(management_account_id="111111111111", region="us-east-1") == (
        "111111111111",
        "us-east-1",
    )
    found = problems_of({**VALID, "region": "nowhere", "pipeline": {**source, "approve": True}})
    assert any(problem.startswith("pipeline.approve: unknown key") for problem in found), found
    assert any(problem.startswith("region:") for problem in found), "reported together"


def test_the_former_name_of_settings_deployed_in_still_reads_and_both_at_once_is_an_error() -> None:
    base = {
        "management_account_id": "111111111111",
        "region": "us-east-1",
        "delegated_administrator_account_id": "222222222222",
        "alternate_contacts": {"contacts": {"SECURITY": {"delete": True}}},
    }
    former = BootstrapConfig.from_mapping({**base, "contacts_deployed_in": "delegated_administrator"})
    assert former.settings_deployed_in == "delegated_administrator"
    with pytest.raises(ConfigError, match="contacts_deployed_in: the former name of settings_deployed_in"):
        BootstrapConfig.from_mapping(
            {**base, "contacts_deployed_in": "delegated_administrator", "settings_deployed_in": "management_account"}
        )
