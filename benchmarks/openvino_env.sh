#!/usr/bin/env bash
# An environment for the OpenVINO rows of benchmarks/generation.py (not needed by musc-ecd itself): its exporter,
# optimum-intel 2.2, requires transformers < 5.6, and the project pins 5.19, so it lives apart. Prints its Python.
#   python benchmarks/generation.py --openvino-python "$(bash benchmarks/openvino_env.sh)"
set -euo pipefail
venv=${OPENVINO_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv-openvino}
if [ ! -x "$venv/bin/optimum-cli" ]; then
  {
    python3 -m venv "$venv"
    pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
    "${pip[@]}" torch==2.13.0  # the local CPU wheel first, as in scripts/env.sh
    "${pip[@]}" optimum-intel==2.2.0 "transformers<5.6" openvino==2026.4.1 openvino-tokenizers==2026.4.1.0 \
      openvino-genai==2026.4.1.0 nncf==3.4.0 torch==2.13.0
    # optimum-intel pulls a CUDA torchvision that breaks its imports on CPU; the export needs none of it.
    "$venv/bin/python" -m pip uninstall --quiet -y torchvision || true
  } >&2
fi
echo "$venv/bin/python"
