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
        cells += [_cell(r.comparisons.get(s, {}).get(m)) for s in sets for m in METRICS]
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
                if c:
                    row.update({f"{s}/{m}": c["b"], f"{s}/{m}/base": c["a"], f"{s}/{m}/diff": c["diff"],
                                f"{s}/{m}/ci_low": c["ci95"][0], f"{s}/{m}/ci_high": c["ci95"][1]})
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buffer.getvalue()


def base_table(records: list[RunRecord], sets: list[str]) -> str:
    """The base model's metrics, once per (model, set): every run's differences are to these."""
    seen: dict[tuple[str, str], dict] = {}
    for r in records:
        for s in sets:
            if s in r.comparisons:
                seen.setdefault((r.model or MISSING, s), r.comparisons[s])
    if not seen:
        return ""
    lines = ["| base model | set | " + " | ".join(SHORT[m] for m in METRICS) + " |", "|---|---|" + "---|" * 4]
    for (model, s), comparison in seen.items():
        values = " | ".join(f"{comparison[m]['a']:.3f}" if m in comparison else MISSING for m in METRICS)
        lines.append(f"| {model} | {SET_LABELS.get(s, s)} | {values} |")
    return "\n".join(lines)


def constraint_type_table(run_dir: Path, sets: list[str]) -> str:
    """Instruction-level strict accuracy per constraint type, base vs trained, for each evaluation set.

    Read from ``RUN_DIR/eval/SET/{base,trained}/results.json`` (``by_instruction_type``, as IFEval scores
    it), so a reader sees which constraint types a method moved. Empty when no set has both results.
    """
    lines = []
    for s in sets:
        sides = [read_json(RunLayout(run_dir).eval_results(s, side)) or {} for side in ("base", "trained")]
        base, trained = (side.get("by_instruction_type") or {} for side in sides)
        for kind in sorted(set(base) & set(trained)):
            a, b, count = base[kind]["strict_acc"], trained[kind]["strict_acc"], base[kind]["count"]
            lines.append(f"| {SET_LABELS.get(s, s)} | {kind} | {count} | {a:.3f} | {b:.3f} | {b - a:+.3f} |")
    if not lines:
        return ""
    header = "| set | constraint type | count | base | trained | trained − base |"
    return "\n".join([header, "|---|---|---|---|---|---|", *lines])


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


def _plots(records: list[RunRecord], sets: list[str], plot_dir: Path) -> list[Path]:
    made = [plots.metric_intervals(records, sets, plot_dir / "metrics.png"),
            plots.training_curves(records, plot_dir / "curves.png"),
            plots.yield_per_stage(records, plot_dir / "yield.png")]
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
    parts = [f"# {record.name}",
             f"{_descriptive(record, 'pairs')} pairs from {_text(record.seeds)} seeds; "
             f"{_text(record.train_steps)} training steps{seconds}.",
             markdown_table([record], sets), LEGEND]
    for s in sets:
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
