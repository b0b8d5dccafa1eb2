#!/usr/bin/env bash
# Lint, type-check and run the whole test suite. pytest's "no tests collected" (exit 5) fails too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# Whole files to a worker: each module's synthesized stacks (module fixtures) are built once, not
# once per worker that runs one of its tests.
.venv/bin/python -m pytest -n 2 --dist loadfile "$@"
