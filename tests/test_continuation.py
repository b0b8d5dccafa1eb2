"""Long contact jobs: one worker per job, answers within CloudFormation's limit, the synthesized
continuation workflow run with the real handler (its retries running out, then the job resumed),
and a redeploy that heals what the previous job left."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from org_bootstrap.aws import clients
from org_bootstrap.aws.organization import Account
from org_bootstrap.engine import continuation
from org_bootstrap.engine.continuation import Budget, Lease
from org_bootstrap.engine.jobs import Job, plan
from org_bootstrap.engine.pacing import RateLimits
from org_bootstrap.engine.reconcile import FAILED, AccountApi
from org_bootstrap.engine.stores import S3JobStore, StaleWrite
from org_bootstrap.handlers import account_settings, drift
from simulation.workflow import FAILED as EXECUTION_FAILED
from simulation.workflow import SUCCEEDED, Executions
from tests.test_account_settings_handler import DEFAULT, FAST, Context, World, run, spec
from tests.test_account_settings_handler import world as world

TIMEOUT = 900.0  # the is-complete function's Lambda timeout


def test_two_workers_started_at_once_exactly_one_works(world: World) -> None:
    """Both read the job before either writes: the conditional write lets exactly one through."""
    store = world.deps.jobs
    store.save("job-1", plan_for(world, "job-1").to_dict())
    both_read = threading.Barrier(2)
    real = S3JobStore.load_versioned

    def load_then_wait(self: S3JobStore, job_id: str) -> tuple[dict[str, Any], str]:
        found = real(self, job_id)
        both_read.wait(timeout=10)
        return found

    results: dict[str, Job | None] = {}

    def worker(name: str) -> None:
        results[name] = continuation.work(
            "job-1",
            world.deps.api,
            store,
            snapshots=world.deps.snapshots,
            concurrency=2,
            budget=Budget.of(Context(TIMEOUT)),
            owner=name,
        )

    with mock.patch.object(S3JobStore, "load_versioned", load_then_wait):
        threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    worked = [name for name, result in results.items() if result is not None]
    assert len(worked) == 1, results
    # The accounts were worked once: 6 accounts x 3 types, read once and written once.
    assert world.log.calls["GetAlternateContact"] == 18
    assert world.log.calls["PutAlternateContact"] == 18
    saved = store.load("job-1")
    assert saved["cursor"] == 6 and "lease" not in saved  # done, and the lease released


def test_is_complete_backs_off_while_another_invocation_holds_the_job(world: World) -> None:
    """The Provider framework's waiter retries is-complete on any error, including the timeout of a
    batch that is still running: the retry must not work the same job."""
    event = {"RequestType": "Create", "RequestId": "job-2", "LogicalResourceId": "Resource"}
    world.deps.jobs.save("job-2", plan_for(world, "job-2").to_dict())
    now = world.deps.clock()
    held = Lease.take(world.deps.jobs, "job-2", owner="timed-out-batch", until=now + 600, now=now)
    assert held is not None
    assert account_settings.is_complete(event, Context(TIMEOUT)) == {"IsComplete": False}
    assert sum(world.log.calls.values()) == 0
    # Once the holder's invocation must have ended, its lease has expired: the next poll works.
    world.deps.clock = lambda: now + 601
    answer = account_settings.is_complete(event, Context(TIMEOUT))
    assert answer["IsComplete"] is True and answer["Data"]["Changed"] == 6


def test_a_worker_that_lost_its_lease_stops_without_saving(world: World) -> None:
    world.deps.jobs.save("job-3", plan_for(world, "job-3").to_dict())
    lease = Lease.take(world.deps.jobs, "job-3", owner="first", until=1e12, now=0)
    assert lease is not None
    # Another worker took over (the first one's lease expired while it was stalled).
    assert Lease.take(world.deps.jobs, "job-3", owner="second", until=2e12, now=1.5e12) is not None
    lease.job.cursor = 3
    with pytest.raises(continuation.LeaseLost):
        lease.checkpoint(lease.job)
    assert world.deps.jobs.load("job-3")["cursor"] == 0


def test_closing_a_job_whose_write_loses_its_race_says_busy_and_does_not_raise(world: World) -> None:
    """Found by the chaos run (seed 76: a 412 on the write that closes the previous job, during a
    Create's rollback): LeaseLost came out of supersede() and failed the rollback (ROLLBACK_FAILED).
    Another writer has the job: the caller polls again, as when the job's lease is held."""
    store = world.deps.jobs
    store.save("job-6", plan_for(world, "job-6").to_dict())
    real = S3JobStore.save

    def refuse_the_release(self: S3JobStore, job_id: str, data: dict[str, Any], *, if_match: str | None = None) -> str:
        if continuation.LEASE not in data:
            raise StaleWrite(job_id)
        return real(self, job_id, data, if_match=if_match)

    with mock.patch.object(S3JobStore, "save", refuse_the_release):
        assert continuation.supersede(store, "job-6", "job-7", until=2e9, now=1e9) is False
    assert continuation.supersede(store, "job-6", "job-7", until=2e9, now=2e9 + 1) is True  # the lease expired
    assert Job.from_dict(store.load("job-6")).superseded_by == "job-7"


@pytest.mark.parametrize("done", [False, True])
def test_a_worker_whose_release_loses_its_race_stops_as_one_that_lost_its_lease(world: World, done: bool) -> None:
    """Found by the chaos run (benchmarks/chaos.py, a 412 on a job's last write during a rollback):
    the release's conditional write refused raised LeaseLost out of work(), which failed the custom
    resource (UPDATE_ROLLBACK_FAILED). Another writer owns the job: the worker stops, as mid-batch."""
    store = world.deps.jobs
    job = plan_for(world, "job-4")
    if done:
        job.cursor = len(job.items)
    store.save("job-4", job.to_dict())
    real = S3JobStore.save
    writes: list[str] = []

    def refuse_the_release(self: S3JobStore, job_id: str, data: dict[str, Any], *, if_match: str | None = None) -> str:
        writes.append("lease" if continuation.LEASE in data else "release")
        if continuation.LEASE not in data:
            raise StaleWrite(job_id)
        return real(self, job_id, data, if_match=if_match)

    with mock.patch.object(S3JobStore, "save", refuse_the_release):
        worked = continuation.work(
            "job-4",
            world.deps.api,
            store,
            snapshots=world.deps.snapshots,
            concurrency=2,
            budget=Budget.of(Context(TIMEOUT)),
            owner="first",
        )
    assert worked is None and writes[-1] == "release"


# -- CloudFormation always has its answer in time ----------------------------------------------


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


class SlowAccounts:
    """Alternate-contact calls that each take ``seconds`` of simulated time; records when each
    account's first call started."""

    def __init__(self, clock: SimulatedClock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds
        self.first_call: dict[str, float] = {}

    def _call(self, account: str) -> None:
        self.first_call.setdefault(account, self.clock())
        self.clock.advance(self.seconds)

    def get_alternate_contact(self, *, AlternateContactType: str, AccountId: str = "own") -> Any:
        self._call(AccountId)
        raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "none"}}, "GetAlternateContact")

    def put_alternate_contact(self, *, AccountId: str = "own", **_: Any) -> None:
        self._call(AccountId)


