"""The local deploy's state directory: one writer at a time, written whole, safe to kill or
interrupt at any point, and a job lease left by a stopped run taken over at once."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import botocore.loaders
import pytest

from local_deploy import state as state_module
from local_deploy.cli import DEFAULT_STATE, DEMO_STATE, _parser, main, state_dir
from local_deploy.state import WRITE_POINTS, StateDir
from local_deploy.world import BATCH_WRITE_ITEMS, open_world
from org_bootstrap.engine import clock as clocks
from org_bootstrap.engine import jobs
from org_bootstrap.engine.continuation import LEASE
from tests.conftest import ROOT, at_simulation_speed
from tests.test_local_deploy import SEED, STACK, published_quotas_lifted, synthesized, with_contacts_removal

__all__ = ["published_quotas_lifted"]  # the handlers at simulation speed here too (autouse)

TAGGED = "999999999999"


class Killed(BaseException):
    """The process ends here: no handler of the program catches it (as none runs after SIGKILL)."""


def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'runtime'}"}
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


CLI = "import sys; from local_deploy.cli import main; sys.exit(main(sys.argv[1:]))"


# -- one writer at a time ---------------------------------------------------------------------


def test_a_second_writer_is_refused_with_the_holder_named_and_a_reader_is_told(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    with open_world(state, SEED):
        pass  # a world to read
    with state.lock("deploy") as held:
        refused = python(CLI, "tag", TAGGED, "team=data", "--state-dir", str(state.path))
        assert refused.returncode == 1, refused.stderr
        reason = " ".join(refused.stderr.split())
        assert f"is in use by `deploy` (pid {os.getpid()} on {socket.gethostname()}, since {held.since})" in reason
        assert "wait for it to finish, or use another --state-dir" in reason
        shown = python(CLI, "state", "--state-dir", str(state.path))
        assert shown.returncode == 0, shown.stderr
        assert f"`deploy` (pid {os.getpid()}" in shown.stdout and "last complete write" in shown.stdout
    assert state.holder() is None  # released: the next writer goes ahead
    tagged = python(CLI, "tag", TAGGED, "team=data", "--state-dir", str(state.path))
    assert tagged.returncode == 0, tagged.stderr
    accounts = {a["id"]: a for a in (state.load() or {})["organization"]["accounts"]}
    assert accounts[TAGGED]["tags"] == {"team": "data"}


def test_a_lock_left_by_a_killed_process_is_only_information(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    killed = python(
        "import os, signal, sys; from pathlib import Path; from local_deploy.state import StateDir\n"
        "with StateDir(Path(sys.argv[1])).lock('deploy'):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)",
        str(state.path),
    )
    assert killed.returncode == -signal.SIGKILL
    assert '"command": "deploy"' in state.lock_file.read_text()  # what it wrote stays, as information
    assert state.holder() is None  # but nobody holds the lock: the kernel released it
    with state.lock("tag") as run:
        assert run.command == "tag" and state.holder() == run


# -- written whole ----------------------------------------------------------------------------


def saved_world(state: StateDir) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The organization and the stack record the state directory holds now, as the next run reads them."""
    saved = state.load()
    assert saved is not None
    return saved["organization"], saved["stack"]


def as_old_layout(state: StateDir) -> None:
    """Rewrite the state as the two files of the layout before one state file."""
    saved = state.load()
    assert saved is not None
    stack, delegated = saved.pop("stack"), saved.pop("delegated_stack")
    saved.pop("written_by")
    state.world_file.write_text(json.dumps({**saved, "format": 1}))
    if stack is not None:
        state.stack_file.write_text(json.dumps(stack))
    if delegated is not None:
        state.delegated_stack_file.write_text(json.dumps(delegated))
    state.state_file.unlink()


