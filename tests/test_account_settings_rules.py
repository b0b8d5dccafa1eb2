"""The rules for the account settings: field limits from the service model, opt-in Regions from
botocore's partition data, quotas per partition."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import botocore
import botocore.exceptions
import botocore.session
import pytest

from org_bootstrap.aws import partitions
from org_bootstrap.engine import quotas, registry
from org_bootstrap.settings import regions
from org_bootstrap.settings.alternate_contacts.spec import CONTACT_FIELD_RULES
from org_bootstrap.settings.primary_contact.spec import (
    PRIMARY_CONTACT_FIELD_RULES,
    STATE_OR_REGION_REQUIRED_IN,
    primary_contact_change_problems,
    primary_contact_problems,
)
from org_bootstrap.settings.regions.spec import REGION_NAME_RULE
from org_bootstrap.validation import region_problem
from tests.conftest import US_PRIMARY_CONTACT

PRIMARY = {**US_PRIMARY_CONTACT, "CompanyName": "Example Corp"}


def model_shape(name: str) -> botocore.model.StructureShape:
    return botocore.session.get_session().get_service_model("account").shape_for(name)


def test_primary_contact_rules_are_the_service_models() -> None:
    shape = model_shape("ContactInformation")
    assert set(PRIMARY_CONTACT_FIELD_RULES) == set(shape.members)
    for name, rule in PRIMARY_CONTACT_FIELD_RULES.items():
        member = shape.members[name]
        assert (rule.min_length, rule.max_length) == (member.metadata["min"], member.metadata["max"]), name
        assert rule.required == (name in shape.required_members), name
    assert {"FullName", "AddressLine1", "City", "PostalCode", "CountryCode", "PhoneNumber"} == {
        name for name, rule in PRIMARY_CONTACT_FIELD_RULES.items() if rule.required
    }


def test_alternate_contact_rules_are_the_service_models() -> None:
    shape = model_shape("PutAlternateContactRequest")
    for name, rule in CONTACT_FIELD_RULES.items():
        limits = shape.members[name].metadata
        assert (rule.min_length, rule.max_length) == (limits["min"], limits["max"]), name
        assert rule.required == (name in shape.required_members), name
    assert list(CONTACT_FIELD_RULES) == ["Name", "Title", "EmailAddress", "PhoneNumber"]
    assert (REGION_NAME_RULE.min_length, REGION_NAME_RULE.max_length) == (1, 50)


def test_a_valid_primary_contact_has_no_problems_and_optional_fields_may_be_left_out() -> None:
    assert primary_contact_problems("primary_contact.contact", PRIMARY) == []
    optional = [name for name, rule in PRIMARY_CONTACT_FIELD_RULES.items() if not rule.required]
    in_france = {**PRIMARY, "CountryCode": "FR"}  # a country that does not need StateOrRegion
    assert primary_contact_problems("c", {k: v for k, v in in_france.items() if k not in optional}) == []


@pytest.mark.parametrize("field", sorted(PRIMARY_CONTACT_FIELD_RULES))
def test_every_primary_contact_field_is_checked_against_its_limits(field: str) -> None:
    rule = PRIMARY_CONTACT_FIELD_RULES[field]
    too_long = {**PRIMARY, field: "+" + "1" * rule.max_length}
    assert primary_contact_problems("c", too_long) == [
        f"c.{field}: is {rule.max_length + 1} characters long (must be {rule.min_length} to {rule.max_length})"
    ]
    empty = {**PRIMARY, field: ""}
    assert primary_contact_problems("c", empty)[0].startswith(f"c.{field}: is 0 characters long")
    missing = {k: v for k, v in {**PRIMARY, "CountryCode": "FR"}.items() if k != field}
    assert primary_contact_problems("c", missing) == ([f"c.{field}: is required"] if rule.required else [])


def test_the_countries_that_need_state_or_region_are_the_ones_the_api_reference_names() -> None:
    documentation = model_shape("ContactInformation").members["StateOrRegion"].documentation
    named = re.search(r"required in the following countries: (.*?)\.</p>", documentation)
    assert named is not None, documentation
    assert re.findall(r"<code>([A-Z]{2})</code>", named.group(1)) == list(STATE_OR_REGION_REQUIRED_IN)


@pytest.mark.parametrize("country", [*STATE_OR_REGION_REQUIRED_IN, "us"])
def test_state_or_region_is_required_in_the_countries_that_need_it(country: str) -> None:
    without = {k: v for k, v in {**PRIMARY, "CountryCode": country}.items() if k != "StateOrRegion"}
    assert primary_contact_problems("primary_contact.contact", without) == [
        f"primary_contact.contact.StateOrRegion: is required when CountryCode is {country!r} "
        "(AWS requires it for US, CA, GB, DE, JP, IN, BR)"
    ]
    assert primary_contact_problems("c", {**without, "StateOrRegion": "X"}) == []


def test_in_the_china_partition_country_code_and_company_name_cannot_change() -> None:
    current = {**PRIMARY, "CountryCode": "CN", "CompanyName": "Example Beijing"}
    assert primary_contact_change_problems("primary_contact", current, {**current, "City": "Beijing"}, "aws-cn") == []
    assert primary_contact_change_problems("primary_contact", current, PRIMARY, "aws-cn") == [
        "primary_contact.CountryCode: accounts in the aws-cn partition cannot change it through the API "
        "(it is 'CN', the config asks for 'US'); AWS Support changes it",
        "primary_contact.CompanyName: accounts in the aws-cn partition cannot change it through the API "
        "(it is 'Example Beijing', the config asks for 'Example Corp'); AWS Support changes it",
    ]
    without_company = {k: v for k, v in current.items() if k != "CompanyName"}  # a put would clear it
    assert len(primary_contact_change_problems("primary_contact", current, without_company, "aws-cn")) == 1
    assert primary_contact_change_problems("primary_contact", None, PRIMARY, "aws-cn") == []  # none set yet
    assert primary_contact_change_problems("primary_contact", current, PRIMARY, "aws") == []


@pytest.mark.parametrize("phone", ["206 555 0100", "+1 206 555 0100 ext", "1+206"])
def test_the_primary_phone_number_must_match_the_whole_model_pattern(phone: str) -> None:
    found = primary_contact_problems("c", {**PRIMARY, "PhoneNumber": phone})
    assert len(found) == 1 and found[0].startswith("c.PhoneNumber: '***"), found
    assert "206" not in found[0]  # the number is masked


def test_unknown_primary_contact_fields_are_named() -> None:
    assert primary_contact_problems("c", {**PRIMARY, "Email": "x"}) == [
        f"c.Email: unknown field (allowed: {', '.join(PRIMARY_CONTACT_FIELD_RULES)})"
    ]


def test_opt_in_regions_are_the_partitions_regions_not_enabled_by_default() -> None:
    known = partitions.regions_of("aws")
    assert partitions.ENABLED_BY_DEFAULT["aws"] <= known  # the closed list is consistent with botocore
    assert partitions.opt_in_regions("aws") == known - partitions.ENABLED_BY_DEFAULT["aws"]
    assert {"ap-east-1", "me-central-1", "af-south-1", "eu-south-1"} <= partitions.opt_in_regions("aws")
    assert partitions.opt_in_regions("aws-cn") == frozenset()
    assert partitions.opt_in_regions("aws-us-gov") == frozenset()
    assert partitions.partition_of("cn-northwest-1") == "aws-cn"
    assert partitions.partition_of("us-gov-west-1") == "aws-us-gov"
    assert partitions.partition_of("eu-west-1") == "aws"


@pytest.fixture
def botocore_files(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """botocore's data files as the test sets them, read afresh."""
    files: dict[str, Any] = {}

    class Loader:
        def load_data(self, name: str) -> Any:
            if name not in files:
                raise botocore.exceptions.DataNotFoundError(data_path=name)
            return files[name]

    monkeypatch.setattr(partitions.botocore.loaders, "create_loader", Loader)
    partitions._partitions.cache_clear()
    partitions.known_regions.cache_clear()
    yield files
    partitions._partitions.cache_clear()
    partitions.known_regions.cache_clear()