class SimulatedContext:
    def __init__(self, clock: SimulatedClock, seconds: float) -> None:
        self.clock, self.ends = clock, clock() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.ends - self.clock()) * 1000))


@pytest.mark.parametrize("first_poll_before_wait_ends", [None, 1.0, 30.0])
def test_cloudformation_has_its_answer_five_minutes_before_its_limit(
    world: World, first_poll_before_wait_ends: float | None
) -> None:
    """On a simulated clock: the Provider framework polls is-complete every 30 s from the request on
    (or, the worst case, its first poll comes just before the deploy wait ends); every batch's
    deadline is capped at the deploy wait, so no account starts after it, and the answer arrives
    at least 5 minutes before CloudFormation's one-hour ServiceTimeout."""
    clock = SimulatedClock()
    accounts = SlowAccounts(clock, seconds=1.0)  # 6 calls an account: 6 s each, 600 in an hour
    world.deps.clock = clock
    world.deps.api = AccountApi(accounts, "000000000000", RateLimits(FAST))
    world.deps.concurrency = 1
    world.deps.deploy_wait_seconds = 45 * 60
    members = [Account(f"{100000000000 + i}", "ACTIVE", ("r-root",), f"m{i}") for i in range(700)]
    job = plan("job-4", members, _spec())
    requested = clock()
    job.started_at = requested
    world.deps.jobs.save(job.id, job.to_dict())
    wait_ends = requested + world.deps.deploy_wait_seconds
    if first_poll_before_wait_ends is not None:
        clock.advance(world.deps.deploy_wait_seconds - first_poll_before_wait_ends)
    event = {"RequestType": "Create", "RequestId": job.id, "LogicalResourceId": "Resource"}
    for _ in range(200):
        answer = account_settings.is_complete(event, SimulatedContext(clock, TIMEOUT))
        if answer["IsComplete"]:
            break
        clock.advance(30)  # the query interval
    answered = clock() - requested
    assert answer["Data"]["Status"] == "CONTINUING_IN_WORKFLOW"
    assert answered <= 3600 - 300, answered
    # No account started after the wait (1 s before it, not even a batch: less than its minimum).
    assert max(accounts.first_call.values(), default=requested) <= wait_ends
    # Within the wait, the job worked up to it: three 15-minute invocations, each losing only its
    # 60 s safety margin and the 30 s query interval (2,700 s - 3 x 90 s, 6 s an account).
    if first_poll_before_wait_ends is None:
        assert len(accounts.first_call) >= (45 * 60 - 3 * 90) // 6


