"""Wall time of the local tools on a generated organization, and the time they report at AWS's quotas.

    python -m benchmarks.local_tools_benchmark [--accounts 300] [--ous 85] [--seed 1] [--runs 2]
    python -m benchmarks.local_tools_benchmark --open-world [--sizes 30,300] [--repeat 10] [--profile]

Generates the organization and a config with all three settings and ``[automation]``
(:mod:`simulation.generated`), then runs ``reset``, ``plan``, ``deploy``, ``drift`` and ``destroy``
as a user would (each a separate process, on the simulated clock), ``--runs`` times, and prints for
each command its wall time here, the time it reports at AWS's published quotas, and the ratio of
the wall time to the 15-second limit. The first ``plan`` of a config synthesizes the app; later
runs reuse its templates (``local_deploy.synth``), as a user's next command would.

``--open-world`` times what every command pays before and after its own work: rebuilding the
simulated world from the state directory and writing it back (:func:`local_deploy.world.open_world`).
For each size in ``--sizes`` it deploys the generated organization's config and runs a drift check
(so the state holds a stack, contact jobs, a report and snapshots, as a user's does), then, in one
process as the chaos run (:mod:`benchmarks.chaos`) does, opens and saves the world ``--repeat``
times, and opens it read-only as often; it prints the first open (what a command pays in a new
process) apart from the median of the rest. ``--profile`` adds the functions taking the most time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LIMIT_SECONDS = 15.0
COMMANDS = ("plan", "deploy", "drift", "destroy")
TOOK = re.compile(r"Took (.+?) here; at AWS's published quotas: (.+)$", re.MULTILINE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--ous", type=int, default=85)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--open-world", action="store_true", help="time opening and saving the world instead")
    parser.add_argument("--sizes", default="30,300", help="with --open-world: account counts (default 30,300)")
    parser.add_argument("--repeat", type=int, default=10, help="with --open-world: opens per size (default 10)")
    parser.add_argument("--profile", action="store_true", help="with --open-world: the hot spots, by cProfile")
    args = parser.parse_args(argv)
    if args.open_world:
        for accounts in (int(size) for size in args.sizes.split(",")):
            open_world_times(accounts, max(8, accounts * args.ous // 300), args.seed, args.repeat, args.profile)
        return 0
    folder = Path(tempfile.mkdtemp(prefix="local-tools-benchmark-"))
    organization, config, state = folder / "organization.toml", folder / "config.toml", folder / "state"
    python = sys.executable
    shape = ["--accounts", str(args.accounts), "--ous", str(args.ous), "--seed", str(args.seed)]
    files = ["--organization", str(organization), "--config", str(config)]
    subprocess.run([python, "-m", "simulation.generated", *shape, *files], check=True)
    config.write_text(config.read_text(encoding="utf-8") + "\n[automation]\n", encoding="utf-8")
    environment = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    print(f"{args.accounts} accounts in {args.ous} OUs (seed {args.seed}); files in {folder}")
    print(f"load average at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for run in range(1, args.runs + 1):
        subprocess.run(
            [python, "-m", "local_deploy", "reset", "--state-dir", str(state), "--organization", str(organization)],
            check=True,
            capture_output=True,
            env=environment,
        )
        for command in COMMANDS:
            argv_ = [
                python,
                "-m",
                "local_deploy",
                command,
                "--state-dir",
                str(state),
                "--organization",
                str(organization),
            ]
            if command != "drift":
                argv_ += ["--config", str(config)]
            started = time.monotonic()
            done = subprocess.run(argv_, capture_output=True, text=True, env=environment)
            wall = time.monotonic() - started
            found = TOOK.search(done.stdout)
            aws = found.group(2).strip() if found else "?"
            status = "" if done.returncode == 0 else f" (exit {done.returncode}: {done.stderr.strip()[-200:]})"
            print(
                f"run {run} {command:8} {wall:6.1f} s wall ({wall / LIMIT_SECONDS:.2f} of {LIMIT_SECONDS:g} s); "
                f"at AWS's published quotas: {aws}{status}"
            )
            print(f"    {' '.join(argv_[1:])}")
    return 0


def open_world_times(accounts: int, ous: int, seed: int, repeat: int, profile: bool) -> dict[str, Any]:
    """Deploy, check drift, then time ``open_world`` with its save, and read-only (see the module)."""
    from local_deploy.state import StateDir
    from local_deploy.world import open_world

    folder = Path(tempfile.mkdtemp(prefix="open-world-benchmark-"))
    organization, config, state = folder / "organization.toml", folder / "config.toml", folder / "state"
    shape = ["--accounts", str(accounts), "--ous", str(ous), "--seed", str(seed)]
    files = ["--organization", str(organization), "--config", str(config)]
    subprocess.run([sys.executable, "-m", "simulation.generated", *shape, *files], check=True)
    config.write_text(config.read_text(encoding="utf-8") + "\n[automation]\n", encoding="utf-8")
    environment = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    for command in (["deploy", *files], ["drift", "--organization", str(organization)]):
        subprocess.run(
            [sys.executable, "-m", "local_deploy", *command, "--state-dir", str(state)],
            check=True,
            capture_output=True,
            env=environment,
        )
    saved = StateDir(state)
    size = saved.state_file.stat().st_size

    def once(read_only: bool) -> float:
        started = time.perf_counter()
        with open_world(saved, organization, read_only=read_only):
            pass
        return time.perf_counter() - started

    first = once(False)
    written = [once(False) for _ in range(repeat)]
    read = [once(True) for _ in range(repeat)]
    figures = {"first": first, "save": statistics.median(written), "read_only": statistics.median(read)}
    print(
        f"{accounts} accounts ({size / 1e6:.2f} MB state): first open+save {first:.3f} s; then median of "
        f"{repeat}: open+save {figures['save']:.3f} s, read-only open {figures['read_only']:.3f} s "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(repeat):
            once(False)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(r"local_deploy|simulation|json|copy", 25)
        stats.sort_stats("tottime").print_stats(15)
    shutil.rmtree(folder)
    return figures


if __name__ == "__main__":
    raise SystemExit(main())
