"""Reports: one table (Markdown and CSV) plus plots, for one run or for every run under a directory.

``musc-ecd run`` renders ``RUN_DIR/report.md`` with ``render_run_report``; ``musc-ecd report RUNS_DIR``
renders ``RUNS_DIR/report.md``, ``report.csv`` and ``plots/*.png`` with ``render_report``. Both read the
same files, through ``runs.collect_run``:

    config.yaml                 method, roles, loss, token weights, curriculum, model
    report.json                 pairs, training steps, per evaluation set the paired-bootstrap comparison
    status.json                 done / failed (with the stage and error) / interrupted; stage wall times
    train/metrics.jsonl         training curves (loss, rewards/margins, rewards/accuracies)
    generate/summary.json       yield per pipeline stage

A run's row has the columns: run, status, method, roles (``self`` when the policy made every model call,
else who did: see ``roles``), loss, weights, curriculum, model, pairs, then per
evaluation set present (IFEval first) the four metrics, each as ``trained (trained − base [95% CI])``,
and the training wall time. A value a run lacks is ``–`` in Markdown and empty in the CSV, whose columns
hold the numbers separately (``SET/METRIC``, ``SET/METRIC/base``, ``.../diff``, ``.../ci_low``,
``.../ci_high``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from musc_ecd.errors import DataError
from musc_ecd.evaluation import plots
from musc_ecd.evaluation.compare import format_comparison
from musc_ecd.evaluation.ifeval import METRICS
from musc_ecd.evaluation.runs import RunRecord, collect_run, collect_runs, present_sets, read_json, roles  # noqa: F401 (roles: re-exported)
from musc_ecd.evaluation.sets import SETS, headline_metric
from musc_ecd.layout import RunLayout
from musc_ecd.run_status import HEARTBEAT_SECONDS, stage_time
from musc_ecd.store import write_atomic

MISSING = "–"
SET_LABELS = {name: s.label for name, s in SETS.items()}
SHORT = {"prompt_level_strict_acc": "P-strict", "inst_level_strict_acc": "I-strict",
         "prompt_level_loose_acc": "P-loose", "inst_level_loose_acc": "I-loose"}


# ----------------------------------------------------------------------------------------------
# Tables


def _cell(comparison: dict | None) -> str:
    if not comparison:
        return MISSING
    low, high = comparison["ci95"]
    return f"{comparison['b']:.3f} ({comparison['diff']:+.3f} [{low:+.3f}, {high:+.3f}])"


def _metric_cell(record: RunRecord, set_name: str, metric: str) -> str:
    """A trained run's comparison cell, or a base-only run's plain base value (nothing to compare it with)."""
    if record.base_scores:
        value = record.base_scores.get(set_name, {}).get(metric)
        return MISSING if value is None else f"{value:.3f} (base)"
    return _cell(record.comparisons.get(set_name, {}).get(metric))


def _text(value) -> str:
    if value is None or value == "":
        return MISSING
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


DESCRIPTIVE = ("method", "roles", "loss", "weights", "curriculum", "model", "pairs")


def _descriptive(record: RunRecord, key: str) -> str:
    if key == "pairs" and record.generated_pairs not in (None, record.pairs):
        return f"{_text(record.pairs)} of {record.generated_pairs}"  # a pair budget took a subset
    return _text(getattr(record, key))


LABEL_SHARES = ("chosen_better", "tied", "reversed")
LABEL_COLUMNS = ("with_constraints", *LABEL_SHARES, "chosen_mean_passed", "rejected_mean_passed")


def _labels(record: RunRecord) -> str:
    """``better/tied/reversed (n)``: the label audit on the pairs' typed constraints, or – without any."""
    audit = record.label_accuracy
    if not audit or not audit.get("with_constraints"):
        return MISSING
    return "/".join(f"{audit[k]:.2f}" for k in LABEL_SHARES) + f" (n={audit['with_constraints']})"


