#!/usr/bin/env bash
# The main job on the default small model (SmolLM2-135M-Instruct, CPU): creates the environment
# first if it is missing. Extra arguments are config overrides, e.g. data.limit=5.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$("$root/scripts/env.sh")
cd "$root"
export MUSC_ECD_CACHE=${MUSC_ECD_CACHE:-$root/.cache}
# An environment built without vLLM (MUSC_ECD_NO_VLLM=1) runs the same job on the transformers backend.
backend=(); [ "${MUSC_ECD_NO_VLLM:-0}" = "1" ] && backend=(generation.backend=hf)
exec "$venv/bin/musc-ecd" run configs/quickstart.yaml "${backend[@]}" "$@"
