"""The simulated organization answers the primary-contact and Region opt-in calls as AWS does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from org_bootstrap.settings.primary_contact.spec import PRIMARY_CONTACT_FIELD_RULES
from simulation.organization import ORGANIZATION, ApiLog, Organization, acting_as, strict_aws
from tests.conftest import US_PRIMARY_CONTACT

OPT_SECONDS = 300.0
PRIMARY = US_PRIMARY_CONTACT


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[tuple[Organization, ApiLog, Any]]:
    with strict_aws(ApiLog(clock=clock, region_opt_seconds=OPT_SECONDS)) as log:
        org = Organization()
        org.enable_trusted_access()
        for i in range(2, 11):
            org.create_account(f"member-{i}", account_id=f"{i:012d}")
        # no retries: each refusal is seen as the service sends it
        account = boto3.client("account", region_name="us-east-1", config=Config(retries={"total_max_attempts": 1}))
        yield org, log, account


def code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


def message(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Message"])


MEMBER = f"{2:012d}"


def status(account: Any, region: str, account_id: str = MEMBER) -> str:
    return str(account.get_region_opt_status(AccountId=account_id, RegionName=region)["RegionOptStatus"])


def test_primary_contact_is_put_and_read_for_members_with_account_id_and_for_the_management_account_without(
    sim: tuple[Organization, ApiLog, Any],
) -> None:
    org, log, account = sim
    assert code(account.get_contact_information, AccountId=MEMBER) == "ResourceNotFoundException"
    account.put_contact_information(AccountId=MEMBER, ContactInformation=PRIMARY)
    assert account.get_contact_information(AccountId=MEMBER)["ContactInformation"] == PRIMARY
    assert org.primary_contact(MEMBER) == PRIMARY
    own = {**PRIMARY, "FullName": "Management"}
    account.put_contact_information(ContactInformation=own)
    assert org.primary_contact(org.management_account_id) == own
    named = code(account.put_contact_information, AccountId=org.management_account_id, ContactInformation=own)
    assert named == "AccessDeniedException"
    assert log.writes() == 3  # every call counts, refused ones too


def test_primary_contact_caller_rules_are_the_alternate_contacts(sim: tuple[Organization, ApiLog, Any]) -> None:
    org, _, account = sim
    with acting_as(MEMBER):  # not the delegated administrator (yet)
        assert code(account.get_contact_information, AccountId=f"{3:012d}") == "AccessDeniedException"
    org.register_delegated_administrator(MEMBER)
    with acting_as(MEMBER):
        account.put_contact_information(AccountId=f"{3:012d}", ContactInformation=PRIMARY)
        management = org.management_account_id
        denied = code(account.put_contact_information, AccountId=management, ContactInformation=PRIMARY)
        assert denied == "AccessDeniedException"
    org.set_status(f"{4:012d}", "SUSPENDED")
    suspended = code(account.put_contact_information, AccountId=f"{4:012d}", ContactInformation=PRIMARY)
    assert suspended == "AccessDeniedException"


@pytest.mark.parametrize("field", sorted(PRIMARY_CONTACT_FIELD_RULES))
def test_every_primary_contact_field_is_held_to_the_service_models_limits(
    sim: tuple[Organization, ApiLog, Any], field: str
) -> None:
    _, _, account = sim
    too_long = "+" + "1" * PRIMARY_CONTACT_FIELD_RULES[field].max_length
    found = message(account.put_contact_information, AccountId=MEMBER, ContactInformation={**PRIMARY, field: too_long})
    assert field in found


def test_the_primary_phone_number_needs_the_plus(sim: tuple[Organization, ApiLog, Any]) -> None:
    _, _, account = sim
    contact = {**PRIMARY, "PhoneNumber": "206 555 0100"}
    assert code(account.put_contact_information, AccountId=MEMBER, ContactInformation=contact) == "ValidationException"


def test_state_or_region_is_required_in_the_countries_that_need_it(sim: tuple[Organization, ApiLog, Any]) -> None:
    org, _, account = sim
    without = {k: v for k, v in PRIMARY.items() if k != "StateOrRegion"}
    found = message(account.put_contact_information, AccountId=MEMBER, ContactInformation=without)
    assert "StateOrRegion: is required when CountryCode is 'US'" in found
    assert org.primary_contact(MEMBER) is None  # nothing stored
    account.put_contact_information(AccountId=MEMBER, ContactInformation={**without, "CountryCode": "FR"})


def test_in_the_china_partition_country_code_and_company_name_cannot_change(
    sim: tuple[Organization, ApiLog, Any],
) -> None:
    china = boto3.client("account", region_name="cn-north-1", config=Config(retries={"total_max_attempts": 1}))
    signed_up = {**PRIMARY, "City": "Beijing", "CountryCode": "CN", "CompanyName": "Example Beijing"}
    china.put_contact_information(ContactInformation=signed_up)  # the first record is not a change
    for field, value in (("CountryCode", "US"), ("CompanyName", "Example Corp")):
        changed = {**signed_up, field: value}
        assert code(china.put_contact_information, ContactInformation=changed) == "ValidationException"
        assert f"{field}: accounts in the aws-cn partition cannot change it" in message(
            china.put_contact_information, ContactInformation=changed
        )
    without_company = {k: v for k, v in signed_up.items() if k != "CompanyName"}  # would clear it: a change too
    assert code(china.put_contact_information, ContactInformation=without_company) == "ValidationException"
    china.put_contact_information(ContactInformation={**signed_up, "City": "Shanghai"})  # every other field can
    assert china.get_contact_information()["ContactInformation"] == {**signed_up, "City": "Shanghai"}
    # the same change in the commercial partition is accepted
    _, _, account = sim
    account.put_contact_information(ContactInformation={**PRIMARY, "CompanyName": "Example Beijing"})
    account.put_contact_information(ContactInformation={**PRIMARY, "CompanyName": "Example Corp"})


def test_enabling_takes_the_configured_time_then_the_region_is_enabled(
    sim: tuple[Organization, ApiLog, Any], clock: Clock
) -> None:
    org, _, account = sim
    assert status(account, "ap-east-1") == "DISABLED"
    assert status(account, "us-east-1") == "ENABLED_BY_DEFAULT"
    account.enable_region(AccountId=MEMBER, RegionName="ap-east-1")
    assert status(account, "ap-east-1") == "ENABLING"
    account.enable_region(AccountId=MEMBER, RegionName="ap-east-1")  # again: already on its way
    clock.now += OPT_SECONDS - 1
    assert status(account, "ap-east-1") == "ENABLING"
    assert code(account.disable_region, AccountId=MEMBER, RegionName="ap-east-1") == "ConflictException"
    clock.now += 1
    assert status(account, "ap-east-1") == "ENABLED"
    account.disable_region(AccountId=MEMBER, RegionName="ap-east-1")
    assert status(account, "ap-east-1") == "DISABLING"
    assert code(account.enable_region, AccountId=MEMBER, RegionName="ap-east-1") == "ConflictException"
    clock.now += OPT_SECONDS
    assert status(account, "ap-east-1") == "DISABLED"
    assert org.regions(MEMBER, sim[1]) == {}


def test_regions_enabled_by_default_or_unknown_cannot_be_changed(sim: tuple[Organization, ApiLog, Any]) -> None:
    _, _, account = sim
    assert code(account.enable_region, AccountId=MEMBER, RegionName="us-east-1") == "ValidationException"
    assert code(account.disable_region, AccountId=MEMBER, RegionName="eu-west-1") == "ValidationException"
    assert code(account.enable_region, AccountId=MEMBER, RegionName="xx-nowhere-9") == "ValidationException"
    assert code(account.get_region_opt_status, AccountId=MEMBER, RegionName="cn-north-1") == "ValidationException"


def test_at_most_six_region_requests_in_progress_per_account(
    sim: tuple[Organization, ApiLog, Any], clock: Clock
) -> None:
    _, log, account = sim
    regions = ["af-south-1", "ap-east-1", "ap-south-2", "ap-southeast-3", "ca-west-1", "eu-south-1", "me-central-1"]
    for region in regions[:6]:
        account.enable_region(AccountId=MEMBER, RegionName=region)
    refused = message(account.enable_region, AccountId=MEMBER, RegionName=regions[6])
    assert "Number of concurrent region-opt requests for an account" in refused
    assert code(account.enable_region, AccountId=MEMBER, RegionName=regions[6]) == "TooManyRequestsException"
    account.enable_region(AccountId=f"{3:012d}", RegionName=regions[6])  # another account has its own six
    clock.now += OPT_SECONDS
    account.enable_region(AccountId=MEMBER, RegionName=regions[6])  # the first six are done
    assert log.peak_in_progress[MEMBER] == 6


def test_at_most_fifty_region_requests_in_progress_per_organization(
    sim: tuple[Organization, ApiLog, Any], clock: Clock
) -> None:
    org, log, account = sim
    members = [f"{i:012d}" for i in range(2, 11)]
    regions = ["af-south-1", "ap-east-1", "ap-south-2", "ap-southeast-3", "ca-west-1", "eu-south-1"]
    started = 0
    for member in members:
        for region in regions:
            if started == 50:
                break
            account.enable_region(AccountId=member, RegionName=region)
            started += 1
    refused = message(account.enable_region, RegionName="me-central-1")  # the management account's own
    assert "Number of concurrent region-opt requests for an organization" in refused
    assert log.peak_in_progress[ORGANIZATION] == 50
    clock.now += OPT_SECONDS
    account.enable_region(RegionName="me-central-1")
    assert org.regions(org.management_account_id, log) == {"me-central-1": "ENABLING"}


def test_list_regions_filters_and_pages(sim: tuple[Organization, ApiLog, Any]) -> None:
    _, _, account = sim
    account.enable_region(AccountId=MEMBER, RegionName="ap-east-1")
    pages = account.get_paginator("list_regions").paginate(AccountId=MEMBER, PaginationConfig={"PageSize": 5})
    listed = [region for page in pages for region in page["Regions"]]
    assert len(listed) > 5 and {"RegionName": "ap-east-1", "RegionOptStatus": "ENABLING"} in listed
    enabling = account.list_regions(AccountId=MEMBER, RegionOptStatusContains=["ENABLING"])["Regions"]
    assert enabling == [{"RegionName": "ap-east-1", "RegionOptStatus": "ENABLING"}]


def test_region_calls_follow_the_caller_rules(sim: tuple[Organization, ApiLog, Any]) -> None:
    org, _, account = sim
    management = org.management_account_id
    assert code(account.enable_region, AccountId=management, RegionName="ap-east-1") == "AccessDeniedException"
    with acting_as(MEMBER):
        assert code(account.list_regions, AccountId=f"{3:012d}") == "AccessDeniedException"
        account.enable_region(RegionName="ap-east-1")  # its own account, without AccountId


def test_the_organization_round_trips_primary_contacts_and_regions(
    sim: tuple[Organization, ApiLog, Any], clock: Clock
) -> None:
    org, log, account = sim
    account.put_contact_information(AccountId=MEMBER, ContactInformation=PRIMARY)
    account.enable_region(AccountId=MEMBER, RegionName="ap-east-1")
    clock.now += OPT_SECONDS
    account.enable_region(AccountId=MEMBER, RegionName="me-central-1")
    data = org.to_mapping(log)
    member = next(a for a in data["accounts"] if a["id"] == MEMBER)
    assert member["primary_contact"] == PRIMARY
    assert member["regions"] == {"ap-east-1": "ENABLED", "me-central-1": "ENABLING"}


def test_the_organization_file_checks_primary_contacts_and_regions() -> None:
    from local_deploy.organization_file import organization_problems

    base = {"management_account_id": "111111111111", "root_id": "r-ex01"}
    account = {"id": "222222222222", "name": "member"}
    good = {**account, "primary_contact": PRIMARY, "regions": {"ap-east-1": "ENABLED", "me-central-1": "ENABLING"}}
    assert organization_problems({**base, "accounts": [good]}) == []
    bad = {
        **account,
        "primary_contact": {**PRIMARY, "CountryCode": "USA"},
        "regions": {"us-east-1": "ENABLED", "ap-east-1": "ON"},
    }
    found = organization_problems({**base, "accounts": [bad]})
    assert found[0] == "accounts[0].primary_contact.CountryCode: is 3 characters long (must be 2 to 2)"
    assert found[1].startswith("accounts[0].regions.us-east-1: 'us-east-1' is enabled by default")
    assert found[2] == "accounts[0].regions.ap-east-1: 'ON' is not one of ENABLED, ENABLING, DISABLING, DISABLED"
    assert len(found) == 3
