#!/usr/bin/env bash
# Lint, type-check and run the whole test suite. pytest's "no tests collected" (exit 5) fails too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest -n 2 "$@"
