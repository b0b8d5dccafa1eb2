"""The chaos run, short: a few seeds on a small organization, every invariant checked
(benchmarks/chaos.py runs many seeds on several hundred accounts; docs/reliability.md)."""

from __future__ import annotations

import random

import pytest

from benchmarks import chaos
from simulation.organization import Organization, strict_aws


@pytest.mark.parametrize("seed", [1, 2])
def test_a_seeded_chaos_run_keeps_every_invariant(seed: int) -> None:
    run = chaos.run_seed(seed, 20, steps=4)
    assert sum(run.checks.values()) >= 7
    assert run.history[0].startswith(f"seed {seed}:")
    assert any(line.startswith("Create") for line in run.history)
    assert any(line.startswith("Update") for line in run.history)


def test_the_faults_drawn_depend_only_on_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A drawn "Region that takes hours" sets the local tools' Region time, which the run restores
    # when it ends (_simulated); here it must not outlive the test, or a later test's Regions take hours.
    monkeypatch.setattr(chaos.worlds, "REGION_OPT_SECONDS", chaos.worlds.REGION_OPT_SECONDS)
    drawn = []
    for _ in range(2):
        run = chaos.Run(5, 20)
        log = chaos.ChaosLog()
        rng = random.Random(5)
        for _ in range(6):
            chaos._inject(rng, log, run, members=["300000015838"])
        drawn.append(run.history)
    assert drawn[0] == drawn[1] and drawn[0]


def test_a_killed_invocation_unwinds_past_the_handlers_except_clauses() -> None:
    log = chaos.ChaosLog()
    log.armed, log.kill_at = True, 2
    assert log.refusal("ListAccounts") is None
    with pytest.raises(chaos.Killed):
        try:
            log.refusal("ListAccounts")
        except Exception:  # what a handler's broadest handler catches  # pragma: no cover
            pytest.fail("a kill was caught as an error")
    assert log.fired["invocation killed"] == 1 and log.kill_at is None


def test_a_broken_invariant_names_the_seed_and_the_history() -> None:
    run = chaos.Run(42, 20, history=["seed 42: 20 accounts", "Create (attempt 1): CREATE_COMPLETE"])
    run.leases = [("job-1", "a", 0.0, 100.0), ("job-1", "b", 50.0, 150.0)]
    with pytest.raises(chaos.InvariantBroken, match=r"seed 42: invariant broken: one worker per job") as broken:
        chaos.check_leases(run)
    assert "Create (attempt 1)" in str(broken.value)
    run.leases, run.released = [("job-1", "a", 0.0, 100.0), ("job-1", "b", 50.0, 150.0)], {("job-1", "a"): 40.0}
    chaos.check_leases(run)  # released before the second worker took it


def test_after_a_kill_every_thread_of_the_invocation_dies_at_its_next_call() -> None:
    log = chaos.ChaosLog()
    log.armed, log.kill_at = True, 1
    with pytest.raises(chaos.Killed):
        log.refusal("GetAlternateContact")
    with pytest.raises(chaos.Killed):  # another thread of the same invocation
        log.refusal("PutAlternateContact")
    log.armed = log.dead = False  # the next invocation is a new process
    log.armed = True
    assert log.refusal("PutAlternateContact") is None


def test_an_account_removed_mid_job_leaves_the_organization_at_the_chosen_call() -> None:
    with strict_aws(management_account=chaos.MANAGEMENT):
        org = Organization()
        member = org.create_account("member", account_id="300000000001")
        log = chaos.ChaosLog()
        log.armed, log.remove, log.remove_at = True, member, 2
        log.refusal("ListAccounts")
        assert member in {account["Id"] for account in org.organizations.list_accounts()["Accounts"]}
        log.refusal("ListAccounts")
        assert member not in {account["Id"] for account in org.organizations.list_accounts()["Accounts"]}
        assert log.fired["account removed from the organization mid-job"] == 1