def test_the_old_layout_is_read_and_replaced_by_one_file_at_the_first_write(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    with open_world(state, SEED) as world:
        world.history.append({"what": "marker"})
    before = state.load()
    as_old_layout(state)
    assert not state.state_file.exists() and state.world_file.exists()
    with open_world(state, SEED) as world:
        assert world.history == [{"what": "marker"}]
    after = state.load()
    assert after is not None and before is not None
    assert after.pop("clock") >= before.pop("clock")  # the simulated wall clock only moves on
    del after["written_by"], before["written_by"]
    assert after == before
    assert sorted(p.name for p in state.path.iterdir()) == ["handlers.log", "state.json"]


def test_the_simulated_wall_clock_is_kept_in_the_one_state_file_and_the_next_run_resumes_there(
    tmp_path: Path,
) -> None:
    state = StateDir(tmp_path / "state")
    with open_world(state, SEED):
        clocks.sleep(3 * 3600)  # three hours pass at once on the simulated clock
        stopped = clocks.time()
    assert stopped > time.time() + 2 * 3600
    assert sorted(path.name for path in state.path.iterdir()) == ["handlers.log", "state.json"]
    assert json.loads(state.state_file.read_text(encoding="utf-8"))["clock"] >= stopped
    with open_world(state, SEED, read_only=True):
        assert clocks.time() >= stopped  # never before the times the last run stored


def test_a_world_opened_again_in_the_same_process_parses_no_service_model_again(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    with open_world(state, SEED) as world:
        first = world.session
        paths = list(first._loader.search_paths)
    parsed: list[str] = []
    read = botocore.loaders.JSONFileLoader.load_file

    def counted(self: Any, file_path: str, *args: Any) -> Any:
        parsed.append(file_path)
        return read(self, file_path, *args)

    with mock.patch.object(botocore.loaders.JSONFileLoader, "load_file", counted), open_world(state, SEED) as world:
        assert world.session is not first  # a session of its own: the last world's handlers are gone
        assert world.organization.to_mapping(world.api_log)["accounts"]
        world.session.client("dynamodb", region_name="us-east-1").list_tables()
    assert parsed == []
    assert world.session._loader.search_paths == paths  # not one more folder per world


def test_a_table_of_more_items_than_one_batch_write_is_restored_whole(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    with open_world(state, SEED):
        pass
    saved = state.load()
    assert saved is not None
    items = [{"pk": {"S": f"item-{n:03d}"}, "n": {"N": str(n)}} for n in range(2 * BATCH_WRITE_ITEMS + 3)]
    saved["dynamodb"] = {
        "Things": {
            "region": "us-east-1",
            "key_schema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "attribute_definitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "items": items,
        }
    }
    state.save(saved)
    with open_world(state, SEED):
        pass
    restored = state.load()
    assert restored is not None
    assert sorted(restored["dynamodb"]["Things"]["items"], key=lambda item: item["pk"]["S"]) == items


# -- killed at every write point, or interrupted during a job --------------------------------


@pytest.mark.parametrize(
    "point", ["temporary file half written", "temporary file synced, not renamed", "world.json removed"]
)
def test_a_real_sigkill_while_writing_leaves_the_old_state_or_the_new_one_whole(tmp_path: Path, point: str) -> None:
    state = StateDir(tmp_path / "state")
    with open_world(state, SEED):
        pass
    as_old_layout(state)
    original = {a["id"]: a.get("tags") for a in saved_world(state)[0]["accounts"]}[TAGGED] or {}
    killed = python(
        "import os, signal, sys; from local_deploy import state; from local_deploy.cli import main\n"
        "def crash(point):\n"
        "    if point == sys.argv[1]:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "state.crash_point = crash\n"
        "main(['tag', sys.argv[2], 'probe=killed', '--state-dir', sys.argv[3]])",
        point,
        TAGGED,
        str(state.path),
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    tags = {a["id"]: a.get("tags") for a in saved_world(state)[0]["accounts"]}
    tagged = {**original, "probe": "killed"}
    assert (tags[TAGGED] or {}) == (tagged if point == "world.json removed" else original)
    assert python(CLI, "tag", TAGGED, "probe=killed", "--state-dir", str(state.path)).returncode == 0
    assert sorted(p.name for p in state.path.iterdir()) == ["handlers.log", "lock", "state.json"]


@pytest.fixture(scope="module")
def restoring(example_app: dict[str, Any]) -> Callable[[str], Any]:
    """The example app with its contacts restored to what they were before the stack, on destroy."""
    template = dict(example_app["assembly"].get_stack_by_name(STACK).template)
    return synthesized(with_contacts_removal(template, "restore"))


def cli(state: StateDir, *command: str, synthesizer: Callable[[str], Any] | None = None) -> int:
    return main([*command, "--state-dir", str(state.path)], synthesizer=synthesizer)


@pytest.fixture(scope="module")
def uninterrupted(restoring: Callable[[str], Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The organization after each step of a run nobody stops: seeded, deployed, destroyed."""
    state = StateDir(tmp_path_factory.mktemp("uninterrupted"))
    with at_simulation_speed():
        with open_world(state, SEED):
            pass
        seeded, _ = saved_world(state)
        assert cli(state, "deploy", synthesizer=restoring) == 0
        deployed, stack = saved_world(state)
        assert stack is not None and stack["status"] == "CREATE_COMPLETE"
        assert cli(state, "destroy") == 0
        destroyed, _ = saved_world(state)
    assert deployed != seeded and destroyed != deployed
    return {"seeded": seeded, "deployed": deployed, "destroyed": destroyed}


def check_recovers(state: StateDir, restoring: Callable[[str], Any], uninterrupted: dict[str, Any]) -> None:
    """From whatever a stopped run left: `state`, then `deploy` and `destroy` (removal restore) give
    the organization an uninterrupted run gives."""
    organization, stack = saved_world(state)
    assert cli(state, "state") == 0
    if stack is None or not stack["resources"]:
        assert organization == uninterrupted["seeded"]  # nothing was written, or only the seed
    assert cli(state, "deploy", synthesizer=restoring) == 0
    organization, stack = saved_world(state)
    assert stack is not None and stack["status"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert organization == uninterrupted["deployed"]
    assert cli(state, "destroy") == 0
    organization, stack = saved_world(state)
    assert stack is None
    assert organization == uninterrupted["destroyed"]


@pytest.fixture
def killed_at() -> Iterator[Callable[[str], None]]:
    """Stop the next state write at a point: the run ends there, nothing after it runs."""
    chosen: dict[str, str | None] = {"point": None}

    def crash(point: str) -> None:
        if point == chosen["point"]:
            chosen["point"] = None
            raise Killed(point)

    with mock.patch.object(state_module, "crash_point", crash):
        yield lambda point: chosen.update(point=point)


@pytest.mark.parametrize("point", WRITE_POINTS)
def test_a_deploy_killed_at_each_write_point_loses_nothing_it_cannot_redo(
    tmp_path: Path,
    point: str,
    killed_at: Callable[[str], None],
    restoring: Callable[[str], Any],
    uninterrupted: dict[str, Any],
) -> None:
    state = StateDir(tmp_path / "state")
    with open_world(state, SEED):
        pass
    as_old_layout(state)  # so that the first write also moves it to one file
    killed_at(point)
    with pytest.raises(Killed):
        cli(state, "deploy", synthesizer=restoring)
    organization, stack = saved_world(state)
    written = WRITE_POINTS.index(point) >= WRITE_POINTS.index("renamed over the state file, directory not synced")
    if written:  # the whole new state: the organization deployed and the stack that did it
        assert stack is not None and stack["status"] == "CREATE_COMPLETE"
        assert organization == uninterrupted["deployed"]
    else:  # the whole old state
        assert stack is None and organization == uninterrupted["seeded"]
    check_recovers(state, restoring, uninterrupted)
    assert not [p.name for p in state.path.iterdir() if ".tmp-" in p.name]  # the next write cleared what was left


@pytest.mark.parametrize("point", ["temporary file half written", "renamed over the state file, directory not synced"])
def test_a_destroy_killed_while_writing_keeps_the_restore(
    tmp_path: Path,
    point: str,
    killed_at: Callable[[str], None],
    restoring: Callable[[str], Any],
    uninterrupted: dict[str, Any],
) -> None:
    state = StateDir(tmp_path / "state")
    assert cli(state, "deploy", synthesizer=restoring) == 0
    killed_at(point)
    with pytest.raises(Killed):
        cli(state, "destroy")
    organization, stack = saved_world(state)
    assert (stack is None) == (organization == uninterrupted["destroyed"])  # both the old or both the new
    if stack is not None:
        assert cli(state, "destroy") == 0
    assert saved_world(state) == (uninterrupted["destroyed"], None)


def interrupt_at_account(number: int) -> Any:
    """Ctrl-C while the job works on its ``number``-th account."""
    original = jobs._reconcile
    seen = {"accounts": 0}

    def reconcile(*args: Any, **kwargs: Any) -> Any:
        seen["accounts"] += 1
        if seen["accounts"] == number:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    return mock.patch.object(jobs, "_reconcile", reconcile)


def leases(state: StateDir) -> list[dict[str, Any]]:
    saved = state.load() or {}
    found = []
    for bucket in saved.get("s3", {}).values():
        for key, body in bucket["objects"].items():
            if "/jobs/" in key:
                job = json.loads(base64.b64decode(body))
                if job.get(LEASE):
                    found.append(job[LEASE])
    return found


@pytest.mark.parametrize("number", [1, 6])
def test_ctrl_c_during_a_deploy_job_then_the_next_deploy_takes_over_its_lease_at_once(
    tmp_path: Path,
    number: int,
    restoring: Callable[[str], Any],
    uninterrupted: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = StateDir(tmp_path / "state")
    with interrupt_at_account(number):
        assert cli(state, "deploy", synthesizer=restoring) == 130
    out, err = capsys.readouterr()
    assert "interrupted:" in err and "keeps what was done until now" in " ".join(err.split())
    organization, stack = saved_world(state)
    assert stack is not None and stack["status"] == "CREATE_FAILED"
    assert stack["status_reason"] == "interrupted (Ctrl-C) during the operation"
    assert len(leases(state)) == 1  # the job's worker was stopped holding it, for its Lambda timeout
    writer = (state.load() or {})["written_by"]
    assert writer["command"] == "deploy" and writer["pid"] == os.getpid()

    assert cli(state, "deploy", synthesizer=restoring) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Took over job " in out and f"held by run `deploy` (pid {os.getpid()}" in out
    assert "which is no longer running" in out
    assert leases(state) == []
    organization, stack = saved_world(state)
    assert stack is not None and organization == uninterrupted["deployed"]
    assert cli(state, "destroy") == 0
    assert saved_world(state) == (uninterrupted["destroyed"], None)  # restored, as if never interrupted


def test_ctrl_c_during_a_destroy_job_then_destroy_again_restores_everything(
    tmp_path: Path,
    restoring: Callable[[str], Any],
    uninterrupted: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = StateDir(tmp_path / "state")
    assert cli(state, "deploy", synthesizer=restoring) == 0
    with interrupt_at_account(4):
        assert cli(state, "destroy") == 130
    _, stack = saved_world(state)
    assert stack is not None and stack["status"] == "DELETE_FAILED"
    assert cli(state, "destroy") == 0
    assert "Took over job " in capsys.readouterr().out
    assert saved_world(state) == (uninterrupted["destroyed"], None)


# -- the demo ---------------------------------------------------------------------------------


def test_the_demo_never_changes_a_world_it_was_not_asked_to_forget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = StateDir(tmp_path / "state")
    with open_world(state, SEED) as world:
        world.history.append({"what": "mine"})
    before = state.state_file.read_bytes()
    assert cli(state, "demo") == 1
    assert state.state_file.read_bytes() == before
    assert "add --reset to forget that world" in " ".join(capsys.readouterr().err.split())


def test_a_mistyped_state_dir_is_neither_reset_nor_given_a_lock_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    for command in (["reset"], ["demo", "--reset"]):
        assert main([*command, "--state-dir", str(tmp_path)]) == 1, command
        assert "not a local-deploy state directory (['notes.txt'])" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert main(["tag", TAGGED, "team=x", "--state-dir", str(tmp_path / "notes.txt")]) == 1
    assert "is a file, not a directory" in capsys.readouterr().err


def test_only_the_demo_defaults_to_its_own_directory() -> None:
    parser = _parser()
    for command in (["state"], ["plan"], ["deploy"], ["destroy"], ["reset"], ["drift"], ["tag", TAGGED, "a=b"]):
        assert state_dir(parser.parse_args(command)).path == DEFAULT_STATE, command
    assert state_dir(parser.parse_args(["demo"])).path == DEMO_STATE
    assert state_dir(parser.parse_args(["demo", "--state-dir", "mine"])).path == Path("mine")
