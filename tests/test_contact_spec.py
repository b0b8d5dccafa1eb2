"""The alternate-contacts section: every field checked against the service model at synth."""

from __future__ import annotations

import json
from typing import Any

import pytest

from org_bootstrap.settings.alternate_contacts.spec import DELETE, ContactSpec
from org_bootstrap.validation import InvalidInputError, mask
from stacks.config import BootstrapConfig, ConfigError

GOOD = {"Name": "Security Team", "Title": "SOC", "EmailAddress": "soc@example.com", "PhoneNumber": "+1 (206) 555-0100"}


def problems(section: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        BootstrapConfig.from_mapping(
            {"management_account_id": "111111111111", "region": "us-east-1", "alternate_contacts": section}
        )
    return caught.value.problems


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("Name", "", "Name: is 0 characters long (must be 1 to 64)"),
        ("Name", "x" * 65, "Name: is 65 characters long (must be 1 to 64)"),
        ("Title", "t" * 51, "Title: is 51 characters long (must be 1 to 50)"),
        ("EmailAddress", "soc-at-example.com", "EmailAddress: 'soc-at-example.com' is not valid (an e-mail address"),
        ("EmailAddress", "a@" + "b" * 250 + ".com", "EmailAddress: is 256 characters long (must be 1 to 254)"),
        (
            "PhoneNumber",
            "555-CALL-NOW",
            "PhoneNumber: '555-CALL-NOW' is not valid (digits, spaces, parentheses, + and - only)",
        ),
        ("PhoneNumber", "1" * 26, "PhoneNumber: is 26 characters long (must be 1 to 25)"),
        ("PhoneNumber", 5550100, "PhoneNumber: must be a string"),
    ],
)
def test_field_rules_name_field_value_problem_and_rule(field: str, value: object, expected: str) -> None:
    found = problems({"contacts": {"SECURITY": {**GOOD, field: value}}})
    assert len(found) == 1, found
    assert found[0].startswith(f"alternate_contacts.contacts.SECURITY.{expected}"), found


def test_synth_shows_the_bad_value_and_the_handler_masks_it() -> None:
    """At synth the value is the user's own file; in a handler's log it is someone's contact."""
    bad = {"contacts": {"BILLING": {**GOOD, "EmailAddress": "jane.doe@@example.com", "PhoneNumber": "555-CALL-JANE"}}}
    shown = " ".join(problems(bad))
    assert "'jane.doe@@example.com'" in shown and "'555-CALL-JANE'" in shown
    with pytest.raises(InvalidInputError) as caught:
        ContactSpec.from_json(json.dumps(bad))
    logged = str(caught.value)
    assert "Spec.contacts.BILLING.EmailAddress: 'j***@@example.com' is not valid" in logged
    assert "jane.doe" not in logged and "CALL-JANE" not in logged
    assert mask("EmailAddress", "jane.doe@example.com") == "j***@example.com"
    assert mask("PhoneNumber", "+1 206 555 0199") == "***99"


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"contacts": {"ACCOUNTING": GOOD}}, "alternate_contacts.contacts.ACCOUNTING: unknown contact type"),
        ({"contacts": {"BILLING": {**GOOD, "Email": "x"}}}, "alternate_contacts.contacts.BILLING.Email: unknown field"),
        ({"contacts": {"BILLING": {"delete": False}}}, "alternate_contacts.contacts.BILLING.delete: must be true"),
        ({"contacts": {}}, "alternate_contacts.contacts: set at least one of"),
        ({"contacts": {"BILLING": GOOD}, "removal": "purge"}, "alternate_contacts.removal: 'purge' is not one of"),
        ({"contacts": {"BILLING": GOOD}, "failure_tolerance": -1}, "alternate_contacts.failure_tolerance: -1"),
        ({"contacts": {"BILLING": GOOD}, "targets": {"accounts": ["1"]}}, "alternate_contacts.targets.accounts[0]:"),
        (
            {"contacts": {"BILLING": GOOD}, "targets": {"organizational_units": ["ou-bad"]}},
            "alternate_contacts.targets.organizational_units[0]: 'ou-bad' is not an organizational unit",
        ),
        (
            {
                "contacts": {"BILLING": GOOD},
                "targets": {"accounts": ["111111111111"], "organizational_units": ["r-ab12"]},
            },
            "alternate_contacts.targets: give accounts or organizational_units, not both",
        ),
        ({"contacts": {"BILLING": GOOD}, "target": {}}, "alternate_contacts.target: unknown key"),
        (
            {"contacts": {"BILLING": GOOD}, "overrides": [{"contacts": {"BILLING": GOOD}}]},
            "alternate_contacts.overrides[0]: give exactly one of organizational_unit, tags or account",
        ),
        (
            {
                "contacts": {"BILLING": GOOD},
                "overrides": [
                    {"account": "222222222222", "contacts": {"BILLING": GOOD}},
                    {"account": "222222222222", "contacts": {"SECURITY": GOOD}},
                ],
            },
            "alternate_contacts.overrides[1]: a second override for 222222222222",
        ),
        (
            {"contacts": {"BILLING": GOOD}, "overrides": [{"account": "222222222222", "contacts": {"BILLING": {}}}]},
            "alternate_contacts.overrides[0].contacts.BILLING.Name: is required",
        ),
    ],
)
def test_structure_errors_name_the_field(section: dict[str, Any], expected: str) -> None:
    found = problems(section)
    assert any(p.startswith(expected) for p in found), found


