"""GetContactInformation's VerificationStatus of the primary contact's phone (botocore 1.44.8): read,
shown, never compared or put, and an UNVERIFIED phone is a plan note, never a failure."""

from __future__ import annotations

import botocore.session
import pytest

from org_bootstrap.aws import clients
from org_bootstrap.engine.pacing import RateLimits
from org_bootstrap.engine.reconcile import UNCHANGED, AccountApi, reconcile_account
from org_bootstrap.settings.primary_contact import SETTING, VERIFICATION_STATUSES, verification_status
from org_bootstrap.settings.primary_contact.spec import PRIMARY_CONTACT
from simulation.organization import ApiLog, Organization
from tests.conftest import LIFTED_QUOTAS, US_PRIMARY_CONTACT

KEY = next(iter(SETTING.keyed({PRIMARY_CONTACT: None})))


def test_the_model_declares_the_statuses_the_code_knows() -> None:
    model = botocore.session.get_session().get_service_model("account")
    member = model.operation_model("GetContactInformation").output_shape.members["VerificationStatus"]
    assert tuple(member.enum) == VERIFICATION_STATUSES


@pytest.fixture
def org(api_log: ApiLog) -> Organization:
    found = Organization()
    found.enable_trusted_access()
    return found


def test_an_unverified_phone_is_shown_and_never_makes_the_contact_look_changed(org: Organization) -> None:
    account = org.create_account("member", account_id="333333333333")
    org.set_primary_contact(account, US_PRIMARY_CONTACT, "UNVERIFIED")
    api = AccountApi(clients.client("account"), org.management_account_id, RateLimits(LIFTED_QUOTAS))

    outcome = reconcile_account(api, account, {KEY: dict(US_PRIMARY_CONTACT)}, apply=True)

    assert outcome.status == UNCHANGED and not outcome.actions  # not part of what is put or compared
    (compared,) = outcome.compared
    assert verification_status(compared.current) == "UNVERIFIED"
    assert "VerificationStatus" not in compared.current  # the record put back on a restore stays valid
    assert "(unverified)" in SETTING.text(compared.current)


def test_a_new_number_is_unverified_and_one_verified_before_stays_verified(org: Organization) -> None:
    account = org.create_account("member", account_id="333333333333")
    org.set_primary_contact(account, US_PRIMARY_CONTACT)  # VERIFIED
    api = AccountApi(clients.client("account"), org.management_account_id, RateLimits(LIFTED_QUOTAS))
    new = {**US_PRIMARY_CONTACT, "PhoneNumber": "+1 206 555 0199"}

    reconcile_account(api, account, {KEY: new}, apply=True)
    assert org.phone_verification(account) == "UNVERIFIED"
    reconcile_account(api, account, {KEY: dict(US_PRIMARY_CONTACT)}, apply=True)
    assert org.phone_verification(account) == "VERIFIED"
