#!/usr/bin/env bash
# The main job on the default small model (SmolLM2-135M-Instruct, CPU): creates the environment
# first if it is missing. Extra arguments are config overrides, e.g. data.limit=5.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$("$root/scripts/env.sh")
cd "$root"
export MUSC_ECD_CACHE=${MUSC_ECD_CACHE:-$root/.cache}
# generation.backend=auto picks the engine for this machine (docs/backends.md) and logs its choice.
exec "$venv/bin/musc-ecd" run configs/quickstart.yaml "$@"