AWS_PATTERN = r"^(us|xx)\-\w+\-\d+$"


def test_the_deploy_region_and_the_opt_in_regions_read_the_same_partition_data(botocore_files: dict[str, Any]) -> None:
    botocore_files["endpoints"] = {
        "partitions": [{"partition": "aws", "regionRegex": AWS_PATTERN, "regions": {"us-east-1": {}}}]
    }
    # a Region newer than endpoints.json: only partitions.json lists it (with its *-global pseudo-Region)
    botocore_files["partitions"] = {
        "partitions": [
            {"id": "aws", "regionRegex": AWS_PATTERN, "regions": {"us-east-1": {}, "xx-new-1": {}, "aws-global": {}}}
        ]
    }
    assert partitions.regions_of("aws") == {"us-east-1", "xx-new-1"}
    assert partitions.known_regions() == {"us-east-1", "xx-new-1"}
    assert region_problem("region", "xx-new-1") is None
    assert partitions.opt_in_region_problem("regions.enable[0]", "xx-new-1", "aws") is None
    assert region_problem("region", "xx-gone-2") == (
        f"region: 'xx-gone-2' is not a Region of any AWS partition (botocore {botocore.__version__}'s endpoint "
        "data; for a Region newer than that, upgrade boto3)"
    )


def test_a_botocore_without_partitions_json_still_knows_its_regions(botocore_files: dict[str, Any]) -> None:
    botocore_files["endpoints"] = {
        "partitions": [{"partition": "aws", "regionRegex": AWS_PATTERN, "regions": {"us-east-1": {}, "xx-old-1": {}}}]
    }
    assert partitions.known_regions() == {"us-east-1", "xx-old-1"}
    assert partitions.partition_of("xx-later-3") == "aws"  # by the partition's pattern