def markdown_table(records: list[RunRecord], sets: list[str]) -> str:
    # The label-audit column appears when some run's pairs carry typed constraints (verifiable seeds).
    audited = any(r.label_accuracy.get("with_constraints") for r in records)
    headers = ["run", "status", *DESCRIPTIVE, *(["labels better/tied/reversed"] if audited else [])]
    headers += [f"{SET_LABELS.get(s, s)} {SHORT[m]}" + (" (headline)" if headline_metric(s) == m else "")
                for s in sets for m in METRICS]
    headers += ["train s"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in records:
        cells = [r.name, r.status, *(_descriptive(r, key) for key in DESCRIPTIVE), *([_labels(r)] if audited else [])]
        cells += [_metric_cell(r, s, m) for s in sets for m in METRICS]
        cells += [_text(r.train_seconds)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def csv_columns(sets: list[str]) -> list[str]:
    columns = ["run", "status", *DESCRIPTIVE, "generated_pairs", "train_steps", "train_seconds",
               *(f"labels/{key}" for key in LABEL_COLUMNS)]
    for s in sets:
        for m in METRICS:
            columns += [f"{s}/{m}", f"{s}/{m}/base", f"{s}/{m}/diff", f"{s}/{m}/ci_low", f"{s}/{m}/ci_high"]
    return [*columns, "error", "directory"]


def csv_table(records: list[RunRecord], sets: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=csv_columns(sets), lineterminator="\n")
    writer.writeheader()
    for r in records:
        row = {"run": r.name, "status": r.status, **{key: getattr(r, key) for key in DESCRIPTIVE},
               "generated_pairs": r.generated_pairs, "train_steps": r.train_steps, "train_seconds": r.train_seconds,
               **{f"labels/{key}": r.label_accuracy.get(key) for key in LABEL_COLUMNS},
               "error": r.error,
               "directory": str(r.directory)}
        for s in sets:
            for m in METRICS:
                c = r.comparisons.get(s, {}).get(m)
                base_value = r.base_scores.get(s, {}).get(m)
                if base_value is not None:  # a base-only run: its value is the base, with no difference
                    row.update({f"{s}/{m}": base_value, f"{s}/{m}/base": base_value})
                if c:
                    row.update({f"{s}/{m}": c["b"], f"{s}/{m}/base": c["a"], f"{s}/{m}/diff": c["diff"],
                                f"{s}/{m}/ci_low": c["ci95"][0], f"{s}/{m}/ci_high": c["ci95"][1]})
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def base_table(records: list[RunRecord], sets: list[str]) -> str:
    """The base model's metrics, once per (model, set): every run's differences are to these."""
    seen: dict[tuple[str, str], dict[str, float]] = {}
    for r in records:
        for s in sets:
            if s in r.comparisons:
                seen.setdefault((r.model or MISSING, s), {m: c["a"] for m, c in r.comparisons[s].items()})
            elif s in r.base_scores:
                seen.setdefault((r.model or MISSING, s), r.base_scores[s])
    if not seen:
        return ""
    lines = ["| base model | set | " + " | ".join(SHORT[m] for m in METRICS) + " |", "|---|---|" + "---|" * 4]
    for (model, s), scores in seen.items():
        values = " | ".join(f"{scores[m]:.3f}" if m in scores else MISSING for m in METRICS)
        lines.append(f"| {model} | {SET_LABELS.get(s, s)} | {values} |")
    return "\n".join(lines)


def constraint_type_table(run_dir: Path, sets: list[str]) -> str:
    """Instruction-level strict accuracy per constraint type, base vs trained, for each evaluation set.

    Read from ``RUN_DIR/eval/SET/{base,trained}/results.json`` (``by_instruction_type``, as IFEval scores
    it), so a reader sees which constraint types a method moved. Empty when no set has both results.
    """
    lines = []
    for s in sets:
        base, trained = (type_accuracies(run_dir, s, side) for side in ("base", "trained"))
        for kind in sorted(set(base) & set(trained)):
            a, b, count = base[kind]["strict_acc"], trained[kind]["strict_acc"], base[kind]["count"]
            lines.append(f"| {SET_LABELS.get(s, s)} | {kind} | {count} | {a:.3f} | {b:.3f} | {b - a:+.3f} |")
    if not lines:
        return ""
    header = "| set | constraint type | count | base | trained | trained − base |"
    return "\n".join([header, "|---|---|---|---|---|---|", *lines])


def type_accuracies(run_dir: Path, set_name: str, side: str) -> dict[str, dict]:
    """``by_instruction_type`` of RUN_DIR/eval/SET/SIDE/results.json (count, strict_acc, loose_acc per type)."""
    return (read_json(RunLayout(run_dir).eval_results(set_name, side)) or {}).get("by_instruction_type") or {}


def constraint_moves(records: list[RunRecord], set_name: str) -> tuple[dict[str, dict], dict[str, dict[str, float]]]:
    """For one set: the base model's per-type results, and per trained run each type's move (trained − base
    instruction-level strict accuracy), from the runs' results files. The base is the first run's that has
    one; every run is checked to share it (same counts per type), else its moves are left out."""
    base: dict[str, dict] = {}
    for record in records:
        base = type_accuracies(record.directory, set_name, "base")
        if base:
            break
    moves: dict[str, dict[str, float]] = {}
    for record in records:
        trained = type_accuracies(record.directory, set_name, "trained")
        mine = type_accuracies(record.directory, set_name, "base") or base
        if not trained or {t: v["count"] for t, v in mine.items()} != {t: v["count"] for t, v in base.items()}:
            continue
        moves[record.name] = {t: trained[t]["strict_acc"] - base[t]["strict_acc"] for t in base if t in trained}
    return base, moves


def constraint_moves_table(records: list[RunRecord], sets: list[str]) -> str:
    """Per set, one row per constraint type: its instruction count, the base model's strict accuracy and each
    trained run's move (trained − base), so a reader sees which types each variant moved, and which moved alike
    in all of them. Empty when no run has trained results with per-type accuracies."""
    parts = []
    for s in sets:
        base, moves = constraint_moves(records, s)
        if not moves:
            continue
        names = list(moves)
        lines = [f"**{SET_LABELS.get(s, s)}** (instruction-level strict accuracy; a move of one instruction of a type "
                 "with n instructions is 1/n)", "",
                 "| constraint type | n | base | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
        for kind in sorted(base):
            cells = [f"{moves[n][kind]:+.3f}" if kind in moves[n] else MISSING for n in names]
            lines.append(f"| {kind} | {base[kind]['count']} | {base[kind]['strict_acc']:.3f} | " + " | ".join(cells)
                         + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _left_out(run_dir: Path, set_name: str) -> list[str]:
    """A line naming the prompts the scorer left out of a set (checkers that cannot run offline), if any."""
    excluded = (read_json(RunLayout(run_dir).eval_results(set_name, "base")) or {}).get("excluded") or {}
    if not excluded.get("prompts"):
        return []
    return [f"{excluded['prompts']} prompts ({excluded['instructions']} instructions) left out of every metric: "
            f"their checkers cannot run offline ({', '.join(f'`{i}`' for i in excluded['reasons'])})."]


LEGEND = ("Metric cells: trained value (trained − base [95% paired bootstrap interval]); `–` = not available. "
          "P/I = prompt/instruction level, strict/loose as in IFEval; (headline) = the metric the set's benchmark "
          "reports as its result (IFBench: prompt-level loose). Roles: `self` = the policy made every model "
          "call; `teacher:M` = a named teacher evolved and answered (ECD); `responders:A>B` = APC's ladder. "
          "`train s` = wall time of the training stage.")


def compute_table(records: list[RunRecord]) -> str:
    """Wall time per run and stage, and where it ran. A stage whose output several runs share (a sweep's
    ``_shared``) is counted once, in the run that made it (the longest of them); the others show ``shared``."""
    timed = [r for r in records if r.stage_seconds]
    if not timed:
        return ""
    stages = list(dict.fromkeys(stage for r in timed for stage in r.stage_seconds if stage != "report"))
    maker = {}  # shared output -> the run whose stage did the work
    for r in timed:
        for stage, target in r.shared_outputs.items():
            best = maker.get(target)
            if best is None or r.stage_seconds.get(stage, 0) > best[1]:
                maker[target] = (r.name, r.stage_seconds.get(stage, 0))
    lines = ["| run | where | " + " | ".join(stages) + " | total h |", "|" + "---|" * (len(stages) + 3)]
    grand = 0.0
    for r in timed:
        cells, total = [], 0.0
        for stage in stages:
            seconds, target = r.stage_seconds.get(stage), r.shared_outputs.get(stage)
            if seconds is None:
                cells.append(MISSING)
            elif target is not None and maker[target][0] != r.name:
                cells.append(f"shared ({maker[target][0]})")
            else:
                cells.append(stage_time(seconds, r.stage_sessions.get(stage)))
                total += seconds
        grand += total
        lines.append(f"| {r.name} | {_text(r.machine)} | " + " | ".join(cells) + f" | {total / 3600:.2f} |")
    lines.append("| all | | " + " | ".join("" for _ in stages) + f" | {grand / 3600:.2f} |")
    return "\n".join(lines)


def _plots(records: list[RunRecord], sets: list[str], plot_dir: Path) -> list[Path]:
    made = [plots.metric_intervals(records, sets, plot_dir / "metrics.png"),
            plots.training_curves(records, plot_dir / "curves.png"),
            plots.yield_per_stage(records, plot_dir / "yield.png"),
            plots.constraint_moves({s: constraint_moves(records, s)[1] for s in sets},
                                   plot_dir / "constraint_types.png")]
    return [path for path in made if path is not None]


def _images(paths: list[Path], base: Path) -> str:
    return "\n\n".join(f"![{p.stem}]({p.relative_to(base).as_posix()})" for p in paths)


# ----------------------------------------------------------------------------------------------
# Rendering


def render_report(runs_dir: Path) -> dict[str, Path]:
    """RUNS_DIR/report.md, report.csv and plots/*.png for every run under ``runs_dir``."""
    records = collect_runs(runs_dir)
    if not records:
        raise DataError(f"'{runs_dir}' holds no run directories (a run directory has a config.yaml)")
    sets = present_sets(records)
    images = _plots(records, sets, runs_dir / "plots")
    counts = {s: sum(1 for r in records if r.status == s) for s in dict.fromkeys(r.status for r in records)}
    parts = [f"# Report: {runs_dir.name}", f"{len(records)} runs: " + ", ".join(f"{n} {s}" for s, n in
                                                                                counts.items()) + ".",
             markdown_table(records, sets), LEGEND]
    base = base_table(records, sets)
    if base:
        parts += ["## Base model", base]
    moves = constraint_moves_table(records, sets)
    if moves:
        parts += ["## Moves per constraint type", moves]
    compute = compute_table(records)
    if compute:
        parts += ["## Compute", "Wall time per stage, from each run's `status.json`. A stage that was killed and "
                  f"resumed sums its sessions (each saved every {HEARTBEAT_SECONDS:g} s while it ran, so a kill "
                  "loses at most that) and says how many; a `status.json` written before this accounting "
                  "(2026-12-05) counted only the session that finished the stage, a lower bound.", compute]
    failed = [r for r in records if r.status in ("failed", "interrupted")]
    if failed:
        parts += ["## Failed runs", "\n".join(f"- `{r.name}`: {r.error or 'no error recorded'}" for r in failed)]
    if images:
        parts += ["## Plots", _images(images, runs_dir)]
    markdown = "\n\n".join(parts) + "\n"
    write_atomic(runs_dir / "report.md", markdown)
    write_atomic(runs_dir / "report.csv", csv_table(records, sets))
    return {"markdown": runs_dir / "report.md", "csv": runs_dir / "report.csv",
            **{p.stem: p for p in images}}


def render_run_report(run_dir: Path) -> str:
    """RUN_DIR/report.md (and plots/*.png) for one run; returns the Markdown."""
    record = collect_run(run_dir)
    if record is None:
        raise DataError(f"'{run_dir}' is not a run directory (no config.yaml)")
    record = dataclasses.replace(record, status="done")  # rendered by the last stage: every stage before passed
    sets = present_sets([record])
    images = _plots([record], sets, run_dir / "plots")
    seconds = f" in {record.train_seconds:g} s" if record.train_seconds is not None else ""
    what = (f"The base model ({_text(record.model)}) only: no pairs, no training (eval.base_only)."
            if record.base_scores else f"{_descriptive(record, 'pairs')} pairs from {_text(record.seeds)} seeds; "
            f"{_text(record.train_steps)} training steps{seconds}.")
    parts = [f"# {record.name}", what, markdown_table([record], sets), LEGEND]
    for s in sets:
        if s not in record.comparisons:
            continue
        text = format_comparison(record.comparisons[s], record.labels.get("base", "base"),
                                 record.labels.get("trained", "trained"), headline=headline_metric(s))
        parts += [f"## {SET_LABELS.get(s, s)}", f"```\n{text}\n```", *_left_out(run_dir, s)]
    by_type = constraint_type_table(run_dir, sets)
    if by_type:
        parts += ["## By constraint type (instruction-level strict accuracy)", by_type]
    if images:
        parts += ["## Plots", _images(images, run_dir)]
    markdown = "\n\n".join(parts) + "\n"
    write_atomic(run_dir / "report.md", markdown)
    return markdown
