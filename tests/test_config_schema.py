"""config/schema.json, the editors' view of the config: current with the fields the synth validates
against, referenced from the example config, accepting the example, and refusing what the synth
refuses field by field."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from org_bootstrap.validation import Field, table_schema
from stacks import config_schema as schema_module
from stacks.config import CONFIG_FIELDS, DEFAULT_CONFIG, BootstrapConfig, ConfigError
from stacks.config_schema import REFERENCE_FILE, SCHEMA_DIRECTIVE, SCHEMA_FILE, config_schema, main, reference, rendered

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = config_schema()
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
CONTACT = {"Name": "Ops", "Title": "On-call", "EmailAddress": "ops@example.com", "PhoneNumber": "+1 206 555 0100"}
VALID: dict[str, Any] = {
    "management_account_id": "111111111111",
    "region": "us-east-1",
    "delegated_administrator_account_id": "222222222222",
    "alternate_contacts": {
        "contacts": {"SECURITY": CONTACT, "BILLING": {"delete": True}},
        "targets": {"exclude_organizational_units": ["ou-abcd-12345678"]},
        "overrides": [{"account": "333333333333", "contacts": {"OPERATIONS": CONTACT}}],
    },
    "automation": {"drift_schedule": "rate(12 hours)", "notification_email": "ops@example.com"},
    "pipeline": {"codecommit": {"repository": "org-bootstrap", "branch": "main"}},
}


def test_the_committed_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == rendered(), "run: python -m stacks.config_schema"
    assert main(["--check"]) == 0


def test_the_committed_reference_page_is_current_and_names_every_section() -> None:
    page = REFERENCE_FILE.read_text(encoding="utf-8")
    assert page == reference(), "run: python -m stacks.config_schema"
    for section in ("alternate_contacts", "primary_contact", "regions", "automation", "pipeline"):
        assert f"## `{section}`" in page


@pytest.mark.parametrize("name", ["schema.json", "config-reference.md"])
def test_the_check_fails_on_a_stale_schema_or_reference(name: str, tmp_path: Path, monkeypatch: Any) -> None:
    stale = tmp_path / name
    stale.write_text("{}\n", encoding="utf-8")
    generated = {(stale if path.name == name else path): render for path, render in schema_module.GENERATED.items()}
    monkeypatch.setattr(schema_module, "GENERATED", generated)
    assert main(["--check"]) == 1


def test_the_schema_is_valid_json_schema_and_the_example_points_to_it() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    first_line = DEFAULT_CONFIG.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == SCHEMA_DIRECTIVE
    assert (DEFAULT_CONFIG.parent / SCHEMA_DIRECTIVE.split()[-1]).resolve() == SCHEMA_FILE


@pytest.mark.parametrize("path", [DEFAULT_CONFIG, ROOT / "tests" / "configs" / "every-part.toml"])
def test_configs_the_synth_accepts_are_valid_against_the_schema(path: Path) -> None:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    BootstrapConfig.from_mapping(data)
    assert [error.message for error in VALIDATOR.iter_errors(data)] == []


def test_every_table_of_the_declaration_is_in_the_schema_and_closed() -> None:
    def walk(fields: tuple[Field, ...], schema: dict[str, Any], where: str) -> int:
        assert schema["additionalProperties"] is False, where
        assert list(schema["properties"]) == [field.name for field in fields if not field.internal], where
        tables = 1
        for field in fields:
            if field.fields and not field.internal:
                inner = schema["properties"][field.name]
                tables += walk(field.fields, inner["items"] if field.many else inner, f"{where}.{field.name}")
        return tables

    assert walk(CONFIG_FIELDS, table_schema(CONFIG_FIELDS), "config") >= 8


def changed(path: str, value: Any) -> dict[str, Any]:
    """VALID with one value replaced; ``path`` is dotted, with [i] for list items."""
    data = copy.deepcopy(VALID)
    *parents, last = path.replace("[", ".").replace("]", "").split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[last] = value
    return data


# A bad value for each kind of rule the schema carries: both the synth and the schema refuse it.
BAD = [
    ("management_account_id", "12345"),
    ("region", "nowhere"),
    ("delegated_administrator_account_id", 222222222222),
    ("removal", "drop"),
    ("settings_deployed_in", "everywhere"),
    ("surprise", 1),
    ("alternate_contacts.removal", "forget"),
    ("alternate_contacts.failure_tolerance", -1),
    ("alternate_contacts.colour", "blue"),
    ("alternate_contacts.contacts.SECURITY.EmailAddress", "not-an-address"),
    ("alternate_contacts.contacts.SECURITY.PhoneNumber", "call me"),
    ("alternate_contacts.contacts.SECURITY.Name", "x" * 65),
    ("alternate_contacts.contacts.SECURITY.Pager", "123"),
    ("alternate_contacts.contacts.LEGAL", CONTACT),
    ("alternate_contacts.contacts.BILLING", {"delete": False}),
    ("alternate_contacts.targets.exclude_organizational_units", ["engineering"]),
    ("alternate_contacts.targets.exclude_accounts", ["1234"]),
    ("alternate_contacts.targets.everyone", True),
    ("alternate_contacts.overrides[0].account", "3333"),
    ("alternate_contacts.overrides[0].team", "x"),
    ("automation.enabled", "yes"),
    ("automation.drift_schedule", "daily"),
    ("automation.notification_email", "ops at example.com"),
    ("automation.slack", "#ops"),
    ("pipeline.name", "my pipeline!"),
    ("pipeline.manual_approval", "no"),
    ("pipeline.approval_topic_arn", "topic"),
    ("pipeline.codecommit.repository", ""),
    ("pipeline.codecommit.tag", "v1"),
]


@pytest.mark.parametrize(("path", "value"), BAD, ids=[path for path, _ in BAD])
def test_the_schema_refuses_what_the_synth_refuses(path: str, value: Any) -> None:
    data = changed(path, value)
    with pytest.raises(ConfigError) as refused:
        BootstrapConfig.from_mapping(data)
    field = path.replace("[0]", "").split(".")
    named = [problem for problem in refused.value.problems if field[-1] in problem.split(":")[0]]
    assert named, refused.value.problems
    errors = list(VALIDATOR.iter_errors(data))
    assert errors, f"the schema accepts {path} = {value!r}, which the synth refuses"


def test_every_pattern_is_one_every_editor_reads() -> None:
    """No lookarounds or Python-only named groups, which taplo's regex engine would not compile."""
    patterns: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            patterns.extend(value for key, value in node.items() if key == "pattern")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(SCHEMA)
    assert len(patterns) > 15
    assert [pattern for pattern in patterns if "(?" in pattern] == []
