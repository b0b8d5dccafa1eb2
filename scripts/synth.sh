#!/usr/bin/env bash
# Set up (if needed) and synthesize the app from a config (default: config/example.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
config="${1:-config/example.toml}"
npx --no-install cdk synth --quiet --no-notices -c config="$config"
echo "Synthesized from $config into cdk.out/:"
find cdk.out -name "*.template.json" | sort  # with [pipeline], the stages' stacks are in cdk.out/assembly-*/
