#!/usr/bin/env bash
# The app end to end on a simulated AWS Organization, on this machine, no AWS account needed:
# set up, then plan, deploy, deploy again (nothing changes), day two (an invited account joins and
# gets its contacts; a contact edited by hand is put back by the drift check) and show the
# organization, on the example organization (config/example-organization.toml) with the example
# config (plus an [automation] section with its defaults).
# The demo's simulated world is kept in .local-org-demo/, its own: each demo starts it over, and
# .local-org/ (the other commands' default) is never touched. Afterwards try
# `python -m local_deploy state --state-dir .local-org-demo` and `python -m local_deploy --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m local_deploy demo --config config/example.toml --organization config/example-organization.toml "$@"
