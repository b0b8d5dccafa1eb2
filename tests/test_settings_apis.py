"""The primary-contact and Region calls, and the Region requests kept within AWS's limits,
against the strict simulated organization."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from org_bootstrap.aws import clients
from org_bootstrap.engine.pacing import RateLimits
from org_bootstrap.engine.quotas import Quota, RegionOptLimits
from org_bootstrap.engine.reconcile import CHANGED, FAILED, AccountApi, reconcile_account
from org_bootstrap.settings import primary_contact, regions
from org_bootstrap.settings.primary_contact import PRIMARY_CONTACT
from org_bootstrap.settings.regions import FOLLOW, REQUEST, SETTLED, WAIT, RegionRequests, Request
from org_bootstrap.settings.regions.spec import DISABLED, ENABLED
from simulation.organization import ORGANIZATION, ApiLog, Organization, strict_aws
from tests.conftest import US_PRIMARY_CONTACT

OPERATIONS = (
    "GetContactInformation",
    "PutContactInformation",
    "ListRegions",
    "GetRegionOptStatus",
    "EnableRegion",
    "DisableRegion",
)
OPT_SECONDS = 300.0
PRIMARY = {**US_PRIMARY_CONTACT, "CompanyName": "Example Corp"}
MEMBERS = [f"{i:012d}" for i in range(2, 32)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sim(clock: Clock) -> Iterator[tuple[Organization, ApiLog]]:
    with strict_aws(ApiLog(clock=clock, region_opt_seconds=OPT_SECONDS)) as log:
        org = Organization()
        org.enable_trusted_access()
        for account_id in MEMBERS:
            org.create_account(f"member-{account_id}", account_id=account_id)
        yield org, log


def fast() -> RateLimits:
    return RateLimits({op: Quota(10_000, 10_000) for op in OPERATIONS})


def test_primary_contact_is_read_and_put_addressed_as_the_api_demands(sim: tuple[Organization, ApiLog]) -> None:
    org, log = sim
    api = AccountApi(clients.client("account"), org.management_account_id, fast())
    setting = primary_contact.SETTING
    assert setting.read(api, MEMBERS[0], [PRIMARY_CONTACT]) == {PRIMARY_CONTACT: None}
    setting.write(api, MEMBERS[0], PRIMARY_CONTACT, PRIMARY, "put")
    setting.write(api, org.management_account_id, PRIMARY_CONTACT, {**PRIMARY, "FullName": "Management"}, "put")
    assert (
        setting.read(api, MEMBERS[0], [PRIMARY_CONTACT])[PRIMARY_CONTACT] == PRIMARY == org.primary_contact(MEMBERS[0])
    )
    assert org.primary_contact(org.management_account_id) == {**PRIMARY, "FullName": "Management"}
    management = org.management_account_id
    assert log.callers["PutContactInformation", management, management] == 1  # its own, without AccountId


def test_in_the_china_partition_a_put_that_would_change_country_code_or_company_name_is_never_sent(
    sim: tuple[Organization, ApiLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    org, log = sim
    monkeypatch.setenv("AWS_REGION", "cn-north-1")  # the handler runs in the China partition
    api = AccountApi(clients.client("account"), org.management_account_id, fast())
    own, key = org.management_account_id, primary_contact.SETTING.key(PRIMARY_CONTACT)
    signed_up = {**PRIMARY, "City": "Beijing", "CountryCode": "CN", "CompanyName": "Example Beijing"}
    primary_contact.SETTING.write(api, own, PRIMARY_CONTACT, signed_up, "put")

    refused = reconcile_account(api, own, {key: PRIMARY})
    assert refused.status == FAILED
    assert refused.reason == (
        "primary_contact.CountryCode: accounts in the aws-cn partition cannot change it through the API "
        "(it is 'CN', the config asks for 'US'); AWS Support changes it; "
        "primary_contact.CompanyName: accounts in the aws-cn partition cannot change it through the API "
        "(it is 'Example Beijing', the config asks for 'Example Corp'); AWS Support changes it"
    )
    assert log.calls["PutContactInformation"] == 1  # the sign-up's only: the refused put was never sent

    moved = {**signed_up, "City": "Shanghai"}
    assert reconcile_account(api, own, {key: moved}).status == CHANGED
    assert primary_contact.SETTING.read(api, own, [PRIMARY_CONTACT]) == {PRIMARY_CONTACT: moved}


def test_two_primary_contacts_are_the_same_only_when_every_field_is() -> None:
    assert primary_contact.same(dict(PRIMARY), PRIMARY)
    assert not primary_contact.same(None, PRIMARY)
    without_company = {k: v for k, v in PRIMARY.items() if k != "CompanyName"}
    assert not primary_contact.same(PRIMARY, without_company)  # a put would clear CompanyName
    assert primary_contact.differing_fields(PRIMARY, {**PRIMARY, "City": "Tacoma"}) == ("City",)
    assert primary_contact.differing_fields(None, without_company) == tuple(without_company)


def test_regions_are_read_in_one_listing_and_requested(sim: tuple[Organization, ApiLog], clock: Clock) -> None:
    org, log = sim
    api = AccountApi(clients.client("account"), org.management_account_id, fast())
    found = regions.SETTING.read(api, MEMBERS[0], ["ap-east-1", "us-east-1"])
    assert found == {"ap-east-1": DISABLED, "us-east-1": "ENABLED_BY_DEFAULT"}
    assert log.calls["ListRegions"] == 1  # every Region of the partition fits one page of 50
    regions.request(api, MEMBERS[0], "ap-east-1", ENABLED)
    assert regions.status(api, MEMBERS[0], "ap-east-1") == "ENABLING"
    clock.now += OPT_SECONDS
    regions.request(api, MEMBERS[0], "ap-east-1", DISABLED)
    assert regions.statuses(api, MEMBERS[0])["ap-east-1"] == "DISABLING"


@pytest.mark.parametrize(
    ("status", "wanted", "step"),
    [
        ("ENABLED", ENABLED, SETTLED),
        ("ENABLING", ENABLED, FOLLOW),
        ("DISABLED", ENABLED, REQUEST),
        ("DISABLING", ENABLED, WAIT),
        ("ENABLED_BY_DEFAULT", ENABLED, SETTLED),
        ("DISABLED", DISABLED, SETTLED),
        ("DISABLING", DISABLED, FOLLOW),
        ("ENABLED", DISABLED, REQUEST),
        ("ENABLING", DISABLED, WAIT),
    ],
)
def test_what_a_region_needs_next(status: str, wanted: str, step: str) -> None:
    assert regions.next_step(status, wanted) == step


def test_requests_stay_within_the_account_limit_however_many_workers_ask(clock: Clock) -> None:
    requests = RegionRequests(RegionOptLimits(per_account=6, per_organization=50), clock=clock)
    granted: list[bool] = []

    def ask() -> None:
        granted.append(requests.reserve("222222222222", until=clock.now))  # no waiting: now or never

    workers = [threading.Thread(target=ask) for _ in range(10)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert granted.count(True) == 6 and requests.peak["222222222222"] == 6
    requests.cancel("222222222222")
    assert requests.reserve("222222222222", until=clock.now)


def test_the_requests_in_flight_survive_the_job_being_saved(clock: Clock) -> None:
    requests = RegionRequests(RegionOptLimits(6, 50), clock=clock)
    assert requests.reserve("222222222222", until=clock.now)
    requests.started("222222222222", "ap-east-1", ENABLED)
    requests.adopt("333333333333", "me-central-1", DISABLED)  # found DISABLING: it holds a slot too
    saved = [request.to_dict() for request in requests.in_flight()]
    again = RegionRequests(
        RegionOptLimits(per_account=6, per_organization=2), map(Request.from_dict, saved), clock=clock
    )
    assert {(r.account_id, r.region, r.wanted) for r in again.in_flight()} == {
        ("222222222222", "ap-east-1", ENABLED),
        ("333333333333", "me-central-1", DISABLED),
    }
    assert not again.reserve("444444444444", until=clock.now)  # both organization slots are taken


def test_following_frees_slots_and_the_organization_limit_is_never_exceeded(
    sim: tuple[Organization, ApiLog], clock: Clock
) -> None:
    """60 Regions to enable (30 accounts x 2), 50 at a time: the simulation, which refuses what AWS
    refuses, never sees a request beyond the limits, and every Region ends ENABLED."""
    org, log = sim
    api = AccountApi(clients.client("account"), org.management_account_id, fast())
    requests = RegionRequests(RegionOptLimits(6, 50), clock=clock, follow_every=10.0)
    arrived: list[tuple[Request, str]] = []
    for account_id in MEMBERS:
        for region in ("ap-east-1", "me-central-1"):
            while not requests.reserve(account_id, until=clock.now):
                clock.now += 10.0
                arrived += requests.follow(api, until=float("inf"))
            regions.request(api, account_id, region, ENABLED)
            requests.started(account_id, region, ENABLED)
    while requests.in_flight():
        clock.now += 10.0
        arrived += requests.follow(api, until=float("inf"))
    assert log.calls["EnableRegion"] == 60  # no refusal was retried
    assert log.peak_in_progress[ORGANIZATION] == 50 == requests.peak[""]
    assert {status for _, status in arrived} == {"ENABLED"} and len(arrived) == 60
    assert all(
        org.regions(account_id, log) == {"ap-east-1": "ENABLED", "me-central-1": "ENABLED"} for account_id in MEMBERS
    )


def test_a_request_not_free_by_the_deadline_gives_up(clock: Clock) -> None:
    requests = RegionRequests(RegionOptLimits(per_account=1, per_organization=50), clock=clock)
    assert requests.reserve("222222222222", until=clock.now)
    outcome: list[bool] = []
    worker = threading.Thread(target=lambda: outcome.append(requests.reserve("222222222222", until=clock.now + 5)))
    worker.start()
    clock.now += 6  # the deadline passes while it waits
    worker.join(timeout=5)
    assert outcome == [False]


def test_a_region_on_its_way_the_other_way_is_waited_for_then_followed_no_longer(
    sim: tuple[Organization, ApiLog], clock: Clock
) -> None:
    """A Region DISABLING when the config wants it ENABLED: the worker waits while the request
    under way is followed (it holds a slot), gives up at its deadline keeping it followed, and is
    let through once the follower has seen the Region get there."""
    org, log = sim
    api = AccountApi(clients.client("account"), org.management_account_id, fast())
    org.set_regions(MEMBERS[0], {"ap-east-1": "DISABLING"}, log)
    requests = RegionRequests(RegionOptLimits(per_account=1, per_organization=50), clock=clock, follow_every=0.0)

    assert not requests.wait_for(MEMBERS[0], "ap-east-1", DISABLED, until=clock.now)
    assert requests.is_following(MEMBERS[0], "ap-east-1")
    assert not requests.reserve(MEMBERS[0], until=clock.now)  # its slot is taken at AWS, and here

    outcome: list[bool] = []
    worker = threading.Thread(
        target=lambda: outcome.append(requests.wait_for(MEMBERS[0], "ap-east-1", DISABLED, until=float("inf")))
    )
    worker.start()
    clock.now += OPT_SECONDS  # the disabling finishes
    assert [(r.region, status) for r, status in requests.follow(api, until=float("inf"))] == [("ap-east-1", DISABLED)]
    worker.join(timeout=5)
    assert outcome == [True] and requests.in_flight() == []
    assert log.calls["EnableRegion"] == 0
