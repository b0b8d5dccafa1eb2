#!/usr/bin/env bash
# Installs everything the app, its tests and its local tools need, into .venv and node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# Skipped when the requirements are the ones last installed here (a fresh clone always installs).
installed=.venv/requirements-installed.sha256
wanted=$(cat requirements.txt requirements-dev.txt | sha256sum)
if [ "$(cat "$installed" 2>/dev/null)" != "$wanted" ]; then
  # pip byte-compiles one file at a time, and aws-cdk-lib alone is 180 MB of Python: install
  # without compiling, then compile on every core. The .pyc files matter: every test process
  # imports aws-cdk-lib, and PYTHONDONTWRITEBYTECODE may keep imports from writing them.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-dev.txt
  site_packages=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  .venv/bin/python -m compileall -q -j 0 "$site_packages" >/dev/null
  echo "$wanted" >"$installed"
fi
if command -v npm >/dev/null 2>&1; then
  if [ -d node_modules ]; then
    npm install --silent --no-audit --no-fund >/dev/null
  else
    npm ci --silent --no-audit --no-fund >/dev/null  # exactly package-lock.json, nothing to resolve
  fi
fi