def _spec() -> Any:
    from org_bootstrap.settings.alternate_contacts.spec import ContactSpec

    return ContactSpec.from_json(spec())


def plan_for(world: World, job_id: str) -> Job:
    from org_bootstrap.aws.organization import list_accounts

    return plan(
        job_id,
        list_accounts(world.org.organizations),
        _spec(),
        caller_account_id=world.org.management_account_id,
        management_account_id=world.org.management_account_id,
    )


# -- the synthesized workflow, run with the real handler ---------------------------------------


@pytest.fixture(scope="module")
def workflows(example_app: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The continuation workflows' definitions from the synthesized template, by name suffix."""
    stack = example_app["stack"]
    template = example_app["assembly"].get_stack_by_name(stack.stack_name).template
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::StepFunctions::StateMachine" or "StateMachineName" not in resource["Properties"]:
            continue
        suffix = resource["Properties"]["StateMachineName"]["Fn::Join"][1][1]
        parts = resource["Properties"]["DefinitionString"]["Fn::Join"][1]
        text = "".join(
            part if isinstance(part, str) else "arn:aws:lambda:us-east-1:111111111111:function:f" for part in parts
        )
        found[suffix] = json.loads(text)
    return found


@pytest.fixture
def executions(workflows: dict[str, dict[str, Any]]) -> Iterator[Executions]:
    arn = "arn:aws:states:us-east-1:111111111111:stateMachine:OrgBootstrapManagement-"
    # The example config has no [automation]: the drift check's workflow is the same JobWorkflow.
    definitions = {**workflows, "DriftChecks": workflows["ContactsJobs"]}
    local = Executions(lambda: {arn + suffix: definition for suffix, definition in definitions.items()})
    stop = local.register(boto3._get_default_session())
    try:
        yield local
    finally:
        stop()


def test_a_failed_continuation_alarms_and_the_next_deploy_picks_up_its_accounts(
    world: World, executions: Executions
) -> None:
    world.deps.deploy_wait_seconds = 0  # every account goes to the workflow
    arn = "arn:aws:states:us-east-1:111111111111:stateMachine:OrgBootstrapManagement-ContactsJobs"
    with mock.patch.dict("os.environ", {"JOB_WORKFLOW_ARN": arn}):
        created = run(world, "Create", spec())
        assert created["Data"]["Status"] == "CONTINUING_IN_WORKFLOW"
        # The job bucket is unavailable for the whole of the workflow's retries.
        delays: list[float] = []
        unavailable = ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "PutObject")
        with mock.patch.object(world.deps.jobs, "save", side_effect=unavailable):
            (failed,) = executions.run_pending(handler(account_settings.is_complete), sleep=delays.append)
        assert failed.status == EXECUTION_FAILED and failed.outcome and failed.outcome.error == "RetriesExhausted"
        assert delays == [30, 60, 120, 240, 480, 600, 600, 600]  # every retry, capped at 10 minutes
        assert world.contacts("prod-a") == {}
        # The next deploy (an Update that changes one override) works the unfinished accounts too.
        world.deps.deploy_wait_seconds = 3600
        changed = spec(overrides=[{"account": world.ids["sandbox-a"], "contacts": {"SECURITY": {"delete": True}}}])
        updated = run(world, "Update", changed, spec())
    assert updated["Data"]["Failed"] == 0
    for name in ("management", "security", "workloads-a", "prod-a", "prod-b"):
        assert world.contacts(name) == DEFAULT, name
    assert world.contacts("sandbox-a") == {"BILLING": DEFAULT["BILLING"], "OPERATIONS": DEFAULT["OPERATIONS"]}
    previous = Job.from_dict(world.deps.jobs.load(failed.name))
    assert previous.superseded_by == updated["Data"]["Report"].rsplit("/", 1)[-1].removesuffix(".json")
    # Had the old job's workflow still been running, its next batch would stop it, touching nothing.
    calls = sum(world.log.calls.values())
    with mock.patch.dict("os.environ", {"JOB_WORKFLOW_ARN": arn}):
        step = account_settings.is_complete({"ContinueJob": failed.name}, Context(TIMEOUT))
    assert (step["Complete"], step["Cursor"]) == (True, 0) and sum(world.log.calls.values()) == calls


