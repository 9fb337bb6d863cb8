#!/usr/bin/env bash
# The first result, variant by variant, resumable across sessions:
#   bash experiments/first_result/run.sh [VARIANT ...]     # default: every variant not yet published, in order
# For each variant: `musc-ecd sweep sweep.yaml --only VARIANT` (a finished variant is skipped, a killed one resumes
# where it stopped), then `musc-ecd publish` copies its checkable outputs into experiments/first_result/results/
# (pairs once per shared set, label audit, training curves and summary, answers with verdicts, results), the
# report is regenerated from them and its table written into the README (between its marker lines), and the
# results folder and the README alone are committed (the README as it stands: edits in progress go with it).
# After `base`, the power statement (results/power.txt). After `reverse`, the positive control is checked:
# unless it lowered IFEval prompt- or instruction-level strict accuracy below base with an interval excluding 0,
# the script stops (tune the recipe in config.yaml on this control alone and rerun; FIRST_RESULT_GO_ON=1 goes
# on anyway, for a README that says so).
# A new machine has no runs/: the unfinished work carried through git is unpacked first (carry.sh; save it before a
# session ends with `bash experiments/first_result/carry.sh save`), and with no VARIANT named, a variant already
# published as done (results/NAME/status.json) is skipped rather than run again from nothing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
python=${MUSC_ECD_PYTHON:-"$("$root/scripts/env.sh")/bin/python"}
export MUSC_ECD_CACHE=${MUSC_ECD_CACHE:-$root/.cache}
musc() { "$python" -m musc_ecd "$@"; }
sweep=experiments/first_result/sweep.yaml
runs=runs/first_result
results=experiments/first_result/results
readme=experiments/first_result/README.md
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for name in base reverse musc musc_uniform sft ecd_self apc; do
    if grep -qs '"status": "done"' "$results/$name/status.json"; then
      echo "== $name: published as done ($results/$name/status.json), skipped; name it to run it again"
    else
      names+=("$name")
    fi
  done
fi
bash experiments/first_result/carry.sh restore

commit() {  # the results folder and the README only: whatever else is staged stays as it is
  git add -A -- "$results" "$readme"
  if ! git diff --cached --quiet -- "$results" "$readme"; then
    git commit --quiet -m "first_result: $1" -- "$results" "$readme"
    echo "== committed $results and $readme ($1)"
  fi
}

control_holds() {  # reverse below base on IFEval prompt- or instruction-level strict accuracy, interval below 0
  "$python" - "$results/reverse/report.json" <<'PY'
import json, sys
ifeval = json.load(open(sys.argv[1]))["comparisons"]["ifeval"]
below = [m for m in ("prompt_level_strict_acc", "inst_level_strict_acc") if ifeval[m]["ci95"][1] < 0]
for m in ("prompt_level_strict_acc", "inst_level_strict_acc"):
    c = ifeval[m]
    print(f"reverse - base, {m}: {c['diff']:+.4f} [{c['ci95'][0]:+.4f}, {c['ci95'][1]:+.4f}]")
sys.exit(0 if below else 1)
PY
}

mkdir -p "$results"
for name in "${names[@]}"; do
  echo "== $name (${SECONDS}s)"
  code=0
  musc sweep "$sweep" --only "$name" || code=$?
  musc publish "$runs" "$results" --run "$name"
  if [ "$name" = base ] && [ -f "$results/base/report.json" ]; then
    musc power "$results" --json "$results/power.json" | tee "$results/power.txt"
  fi
  if compgen -G "$results/*/config.yaml" > /dev/null; then
    # report.md, report.csv, plots/ and the README's table, from the published files alone
    musc report "$results" --readme "$readme"
  fi
  commit "$name"
  if [ "$code" -ne 0 ]; then
    echo "== $name failed (exit $code): $runs/$name/console.log; rerun to resume" >&2
    exit "$code"
  fi
  if [ "$name" = reverse ] && ! control_holds && [ -z "${FIRST_RESULT_GO_ON:-}" ]; then
    echo "== the reverse control did not lower IFEval below base with an interval excluding 0: the recipe is too" \
         "weak to detect an effect. Tune train.* in experiments/first_result/config.yaml looking at this control" \
         "alone, rerun; every published copy of an earlier recipe stays in $results/_superseded/." >&2
    exit 4
  fi
done
