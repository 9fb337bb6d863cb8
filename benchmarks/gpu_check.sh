#!/usr/bin/env bash
# The GPU check in one command (< 8 minutes on an H100/H200): our trainer vs trl.DPOTrainer on a random ~0.5B
# Qwen2-shaped model in bf16, and hf generation; JSON to $OUT/gpu_check.json (the device tool's folder).
#   here:   bash benchmarks/gpu_wheels.sh 3.12      # once, for the GPU machine's Python
#   device: bash benchmarks/gpu_check.sh            # run with carry=[".gpu-wheels"]
#   CPU:    bash benchmarks/gpu_check.sh --dry-run  # the tiny shape, fp32 (what the test runs)
# Only the packages that machine lacks are installed, from the carried wheels, into a scratch folder.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
out=${OUT:-$root/benchmarks/results}/gpu_check.json
site=$(mktemp -d)
"$python" - "$root/.gpu-wheels" "$site" <<'PY'
import importlib.util, subprocess, sys
from pathlib import Path
wheels, site = Path(sys.argv[1]), sys.argv[2]
modules = {"trl": "trl", "datasets": "datasets", "omegaconf": "omegaconf", "dill": "dill",
           "multiprocess": "multiprocess", "xxhash": "xxhash", "pyarrow": "pyarrow", "pandas": "pandas"}
missing = [name for name, module in modules.items() if importlib.util.find_spec(module) is None]
print(f"[gpu-check] Python {sys.version.split()[0]}; missing here: {missing or 'nothing'}", file=sys.stderr)
files = [w for name in missing for w in wheels.glob(f"{name}-*.whl")]
if len(files) < len(missing):
    sys.exit(f"[gpu-check] no wheel in {wheels} for: {[n for n in missing if not list(wheels.glob(n + '-*.whl'))]}"
             " (bash benchmarks/gpu_wheels.sh PYTHON_VERSION, then carry .gpu-wheels)")
if files:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--target", site,
                    *map(str, files)], check=True)
PY
PYTHONPATH="$root:$site${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 MUSC_ECD_CACHE=${MUSC_ECD_CACHE:-$site/cache} \
  timeout 450 "$python" benchmarks/gpu_check.py --out "$out" "$@"
echo "[gpu-check] -> $out" >&2