@pytest.mark.parametrize(
    ("region", "partition", "expected"),
    [
        ("ap-east-1", "aws", None),
        ("us-east-1", "aws", "'us-east-1' is enabled by default in every account"),
        ("xx-nowhere-9", "aws", "'xx-nowhere-9' is not a Region of the aws partition"),
        ("ap-east-1", "aws-cn", "'ap-east-1' is not a Region of the aws-cn partition"),
        ("cn-north-1", "aws-cn", "'cn-north-1' is enabled by default in every account"),
        ("", "aws", "'' is not a Region name"),
    ],
)
def test_only_opt_in_regions_of_the_partition_pass(region: str, partition: str, expected: str | None) -> None:
    found = partitions.opt_in_region_problem("regions.enable[0]", region, partition)
    if expected is None:
        assert found is None
    else:
        assert found is not None and found.startswith(f"regions.enable[0]: {expected}"), found


def test_quotas_are_read_per_partition() -> None:
    aws = registry.account_quotas("aws")
    assert aws["PutContactInformation"] == quotas.Quota(5, 8)
    assert aws["GetContactInformation"] == quotas.Quota(10, 15)
    assert aws["EnableRegion"] == aws["DisableRegion"] == quotas.Quota(1, 1)
    assert aws["GetRegionOptStatus"] == aws["ListRegions"] == quotas.Quota(5, 5)
    china = registry.account_quotas("aws-cn")
    assert china["PutContactInformation"] == quotas.Quota(1, 2)
    assert all(china[op].per_second <= aws[op].per_second for op in china)
    assert "EnableRegion" not in china  # no Region opt-in in China
    assert registry.account_quotas("aws-us-gov") == aws  # no table of its own: the commercial one
    assert regions.SETTING.opt_limits("aws") == quotas.RegionOptLimits(per_account=6, per_organization=50)
    assert regions.SETTING.opt_limits("aws-us-gov") == regions.SETTING.opt_limits("aws")
    assert regions.SETTING.opt_limits("aws-cn") is None
    # Every operation a setting reads or writes has a quota wherever the setting is available.
    for partition in ("aws", "aws-cn", "aws-us-gov"):
        for setting in registry.SETTINGS:
            if setting.available_in(partition):
                assert set(setting.quotas_in(partition)) == {*setting.read_operations, *setting.write_operations}


def test_the_settings_are_the_modules_of_the_settings_package(tmp_path: Any, monkeypatch: Any) -> None:
    """Found by module, in name order; a module there without its SETTING is refused, not skipped."""
    import importlib
    import sys

    from org_bootstrap import settings as package

    assert [s.name for s in registry.SETTINGS] == ["alternate_contacts", "primary_contact", "regions"]
    assert registry.BY_NAME["regions"] is regions.SETTING
    (tmp_path / "stray.py").write_text("HELPER = 1\n")
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    try:
        with pytest.raises(TypeError, match=r"org_bootstrap\.settings\.stray defines no SETTING"):
            registry._discovered()
    finally:
        sys.modules.pop("org_bootstrap.settings.stray", None)
        importlib.invalidate_caches()
