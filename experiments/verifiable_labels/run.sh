#!/usr/bin/env bash
# Label accuracy of each method on 100 verifiable seeds (SmolLM2-135M-Instruct, vLLM CPU build):
#   bash experiments/verifiable_labels/run.sh [NAME ...]     # all six by default; resumes, skips finished runs
# Each run's pairs go to runs/verifiable_labels/NAME/generate; its summary and `musc-ecd audit --json` are copied to
# experiments/verifiable_labels/results/NAME.{summary,audit}.json.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=$("$root/scripts/env.sh")
cd "$root"
export MUSC_ECD_CACHE=${MUSC_ECD_CACHE:-$root/.cache}
seeds=(data.seeds=configs/data/verifiable_seeds.jsonl data.prompt_field=instruction data.id_field=id data.limit=100
       generation.backend=vllm store.commit_every=25)
declare -A runs=(
  [musc_coarse]="configs/musc_coarse.yaml"
  [musc_fine_policy_judge]="configs/musc.yaml method=musc_fine"
  [musc_fine_checkers]="configs/musc.yaml method=musc_fine model.judge=checkers"
  [ecd_self]="configs/ecd_self.yaml ecd.typed_format=true"
  [ecd_self_checkers]="configs/ecd_self.yaml ecd.typed_format=true model.judge=checkers"
  [apc]="configs/apc.yaml"
)
names=("$@"); [ ${#names[@]} -eq 0 ] && names=(musc_coarse musc_fine_policy_judge musc_fine_checkers ecd_self ecd_self_checkers apc)
for name in "${names[@]}"; do
  read -r -a spec <<< "${runs[$name]}"
  run_dir=runs/verifiable_labels/$name
  echo "== $name: musc-ecd generate ${spec[*]} (${SECONDS}s)"
  "$venv/bin/musc-ecd" generate "${spec[@]}" "${seeds[@]}" "run_dir=$run_dir"
  stage=$run_dir/generate; [ -f "$stage/pairs.jsonl" ] || stage=$run_dir  # made before the one run layout
  cp "$stage/summary.json" "experiments/verifiable_labels/results/$name.summary.json"
  "$venv/bin/musc-ecd" audit "$stage/pairs.jsonl" --json > "experiments/verifiable_labels/results/$name.audit.json"
  "$venv/bin/musc-ecd" audit "$stage/pairs.jsonl" | sed -n 1,3p  # sed reads to the end: no broken pipe
done
