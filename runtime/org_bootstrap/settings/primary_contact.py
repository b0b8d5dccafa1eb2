"""The primary contact of an account: GetContactInformation and PutContactInformation.

Addressed as every Account Management call from the organization: the calling account's own
record without ``AccountId`` (the management account cannot name itself), every other account's
with it. PutContactInformation replaces the whole record, so two records are the same only when
every field the model declares is the same (an optional field left out is cleared).
https://docs.aws.amazon.com/accounts/latest/reference/API_PutContactInformation.html
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.clients import error_code
from org_bootstrap.pacing import RateLimits
from org_bootstrap.primary_contact_spec import ContactInformation
from org_bootstrap.validation import PRIMARY_CONTACT_FIELD_RULES

GET, PUT = "GetContactInformation", "PutContactInformation"
READ_ACTIONS = ("account:GetContactInformation",)
WRITE_ACTIONS = ("account:PutContactInformation",)


class PrimaryContactApi:
    def __init__(self, client: Any, own_account_id: str, limits: RateLimits) -> None:
        self.client = client
        self.own_account_id = own_account_id
        self.limits = limits

    def _address(self, account_id: str) -> dict[str, str]:
        return {} if account_id == self.own_account_id else {"AccountId": account_id}

    def get(self, account_id: str) -> ContactInformation | None:
        self.limits.acquire(GET)
        try:
            found = self.client.get_contact_information(**self._address(account_id))
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                return None
            raise
        record = found["ContactInformation"]
        return {key: record[key] for key in PRIMARY_CONTACT_FIELD_RULES if record.get(key) is not None}

    def put(self, account_id: str, contact: ContactInformation) -> None:
        self.limits.acquire(PUT)
        self.client.put_contact_information(ContactInformation=dict(contact), **self._address(account_id))


def same(current: ContactInformation | None, wanted: ContactInformation) -> bool:
    return current is not None and all(current.get(key) == wanted.get(key) for key in PRIMARY_CONTACT_FIELD_RULES)


def differing_fields(current: ContactInformation | None, wanted: ContactInformation) -> tuple[str, ...]:
    """The fields a put changes (for the plan view); every wanted field when there is none yet."""
    if current is None:
        return tuple(key for key in PRIMARY_CONTACT_FIELD_RULES if key in wanted)
    return tuple(key for key in PRIMARY_CONTACT_FIELD_RULES if current.get(key) != wanted.get(key))
