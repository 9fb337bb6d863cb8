"""What ``musc-ecd run`` prints under its before/after tables: the labels' audit, the loss, the stage times.

Read from the run directory's artifacts (the generate summary, ``train/metrics.jsonl``, ``status.json``), so
it says what this run's files hold, also for stages a rerun skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

from musc_ecd.layout import RunLayout
from musc_ecd.run_status import stage_time


def labels_line(layout: RunLayout) -> str | None:
    if not layout.generate_summary.is_file():  # eval.base_only: no pairs were made
        return None
    summary = json.loads(layout.generate_summary.read_text())
    audit = summary.get("label_accuracy")
    if not audit or not audit.get("with_constraints"):
        return f"labels: {summary['accepted']} pairs, none with typed constraints to audit"
    return (f"labels: {audit['with_constraints']} of {audit['pairs']} pairs carry typed constraints; by IFEval's "
            f"checkers chosen passes more of them in {audit['chosen_better']:.1%}, as many in {audit['tied']:.1%}, "
            f"fewer in {audit['reversed']:.1%} (musc-ecd audit {layout.pairs})")


def loss_line(layout: RunLayout) -> str | None:
    if not layout.metrics.is_file():
        return None
    steps = [row for row in map(json.loads, layout.metrics.read_text().splitlines()) if "loss" in row]
    if not steps:
        return None
    first, last = steps[0], steps[-1]
    return (f"training loss: {first['loss']:.4f} at step {first.get('step', '?')} -> {last['loss']:.4f} at step "
            f"{last.get('step', '?')} (DPO starts at ln 2 = 0.6931, where the policy is the reference)")


def stages_line(run_dir: Path) -> str | None:
    path = run_dir / "status.json"
    if not path.is_file():
        return None
    stages = json.loads(path.read_text()).get("stages", {})
    times = [f"{name} {stage_time(info['seconds'], info.get('sessions'))}" for name, info in stages.items()
             if "seconds" in info]
    total = sum(info.get("seconds", 0) for info in stages.values())
    return f"stage times: {', '.join(times)} (total {total / 60:.1f} min)" if times else None


def format_run_summary(run_dir: Path) -> str:
    layout = RunLayout(run_dir)
    lines = [labels_line(layout), loss_line(layout), stages_line(run_dir)]
    return "\n".join(line for line in lines if line)
