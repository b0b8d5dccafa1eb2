"""The estimates the local tools print: the quota floor of planned calls, by setting and operation."""

from __future__ import annotations

import pytest

from local_deploy.estimates import of_job, quota_floor
from org_bootstrap.engine.jobs import Job
from org_bootstrap.engine.reconcile import RESTORE
from org_bootstrap.settings.alternate_contacts.spec import DELETE


def test_the_floor_is_the_slowest_operation_after_its_burst() -> None:
    # PutAlternateContact 5/s (burst 8), GetAlternateContact 10/s (burst 15), DeleteAlternateContact 1/s (burst 6)
    assert quota_floor({"PutAlternateContact": 108, "GetAlternateContact": 300}) == pytest.approx(28.5)
    assert quota_floor({"DeleteAlternateContact": 36, "GetAlternateContact": 36}) == pytest.approx(30.0)
    assert quota_floor({"GetAlternateContact": 15}) == 0.0


def test_region_requests_wait_in_waves_of_the_organizations_limit() -> None:
    # 50 at a time, each 300 s, seen done within the 15 s between two reads of it: two waves
    floor = quota_floor({"EnableRegion": 95}, region_requests=95, region_seconds=300.0)
    assert 600 < floor < 700
    assert quota_floor({"EnableRegion": 10}, region_requests=10, region_seconds=300.0) < 330


def test_a_jobs_reads_are_counted_by_setting_and_a_restore_at_its_slowest_write() -> None:
    contact = {"Name": "A", "Title": "B", "EmailAddress": "a@example.com", "PhoneNumber": "+1 206 555 0100"}
    targets = {"BILLING": contact, "OPERATIONS": DELETE, "SECURITY": RESTORE, "regions/ap-east-1": "ENABLED"}
    job = Job("job", {"key": targets}, [("111111111111", "key"), ("222222222222", "key")])
    reads, most = of_job(job)
    assert reads.by_setting == {
        "alternate contacts": {"GetAlternateContact": 6},
        "opt-in Regions": {"ListRegions": 2},
    }
    assert most.calls["PutAlternateContact"] == 2
    assert most.calls["DeleteAlternateContact"] == 4  # the deletes, and the restores at worst
    assert most.calls["EnableRegion"] == most.region_requests == 2
    assert reads.seconds <= most.seconds
