"""The report's view of run directories: one ``RunRecord`` per run, read from the files its stages wrote
(``musc_ecd.layout``). ``report`` renders tables from these records and ``plots`` draws them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from musc_ecd.errors import DataError, UserError
from musc_ecd.layout import RunLayout
from musc_ecd.store import read_jsonl

SET_ORDER = ("ifeval", "ifbench", "own")
"""Sets shown first, in this order; any other set a run was scored on follows, by name."""
CURVES = (("loss", "loss"), ("rewards/margins", "reward margin"), ("rewards/accuracies", "reward accuracy"))
"""Training curves read from ``train/metrics.jsonl``: (metric key, axis label)."""
SWEEP_STATUS = "sweep_status.json"


@dataclass(frozen=True)
class RunRecord:
    """What the report shows of one run (read from its directory; see the module docstring)."""

    name: str
    directory: Path
    status: str  # done | failed | interrupted | running | pending
    error: str | None = None
    method: str | None = None
    roles: str | None = None
    loss: str | None = None
    weights: str | None = None
    curriculum: str | None = None
    model: str | None = None
    pairs: int | None = None
    """Pairs trained on (after ``train.max_pairs``); ``generated_pairs`` is what the method made."""
    generated_pairs: int | None = None
    seeds: int | None = None
    train_steps: int | None = None
    train_seconds: float | None = None
    comparisons: dict[str, dict[str, dict]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    yield_per_stage: dict[str, int] = field(default_factory=dict)
    generation_source: str | None = None
    label_accuracy: dict = field(default_factory=dict)
    """The generate summary's audit of the pairs on their typed constraints (empty when none carry any)."""
    base_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    """``eval.base_only`` runs: the base model's metrics per set (such a run has no comparisons)."""
    stage_seconds: dict[str, float] = field(default_factory=dict)
    """Wall seconds per finished stage (``status.json``), in the order the stages ran, summed over sessions."""
    stage_sessions: dict[str, int] = field(default_factory=dict)
    """Finished stages that took more than one session (killed and resumed): how many."""
    shared_outputs: dict[str, str] = field(default_factory=dict)
    """Stage → the shared directory its output links to (a sweep's ``_shared``): work other runs reuse."""
    machine: str | None = None
    """Where it ran: ``machine.json`` (written by ``publish``), else the CPU capability its evaluations recorded."""


# ----------------------------------------------------------------------------------------------
# Reading runs


def roles(cfg: dict) -> str:
    """Who wrote the data: read from the method's own declaration of the models it calls (``roles(cfg)`` in
    its module), never from the config's role names alone, so the column cannot claim a model that never ran.

    ``self`` when every call is the policy's; ``teacher:NAME`` when a named teacher makes calls (even one equal
    to the policy: on CPU the "teacher" is the policy decoded differently, and the column must tell the two
    runs apart), with the step in brackets when it makes only one (``teacher:t (evolver)``); APC lists its
    responders strongest first; a judge other than the policy is appended (``+judge:NAME``).
    """
    from musc_ecd.config import from_dict
    from musc_ecd.registry import roles_called

    try:
        typed = from_dict(cfg)
        uses = roles_called(typed)
    except UserError:
        return "?"
    parts = []
    for use in uses:
        if use.role == "responders":
            parts.append("responders:" + ">".join(use.models))
        elif use.role == "teacher":
            parts.append(f"teacher:{use.models[0]}" + (f" ({use.steps[0]})" if len(use.steps) == 1 else ""))
        elif use.role == "judge" and use.models[0] != typed.model.policy:
            parts.append(f"judge:{use.models[0]}")
    return "+".join(parts) or "self"


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _curves(path: Path) -> dict[str, list[tuple[float, float]]]:
    if not path.is_file():
        return {}
    try:
        rows = read_jsonl(path)
    except DataError:
        return {}
    curves: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        for key, _ in CURVES:
            if isinstance(row.get(key), int | float) and "step" in row:
                curves.setdefault(key, []).append((row["step"], float(row[key])))
    return curves


