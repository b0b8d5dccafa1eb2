"""The local deploy's state directory: one state file written whole, and one writer at a time.

- ``state.json`` holds everything a run leaves for the next (the simulated organization, the
  buckets and tables of the stacks, what CloudFormation remembers of each stack, the history) and
  is replaced as a whole: written to a temporary file, synced, then renamed over the old one
  (``os.replace`` is atomic), so a run killed at any moment leaves either the previous state or
  the new one, never an organization from one run and a stack record from another.
- ``lock`` is held (``fcntl.flock``, exclusive) by the command that changes the state, for the
  whole command; a second one is refused, naming the holder written in the file. The kernel
  releases the lock when its process ends, however it ends: a holder written by a process that is
  gone is only information, never an obstacle.
- ``world.json``, ``stack.json`` and ``stack-delegated-administrator.json`` are the layout before
  one state file: still read, and removed by the first write (after ``state.json`` is in place).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FORMAT = 2  # 1: world.json and stack.json written one after the other

# Where a write can be cut short, in order (the kill-point tests stop a run at each one).
WRITE_POINTS = (
    "temporary file created",
    "temporary file half written",
    "temporary file written, not synced",
    "temporary file synced, not renamed",
    "renamed over the state file, directory not synced",
    "directory synced, old layout not removed",
    "world.json removed",
    "stack.json removed",
    "stack-delegated-administrator.json removed",
)


def _no_crash(point: str) -> None:
    """Called at each of WRITE_POINTS; a test replaces it to stop the run there."""


crash_point: Callable[[str], None] = _no_crash


class StateDirError(RuntimeError):
    pass


class StateLocked(StateDirError):
    """Another process is changing the state directory."""


@dataclass(frozen=True)
class Run:
    """A command run on this machine: who holds the lock, and who wrote the state."""

    pid: int
    command: str  # the subcommand only: its arguments may hold people's contacts
    since: str
    host: str
    id: str

    @classmethod
    def this(cls, command: str) -> Run:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return cls(os.getpid(), command, since, socket.gethostname(), uuid.uuid4().hex)

    @classmethod
    def from_dict(cls, data: Any) -> Run | None:
        try:
            return cls(**{name: data[name] for name in ("pid", "command", "since", "host", "id")})
        except (KeyError, TypeError):
            return None

    def __str__(self) -> str:
        return f"`{self.command}` (pid {self.pid} on {self.host}, since {self.since})"


@dataclass(frozen=True)
class StateDir:
    path: Path

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.path / "lock"

    @property
    def log_file(self) -> Path:
        return self.path / "handlers.log"

    # The layout before one state file (FORMAT 1): read, and removed by the first write.
    @property
    def world_file(self) -> Path:
        return self.path / "world.json"

    @property
    def stack_file(self) -> Path:
        return self.path / "stack.json"

    @property
    def delegated_stack_file(self) -> Path:
        return self.path / "stack-delegated-administrator.json"

    def load(self) -> dict[str, Any] | None:
        """What the last run left: the world's fields, ``stack``, ``delegated_stack`` (each a
        StackState's dict or None) and ``written_by``; None before the first run."""
        if self.state_file.exists():
            return dict(json.loads(self.state_file.read_text(encoding="utf-8")))
        if not self.world_file.exists():
            return None
        saved = dict(json.loads(self.world_file.read_text(encoding="utf-8")))
        for key, path in (("stack", self.stack_file), ("delegated_stack", self.delegated_stack_file)):
            saved[key] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        return {**saved, "format": FORMAT, "written_by": None}

    def save(self, data: dict[str, Any]) -> None:
        """Replace the state as a whole; then remove the old layout's files, which ``load`` no
        longer reads once ``state.json`` exists."""
        write_json(self.state_file, {**data, "format": FORMAT})
        crash_point(WRITE_POINTS[5])
        for index, old in enumerate((self.world_file, self.stack_file, self.delegated_stack_file)):
            old.unlink(missing_ok=True)
            crash_point(WRITE_POINTS[6 + index])
        for left in self.path.iterdir():  # by runs killed while writing (this one holds the lock)
            if _without_temporary_suffix(left.name) != left.name:
                left.unlink(missing_ok=True)

    def seeded_from(self) -> str | None:
        saved = self.load()
        return None if saved is None else str(saved.get("seeded_from"))

    def check_ours(self) -> None:
        """Refuse a directory holding anything the local deploy does not write (a mistyped
        --state-dir), before a command that deletes (``reset``) writes even its lock there."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise StateDirError(f"not removing {self.path}: it is not a local-deploy state directory")
        ours = {
            self.state_file.name,
            self.world_file.name,
            self.stack_file.name,
            self.delegated_stack_file.name,
            self.log_file.name,
            self.lock_file.name,
        }
        foreign = [p.name for p in self.path.iterdir() if _without_temporary_suffix(p.name) not in ours]
        if foreign:
            raise StateDirError(f"not removing {self.path}: it is not a local-deploy state directory ({foreign[:3]})")

    def reset(self) -> bool:
        """Forget the simulated world and the stack; True if there was anything to forget. The
        lock file stays: the command that resets holds it."""
        self.check_ours()
        if not self.path.exists():
            return False
        found = [p for p in self.path.iterdir() if p.name != self.lock_file.name]
        for path in found:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return bool(found)

    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[Run]:
        """Hold the state directory for this process until the block ends (see the module)."""
        if self.path.exists() and not self.path.is_dir():
            raise StateDirError(f"--state-dir {self.path} is a file, not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StateLocked(
                    f"{self.path} is in use by {self._recorded() or 'another process'}; "
                    "wait for it to finish, or use another --state-dir"
                ) from None
            run = Run.this(command)
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(asdict(run)) + "\n")
            handle.flush()
            try:
                yield run
            finally:
                handle.truncate(0)  # the kernel releases the lock when the file is closed

    def holder(self) -> Run | None:
        """Who holds the lock now, as it wrote itself in the lock file; None when nobody does. Read
        without touching the lock (a reader must never make a writer's start fail): a process of
        this host that is gone holds nothing."""
        recorded = self._recorded()
        if recorded is None or recorded.host != socket.gethostname():
            return recorded
        try:
            os.kill(recorded.pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:  # alive, another user's
            pass
        return recorded

    def _recorded(self) -> Run | None:
        try:
            return Run.from_dict(json.loads(self.lock_file.read_text(encoding="utf-8") or "null"))
        except (OSError, ValueError):  # none yet, or its holder is still writing its name
            return None


def _without_temporary_suffix(name: str) -> str:
    """``state.json`` for a temporary ``state.json.tmp-<pid>`` (or an older ``world.json.partial``)."""
    base, _, suffix = name.rpartition(".")
    return base if base and (suffix == "partial" or suffix.startswith("tmp-")) else name


def write_json(path: Path, data: Any) -> None:
    """Write whole or not at all: a temporary file beside it, synced, then renamed over it, and the
    directory synced so that the rename itself survives a power cut."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            crash_point(WRITE_POINTS[0])
            handle.write(text[: len(text) // 2])
            handle.flush()
            crash_point(WRITE_POINTS[1])
            handle.write(text[len(text) // 2 :])
            handle.flush()
            crash_point(WRITE_POINTS[2])
            os.fsync(handle.fileno())
        crash_point(WRITE_POINTS[3])
        os.replace(temporary, path)
    except Exception:
        temporary.unlink(missing_ok=True)
        raise
    crash_point(WRITE_POINTS[4])
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
