"""Alternate-contacts custom resource lifecycle against the strict simulated organization."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest

from org_bootstrap.aws import clients
from org_bootstrap.engine.jobs import Job, summary
from org_bootstrap.engine.pacing import Quota, RateLimits
from org_bootstrap.engine.reconcile import AccountApi
from org_bootstrap.engine.stores import DynamoDbSnapshots, S3JobStore
from org_bootstrap.handlers import account_settings
from org_bootstrap.handlers.account_settings import Dependencies
from org_bootstrap.settings.alternate_contacts.spec import ContactSpec
from org_bootstrap.validation import InvalidInputError
from simulation.organization import ApiLog, Organization, Storm
from tests.conftest import cfn_event, create_snapshot_table

FAST = {op: Quota(10_000, 10_000) for op in ("PutAlternateContact", "GetAlternateContact", "DeleteAlternateContact")}


def contact(name: str, email: str = "team@example.com") -> dict[str, str]:
    return {"Name": name, "Title": "Owner", "EmailAddress": email, "PhoneNumber": "+1 206 555 0100"}


BILLING, OPERATIONS, SECURITY = contact("Billing"), contact("Operations"), contact("Security")
DEFAULT = {"BILLING": BILLING, "OPERATIONS": OPERATIONS, "SECURITY": SECURITY}


@dataclass
class World:
    org: Organization
    log: ApiLog
    deps: Dependencies
    ids: dict[str, str]
    ous: dict[str, str]
    workflow: Workflow

    def contacts(self, name: str) -> dict[str, dict[str, str]]:
        return self.org.contacts(self.ids[name])


class Context:
    """The part of the Lambda context the handler reads."""

    def __init__(self, remaining_seconds: float) -> None:
        self.remaining = remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining * 1000)


class Workflow:
    """The continuation workflow's executions (in moto), and its loop run as the state machine runs it."""

    ARN = "arn:aws:states:us-east-1:111111111111:stateMachine:OrgBootstrapManagement-ContactsJobs"

    def __init__(self) -> None:
        self.sfn = clients.client("stepfunctions")
        self.sfn.create_state_machine(
            name=self.ARN.rsplit(":", 1)[-1],
            definition=json.dumps({"StartAt": "Work", "States": {"Work": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::111111111111:role/workflow",
        )

    def started(self) -> list[str]:
        listed = self.sfn.list_executions(stateMachineArn=self.ARN)["executions"]
        return sorted(execution["name"] for execution in listed)

    def loop(self, job_id: str, context: Any) -> dict[str, Any]:
        """Work -> (done? end : Work), with the handler the Task invokes."""
        for _ in range(100):
            answer = account_settings.is_complete({"ContinueJob": job_id}, context)
            if answer["Complete"]:
                return answer
        raise AssertionError("the workflow never finished the job")


@pytest.fixture
def world(api_log: ApiLog) -> Iterator[World]:
    """Root: management, security (delegated admin), a suspended account.
    Workloads OU: workloads-a; its nested Prod OU: prod-a, prod-b. Sandbox OU: sandbox-a."""
    org = Organization()
    org.enable_trusted_access()
    ous = {"workloads": org.create_ou("Workloads")}
    ous["prod"] = org.create_ou("Prod", ous["workloads"])
    ous["sandbox"] = org.create_ou("Sandbox")
    ids = {
        "management": org.management_account_id,
        "security": org.create_account("security", account_id="222222222222"),
        "suspended": org.create_account("suspended", account_id="999999999999"),
        "workloads-a": org.create_account("workloads-a", parent_id=ous["workloads"], account_id="333333333333"),
        "prod-a": org.create_account("prod-a", parent_id=ous["prod"], account_id="444444444444"),
        "prod-b": org.create_account("prod-b", parent_id=ous["prod"], account_id="555555555555"),
        "sandbox-a": org.create_account("sandbox-a", parent_id=ous["sandbox"], account_id="666666666666"),
    }
    org.set_status(ids["suspended"], "SUSPENDED")
    s3 = clients.client("s3")
    s3.create_bucket(Bucket="jobs")
    dynamodb = clients.client("dynamodb")
    create_snapshot_table("snapshots")
    deps = Dependencies(
        organizations=org.organizations,
        # The handler's own clients: their retry policy (clients.py) is part of what is tested.
        api=AccountApi(clients.client("account"), org.management_account_id, RateLimits(FAST)),
        management_account_id=org.management_account_id,
        jobs=S3JobStore(s3, "jobs"),
        snapshots=DynamoDbSnapshots(dynamodb, "snapshots"),
        deploy_wait_seconds=3600,
        concurrency=4,
    )
    with (
        mock.patch.object(account_settings, "dependencies", lambda: deps),
        mock.patch.dict("os.environ", {"JOB_WORKFLOW_ARN": Workflow.ARN}),
        mock.patch("botocore.endpoint.time.sleep"),  # botocore's retry backoff, in simulated time
    ):
        yield World(org, api_log, deps, ids, ous, Workflow())


def spec(**overrides: Any) -> str:
    data: dict[str, Any] = {"contacts": DEFAULT}
    data.update(overrides)
    return ContactSpec.parse(data).to_json()


def run(
    world: World, request: str, new: str, old: str | None = None, *, remaining: float = 900, rollback: bool = False
) -> dict[str, Any]:
    """What the Provider framework does: on_event, then is_complete until complete. ``rollback``: the
    stack's status says CloudFormation is rolling back a failed deploy."""
    if rollback:
        world.log.stack_status = "UPDATE_ROLLBACK_IN_PROGRESS" if request == "Update" else "ROLLBACK_IN_PROGRESS"
    try:
        return _run(world, request, new, old, remaining=remaining)
    finally:
        world.log.stack_status = None


def _run(world: World, request: str, new: str, old: str | None, *, remaining: float) -> dict[str, Any]:
    event = cfn_event(
        request,
        {"Spec": new},
        physical_id=None if request == "Create" else account_settings.PHYSICAL_ID,
        old_properties={"Spec": old} if old is not None else None,
    )
    event["RequestId"] = f"{request}-{len(world.log.calls)}-{sum(world.log.calls.values())}"
    started = account_settings.on_event(event)
    assert started["PhysicalResourceId"] == account_settings.PHYSICAL_ID
    for polls in range(1, 1000):
        answer = account_settings.is_complete({**event, **started}, Context(remaining))
        if answer["IsComplete"]:
            answer["Polls"] = polls
            return answer
    raise AssertionError("never completed")


ACTIVE_TARGETS = ["management", "security", "workloads-a", "prod-a", "prod-b", "sandbox-a"]


def test_fresh_organization_gets_every_contact_and_suspended_is_skipped(world: World) -> None:
    result = run(world, "Create", spec())
    for name in ACTIVE_TARGETS:
        assert world.contacts(name) == DEFAULT, name
    assert world.contacts("suspended") == {}
    data = result["Data"]
    assert (data["Changed"], data["Unchanged"], data["Skipped"], data["Failed"]) == (6, 0, 1, 0)
    assert world.log.calls["PutAlternateContact"] == 18
    key = data["Report"].removeprefix("s3://jobs/")
    report = json.loads(clients.client("s3").get_object(Bucket="jobs", Key=key)["Body"].read())
    assert report["skipped"] == [{"account": world.ids["suspended"], "status": "SUSPENDED"}]


def test_management_account_is_set_without_account_id(world: World) -> None:
    # The strict organization refuses AccountId=<management account>: success proves the address.
    run(world, "Create", spec())
    assert world.contacts("management") == DEFAULT


def test_everything_already_correct_makes_no_writes(world: World) -> None:
    run(world, "Create", spec())
    world.log.calls.clear()
    result = run(world, "Create", spec())  # a re-run of the same request
    assert world.log.writes() == 0
    assert result["Data"]["Unchanged"] == 6


def test_partly_drifted_organization_writes_only_the_drift(world: World) -> None:
    run(world, "Create", spec())
    world.org.put_contact(world.ids["prod-a"], "SECURITY", contact("Someone else"))
    world.log.calls.clear()
    result = run(world, "Create", spec())
    assert world.log.writes() == 1
    assert world.contacts("prod-a")["SECURITY"] == SECURITY
    assert result["Data"]["Changed"] == 1


def test_update_does_only_the_work_the_change_implies(world: World) -> None:
    first = spec()
    run(world, "Create", first)
    world.log.calls.clear()
    second = spec(contacts={**DEFAULT, "BILLING": contact("New billing", "bills@example.com")})
    run(world, "Update", second, first)
    assert world.log.calls["PutAlternateContact"] == 6
    assert world.log.calls["GetAlternateContact"] == 6, "only BILLING is read"
    assert world.contacts("prod-b")["BILLING"]["Name"] == "New billing"
    world.log.calls.clear()
    run(world, "Update", second, second)
    assert sum(world.log.calls.values()) == 0, "nothing changed, nothing called"


def test_nested_ou_targets_and_exclusions(world: World) -> None:
    run(
        world,
        "Create",
        spec(targets={"organizational_units": [world.ous["workloads"]], "exclude_accounts": [world.ids["prod-b"]]}),
    )
    assert world.contacts("workloads-a") == DEFAULT
    assert world.contacts("prod-a") == DEFAULT, "nested OU included"
    assert world.contacts("prod-b") == {}, "excluded account"
    for name in ("management", "security", "sandbox-a"):
        assert world.contacts(name) == {}, name


def test_excluded_ou_and_management_account_are_left_alone(world: World) -> None:
    run(
        world,
        "Create",
        spec(
            targets={"exclude_organizational_units": [world.ous["prod"]], "exclude_accounts": [world.ids["management"]]}
        ),
    )
    assert world.contacts("prod-a") == {}
    assert world.contacts("management") == {}
    assert world.contacts("workloads-a") == DEFAULT


def test_override_precedence_most_specific_wins_per_type(world: World) -> None:
    workloads_security, prod_security = contact("Workloads SOC"), contact("Prod SOC")
    account_billing = contact("Prod-b billing")
    run(
        world,
        "Create",
        spec(
            overrides=[
                {"organizational_unit": world.ous["workloads"], "contacts": {"SECURITY": workloads_security}},
                {"organizational_unit": world.ous["prod"], "contacts": {"SECURITY": prod_security}},
                {
                    "account": world.ids["prod-b"],
                    "contacts": {"BILLING": account_billing, "OPERATIONS": {"delete": True}},
                },
            ]
        ),
    )
    assert world.contacts("workloads-a")["SECURITY"] == workloads_security
    assert world.contacts("prod-a")["SECURITY"] == prod_security
    assert world.contacts("prod-a")["BILLING"] == BILLING
    assert world.contacts("prod-b") == {"BILLING": account_billing, "SECURITY": prod_security}
    assert world.contacts("sandbox-a") == DEFAULT


def test_type_marked_for_deletion_is_deleted(world: World) -> None:
    world.org.put_contact(world.ids["sandbox-a"], "OPERATIONS", contact("Old ops"))
    run(world, "Create", spec(contacts={"BILLING": BILLING, "OPERATIONS": {"delete": True}}))
    assert world.contacts("sandbox-a") == {"BILLING": BILLING}


def test_delete_with_retain_leaves_contacts(world: World) -> None:
    deployed = spec()
    run(world, "Create", deployed)
    world.log.calls.clear()
    run(world, "Delete", deployed)
    assert world.contacts("prod-a") == DEFAULT
    assert sum(world.log.calls.values()) == 0


def test_delete_with_delete_removes_managed_types(world: World) -> None:
    deployed = spec(contacts={"BILLING": BILLING, "SECURITY": SECURITY}, removal="delete")
    world.org.put_contact(world.ids["prod-a"], "OPERATIONS", contact("Unmanaged ops"))
    run(world, "Create", deployed)
    run(world, "Delete", deployed)
    assert world.contacts("prod-a") == {"OPERATIONS": contact("Unmanaged ops")}, "unmanaged type left alone"
    assert world.contacts("sandbox-a") == {}


def test_delete_with_restore_puts_back_earlier_values_or_deletes(world: World) -> None:
    original = contact("Original security")
    world.org.put_contact(world.ids["prod-a"], "SECURITY", original)
    deployed = spec(removal="restore")
    run(world, "Create", deployed)
    assert world.contacts("prod-a") == DEFAULT
    # A second change must not overwrite the snapshot of the value from before the stack.
    changed = spec(removal="restore", contacts={**DEFAULT, "SECURITY": contact("Second")})
    run(world, "Update", changed, deployed)
    run(world, "Delete", changed)
    assert world.contacts("prod-a") == {"SECURITY": original}, "restored, and no-contact types deleted"
    assert world.contacts("sandbox-a") == {}, "restore where no contact existed deletes the type"


def test_account_leaving_the_targets_is_released_by_the_removal_mode(world: World) -> None:
    first = spec(removal="delete")
    run(world, "Create", first)
    second = spec(removal="delete", targets={"exclude_accounts": [world.ids["sandbox-a"]]})
    run(world, "Update", second, first)
    assert world.contacts("sandbox-a") == {}
    assert world.contacts("prod-a") == DEFAULT


def test_throttling_converges_with_a_bounded_number_of_calls(world: World) -> None:
    world.log.throttle_rate = {"PutAlternateContact": 0.3, "GetAlternateContact": 0.3}
    result = run(world, "Create", spec())
    for name in ACTIVE_TARGETS:
        assert world.contacts(name) == DEFAULT, name
    assert result["Data"]["Failed"] == 0
    assert world.log.throttled["PutAlternateContact"] > 0
    ideal = 18 + 18  # one read and one write per account and type
    assert sum(world.log.calls.values()) <= 2 * ideal


def test_invalid_input_changes_nothing(world: World) -> None:
    bad = json.dumps({"contacts": {"BILLING": {**BILLING, "EmailAddress": "not-an-address"}, "SECURITY": SECURITY}})
    with pytest.raises(InvalidInputError, match=r"Spec.contacts.BILLING.EmailAddress: .* is not valid"):
        run(world, "Create", bad)
    bad_phone = json.dumps({"contacts": {"BILLING": {**BILLING, "PhoneNumber": "call me"}}})
    with pytest.raises(InvalidInputError, match=r"PhoneNumber"):
        run(world, "Create", bad_phone)
    assert sum(world.log.calls.values()) == 0
    assert all(world.contacts(name) == {} for name in ACTIVE_TARGETS)


def test_one_failing_account_does_not_stop_the_rest_and_fails_the_deploy(world: World) -> None:
    world.log.denied_accounts = {world.ids["prod-a"]}
    with pytest.raises(RuntimeError, match=r"1 account\(s\) failed.*444444444444.*AccessDeniedException"):
        run(world, "Create", spec())
    assert world.contacts("prod-b") == DEFAULT
    assert world.contacts("prod-a") == {}


def _planned_then(world: World, change: Any) -> dict[str, Any]:
    """A Create whose job is planned, then ``change`` happens to the organization, then it is worked."""
    event = cfn_event("Create", {"Spec": spec()})
    started = account_settings.on_event(event)
    change()
    for _ in range(100):
        answer = account_settings.is_complete({**event, **started}, Context(900))
        if answer["IsComplete"]:
            return answer
    raise AssertionError("never completed")


@pytest.mark.parametrize("change", ["suspended", "removed"])
def test_an_account_that_leaves_active_membership_after_the_plan_is_skipped_not_failed(
    world: World, change: str
) -> None:
    # Closing or removing one account while a deploy runs must not fail (and roll back) the deploy.
    prod_a = world.ids["prod-a"]

    def leave() -> None:
        if change == "suspended":
            world.org.set_status(prod_a, "SUSPENDED")
        else:
            world.org.organizations.remove_account_from_organization(AccountId=prod_a)

    data = _planned_then(world, leave)["Data"]

    assert (data["Changed"], data["Skipped"], data["Failed"]) == (5, 2, 0)
    assert world.contacts("prod-b") == DEFAULT
    key = data["Report"].removeprefix("s3://jobs/")
    report = json.loads(clients.client("s3").get_object(Bucket="jobs", Key=key)["Body"].read())
    skipped = {entry["account"]: entry for entry in report["skipped"]}
    why = "SUSPENDED since the job was planned" if change == "suspended" else "no longer a member of the organization"
    assert why in skipped[prod_a]["reason"]


def test_an_active_member_refused_still_fails_when_its_standing_cannot_be_read(world: World) -> None:
    world.log.denied_accounts = {world.ids["prod-a"]}
    world.log.add_storm(Storm({"DescribeAccount"}, code="AccessDeniedException", message="no"))
    with pytest.raises(RuntimeError, match=r"1 account\(s\) failed.*444444444444.*AccessDeniedException"):
        run(world, "Create", spec())


def test_failure_tolerance_lets_the_deploy_succeed_and_reports_the_failure(world: World) -> None:
    world.log.denied_accounts = {world.ids["prod-a"]}
    result = run(world, "Create", spec(failure_tolerance=1))
    assert result["Data"]["Failed"] == 1
    assert result["Data"]["FailedAccounts"] == world.ids["prod-a"]
    assert "AccessDeniedException" in result["Data"]["FailureReasons"]


def test_an_organization_needing_several_invocations(world: World) -> None:
    slow = {op: Quota(50, 1) for op in FAST}
    world.deps.api = AccountApi(world.deps.api.client, world.org.management_account_id, RateLimits(slow))
    world.deps.concurrency = 1
    with mock.patch.object(account_settings, "MIN_BATCH_SECONDS", 0.0):
        result = run(world, "Create", spec(), remaining=account_settings.SAFETY_MARGIN_SECONDS + 0.05)
    assert result["Polls"] > 1
    assert result["Data"]["Changed"] == 6
    for name in ACTIVE_TARGETS:
        assert world.contacts(name) == DEFAULT, name


def test_a_job_beyond_the_deploy_wait_continues_in_its_workflow(world: World) -> None:
    world.deps.deploy_wait_seconds = 0
    slow = {op: Quota(50, 1) for op in FAST}
    world.deps.api = AccountApi(world.deps.api.client, world.org.management_account_id, RateLimits(slow))
    world.deps.concurrency = 1
    with mock.patch.object(account_settings, "MIN_BATCH_SECONDS", 0.0):
        context = Context(account_settings.SAFETY_MARGIN_SECONDS + 0.05)
        result = run(world, "Create", spec(), remaining=context.remaining)
        assert result["Data"]["Status"] == "CONTINUING_IN_WORKFLOW"
        assert result["Data"]["Complete"] == "false"
        (execution,) = world.workflow.started()  # named after the job: one execution per job
        assert world.contacts("management") == {}  # the deploy wait was over: no batch started
        answer = world.workflow.loop(execution, context)
    assert answer["Report"].startswith("s3://jobs/")
    assert (answer["Cursor"], answer["Of"], answer["FailedBeyondTolerance"]) == (6, 6, False)
    for name in ACTIVE_TARGETS:
        assert world.contacts(name) == DEFAULT, name


def test_summary_stays_within_cloudformation_response_limit() -> None:
    job = Job("j", {}, [(f"{i:012d}", "k") for i in range(3000)], cursor=3000)
    job.outcomes = [
        {"account": f"{i:012d}", "status": "failed", "reason": "AccessDeniedException: " + "x" * 300}
        for i in range(3000)
    ]
    data = summary(job, "s3://bucket/alternate-contacts/reports/j.json")
    assert len(json.dumps(data)) < 4096
    assert data["Failed"] == 3000
    assert data["FailedAccounts"].endswith("more")


def test_logs_never_carry_full_email_addresses_or_phone_numbers(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    world.org.put_contact(world.ids["prod-a"], "SECURITY", contact("Before", "before.person@example.com"))
    run(world, "Create", spec(removal="restore"))
    text = caplog.text
    assert "put SECURITY contact of 444444444444" in text, "the log is there, masked"
    for secret in ("team@example.com", "before.person@example.com", "+1 206 555 0100", "206 555"):
        assert secret not in text


# -- CloudFormation's rollback ----------------------------------------------------------------


def everyone(world: World) -> dict[str, dict[str, dict[str, str]]]:
    return {name: world.contacts(name) for name in world.ids}


def test_rollback_update_whose_old_properties_are_invalid_applies_the_current_spec(world: World) -> None:
    deployed = spec()
    run(world, "Create", deployed)
    before = everyone(world)
    bad = json.dumps({"contacts": {**DEFAULT, "SECURITY": {**SECURITY, "EmailAddress": "not-an-address"}}})
    with pytest.raises(InvalidInputError, match=r"SECURITY\.EmailAddress"):
        run(world, "Update", bad, deployed)  # validated before any change
    world.log.calls.clear()
    # CloudFormation rolls back: the old properties again, the failed ones as OldResourceProperties.
    result = run(world, "Update", deployed, bad, rollback=True)
    assert result["Data"]["Failed"] == 0 and world.log.writes() == 0
    assert world.log.calls["GetAlternateContact"] == 18, "every targeted type read, as a Create does"
    assert everyone(world) == before


def test_rollback_of_a_failed_update_undoes_only_what_it_wrote(world: World) -> None:
    original = contact("Original operations")
    world.org.put_contact(world.ids["prod-b"], "OPERATIONS", original)
    deployed = spec(contacts={"BILLING": BILLING, "SECURITY": SECURITY})
    run(world, "Create", deployed)
    before = everyone(world)
    world.log.denied_accounts = {world.ids["prod-a"]}  # an SCP, say: every call for it is refused
    changed = spec(contacts={**DEFAULT, "SECURITY": contact("New security")})
    with pytest.raises(RuntimeError, match=r"1 account\(s\) failed.*444444444444"):
        run(world, "Update", changed, deployed)
    assert world.contacts("prod-b")["OPERATIONS"] == OPERATIONS, "written by the failed update"
    world.log.callers.clear()
    result = run(world, "Update", deployed, changed, rollback=True)  # the rollback, with prod-a still refused
    assert result["Data"]["Failed"] == 0
    assert everyone(world) == before, "SECURITY back, and OPERATIONS back to what it was (or none)"
    assert world.contacts("prod-b")["OPERATIONS"] == original
    assert not any(target == world.ids["prod-a"] for (_, _, target) in world.log.callers), "never tried again"


def test_an_update_after_a_failed_update_kept_without_rollback_applies_its_own_spec_in_full(world: World) -> None:
    deployed = spec(contacts={"BILLING": BILLING})
    run(world, "Create", deployed)
    world.log.denied_accounts = {world.ids["prod-a"]}
    failed = spec(contacts={"BILLING": BILLING, "OPERATIONS": OPERATIONS})
    with pytest.raises(RuntimeError, match=r"1 account\(s\) failed"):
        run(world, "Update", failed, deployed)  # kept as it failed: cdk deploy --no-rollback
    world.log.denied_accounts = set()
    fixed = spec(contacts={"BILLING": BILLING, "OPERATIONS": OPERATIONS, "SECURITY": SECURITY})
    result = run(world, "Update", fixed, failed)  # the user's next deploy, not a rollback
    assert result["Data"]["Failed"] == 0
    for name in ACTIVE_TARGETS:
        assert world.contacts(name) == DEFAULT, f"{name}: the new spec everywhere, not only where the failed job wrote"


def test_a_rollback_that_cannot_put_an_account_back_completes_and_names_it(world: World) -> None:
    deployed = spec(contacts={"BILLING": BILLING})
    run(world, "Create", deployed)
    before = everyone(world)
    world.log.denied_accounts = {world.ids["prod-a"]}
    changed = spec(contacts={"BILLING": BILLING, "OPERATIONS": OPERATIONS})
    with pytest.raises(RuntimeError, match=r"1 account\(s\) failed"):
        run(world, "Update", changed, deployed)
    assert world.contacts("prod-b")["OPERATIONS"] == OPERATIONS
    # The rolled-back role may not write prod-b any more (say, the previous config excluded it).
    world.log.denied_accounts = {world.ids["prod-b"]}
    result = run(world, "Update", deployed, changed, rollback=True)
    assert result["Data"]["Status"] == "COMPLETE", "the rollback itself never fails"
    assert result["Data"]["Failed"] == 1 and world.ids["prod-b"] in result["Data"]["FailedAccounts"]
    assert world.contacts("prod-b")["OPERATIONS"] == OPERATIONS, "left as the failed deploy wrote it, and reported"
    others = {name: value for name, value in everyone(world).items() if name != "prod-b"}
    assert others == {name: value for name, value in before.items() if name != "prod-b"}


def test_delete_of_a_failed_create_undoes_what_it_wrote_whatever_the_removal_mode(world: World) -> None:
    original = contact("Original security")
    world.org.put_contact(world.ids["prod-b"], "SECURITY", original)
    before = everyone(world)
    world.log.denied_accounts = {world.ids["prod-a"]}
    failed = spec()  # removal = "retain": a stack delete would leave the contacts
    with pytest.raises(RuntimeError, match=r"1 account\(s\) failed"):
        run(world, "Create", failed)
    assert world.contacts("prod-b") == DEFAULT
    run(world, "Delete", failed, rollback=True)  # CloudFormation's rollback of the failed Create
    assert everyone(world) == before
    world.log.denied_accounts = set()
    run(world, "Create", failed)  # a Create that succeeds: its Delete keeps the removal mode
    run(world, "Delete", failed)
    assert world.contacts("prod-b") == DEFAULT