def test_failed_accounts_are_retried_by_the_next_update(world: World) -> None:
    world.log.denied_accounts = {world.ids["prod-a"]}
    first = run(world, "Create", spec(failure_tolerance=1))
    assert first["Data"]["FailedAccounts"] == world.ids["prod-a"]
    world.log.denied_accounts = set()  # the permission problem is fixed
    # An Update whose change is elsewhere (one override) still retries the failed account.
    changed = spec(
        failure_tolerance=1,
        overrides=[{"account": world.ids["security"], "contacts": {"BILLING": DEFAULT["OPERATIONS"]}}],
    )
    second = run(world, "Update", changed, spec(failure_tolerance=1))
    assert second["Data"]["Failed"] == 0
    assert world.contacts("prod-a") == DEFAULT
    assert world.contacts("security")["BILLING"] == DEFAULT["OPERATIONS"]
    assert second["Data"]["Changed"] == 2  # prod-a (healed) and security (the change); nobody else rewritten


def test_a_failed_drift_continuation_is_resumed_by_the_next_drift_run(world: World, executions: Executions) -> None:
    sns = clients.client("sns")
    deps = drift.Dependencies(
        organizations=world.org.organizations,
        api=AccountApi(clients.client("account"), world.org.management_account_id, RateLimits(FAST)),
        jobs=world.deps.jobs,
        spec=_spec(),
        cloudwatch=clients.client("cloudwatch"),
        sns=sns,
        topic_arn=sns.create_topic(Name="notifications")["TopicArn"],
        management_account_id=world.org.management_account_id,
        caller_account_id=world.org.management_account_id,
        concurrency=1,
    )
    arn = "arn:aws:states:us-east-1:111111111111:stateMachine:OrgBootstrapManagement-DriftChecks"
    context = Context(continuation.SAFETY_MARGIN_SECONDS)  # each invocation: one account, then hand over
    with (
        mock.patch.object(drift, "dependencies", lambda: deps),
        mock.patch.object(drift, "MIN_BATCH_SECONDS", 0.0),
        mock.patch.dict("os.environ", {"JOB_WORKFLOW_ARN": arn}),
    ):
        first = drift.on_schedule({"Source": "drift-schedule"}, context)
        assert first["Complete"] is False and first["Cursor"] == 1
        unavailable = ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "PutObject")
        with mock.patch.object(deps.jobs, "save", side_effect=unavailable):
            (failed,) = executions.run_pending(handler(drift.on_schedule, context), sleep=lambda _: None)
        assert failed.status == EXECUTION_FAILED
        # The next scheduled run resumes that check where it stopped, in a new execution.
        resumed = drift.on_schedule({"Source": "drift-schedule"}, context)
        assert resumed == {"Job": first["Job"], "Complete": False, "Status": "RESUMED"}
        again = drift.on_schedule({"Source": "drift-schedule"}, context)  # its execution runs: leave it
        assert again["Status"] == "PREVIOUS_CHECK_RUNNING"
        (finished,) = executions.run_pending(handler(drift.on_schedule, context), sleep=lambda _: None)
    assert finished.status == SUCCEEDED and finished.name == f"{first['Job']}-r1"
    job = Job.from_dict(deps.jobs.load(first["Job"]))
    assert job.done and len(job.outcomes) == len(job.items)
    assert world.contacts("prod-a") == DEFAULT


def handler(function: Any, context: Any = None) -> Any:
    """What the LambdaInvoke task does: invoke the function with the payload, return its result."""
    return lambda _arn, payload: function(payload, context or Context(TIMEOUT))


def test_a_job_knows_what_it_left_unfinished() -> None:
    job = Job("j", {"k": {"BILLING": "DELETE"}}, [("1", "k"), ("2", "k"), ("3", "k")], cursor=2)
    job.outcomes = [{"account": "1", "status": "changed"}, {"account": "2", "status": FAILED}]
    assert job.unfinished() == {"2": {"BILLING": "DELETE"}, "3": {"BILLING": "DELETE"}}
    job.superseded_by = "next"
    assert job.done and job.unfinished() == {"2": {"BILLING": "DELETE"}}


def test_a_previous_job_expired_from_the_bucket_is_no_obstacle(world: World) -> None:
    world.deps.jobs.set_last_job("Resource", "expired-by-the-lifecycle-rule")
    assert world.deps.jobs.last_job("Resource") is None
    assert run(world, "Create", spec())["Data"]["Changed"] == 6
