"""The shapes of the Account Management API's published quotas.

Each setting declares its operations' quotas per partition (``Setting.quotas``);
:func:`org_bootstrap.engine.registry.account_quotas` is the table pacing reads. Rates are per
calling account (requests per second and burst); the China partition publishes its own, lower,
quotas and has no Region opt-in operations.
https://docs.aws.amazon.com/accounts/latest/reference/quotas.html
https://docs.amazonaws.cn/en_us/accounts/latest/reference/quotas.html
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    per_second: float
    burst: int


@dataclass(frozen=True)
class RegionOptLimits:
    """Region opt-in requests in progress (ENABLING or DISABLING) at any one time."""

    per_account: int
    per_organization: int
