"""The local tools on the simulated clock: a deploy of a few hundred accounts at AWS's real published
quotas takes seconds here, says how long it takes at AWS, and that matches the plan's estimate of its
calls; its progress counts reach their totals; ``--real-time`` still paces on the machine's clock."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from local_deploy import cli, estimates
from local_deploy.cli import Session, deploy, plan_simulated
from local_deploy.synth import Synthesized, synthesize
from local_deploy.views import DeployProgress
from local_deploy.world import StateDir, open_world
from org_bootstrap.engine import clock as clocks
from org_bootstrap.engine.pacing import RateLimits
from simulation.generated import generated_config, generated_organization, to_toml, to_toml_config
from tests.conftest import ROOT

ACCOUNTS, OUS = 200, 40


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Synthesized]:
    folder = tmp_path_factory.mktemp("generated")
    organization = generated_organization(ACCOUNTS, OUS, seed=5)
    (folder / "organization.toml").write_text(to_toml(organization), encoding="utf-8")
    (folder / "config.toml").write_text(to_toml_config(generated_config(organization)), encoding="utf-8")
    return folder / "organization.toml", synthesize(folder / "config.toml")


def session_for(state: Path, seed: Path, synthesized: Synthesized) -> tuple[Session, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=False)
    return Session(console, StateDir(state), str(seed), lambda path: synthesized), out


def test_a_deploy_of_hundreds_of_accounts_takes_seconds_and_the_aws_time_the_plan_estimated(
    tmp_path: Path, generated: tuple[Path, Synthesized], monkeypatch: pytest.MonkeyPatch
) -> None:
    seed, synthesized = generated
    session, out = session_for(tmp_path / "state", seed, synthesized)
    plan = plan_simulated(session, synthesized)
    estimate = estimates.of_plan(plan)
    # the calls the deploy will make, by setting and operation, from the plan's own reading
    assert estimate.by_setting["alternate contacts"]["GetAlternateContact"] > 2 * ACCOUNTS
    assert estimate.by_setting["opt-in Regions"]["EnableRegion"] == estimate.region_requests > 0

    made: list[DeployProgress] = []

    class Recorded(DeployProgress):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(cli, "DeployProgress", Recorded)
    started = time.monotonic()
    result, _ = deploy(session, synthesized)
    wall = time.monotonic() - started

    assert result.ok
    aws = session.timings[-1].aws_seconds
    # at AWS's real published quotas, within 10% of the plan's estimate of the same calls
    assert abs(aws - estimate.seconds) <= 0.1 * estimate.seconds, (aws, estimate.seconds)
    assert aws > 10 * wall  # minutes of AWS in seconds here
    # the progress bar counted every planned read, and no more
    progress = made[-1]
    assert sum(progress.reads.values()) == progress.read > 2 * ACCOUNTS
    assert progress.reads["GetAlternateContact"] == estimate.calls["GetAlternateContact"]
    text = out.getvalue()
    assert "at AWS's published quotas" in text
    assert "alternate contacts: " in text and "primary contact: " in text and "opt-in Regions: " in text


def test_real_time_paces_on_the_machines_clock_and_the_simulated_clock_does_not(tmp_path: Path) -> None:
    seed = ROOT / "config" / "example-organization.toml"
    calls = 30  # GetAlternateContact at 10/s after a burst of 15: 1.5 s
    floor = (calls - 15) / 10
    for real_time in (True, False):
        with open_world(StateDir(tmp_path / f"state-{real_time}"), seed, real_time=real_time) as world:
            assert (clocks.installed() is clocks.REAL) == real_time
            limits = RateLimits()  # the published quotas, as the handlers pace themselves
            started = time.monotonic()
            for _ in range(calls):
                limits.acquire("GetAlternateContact")
            wall = time.monotonic() - started
            assert world.timing is not None
            if real_time:
                assert wall >= floor * 0.95
            else:
                assert world.timing.aws_seconds == pytest.approx(floor, abs=0.01)
                assert wall < floor


def test_the_real_time_flag_reaches_the_session() -> None:
    args = cli._parser().parse_args(["deploy", "--real-time"])
    assert args.real_time
    assert not cli._parser().parse_args(["deploy"]).real_time
