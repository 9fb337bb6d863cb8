#!/usr/bin/env bash
# Does an int8 engine score like fp32? The base SmolLM2-135M-Instruct answers all 541 IFEval prompts (greedy,
# 512 new tokens) through one backend twice, fp32 and int8 weights, and `musc-ecd compare` gives each metric's
# difference with a 95% paired bootstrap interval. generation.backend=auto may use int8 only where all four
# intervals contain 0 (docs/backends.md). Results: benchmarks/results/int8_ifeval/<backend>/ (compare.txt, and
# both results.json); run directories under runs/int8_ifeval/.
#   bash benchmarks/int8_ifeval.sh [openvino|ct2]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
backend=${1:-openvino}
case "$backend" in
  openvino) fp32=(generation.openvino.weight_format=fp32) int8=(generation.openvino.weight_format=int8) ;;
  ct2) fp32=(generation.ct2.compute_type=float32) int8=(generation.ct2.compute_type=int8) ;;
  *) echo "int8_ifeval.sh: backend must be openvino or ct2, not '$backend'" >&2; exit 2 ;;
esac
venv=$("$root/scripts/env.sh")
out=benchmarks/results/int8_ifeval/$backend
mkdir -p "$out"
for precision in ${INT8_IFEVAL_PRECISIONS:-fp32 int8}; do  # e.g. INT8_IFEVAL_PRECISIONS=int8 to redo one side
  overrides=("${fp32[@]}"); [ "$precision" = int8 ] && overrides=("${int8[@]}")
  run_dir=runs/int8_ifeval/$backend-$precision
  "$venv/bin/musc-ecd" evaluate configs/eval_baseline.yaml run_dir="$run_dir" eval.name=ifeval \
    "eval.sets=[ifeval]" eval.ifeval_path=../shared/data/ifeval/input_data.jsonl model.dtype=float32 \
    generation.backend="$backend" "${overrides[@]}"
  cp "$(find "$run_dir/eval" -name results.json | head -1)" "$out/$precision-results.json"
done
"$venv/bin/musc-ecd" compare "$out/fp32-results.json" "$out/int8-results.json" | tee "$out/compare.txt"
{ lscpu | grep -E "^Model name|^CPU family|^Model:|^CPU\(s\)"; "$venv/bin/python" -c \
  "import torch; print('torch capability:', torch.backends.cpu.get_cpu_capability())"; } > "$out/cpu.txt"
