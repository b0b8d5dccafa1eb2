"""A corpus of bad configs and organization states, each run the way a deploy meets it.

Every case goes through the same steps as a deploy of the example organization: the config is
validated (synth), then the preflight custom resource checks it against the organization (every
other custom resource waits for it), and, for a change of delegated administrator, the
registration handler checks the new account before touching the current one. Each case asserts
that the message names the config field and the rule, and that the organization (trusted access,
delegated administrators, every account's status and contacts) is unchanged afterwards.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_deploy import cli
from local_deploy.organization_file import OrganizationFileError, load_organization_file
from org_bootstrap.handlers import delegated_administrator, preflight
from org_bootstrap.validation import InvalidInputError
from simulation.organization import Organization, strict_aws
from stacks.config import BootstrapConfig, ConfigError, load_config, preflight_ids
from tests.conftest import ROOT, cfn_event

SEED = ROOT / "config" / "example-organization.toml"
ORGANIZATION = "organization o-exampleorg1"
NOT_AN_ACCOUNT = f"is not an account of {ORGANIZATION}"
NOT_AN_OU = f"is not an organizational unit or root of {ORGANIZATION}"
PRINCIPAL = "account.amazonaws.com"
# Digits that Python's \d matches and AWS's does not: full-width and Arabic-Indic.
FULL_WIDTH_ID = "\uff11" * 12
FULL_WIDTH_NINES = "\uff19" * 12
ARABIC_INDIC_ID = "\u0664" * 12
GOOD = {"Name": "Ops", "Title": "On call", "EmailAddress": "ops@example.com", "PhoneNumber": "+1 206 555 0100"}


def example() -> dict[str, Any]:
    data = tomllib.loads((ROOT / "config" / "example.toml").read_text())
    data.pop("automation", None)
    data.pop("pipeline", None)
    return data


def contacts(**section: Any) -> Callable[[dict[str, Any]], None]:
    """A change to the example's [alternate_contacts] section (``targets`` replaced whole)."""

    def change(data: dict[str, Any]) -> None:
        data["alternate_contacts"].update(json.loads(json.dumps(section)))

    return change


