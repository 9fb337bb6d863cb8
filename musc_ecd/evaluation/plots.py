"""Report plots as PNG (matplotlib, Agg backend: no display needed).

- ``metric_intervals``: per evaluation set, each variant's difference to the base model on the four
  IFEval metrics, with its 95% paired bootstrap interval (a dashed line at 0);
- ``training_curves``: loss, reward margin and reward accuracy per logged step, one line per variant;
- ``yield_per_stage``: items left after each stage of pair generation, one bar group per distinct
  generation (runs sharing one generated artifact are drawn once);
- ``constraint_moves``: per evaluation set, a heat map of each run's move per constraint type (trained −
  base instruction-level strict accuracy).

Each function takes a list of ``runs.RunRecord``, writes one file and returns its path, or None when
there is nothing to draw (e.g. no run has finished training).
"""

from __future__ import annotations

from pathlib import Path

from musc_ecd.evaluation.runs import CURVES, RunRecord

METRIC_LABELS = {"prompt_level_strict_acc": "prompt strict", "inst_level_strict_acc": "inst strict",
                 "prompt_level_loose_acc": "prompt loose", "inst_level_loose_acc": "inst loose"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def metric_intervals(records: list[RunRecord], sets: list[str], path: Path) -> Path | None:
    shown = [r for r in records if r.comparisons]
    if not shown or not sets:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 1.2 + 0.55 * len(shown) * 1.6),
                             squeeze=False, sharey=True)
    offsets = {m: (i - 1.5) * 0.18 for i, m in enumerate(METRIC_LABELS)}
    for ax, set_name in zip(axes[0], sets, strict=True):
        for row, record in enumerate(shown):
            comparison = record.comparisons.get(set_name, {})
            for metric, label in METRIC_LABELS.items():
                if metric not in comparison:
                    continue
                c = comparison[metric]
                y = row + offsets[metric]
                ax.errorbar(c["diff"], y, xerr=[[c["diff"] - c["ci95"][0]], [c["ci95"][1] - c["diff"]]], fmt="o",
                            color=f"C{list(METRIC_LABELS).index(metric)}", capsize=3, markersize=4,
                            label=label if row == 0 else None)
        ax.axvline(0.0, color="grey", linestyle="--", linewidth=1)
        ax.set_title(f"{set_name}: trained − base (95% paired bootstrap CI)", fontsize=9)
        ax.set_xlabel("difference")
        ax.set_yticks(range(len(shown)), [r.name for r in shown], fontsize=8)
    axes[0][0].invert_yaxis()  # first run on top (the y axis is shared: invert it once)
    axes[0][0].legend(fontsize=7, loc="best")
    return _save(fig, path)


def training_curves(records: list[RunRecord], path: Path) -> Path | None:
    shown = [r for r in records if r.curves]
    if not shown:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(CURVES), figsize=(4.5 * len(CURVES), 3.4))
    for ax, (key, label) in zip(axes, CURVES, strict=True):
        for index, record in enumerate(shown):
            points = record.curves.get(key, [])
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, marker="." if len(points) < 30 else None, color=f"C{index % 10}",
                        label=record.name)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("step")
    axes[0].legend(fontsize=7, loc="best")
    return _save(fig, path)


def yield_per_stage(records: list[RunRecord], path: Path) -> Path | None:
    groups: dict[str, tuple[list[str], dict[str, int]]] = {}  # generation source -> (run names, yield)
    for record in records:
        if record.yield_per_stage:
            key = record.generation_source or record.name
            groups.setdefault(key, ([], record.yield_per_stage))[0].append(record.name)
    if not groups:
        return None
    plt = _pyplot()
    stages = list(dict.fromkeys(stage for _, counts in groups.values() for stage in counts))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(stages) + 0.4 * len(groups)), 3.6))
    width = 0.8 / len(groups)
    for index, (names, counts) in enumerate(groups.values()):
        label = names[0] if len(names) == 1 else f"{names[0]} (+{len(names) - 1} sharing it)"
        xs = [i + (index - (len(groups) - 1) / 2) * width for i in range(len(stages))]
        ax.bar(xs, [counts.get(s, 0) for s in stages], width=width, label=label, color=f"C{index % 10}")
    ax.set_xticks(range(len(stages)), stages, fontsize=8)
    ax.set_ylabel("items left")
    ax.set_title("yield per pipeline stage", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def constraint_moves(moves: dict[str, dict[str, dict[str, float]]], path: Path) -> Path | None:
    """``moves``: set -> run -> constraint type -> trained − base strict accuracy (``report.constraint_moves``)."""
    shown = {s: runs for s, runs in moves.items() if runs}
    if not shown:
        return None
    plt = _pyplot()
    kinds = {s: sorted({k for per_run in runs.values() for k in per_run}) for s, runs in shown.items()}
    height = 1.5 + 0.18 * max(len(k) for k in kinds.values())
    fig, axes = plt.subplots(1, len(shown), figsize=(3 + 0.9 * max(len(r) for r in shown.values()) * len(shown),
                                                     height), squeeze=False)
    for ax, (set_name, runs) in zip(axes[0], shown.items(), strict=True):
        names = list(runs)
        grid = [[runs[n].get(k, float("nan")) for n in names] for k in kinds[set_name]]
        image = ax.imshow(grid, cmap="RdBu", vmin=-0.5, vmax=0.5, aspect="auto")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(kinds[set_name])), kinds[set_name], fontsize=6)
        ax.set_title(f"{set_name}: trained − base per constraint type (strict)", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.04)
    return _save(fig, path)
