#!/usr/bin/env bash
# The wheels benchmarks/gpu_check.sh installs on the GPU machine, which has torch, transformers, peft and
# accelerate but reaches no registry: TRL, datasets (with pyarrow and pandas) and omegaconf, for that machine's
# Python. Run here, then pass the folder to the device tool as a carried path:
#   bash benchmarks/gpu_wheels.sh [PYTHON_VERSION]        # default 3.12; writes .gpu-wheels/
# What travels (working tree + carried paths) must stay under 64 MiB: pyarrow alone is ~49 MB, so the
# oldest pyarrow datasets accepts is taken, and the total is checked.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=${1:-3.12}
out=$root/.gpu-wheels
rm -rf "$out" && mkdir -p "$out"
download=(python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: -d "$out"
          --python-version "$version" --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
          --platform manylinux2014_x86_64)
# Pure Python first, then the binary wheels for that Python (versions as pinned in requirements/, except
# pyarrow: datasets 5.2 needs >= 24, the smallest such wheel).
"${download[@]}" trl==1.16.0 datasets==5.2.0 omegaconf==2.4.0 dill==0.4.1 multiprocess==0.70.19 \
  xxhash==4.1.0 pyarrow==24.0.0 pandas==3.1.1
tree=$(cd "$root" && git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
wheels=$(du -cb "$out"/*.whl | tail -1 | cut -f1)
total=$(( (tree + wheels) / 1048576 ))
echo "[gpu-wheels] $(ls "$out" | wc -l) wheels, $((wheels / 1048576)) MiB; with the tree: $total MiB of 64" >&2
[ "$total" -lt 64 ] || { echo "[gpu-wheels] over the 64 MiB the device tool carries" >&2; exit 1; }
