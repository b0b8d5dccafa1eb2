#!/usr/bin/env bash
# Installs everything the app, its tests and its local tools need, into .venv and node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
if command -v npm >/dev/null 2>&1; then
  npm install --silent --no-audit --no-fund >/dev/null
fi