def top(**values: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        for key, value in values.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value

    return change


def replace(data: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        config.clear()
        config.update(data)

    return change


def primary_contact_without(field: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        del data["primary_contact"]["contact"][field]

    return change


def status(account_id: str, state: str) -> Callable[[Organization], None]:
    return lambda org: org.set_status(account_id, state)


@dataclass(frozen=True)
class Case:
    name: str
    expected: tuple[str, ...]  # each appears in the message: the field, then the rule
    config: Callable[[dict[str, Any]], None] = lambda data: None
    organization: Callable[[Organization], None] = lambda org: None
    new_delegated_administrator: str | None = None  # a change of the registered 222222222222 to this
    problems: int = 1


CASES = [
    # -- caught at synth -------------------------------------------------------------------------
    Case(
        "empty config",
        ("management_account_id: is required", "region: is required"),
        replace({}),
        problems=2,
    ),
    Case(
        "unquoted management account ID",
        ('management_account_id: 111111111111 must be a quoted string ("111111111111")',),
        top(management_account_id=111111111111),
    ),
    Case(
        "unquoted delegated administrator",
        ("delegated_administrator_account_id: 222222222222 must be a quoted string",),
        top(delegated_administrator_account_id=222222222222),
    ),
    Case(
        "management account ID too short",
        ("management_account_id: '1234'", "exactly 12 digits"),
        top(management_account_id="1234"),
    ),
    Case("Region missing", ("region: is required",), top(region=None)),
    Case(
        "Region not in any partition",
        ("region: 'us-fake-9' is not a Region of any AWS partition",),
        top(region="us-fake-9"),
    ),
    Case("Region not a Region name", ("region: 'mars' is not an AWS Region name",), top(region="mars")),
    Case(
        "delegated administrator is the management account",
        ("delegated_administrator_account_id: is the management account", "cannot be registered"),
        top(delegated_administrator_account_id="111111111111"),
    ),
    Case("removal unknown", ("removal: 'destroy' is not one of retain, undo",), top(removal="destroy")),
    Case("misspelt key", ("delegated_admin: unknown key (allowed:",), top(delegated_admin="222222222222")),
    Case(
        "bad e-mail address, shown as written",
        ("alternate_contacts.contacts.SECURITY.EmailAddress: 'soc@@example.com' is not valid", "an e-mail address"),
        contacts(contacts={"SECURITY": {**GOOD, "EmailAddress": "soc@@example.com"}}),
    ),
    Case(
        "bad phone number in an override, shown as written",
        ("alternate_contacts.overrides[0].contacts.BILLING.PhoneNumber: '555-CALL-NOW' is not valid", "digits, spaces"),
        contacts(
            overrides=[
                {
                    "organizational_unit": "ou-ex01-prodapps",
                    "contacts": {"BILLING": {**GOOD, "PhoneNumber": "555-CALL-NOW"}},
                }
            ]
        ),
    ),
    Case(
        "contact name too long",
        ("alternate_contacts.contacts.BILLING.Name: is 65 characters long (must be 1 to 64)",),
        contacts(contacts={"BILLING": {**GOOD, "Name": "x" * 65}}),
    ),
    Case(
        "unknown contact type",
        ("alternate_contacts.contacts.ACCOUNTING: unknown contact type (allowed: BILLING, OPERATIONS, SECURITY)",),
        contacts(contacts={"ACCOUNTING": GOOD}),
    ),
    Case(
        "unquoted excluded account",
        ("alternate_contacts.targets.exclude_accounts[0]: 555555555555 must be a quoted string",),
        contacts(targets={"exclude_accounts": [555555555555]}),
    ),
    Case(
        "OU given by name",
        ("alternate_contacts.targets.organizational_units[0]: 'Workloads' is not an organizational unit or root ID",),
        contacts(targets={"organizational_units": ["Workloads"]}),
    ),
    Case(
        "accounts and OUs targeted together",
        ("alternate_contacts.targets: give accounts or organizational_units, not both",),
        contacts(targets={"accounts": ["444444444444"], "organizational_units": ["ou-ex01-workload"]}),
    ),
    Case(
        "override for an account and an OU at once",
        ("alternate_contacts.overrides[0]: give exactly one of organizational_unit or account",),
        contacts(overrides=[{"account": "444444444444", "organizational_unit": "ou-ex01-workload", "contacts": {}}]),
    ),
    Case(
        "negative failure tolerance",
        ("alternate_contacts.failure_tolerance: -1 must be a whole number of accounts",),
        contacts(failure_tolerance=-1),
    ),
    Case(
        "contacts removal unknown",
        ("alternate_contacts.removal: 'purge' is not one of retain, delete, restore",),
        contacts(removal="purge"),
    ),
    Case(
        "automation outside us-east-1",
        ("automation.enabled:", "arrive only in us-east-1, but region is 'eu-west-1'"),
        # the example's [primary_contact] and [regions] left out: automation does not cover them yet
        top(region="eu-west-1", automation={"enabled": True}, primary_contact=None, regions=None),
    ),
    Case(
        "drift check too often",
        ("automation.drift_schedule: 'rate(5 minutes)' is more often than rate(1 hour)",),
        top(automation={"drift_schedule": "rate(5 minutes)"}),
    ),
    Case(
        "delegated-administrator mode without one",
        ("settings_deployed_in: 'delegated_administrator' needs delegated_administrator_account_id",),
        top(settings_deployed_in="delegated_administrator", delegated_administrator_account_id=None),
    ),
    Case(
        "primary contact in the US without a state",
        (
            "primary_contact.contact.StateOrRegion: is required when CountryCode is 'US' "
            "(AWS requires it for US, CA, GB, DE, JP, IN, BR)",
        ),
        primary_contact_without("StateOrRegion"),
    ),
    Case(
        "e-mail address with a non-ASCII letter (AWS's pattern is ASCII)",
        ("alternate_contacts.contacts.SECURITY.EmailAddress: 'jörg@example.com' is not valid", "an e-mail address"),
        contacts(contacts={"SECURITY": {**GOOD, "EmailAddress": "jörg@example.com"}}),
    ),
    Case(
        "notification e-mail address with a non-ASCII letter",
        ("automation.notification_email: 'jörg@example.com' is not an e-mail address",),
        top(automation={"notification_email": "jörg@example.com"}),
    ),
    Case(
        "phone number with a non-ASCII space",
        ("alternate_contacts.contacts.BILLING.PhoneNumber: '+1\\u2003206 555 0100' is not valid", "digits, spaces"),
        contacts(contacts={"BILLING": {**GOOD, "PhoneNumber": "+1\u2003206 555 0100"}}),
    ),
    Case(
        "management account ID in full-width digits",
        (f"management_account_id: {FULL_WIDTH_ID!r} is not an AWS account ID", "exactly 12 digits"),
        top(management_account_id=FULL_WIDTH_ID),
    ),
    Case(
        "override account ID in Arabic-Indic digits",
        (f"alternate_contacts.overrides[0].account: {ARABIC_INDIC_ID!r} is not an AWS account ID",),
        contacts(overrides=[{"account": ARABIC_INDIC_ID, "contacts": {"BILLING": GOOD}}]),
    ),
    Case(
        "drift schedule in full-width digits",
        ("automation.drift_schedule: 'rate(\uff11 day)' is not a rate expression",),
        top(automation={"drift_schedule": "rate(\uff11 day)"}),
    ),
    Case(
        "account ID with a newline after its 12 digits",
        ("delegated_administrator_account_id: '222222222222\\n' is not an AWS account ID",),
        top(delegated_administrator_account_id="222222222222\n"),
    ),
    # -- caught by the preflight, against the organization ----------------------------------------
    Case(
        "excluded account that does not exist (a typo)",
        ("alternate_contacts.targets.exclude_accounts[0]: 555555555550", NOT_AN_ACCOUNT),
        contacts(targets={"exclude_accounts": ["555555555550"]}),
    ),
    Case(
        "excluded OU that does not exist",
        (
            "alternate_contacts.targets.exclude_organizational_units[0]: ou-ex01-sandbox1",
            NOT_AN_OU,
        ),
        contacts(targets={"exclude_organizational_units": ["ou-ex01-sandbox1"]}),
    ),
    Case(
        "targeted account that does not exist",
        ("alternate_contacts.targets.accounts[1]: 999999999990", NOT_AN_ACCOUNT),
        contacts(targets={"accounts": ["444444444444", "999999999990"]}),
    ),
    Case(
        "targeted OU that does not exist",
        (
            "alternate_contacts.targets.organizational_units[0]: ou-ex01-workloa1",
            NOT_AN_OU,
        ),
        contacts(targets={"organizational_units": ["ou-ex01-workloa1"]}),
    ),
    Case(
        "targeted root of another organization",
        (
            "alternate_contacts.targets.organizational_units[0]: r-zz99",
            NOT_AN_OU,
        ),
        contacts(targets={"organizational_units": ["r-zz99"]}),
    ),
    Case(
        "override for an account that does not exist",
        ("alternate_contacts.overrides[0].account: 444444444440", NOT_AN_ACCOUNT),
        contacts(overrides=[{"account": "444444444440", "contacts": {"BILLING": GOOD}}]),
    ),
    Case(
        "override for an OU that does not exist",
        (
            "alternate_contacts.overrides[0].organizational_unit: ou-ex01-prodapp5",
            NOT_AN_OU,
        ),
        contacts(overrides=[{"organizational_unit": "ou-ex01-prodapp5", "contacts": {"BILLING": GOOD}}]),
    ),
    Case(
        "delegated administrator outside the organization",
        (
            "delegated_administrator_account_id: 999999999990",
            NOT_AN_ACCOUNT,
            "must be a member account",
        ),
        top(delegated_administrator_account_id="999999999990"),
    ),
    Case(
        "delegated administrator suspended",
        ("delegated_administrator_account_id: account 222222222222 is SUSPENDED", "must be ACTIVE"),
        organization=status("222222222222", "SUSPENDED"),
    ),
    Case(
        "delegated administrator pending closure",
        ("delegated_administrator_account_id: account 222222222222 is PENDING_CLOSURE", "must be ACTIVE"),
        organization=status("222222222222", "PENDING_CLOSURE"),
    ),
    Case(
        "management account of another organization",
        (
            "management_account_id: 999999999999 is not the management account of",
            "its management account is 111111111111",
        ),
        top(management_account_id="999999999999"),
    ),
    Case(
        "two typos at once, both reported",
        (
            "exclude_accounts[0]: 555555555550 is not an account",
            "exclude_organizational_units[0]: ou-ex01-sandbox1 is not",
        ),
        contacts(targets={"exclude_accounts": ["555555555550"], "exclude_organizational_units": ["ou-ex01-sandbox1"]}),
        problems=2,
    ),
    # -- caught by the registration handler, changing the delegated administrator ------------------
    Case(
        "new delegated administrator outside the organization",
        ("AccountId: 999999999990", NOT_AN_ACCOUNT, "must be a member account"),
        new_delegated_administrator="999999999990",
    ),
    Case(
        "new delegated administrator suspended",
        ("AccountId: account 131313131313 is SUSPENDED", "must be ACTIVE"),
        new_delegated_administrator="131313131313",
    ),
    Case(
        "new delegated administrator is the management account",
        ("AccountId: 111111111111 is the management account", "cannot be a delegated administrator"),
        new_delegated_administrator="111111111111",
    ),
]


@pytest.fixture
def example_org() -> Iterator[Organization]:
    with strict_aws():
        yield Organization.from_mapping(load_organization_file(SEED))


def da_props(account_id: str) -> dict[str, str]:
    return {"ServicePrincipal": PRINCIPAL, "AccountId": account_id, "Removal": "retain"}


def register_first() -> str:
    """The registration a change of delegated administrator starts from: its physical ID."""
    return str(delegated_administrator.on_event(cfn_event("Create", da_props("222222222222")))["PhysicalResourceId"])


def attempt(case: Case, physical_id: str | None = None) -> list[str]:
    """What a deploy of the case meets first: synth, then the preflight; or the registration's change."""
    if case.new_delegated_administrator is not None:
        assert physical_id is not None
        event = cfn_event(
            "Update",
            da_props(case.new_delegated_administrator),
            physical_id=physical_id,
            old_properties=da_props("222222222222"),
        )
        return _problems(lambda: delegated_administrator.on_event(event))
    data = example()
    case.config(data)
    try:
        config = BootstrapConfig.from_mapping(data)
    except ConfigError as error:
        return error.problems
    return _problems(lambda: preflight.on_event(cfn_event("Create", preflight_ids(config).to_properties())))


def _problems(run: Callable[[], Any]) -> list[str]:
    try:
        run()
    except InvalidInputError as error:
        return error.problems
    raise AssertionError("the case was accepted")


def test_the_corpus_is_large_enough_and_each_case_distinct() -> None:
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_names_field_and_rule_and_changes_nothing(case: Case, example_org: Organization) -> None:
    case.organization(example_org)
    physical_id = register_first() if case.new_delegated_administrator is not None else None
    before = example_org.to_mapping()
    problems = attempt(case, physical_id)
    assert len(problems) == case.problems, problems
    message = "\n".join(problems)
    for expected in case.expected:
        assert expected in message, (expected, problems)
    assert example_org.to_mapping() == before


# -- the files themselves: the app's config (cdk synth -c config=..., --config) and the organization file

CONFIG_TEXT = (ROOT / "config" / "example.toml").read_text(encoding="utf-8")
ORGANIZATION_TEXT = SEED.read_text(encoding="utf-8")
EXTRA_ACCOUNT = '\n[[accounts]]\nid = "{id}"\nname = "Extra"\ncontacts.BILLING = {contact}\n'


def _contact_toml(email: str) -> str:
    return "{ " + ", ".join(f'{key} = "{value}"' for key, value in {**GOOD, "EmailAddress": email}.items()) + " }"


@dataclass(frozen=True)
class FileCase:
    name: str
    kind: str  # "config" or "organization"
    make: Callable[[Path], Path]  # writes the case under the folder, returns the path given to the loader
    expected: tuple[str, ...]  # each appears in the message, which also names the file


def _written(content: bytes, name: str = "case.toml") -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content)
        return path

    return make


def _directory(folder: Path) -> Path:
    (folder / "configs.toml").mkdir()
    return folder / "configs.toml"


def _latin_1(text: str) -> bytes:
    """The file as a Windows editor's "Western" encoding saves it, with an accented name in it."""
    return (text + "\n# Owner: Jörg Müller\n").encode("latin-1")


def _config_replacing(old: str, new: str) -> bytes:
    assert old in CONFIG_TEXT
    return CONFIG_TEXT.replace(old, new, 1).encode("utf-8")


FILE_CASES = [
    FileCase("config is a directory", "config", _directory, ("is a directory, not a TOML file",)),
    FileCase(
        "config saved as Latin-1",
        "config",
        _written(_latin_1(CONFIG_TEXT)),
        ("is not UTF-8 text: byte 0xf6 on line", "save the file as UTF-8"),
    ),
    FileCase(
        "config with a non-ASCII e-mail address",
        "config",
        _written(_config_replacing('"aws-ops@example.com"', '"jörg@example.com"')),
        ("EmailAddress: 'jörg@example.com' is not valid",),
    ),
    FileCase(
        "config with a full-width management account ID",
        "config",
        _written(
            _config_replacing('management_account_id = "111111111111"', f'management_account_id = "{FULL_WIDTH_ID}"')
        ),
        (f"management_account_id: {FULL_WIDTH_ID!r} is not an AWS account ID",),
    ),
    FileCase("organization file is a directory", "organization", _directory, ("is a directory, not a TOML file",)),
    FileCase(
        "organization file saved as Latin-1",
        "organization",
        _written(_latin_1(ORGANIZATION_TEXT)),
        ("is not UTF-8 text: byte 0xf6 on line", "save the file as UTF-8"),
    ),
    FileCase(
        "organization file with a full-width account ID",
        "organization",
        _written(
            (
                ORGANIZATION_TEXT + EXTRA_ACCOUNT.format(id=FULL_WIDTH_NINES, contact=_contact_toml("x@example.com"))
            ).encode()
        ),
        (f".id: {FULL_WIDTH_NINES!r} is not an AWS account ID",),
    ),
    FileCase(
        "organization file with a non-ASCII e-mail address",
        "organization",
        _written(
            (
                ORGANIZATION_TEXT + EXTRA_ACCOUNT.format(id="989898989898", contact=_contact_toml("jörg@example.com"))
            ).encode()
        ),
        (".contacts.BILLING.EmailAddress: 'j***@example.com' is not valid",),
    ),
]


def _load(kind: str, path: Path) -> None:
    if kind == "config":
        load_config(path)
    else:
        load_organization_file(path)


@pytest.mark.parametrize("case", FILE_CASES, ids=[case.name for case in FILE_CASES])
def test_a_bad_file_is_named_with_its_problem(case: FileCase, tmp_path: Path) -> None:
    path = case.make(tmp_path)
    with pytest.raises((ConfigError, OrganizationFileError)) as raised:
        _load(case.kind, path)
    message = str(raised.value)
    assert str(path) in message
    for expected in case.expected:
        assert expected in message, (expected, message)


@pytest.mark.parametrize("kind", ["config", "organization"])
def test_a_byte_order_mark_is_accepted(kind: str, tmp_path: Path) -> None:
    """Windows editors write a UTF-8 byte-order mark first: the file reads as without it."""
    text = CONFIG_TEXT if kind == "config" else ORGANIZATION_TEXT
    plain, marked = tmp_path / "plain.toml", tmp_path / "marked.toml"
    plain.write_text(text, encoding="utf-8")
    marked.write_text(text, encoding="utf-8-sig")
    assert marked.read_bytes().startswith(b"\xef\xbb\xbf")
    if kind == "config":
        assert load_config(marked) == load_config(plain)
    else:
        assert load_organization_file(marked) == load_organization_file(plain)


@pytest.mark.parametrize("option", ["--config", "--organization"])
def test_the_local_deploy_names_a_directory_given_as_a_file(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No traceback: one line naming the path and why, and exit status 2 (bad input)."""
    folder = _directory(tmp_path)
    command = "destroy" if option == "--config" else "reset"  # each reads the file first
    argv = [command, "--state-dir", str(tmp_path / "state"), option, str(folder)]
    assert cli.main(argv, synthesizer=lambda path: pytest.fail("synthesized a directory")) == 2
    error = capsys.readouterr().err
    assert str(folder) in error and "is a directory, not a TOML file" in error
    assert "Traceback" not in error
