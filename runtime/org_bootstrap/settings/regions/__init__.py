"""Opt-in Regions of an account: ListRegions, GetRegionOptStatus, EnableRegion, DisableRegion.

Enabling and disabling are asynchronous: the call starts a request that keeps the Region ENABLING
(or DISABLING) for minutes to hours, and AWS allows at most 6 such requests in progress per
account and 50 per organization, refusing more with ``TooManyRequestsException``
(https://docs.aws.amazon.com/accounts/latest/reference/quotas.html). So a job does not wait on a
request: :class:`RegionRequests` keeps the requests it has in flight within those limits (a worker
reserves a slot before it calls, and waits for one when none is free), and follows each one with
GetRegionOptStatus until the Region has got there, which frees its slot. The requests still in
flight are part of the job's saved state, so the next invocation follows them on.

Reads use ListRegions (one call returns every Region of the account with its status). Following
costs few reads (:meth:`RegionRequests.follow`): a request is not read every few seconds for the
minutes to hours it takes, but when it is expected to have got there, learnt from the job's own
requests; and an account with several requests due is read with one ListRegions instead of one
GetRegionOptStatus per Region.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from org_bootstrap.aws.clients import error_code, is_request_limit
from org_bootstrap.aws.partitions import CHINA, COMMERCIAL, opt_in_regions
from org_bootstrap.engine import clock as clocks
from org_bootstrap.engine.quotas import RegionOptLimits
from org_bootstrap.engine.targeting import SettingSpec
from org_bootstrap.settings import AccountCalls, NotYet, Permission, Quota, Setting
from org_bootstrap.settings.regions.spec import DISABLED, ENABLED, RegionSpec

GET, LIST, ENABLE, DISABLE = "GetRegionOptStatus", "ListRegions", "EnableRegion", "DisableRegion"
ENABLING, DISABLING, ENABLED_BY_DEFAULT = "ENABLING", "DISABLING", "ENABLED_BY_DEFAULT"

# What a Region needs, from its status and what it should be (see :func:`next_step`).
SETTLED = "settled"  # already what it should be
FOLLOW = "follow"  # on its way there (a request in progress): follow it
REQUEST = "request"  # call EnableRegion or DisableRegion
WAIT = "wait"  # the opposite request is in progress (ConflictException until it is done): wait, then request

ARRIVED = {ENABLED: (ENABLED,), DISABLED: (DISABLED,)}
ON_ITS_WAY = {ENABLED: ENABLING, DISABLED: DISABLING}


def next_step(status: str, wanted: str) -> str:
    if status in ARRIVED[wanted] or (status == ENABLED_BY_DEFAULT and wanted == ENABLED):
        return SETTLED
    if status == ON_ITS_WAY[wanted]:
        return FOLLOW
    if status in (ENABLING, DISABLING):
        return WAIT
    return REQUEST


# Between two looks at the requests in flight while waiting for one to end, at most: the follower's
# notification comes first, and the deadline, whichever is sooner.
WAIT_SECONDS = 1.0
# Following a request: once it is older than the job's requests take, or while it is the probe
# (see RegionRequests.follow), it is read every ``follow_every`` seconds or this share of its age,
# whichever is longer; before that, a request younger than the probe waits twice its age between reads.
TAIL_SHARE = 0.05
YOUNGER_BACKOFF = 2.0

# Requests in progress at once, by partition (the quotas page): one more limit than rates.
REGION_OPT_LIMITS = {COMMERCIAL: RegionOptLimits(per_account=6, per_organization=50)}


# Published per calling account: https://docs.aws.amazon.com/accounts/latest/reference/quotas.html
QUOTAS: Mapping[str, Mapping[str, Quota]] = {
    COMMERCIAL: {ENABLE: Quota(1, 1), DISABLE: Quota(1, 1), GET: Quota(5, 5), LIST: Quota(5, 5)},
    CHINA: {},  # the China partition has no Region opt-in
}


class Regions(Setting):
    name = "regions"
    title = "opt-in Regions"
    spec_type = RegionSpec
    read_operations = (LIST, GET)
    write_operations = (ENABLE, DISABLE)
    quotas = QUOTAS
    asynchronous = True

    def opt_limits(self, partition: str) -> RegionOptLimits | None:
        """None where the partition has no Region opt-in."""
        if not self.available_in(partition):
            return None
        return REGION_OPT_LIMITS.get(partition, REGION_OPT_LIMITS[COMMERCIAL])

    def permissions(self, spec: SettingSpec[Any], *, write: bool, partition: str) -> list[Permission]:
        """Reading every Region's status; enabling and disabling only the Regions the config
        manages (``account:TargetRegion``)."""
        assert isinstance(spec, RegionSpec)
        found = [Permission("RegionStatusOfOrganizationAccounts", self.read_actions)]
        if write:
            target = {"StringEquals": {"account:TargetRegion": managed_regions(spec, partition)}}
            found.append(Permission("OptInRegionsOfOrganizationAccounts", self.write_actions, target))
        return found

    def read(self, api: AccountCalls, account_id: str, items: Sequence[str]) -> dict[str, Any]:
        found = statuses(api, account_id)
        return {region: found.get(region) for region in items}

    def action(self, current: Any, wanted: Any) -> str | None:
        if next_step(current, wanted) in (SETTLED, FOLLOW):
            return None
        return "enable" if wanted == ENABLED else "disable"

    def write(self, api: AccountCalls, account_id: str, item: str, wanted: Any, action: str) -> None:
        requests: RegionRequests | None = getattr(api, "region_requests", None)
        if requests is not None and not requests.reserve(account_id, until=api.deadline or float("inf")):
            raise NotYet(f"no free Region request slot for {account_id} before the deadline")
        try:
            request(api, account_id, item, wanted)
        except ClientError as error:
            if requests is not None:
                requests.cancel(account_id)
            if error_code(error) == "ConflictException":  # the opposite request is still in progress
                raise NotYet(f"{item} of {account_id}: {error_code(error)}") from error
            if is_request_limit(error):  # AWS's 6 per account or 50 per organization are in use: a wait
                raise NotYet(f"{item} of {account_id}: every Region request slot is in use") from error
            raise
        except BaseException:
            if requests is not None:
                requests.cancel(account_id)
            raise
        if requests is not None:
            requests.started(account_id, item, wanted)

    def following(self, api: AccountCalls, account_id: str, item: str, current: Any, wanted: Any) -> None:
        """A request on its way to ``wanted`` is followed; one on its way the other way (ENABLING
        when the config wants DISABLED, or the reverse) is waited for before the request, since
        AWS refuses it with ConflictException until then and each refused call spends the 1/s quota."""
        requests: RegionRequests | None = getattr(api, "region_requests", None)
        step = next_step(current, wanted)
        if step == FOLLOW and requests is not None:
            requests.adopt(account_id, item, wanted)
        elif step == WAIT:
            opposite, until = (DISABLED if wanted == ENABLED else ENABLED), api.deadline
            if requests is None or until is None or not requests.wait_for(account_id, item, opposite, until=until):
                raise NotYet(f"{item} of {account_id} is {current}: the request waits until that has finished")

    def logged(self, action: str, account_id: str, item: str, wanted: Any) -> str:
        return f"{'enabling' if action == 'enable' else 'disabling'} Region {item} of {account_id}"


SETTING = Regions()


def managed_regions(spec: RegionSpec, partition: str) -> list[str]:
    """The Regions the role may enable or disable: those the spec names, or every opt-in Region
    of the partition when removal may restore one the config no longer names (the role's policy
    is updated before the resource on an Update)."""
    if spec.removal != "retain":
        return sorted(opt_in_regions(partition))
    return sorted(spec.named())


def statuses(api: AccountCalls, account_id: str) -> dict[str, str]:
    """Every Region of the account with its status (ListRegions, 50 to a page)."""
    found: dict[str, str] = {}
    token: str | None = None
    while True:
        page = api.call(LIST, account_id, MaxResults=50, **({"NextToken": token} if token else {}))
        found.update({region["RegionName"]: region["RegionOptStatus"] for region in page.get("Regions", [])})
        token = page.get("NextToken")
        if not token:
            return found


def status(api: AccountCalls, account_id: str, region: str) -> str:
    return str(api.call(GET, account_id, RegionName=region)["RegionOptStatus"])


def request(api: AccountCalls, account_id: str, region: str, wanted: str) -> None:
    """Start enabling (``wanted`` ENABLED) or disabling the Region."""
    api.call(ENABLE if wanted == ENABLED else DISABLE, account_id, RegionName=region)


@dataclass
class Request:
    """One Region opt-in request in progress: which account, which Region, toward what."""

    account_id: str
    region: str
    wanted: str  # ENABLED or DISABLED
    since: float  # when it started, on the job's clock
    checked: float = 0.0  # when it was last followed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Request:
        return cls(**data)


class RegionRequests:
    """The Region opt-in requests a job has in flight, never more than the limits allow.

    Thread-safe. A worker calls :meth:`reserve` before EnableRegion or DisableRegion (waiting for
    a free slot, up to a deadline), then :meth:`started` once the call succeeded or :meth:`cancel`
    when it did not; :meth:`follow` reads each request's Region and frees its slot once it has got
    there. A request found already in progress (started by an earlier run or by hand) is taken on
    with :meth:`adopt`: it holds a slot at AWS, so it counts here too.
    """

    def __init__(
        self,
        limits: RegionOptLimits,
        in_flight: Iterable[Request] = (),
        *,
        clock: Callable[[], float] = clocks.monotonic,
        follow_every: float = 15.0,
        patient: bool = True,
        expected: float | None = None,
    ) -> None:
        self.limits = limits
        self.clock = clock
        # The shortest time a request of this job was seen still on its way before it got there
        # (None until one has): when the others are read first. Saved with the job.
        self.expected = expected
        # False: never wait for a slot or a request (the account-events handler, which cannot follow
        # one: it leaves the Region to the drift check or the next job instead)
        self.patient = patient
        self.follow_every = follow_every  # seconds between two reads of one request's Region
        self._changed = threading.Condition()
        self._requests: dict[tuple[str, str], Request] = {(r.account_id, r.region): r for r in in_flight}
        self._reserved: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()  # most in progress at once: per account, and "" for all

    def _count(self, account_id: str) -> tuple[int, int]:
        mine = self._reserved[account_id] + sum(1 for r in self._requests.values() if r.account_id == account_id)
        return mine, sum(self._reserved.values()) + len(self._requests)

    def _free(self, account_id: str) -> bool:
        mine, everyone = self._count(account_id)
        return mine < self.limits.per_account and everyone < self.limits.per_organization

    def reserve(self, account_id: str, *, until: float) -> bool:
        """Hold a slot for one request of ``account_id``; False when none was free by ``until``."""
        until = until if self.patient else self.clock()
        with self._changed:
            while not self._free(account_id):
                if self.clock() >= until:
                    return False
                clocks.wait(self._changed, min(WAIT_SECONDS, until - self.clock()))
            self._reserved[account_id] += 1
            self._record_peak(account_id)
            return True

    def started(self, account_id: str, region: str, wanted: str) -> None:
        with self._changed:
            self._reserved[account_id] -= 1
            self._requests[account_id, region] = Request(account_id, region, wanted, self.clock(), self.clock())

    def cancel(self, account_id: str) -> None:
        with self._changed:
            self._reserved[account_id] -= 1
            clocks.notify_all(self._changed)

    def adopt(self, account_id: str, region: str, wanted: str) -> None:
        with self._changed:
            if (account_id, region) not in self._requests:
                self._requests[account_id, region] = Request(account_id, region, wanted, self.clock())
                self._record_peak(account_id)

    def wait_for(self, account_id: str, region: str, wanted: str, *, until: float) -> bool:
        """Follow a request under way toward ``wanted`` (it holds a slot at AWS) until it has got
        there: True once it has, False when it is still on its way at ``until`` (it stays followed)."""
        self.adopt(account_id, region, wanted)
        until = until if self.patient else self.clock()
        with self._changed:
            while (account_id, region) in self._requests:
                if self.clock() >= until:
                    return False
                clocks.wait(self._changed, min(WAIT_SECONDS, until - self.clock()))
            return True

    def _record_peak(self, account_id: str) -> None:
        mine, everyone = self._count(account_id)
        self.peak[account_id] = max(self.peak[account_id], mine)
        self.peak[""] = max(self.peak[""], everyone)

    def in_flight(self) -> list[Request]:
        with self._changed:
            return sorted(self._requests.values(), key=lambda r: (r.since, r.account_id, r.region))

    def is_following(self, account_id: str, region: str) -> bool:
        with self._changed:
            return (account_id, region) in self._requests

    def due(self, request: Request, *, probe: bool) -> float:
        """When ``request`` is next read. Requests of one job take about as long as each other
        (minutes to hours, the same for a Region), so: once one has got there, the others are read
        first when they reach the time it was last seen on its way (``expected``); before any has,
        the oldest (the probe) is read every ``follow_every`` seconds, and the younger ones back off
        (they would not get there before it). After its expected time a request is read every
        ``follow_every`` seconds, backing off to a share of its age for one that takes hours."""
        last = request.checked or request.since
        age = last - request.since
        expected = self.expected
        if expected is not None and last < request.since + expected:
            return request.since + expected
        if expected is not None or probe:
            return last + max(self.follow_every, TAIL_SHARE * age)
        return last + max(self.follow_every, YOUNGER_BACKOFF * age)

    def follow(self, api: AccountCalls, *, until: float) -> list[tuple[Request, str]]:
        """Read the Region of each request that is due (:meth:`due`; oldest first, until ``until``);
        drop those no longer on their way and return them with the status read: the wanted one, or
        another when the Region was changed by other means. An account with more than one request
        due within ``follow_every`` seconds is read with one ListRegions, which answers them all."""
        done: list[tuple[Request, str]] = []
        flights = self.in_flight()
        now = self.clock()
        due = {id(r): self.due(r, probe=index == 0) for index, r in enumerate(flights)}
        read: set[str] = set()
        for request in flights:
            if self.clock() >= until:
                break
            if request.account_id in read or due[id(request)] > now:
                continue
            siblings = [r for r in flights if r.account_id == request.account_id]
            soon = [r for r in siblings if due[id(r)] <= now + self.follow_every]
            if len(soon) > 1:
                found = statuses(api, request.account_id)
                answers = [(r, found.get(r.region, "")) for r in siblings]
                read.add(request.account_id)
            else:
                answers = [(request, status(api, request.account_id, request.region))]
            with self._changed:
                for answered, now_status in answers:
                    self._observed(answered, now_status, done)
        return done

    def _observed(self, request: Request, now_status: str, done: list[tuple[Request, str]]) -> None:
        if now_status == ON_ITS_WAY[request.wanted]:
            request.checked = self.clock()
            return
        seen = request.checked - request.since  # how long it was last seen on its way
        gap = self.clock() - request.checked
        # Only a request read closely enough says how long requests take: one read after a long
        # back-off was on its way for longer than it was seen, and would bring the others' reads too early.
        if request.checked > request.since and gap <= 2 * max(self.follow_every, TAIL_SHARE * seen):
            self.expected = seen if self.expected is None else min(self.expected, seen)
        self._requests.pop((request.account_id, request.region), None)
        done.append((request, now_status))
        clocks.notify_all(self._changed)
