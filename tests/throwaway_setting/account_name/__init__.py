"""A throw-away fourth setting, the account name (GetAccountInformation, PutAccountName), written
as docs/development.md's "Adding a setting" says, to prove that nothing else has to change."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from org_bootstrap.aws.partitions import COMMERCIAL
from org_bootstrap.settings import AccountCalls, Quota, Setting

from .spec import NAME, AccountNameSpec

GET, PUT = "GetAccountInformation", "PutAccountName"
# Published per calling account: https://docs.aws.amazon.com/accounts/latest/reference/quotas.html
QUOTAS: Mapping[str, Mapping[str, Quota]] = {COMMERCIAL: {PUT: Quota(1, 1), GET: Quota(3, 3)}}


class AccountName(Setting):
    name = "account_name"
    title = "account name"
    spec_type = AccountNameSpec
    read_operations = (GET,)
    write_operations = (PUT,)
    quotas = QUOTAS
    absent = None

    def read(self, api: AccountCalls, account_id: str, items: Sequence[str]) -> dict[str, Any]:
        return {NAME: api.call(GET, account_id).get("AccountName")}

    def action(self, current: Any, wanted: Any) -> str | None:
        return None if current == wanted else "put"

    def write(self, api: AccountCalls, account_id: str, item: str, wanted: Any, action: str) -> None:
        api.call(PUT, account_id, AccountName=wanted)


SETTING = AccountName()