def collect_run(directory: Path, name: str | None = None) -> RunRecord | None:
    """The report's view of one run directory; None when it holds no run (no config.yaml)."""
    import yaml

    layout = RunLayout(directory)
    if not layout.config.is_file():
        return None
    cfg = yaml.safe_load(layout.config.read_text()) or {}
    report = read_json(layout.report_json) or {}
    status = read_json(layout.status) or {}
    state = status.get("status") or ("done" if report else "pending")
    if state == "done" and not report:
        state = "pending"
    error = status.get("error") if state in ("failed", "interrupted") else None
    if error and status.get("stage") and f"'{status['stage']}'" not in error:
        error = f"stage '{status['stage']}': {error}"
    model, train = cfg.get("model") or {}, cfg.get("train") or {}
    base_only = bool((cfg.get("eval") or {}).get("base_only"))
    loss = None if base_only else "+".join(train.get("loss") or []) or None
    if loss and train.get("loss_weights"):
        loss += " (" + ", ".join(f"{w:g}" for w in train["loss_weights"]) + ")"
    if loss and train.get("swap_labels"):
        loss += ", labels swapped"
    generation = read_json(layout.generate_summary) or report.get("generation") or {}
    finished = {stage: entry for stage, entry in (status.get("stages") or {}).items()
                if isinstance(entry, dict) and entry.get("state") == "done"
                and isinstance(entry.get("seconds"), int | float)}
    stage_seconds = {stage: entry["seconds"] for stage, entry in finished.items()}
    stage_sessions = {stage: entry["sessions"] for stage, entry in finished.items()
                      if isinstance(entry.get("sessions"), int) and entry["sessions"] > 1}
    return RunRecord(
        name=name or directory.name,
        directory=directory,
        status=state,
        error=error,
        method="base (no training)" if base_only else cfg.get("method"),
        roles=None if base_only else roles(cfg),
        loss=loss,
        weights=None if base_only else train.get("weights"),
        curriculum=None if base_only else train.get("curriculum"),
        model=model.get("policy"),
        pairs=report.get("pairs", generation.get("accepted")),
        generated_pairs=report.get("generated_pairs", generation.get("accepted")),
        seeds=generation.get("items"),
        train_steps=report.get("train_steps"),
        train_seconds=stage_seconds.get("train"),
        comparisons=report.get("comparisons", {}),
        labels=report.get("labels", {}),
        curves=_curves(layout.metrics),
        yield_per_stage=generation.get("yield_per_stage") or {},
        generation_source=str(layout.pairs.parent.resolve()) if layout.pairs.is_file() else None,
        label_accuracy=generation.get("label_accuracy") or {},
        base_scores=report.get("base_scores") or {},
        stage_seconds=stage_seconds,
        stage_sessions=stage_sessions,
        shared_outputs=_shared_outputs(layout, stage_seconds),
        machine=_machine(directory),
    )


def _stage_output(layout: RunLayout, stage: str) -> Path | None:
    """The directory a shareable stage writes (``generate``, ``evaluate-base[SET]``); None for the others."""
    if stage == "generate":
        return layout.generate
    if stage.startswith("evaluate-base[") and stage.endswith("]"):
        return layout.eval_side(stage[len("evaluate-base["):-1], "base")
    return None


def _shared_outputs(layout: RunLayout, stages: dict) -> dict[str, str]:
    shared = {}
    for stage in stages:
        output = _stage_output(layout, stage)
        if output is not None and output.is_symlink():
            shared[stage] = str(output.resolve())
    return shared


def _machine(directory: Path) -> str | None:
    """``CPU (N cores, CAPABILITY)`` or the GPU: from ``machine.json``, else from what an evaluation recorded."""
    described = read_json(directory / "machine.json") or {}
    if described.get("gpu"):
        return described["gpu"]
    capability = described.get("cpu_capability")
    if capability is None:
        for results in sorted(directory.glob("eval/*/*/results.json")):
            precision = (read_json(results) or {}).get("precision") or {}
            capability = precision.get("cpu_capability") if precision.get("device", "cpu") == "cpu" else None
            if capability:
                break
    cpu = described.get("cpu")
    if cpu and described.get("cpu_family_model"):
        cpu += f" (family/model {described['cpu_family_model']})"
    details = ", ".join(part for part in (f"{described['cores']} cores" if described.get("cores") else None,
                                          capability) if part)
    if cpu:
        return f"{cpu}, {details}" if details else cpu
    return f"CPU {capability}" if capability else None


def collect_runs(runs_dir: Path) -> list[RunRecord]:
    """Every run directly under ``runs_dir`` (or ``runs_dir`` itself if it is a run), in name order.

    Directories whose name starts with ``_`` or ``.`` (the sweep's ``_shared``, ``_submitit``) are not
    runs. A run the sweep recorded as failed before it wrote anything still gets a row.
    """
    if not runs_dir.is_dir():
        raise DataError(f"'{runs_dir}' is not a directory of runs")
    records = []
    if RunLayout(runs_dir).config.is_file():
        records.append(collect_run(runs_dir))
    for child in sorted(runs_dir.iterdir()):
        if child.is_dir() and not child.name.startswith(("_", ".")):
            record = collect_run(child)
            if record is not None:
                records.append(record)
    sweep = read_json(runs_dir / SWEEP_STATUS) or {}
    known = {r.name for r in records}
    for name, entry in (sweep.get("runs") or {}).items():
        if name not in known and entry.get("status") == "failed":
            records.append(RunRecord(name=name, directory=runs_dir / name, status="failed", error=entry.get("error")))
    return records


def present_sets(records: list[RunRecord]) -> list[str]:
    found = {s for r in records for s in (*r.comparisons, *r.base_scores)}
    return [s for s in SET_ORDER if s in found] + sorted(found - set(SET_ORDER))
