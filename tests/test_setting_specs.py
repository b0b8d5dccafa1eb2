"""Config sections for every account setting: one targeting vocabulary, each setting's own keys,
all checked at synth with problems that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec
from org_bootstrap.settings.primary_contact.spec import PRIMARY_CONTACT, PrimaryContactSpec
from org_bootstrap.settings.regions.spec import DISABLED, ENABLED, RegionSpec
from stacks.config import BootstrapConfig, ConfigError
from tests.conftest import US_PRIMARY_CONTACT

CONTACT = {"Name": "Ops", "Title": "Ops", "EmailAddress": "ops@example.com", "PhoneNumber": "+1 206 555 0100"}
PRIMARY = US_PRIMARY_CONTACT
# The smallest valid section of each setting.
SECTIONS: dict[str, dict[str, Any]] = {
    "alternate_contacts": {"contacts": {"OPERATIONS": CONTACT}},
    "primary_contact": {"contact": PRIMARY},
    "regions": {"enable": ["ap-east-1"]},
}
SPECS: dict[str, type[SettingSpec[Any]]] = {
    "alternate_contacts": ContactSpec,
    "primary_contact": PrimaryContactSpec,
    "regions": RegionSpec,
}
OU, NESTED = "ou-ab12-aaaaaaaa", "ou-ab12-bbbbbbbb"


def config(**sections: Any) -> BootstrapConfig:
    return BootstrapConfig.from_mapping({"management_account_id": "111111111111", "region": "us-east-1", **sections})


def problems(region: Any = "us-east-1", **sections: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        BootstrapConfig.from_mapping({"management_account_id": "111111111111", "region": region, **sections})
    return caught.value.problems


@pytest.mark.parametrize("section", sorted(SECTIONS))
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"targets": {"accounts": ["1234"]}}, "{s}.targets.accounts[0]: '1234' is not an AWS account ID"),
        ({"targets": {"organizational_units": ["ou-x"]}}, "{s}.targets.organizational_units[0]: 'ou-x' is not"),
        (
            {"targets": {"accounts": ["333333333333"], "organizational_units": [OU]}},
            "{s}.targets: give accounts or organizational_units, not both",
        ),
        ({"targets": {"include": []}}, "{s}.targets.include: unknown key"),
        ({"targets": []}, "{s}.targets: must be a table"),
        ({"overrides": [{}]}, "{s}.overrides[0]: give exactly one of organizational_unit, tags or account"),
        ({"overrides": {}}, "{s}.overrides: must be a list of tables"),
        ({"failure_tolerance": -1}, "{s}.failure_tolerance: -1 must be a whole number of accounts"),
        ({"removal": "destroy"}, "{s}.removal: 'destroy' is not one of retain"),
        ({"scope": "everywhere"}, "{s}.scope: 'everywhere' is not one of organization"),
        ({"colour": "blue"}, "{s}.colour: unknown key"),
    ],
)
def test_every_setting_shares_the_targeting_vocabulary_and_its_errors(
    section: str, change: dict[str, Any], expected: str
) -> None:
    found = problems(**{section: {**SECTIONS[section], **change}})
    assert len(found) == 1 and found[0].startswith(expected.format(s=section)), found


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_targets_overrides_and_round_trip_mean_the_same_for_every_setting(section: str) -> None:
    spec_type = SPECS[section]
    own = SECTIONS[section]
    spec = spec_type.parse(
        {
            **own,
            "targets": {"organizational_units": [OU], "exclude_accounts": ["555555555555"]},
            "overrides": [{"account": "444444444444", **own}],
            "removal": "restore",
            "failure_tolerance": 2,
        }
    )
    path = ("r-ab12", OU, NESTED)
    assert spec.targets("333333333333", path)
    assert not spec.targets("333333333333", ("r-ab12",))
    assert not spec.targets("555555555555", path)
    assert spec.scoped("member_accounts").targets("111111111111", path, "111111111111") is False
    assert spec.desired("333333333333", path) == dict(spec.values)
    assert spec_type.from_json(spec.to_json()) == spec
    empty = spec_type.parse({**own, "overrides": [{"account": "444444444444"}]})
    assert empty.desired("444444444444", path) == dict(spec.values)  # an override may set nothing of its own
    with pytest.raises(ConfigError) as caught:
        config(**{section: {**own, "overrides": [{"account": "444444444444", **own}] * 2}})
    assert caught.value.problems == [
        f"{section}.overrides[1]: a second override for 444444444444 (give one per account, unit or set of tags)"
    ]


def test_removal_modes_are_each_settings_own() -> None:
    assert ContactSpec.REMOVAL_MODES == ("retain", "delete", "restore")
    # The API cannot delete a primary contact, and disabling a Region is never what removal does.
    assert PrimaryContactSpec.REMOVAL_MODES == RegionSpec.REMOVAL_MODES == ("retain", "restore")
    assert problems(primary_contact={**SECTIONS["primary_contact"], "removal": "delete"}) == [
        "primary_contact.removal: 'delete' is not one of retain, restore"
    ]
    assert problems(regions={**SECTIONS["regions"], "removal": "delete"}) == [
        "regions.removal: 'delete' is not one of retain, restore"
    ]


def test_the_primary_contact_section_is_typed_and_the_most_specific_override_wins() -> None:
    company = {**PRIMARY, "CompanyName": "Example Corp"}
    payments = {**PRIMARY, "FullName": "Payments Cloud Team"}
    parsed = config(
        primary_contact={
            "contact": company,
            "overrides": [{"organizational_unit": OU, "contact": payments}],
            "removal": "restore",
        }
    ).settings["primary_contact"]
    assert isinstance(parsed, PrimaryContactSpec)
    assert parsed.contact == company and parsed.removal == "restore"
    assert parsed.desired("333333333333", ("r-ab12", OU))[PRIMARY_CONTACT]["FullName"] == "Payments Cloud Team"
    assert parsed.desired("333333333333", ("r-ab12",))[PRIMARY_CONTACT] == company


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"contact": {**PRIMARY, "PostalCode": "9" * 21}}, ["primary_contact.contact.PostalCode: is 21 characters"]),
        (
            {"contact": {**PRIMARY, "PhoneNumber": "206 555 0100"}},
            ["primary_contact.contact.PhoneNumber: '206 555 0100' is not valid"],  # the user's own file: shown
        ),
        ({"contact": {k: v for k, v in PRIMARY.items() if k != "City"}}, ["primary_contact.contact.City: is required"]),
        ({"contact": "Example Corp"}, ["primary_contact.contact: must be a table with FullName"]),
        (
            {"overrides": [{"account": "444444444444", "contact": {**PRIMARY, "CountryCode": "USA"}}]},
            [
                "primary_contact.overrides[0].contact.CountryCode: is 3 characters long (must be 2 to 2)",
                "primary_contact.contact: set the primary contact",  # nothing valid is left to set
            ],
        ),
        ({}, ["primary_contact.contact: set the primary contact (FullName, AddressLine1, City, PostalCode"]),
    ],
)
def test_primary_contact_problems_name_the_field(section: dict[str, Any], expected: list[str]) -> None:
    found = problems(primary_contact=section)
    assert len(found) == len(expected) and all(f.startswith(e) for f, e in zip(found, expected, strict=True)), found


def test_the_regions_section_is_typed_and_an_override_can_disable_a_region_per_account() -> None:
    parsed = config(
        regions={
            "enable": ["ap-east-1", "me-central-1"],
            "overrides": [{"account": "444444444444", "disable": ["me-central-1"], "enable": ["il-central-1"]}],
        }
    ).settings["regions"]
    assert isinstance(parsed, RegionSpec)
    assert parsed.desired("333333333333", ("r-ab12",)) == {"ap-east-1": ENABLED, "me-central-1": ENABLED}
    assert parsed.desired("444444444444", ("r-ab12",)) == {
        "ap-east-1": ENABLED,
        "me-central-1": DISABLED,
        "il-central-1": ENABLED,
    }
    assert parsed.named() == {"ap-east-1", "me-central-1", "il-central-1"}
    assert parsed.disabled() == {"me-central-1"}  # only what the config lists as disabled


@pytest.mark.parametrize(
    ("section", "region", "expected"),
    [
        ({"enable": ["us-east-1"]}, "us-east-1", "regions.enable[0]: 'us-east-1' is enabled by default in every"),
        ({"disable": ["eu-west-1"]}, "us-east-1", "regions.disable[0]: 'eu-west-1' is enabled by default"),
        ({"enable": ["xx-nowhere-9"]}, "us-east-1", "regions.enable[0]: 'xx-nowhere-9' is not a Region of the aws "),
        ({"enable": ["ap-east-1"]}, "cn-north-1", "regions.enable[0]: 'ap-east-1' is not a Region of the aws-cn"),
        ({"enable": ["ap-east-1"], "disable": ["ap-east-1"]}, "us-east-1", "regions.disable[0]: 'ap-east-1' is both"),
        ({"enable": ["ap-east-1", "ap-east-1"]}, "us-east-1", "regions.enable[1]: 'ap-east-1' is given twice"),
        ({"enable": "ap-east-1"}, "us-east-1", "regions.enable: must be a list of opt-in Region names"),
        (
            {"enable": ["ap-east-1"], "overrides": [{"organizational_unit": OU, "disable": ["us-west-2"]}]},
            "us-east-1",
            "regions.overrides[0].disable[0]: 'us-west-2' is enabled by default",
        ),
        ({}, "us-east-1", "regions.enable: list at least one opt-in Region"),
    ],
)
def test_region_problems_name_the_field_and_use_the_deployments_partition(
    section: dict[str, Any], region: str, expected: str
) -> None:
    found = problems(region, regions=section)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_automation_covers_every_setting() -> None:
    found = config(**SECTIONS, automation={"enabled": True})
    assert found.automation_enabled and set(found.settings) == set(SECTIONS)
    # one setting alone is enough for the automation to keep correct
    assert config(regions=SECTIONS["regions"], automation={"enabled": True}).automation_enabled
