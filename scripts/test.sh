#!/usr/bin/env bash
# The whole test suite, offline, on CPU: creates the environment first if it is missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$("$root/scripts/env.sh")
cd "$root"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1
export MUSC_ECD_CACHE=${MUSC_ECD_CACHE:-$root/.cache}
# vLLM tests fail (not skip) when vLLM is missing, unless the environment was built without it.
if [ "${MUSC_ECD_NO_VLLM:-0}" != "1" ]; then export MUSC_ECD_REQUIRE_VLLM=1; fi
"$venv/bin/ruff" check musc_ecd tests benchmarks
exec "$venv/bin/python" -m pytest "$@"