def test_round_trip_through_the_custom_resource_property() -> None:
    spec = ContactSpec.parse(
        {
            "contacts": {"BILLING": GOOD, "OPERATIONS": {"delete": True}},
            "targets": {"organizational_units": ["ou-ab12-abcdefgh"], "exclude_accounts": ["333333333333"]},
            "overrides": [{"organizational_unit": "ou-ab12-abcdefgh", "contacts": {"SECURITY": GOOD}}],
            "removal": "restore",
            "failure_tolerance": 3,
        }
    )
    assert ContactSpec.from_json(spec.to_json()) == spec
    assert spec.contacts["OPERATIONS"] == DELETE


def test_handler_rejects_a_spec_that_is_not_json() -> None:
    with pytest.raises(InvalidInputError, match="Spec: is not valid JSON"):
        ContactSpec.from_json("{not json")


def test_targeting_and_precedence() -> None:
    spec = ContactSpec.parse(
        {
            "contacts": {"BILLING": GOOD},
            "targets": {
                "organizational_units": ["ou-ab12-aaaaaaaa"],
                "exclude_organizational_units": ["ou-ab12-cccccccc"],
            },
            "overrides": [
                {"organizational_unit": "ou-ab12-aaaaaaaa", "contacts": {"BILLING": {**GOOD, "Name": "OU"}}},
                {"organizational_unit": "ou-ab12-bbbbbbbb", "contacts": {"BILLING": {**GOOD, "Name": "Nested"}}},
                {"account": "444444444444", "contacts": {"BILLING": {**GOOD, "Name": "Account"}}},
            ],
        }
    )
    nested = ("r-ab12", "ou-ab12-aaaaaaaa", "ou-ab12-bbbbbbbb")
    assert spec.targets("333333333333", nested)
    assert not spec.targets("333333333333", ("r-ab12",))
    assert not spec.targets("333333333333", (*nested, "ou-ab12-cccccccc"))
    assert spec.desired("333333333333", nested)["BILLING"]["Name"] == "Nested"  # type: ignore[index]
    assert spec.desired("333333333333", nested[:2])["BILLING"]["Name"] == "OU"  # type: ignore[index]
    assert spec.desired("444444444444", nested)["BILLING"]["Name"] == "Account"  # type: ignore[index]
