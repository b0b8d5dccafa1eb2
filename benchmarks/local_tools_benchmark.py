"""Wall time of the local tools on a generated organization, and the time they report at AWS's quotas.

    python -m benchmarks.local_tools_benchmark [--accounts 300] [--ous 85] [--seed 1] [--runs 2]

Generates the organization and a config with all three settings and ``[automation]``
(:mod:`simulation.generated`), then runs ``reset``, ``plan``, ``deploy``, ``drift`` and ``destroy``
as a user would (each a separate process, on the simulated clock), ``--runs`` times, and prints for
each command its wall time here, the time it reports at AWS's published quotas, and the ratio of
the wall time to the 15-second limit. The first ``plan`` of a config synthesizes the app; later
runs reuse its templates (``local_deploy.synth``), as a user's next command would.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIMIT_SECONDS = 15.0
COMMANDS = ("plan", "deploy", "drift", "destroy")
TOOK = re.compile(r"Took (.+?) here; at AWS's published quotas: (.+)$", re.MULTILINE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--ous", type=int, default=85)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    raise SystemExit(main())
