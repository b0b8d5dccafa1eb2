"""Planning contact jobs: the work each request implies, and what is skipped and why."""

from __future__ import annotations

from org_bootstrap.aws.organization import Account
from org_bootstrap.engine.jobs import MANAGEMENT_ACCOUNT, plan
from org_bootstrap.engine.reconcile import RESTORE
from org_bootstrap.settings.alternate_contacts.spec import DELETE, ContactSpec

ROOT, OU = "r-ab12", "ou-ab12-aaaaaaaa"
MANAGEMENT, DELEGATED, MEMBER = "111111111111", "222222222222", "333333333333"
ACCOUNTS = [
    Account(MANAGEMENT, "ACTIVE", (ROOT,)),
    Account(DELEGATED, "ACTIVE", (ROOT,)),
    Account(MEMBER, "ACTIVE", (ROOT, OU)),
    Account("444444444444", "PENDING_CLOSURE", (ROOT, OU)),
]


def contact(name: str) -> dict[str, str]:
    return {"Name": name, "Title": "T", "EmailAddress": "a@example.com", "PhoneNumber": "1"}


def spec(**extra: object) -> ContactSpec:
    return ContactSpec.parse({"contacts": {"BILLING": contact("B"), "SECURITY": contact("S")}, **extra})


def targets_of(job_items: list[tuple[str, str]], sets: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    return {account: sets[key] for account, key in job_items}


def test_create_targets_every_active_account_and_reports_the_rest() -> None:
    job = plan("j", ACCOUNTS, spec())
    assert [account for account, _ in job.items] == [MANAGEMENT, DELEGATED, MEMBER]
    assert job.skipped == [("444444444444", "PENDING_CLOSURE")]
    assert len(job.target_sets) == 1, "identical targets are stored once"


def test_delegated_administrator_caller_skips_the_management_account() -> None:
    job = plan("j", ACCOUNTS, spec(), caller_account_id=DELEGATED, management_account_id=MANAGEMENT)
    assert MANAGEMENT not in [account for account, _ in job.items]
    assert (MANAGEMENT, MANAGEMENT_ACCOUNT) in job.skipped
    same = plan("j", ACCOUNTS, spec(), caller_account_id=MANAGEMENT, management_account_id=MANAGEMENT)
    assert MANAGEMENT in [account for account, _ in same.items]


def test_update_plans_only_what_changed_and_releases_by_removal_mode() -> None:
    old = spec(removal="restore")
    new = ContactSpec.parse(
        {
            "contacts": {"BILLING": contact("B2"), "SECURITY": contact("S")},
            "overrides": [{"organizational_unit": OU, "contacts": {"OPERATIONS": contact("O")}}],
            "targets": {"exclude_accounts": [DELEGATED]},
            "removal": "restore",
        }
    )
    job = plan("j", ACCOUNTS, new, old)
    found = targets_of(job.items, job.target_sets)
    assert found[MANAGEMENT] == {"BILLING": contact("B2")}
    assert found[MEMBER] == {"BILLING": contact("B2"), "OPERATIONS": contact("O")}
    assert found[DELEGATED] == {"BILLING": RESTORE, "SECURITY": RESTORE}, "excluded now: released"


def test_unchanged_update_plans_nothing_and_delete_releases_everything() -> None:
    assert plan("j", ACCOUNTS, spec(), spec()).items == []
    deleting = plan("j", ACCOUNTS, None, spec(removal="delete"))
    assert set(targets_of(deleting.items, deleting.target_sets)[MEMBER].values()) == {DELETE}
    assert plan("j", ACCOUNTS, None, spec()).items == [], "retain releases nothing"


def test_a_reconcile_of_an_unchanged_config_plans_every_targeted_account_as_a_create_would() -> None:
    """``everywhere`` (a new Reconcile value): the accounts an unchanged Update would skip are all
    compared, with what the config wants there; excluded and inactive accounts stay out."""
    excluding = spec(targets={"exclude_accounts": [DELEGATED]})
    job = plan("j", ACCOUNTS, excluding, excluding, everywhere=True)
    assert targets_of(job.items, job.target_sets) == {
        MANAGEMENT: {"BILLING": contact("B"), "SECURITY": contact("S")},
        MEMBER: {"BILLING": contact("B"), "SECURITY": contact("S")},
    }
    assert job.skipped == [("444444444444", "PENDING_CLOSURE")]
    assert plan("j", ACCOUNTS, excluding, excluding).items == []


def test_scoped_specs_split_the_organization_between_the_two_stacks() -> None:
    management_side = plan("j", ACCOUNTS, spec().scoped("management_account"), management_account_id=MANAGEMENT)
    member_side = plan(
        "j",
        ACCOUNTS,
        spec().scoped("member_accounts"),
        caller_account_id=DELEGATED,
        management_account_id=MANAGEMENT,
    )
    assert [account for account, _ in management_side.items] == [MANAGEMENT]
    assert [account for account, _ in member_side.items] == [DELEGATED, MEMBER]
    assert (MANAGEMENT, MANAGEMENT_ACCOUNT) not in member_side.skipped, "out of scope, not refused"


class FakeAccountClient:
    """Every account starts without contacts; the calls are counted."""

    def __init__(self) -> None:
        self.contacts: dict[tuple[str, str], dict[str, str]] = {}

    def get_alternate_contact(self, AlternateContactType: str, AccountId: str = "own") -> dict[str, object]:
        from botocore.exceptions import ClientError

        found = self.contacts.get((AccountId, AlternateContactType))
        if found is None:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "none"}}, "Get")
        return {"AlternateContact": found}

    def put_alternate_contact(self, AlternateContactType: str, AccountId: str = "own", **contact: str) -> None:
        self.contacts[(AccountId, AlternateContactType)] = contact


def test_progress_is_checkpointed_in_order_during_a_batch() -> None:
    from org_bootstrap.engine.jobs import run_batch
    from org_bootstrap.engine.pacing import Quota, RateLimits
    from org_bootstrap.engine.reconcile import AccountApi

    accounts = [Account(f"{i:012d}", "ACTIVE", (ROOT,)) for i in range(1, 12)]
    job = plan("j", accounts, spec())
    fast = RateLimits({op: Quota(10_000, 10_000) for op in ("GetAlternateContact", "PutAlternateContact")})
    saved: list[tuple[int, int]] = []
    run_batch(
        job,
        AccountApi(FakeAccountClient(), MANAGEMENT, fast),
        snapshots=None,
        deadline=float("inf"),
        concurrency=3,
        checkpoint=lambda progress: saved.append((progress.cursor, len(progress.outcomes))),
        checkpoint_every=4,
    )
    assert job.done and job.counts()["changed"] == 11
    assert saved, "saved before the batch ended"
    assert all(cursor == outcomes and cursor >= 4 for cursor, outcomes in saved)
    assert [o["account"] for o in job.outcomes] == [a.id for a in accounts], "outcomes in the job's order"
