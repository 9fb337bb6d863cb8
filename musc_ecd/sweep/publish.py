"""``musc-ecd publish RUNS_DIR DEST``: copy the checkable outputs of a sweep's finished runs into a folder that is
committed with the experiment, so that ``musc-ecd report DEST`` regenerates its tables and plots and anyone can
check every number against the answers and verdicts it came from.

DEST mirrors RUNS_DIR, holding only what a reader checks (no model weights, checkpoints or work files):

    DEST/NAME/config.yaml, status.json, report.json, report.md, plots/*.png
    DEST/NAME/train/metrics.jsonl               the training curves
    DEST/NAME/model/train_summary.json          pairs trained on (of how many), steps, loss, device, precision
    DEST/NAME/weights/summary.json              the token weights' summary (the weighted pairs are remade by
                                                ``musc-ecd weights`` from the pairs)
    DEST/NAME/eval/SET/trained/                 answers (responses.jsonl) and verdicts per prompt (results.json)
    DEST/NAME/machine.json                      the CPU (and cores) of the machine that published it
    DEST/NAME/generate, DEST/NAME/eval/SET/base links into DEST/_shared/, as in RUNS_DIR, when shared
    DEST/_shared/generate-KEY/                  pairs.jsonl, rejects.jsonl, summary.json, sft.jsonl, and
                                                audit.json (``musc-ecd audit --json`` on the pairs): once for
                                                every run that shares them
    DEST/_shared/eval-base-KEY/eval/base/       the base model's answers and verdicts, once

Only finished runs (``status.json`` done, ``report.json`` present) are published; publishing again replaces a
run's copy. A copy made with another config (its ``report.json`` has another ``config_fingerprint``: a recipe
tried and changed) is not overwritten but moved to ``DEST/_superseded/NAME-FINGERPRINT/``, so the runs that
tried stay on record.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path

from musc_ecd.errors import DataError
from musc_ecd.layout import RunLayout
from musc_ecd.store import write_atomic

RUN_FILES = ("config.yaml", "status.json", "report.json", "report.md", "train/metrics.jsonl",
             "model/train_summary.json", "weights/summary.json")
GENERATE_FILES = ("pairs.jsonl", "rejects.jsonl", "summary.json", "manifest.json", "sft.jsonl")
EVAL_FILES = ("results.json", "responses.jsonl")
SUPERSEDED = "_superseded"


def finished(run_dir: Path) -> bool:
    status = RunLayout(run_dir).status
    try:
        return json.loads(status.read_text()).get("status") == "done" and RunLayout(run_dir).report_json.is_file()
    except (OSError, ValueError):
        return False


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _copy_files(source: Path, target: Path, names: tuple[str, ...]) -> None:
    for name in names:
        if (source / name).is_file():
            _copy(source / name, target / name)


def _fingerprint(run_dir: Path) -> str | None:
    try:
        return json.loads(RunLayout(run_dir).report_json.read_text()).get("config_fingerprint")
    except (OSError, ValueError):
        return None


def _links(tree: Path) -> dict[Path, Path]:
    """Every symlink under ``tree`` (relative path -> absolute target), to re-point after a move."""
    return {path.relative_to(tree): (path.parent / os.readlink(path)).resolve()
            for path in tree.rglob("*") if path.is_symlink()}


def _relink(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    os.symlink(os.path.relpath(target, path.parent), path)


def _supersede(published: Path) -> Path:
    """Move an earlier copy made with another config aside, its links into ``_shared`` still resolving."""
    links = _links(published)
    target = published.parent / SUPERSEDED / f"{published.name}-{_fingerprint(published) or 'unknown'}"
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    published.rename(target)
    for relative, pointed in links.items():
        _relink(target / relative, pointed)
    return target


def _publish_generate(stage: Path, target: Path) -> None:
    """The pairs and their audit, into ``target`` (a shared entry is copied once: skipped when present)."""
    from musc_ecd.label_audit import audit_file

    if (target / "manifest.json").is_file():
        return
    _copy_files(stage, target, GENERATE_FILES)
    if (stage / "pairs.jsonl").is_file():
        write_atomic(target / "audit.json", json.dumps(audit_file(str(stage / "pairs.jsonl")), indent=2) + "\n")


def _publish_side(side: Path, target: Path) -> None:
    _copy_files(side, target, EVAL_FILES)


def _shared_copy(link: Path, runs_dir: Path, dest: Path) -> Path:
    """Where a link of the run points inside DEST: the same path relative to RUNS_DIR's share directory."""
    pointed = link.resolve()
    shared = runs_dir.resolve() / "_shared"
    try:
        return dest / "_shared" / pointed.relative_to(shared)
    except ValueError:  # a share_dir outside RUNS_DIR: named after its own folder
        return dest / "_shared" / pointed.parent.name / pointed.name


def machine() -> dict:
    """The machine this is published on (``run.sh`` publishes right after each run, on the machine that ran it):
    the CPU's model, family/model numbers and torch's vector capability (an AVX2 Zen and an AVX-512 Xeon share
    a model name like "AMD EPYC" or "Intel Xeon"), and the GPU when there is one."""
    from musc_ecd.models.precision import cpu_bf16_flags, cpu_capability

    model, fields = platform.processor() or "", {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = fields.get("model name", model)
    family_model = f"{fields['cpu family']}/{fields['model']}" if "cpu family" in fields and "model" in fields else None
    described = {"cpu": model, "cpu_family_model": family_model, "cpu_capability": cpu_capability(),
                 "cpu_bf16_flags": list(cpu_bf16_flags()), "cores": os.cpu_count(), "machine": platform.machine(),
                 "system": platform.system()}
    import torch

    if torch.cuda.is_available():
        described["gpu"] = torch.cuda.get_device_name(0)
    return described


def publish_run(run_dir: Path, runs_dir: Path, dest: Path) -> Path:
    """Copy one finished run's checkable outputs to DEST/NAME (module docstring); return that folder."""
    if not finished(run_dir):
        raise DataError(f"{run_dir} is not a finished run (status.json done and report.json); nothing published")
    target = dest / run_dir.name
    if target.exists() and _fingerprint(target) != _fingerprint(run_dir):
        _supersede(target)
    elif target.exists():
        shutil.rmtree(target)
    _copy_files(run_dir, target, RUN_FILES)
    for plot in sorted((run_dir / "plots").glob("*.png")):
        _copy(plot, target / "plots" / plot.name)
    layout = RunLayout(run_dir)
    if layout.generate.is_symlink():
        entry = _shared_copy(layout.generate, runs_dir, dest)
        _publish_generate(layout.generate.resolve(), entry)
        _relink(target / "generate", entry)
    elif layout.generate.is_dir():
        _publish_generate(layout.generate, target / "generate")
    for set_dir in sorted(p for p in (run_dir / "eval").glob("*") if p.is_dir()):
        for side in sorted(set_dir.iterdir()):
            if side.is_symlink():
                entry = _shared_copy(side, runs_dir, dest)
                _publish_side(side.resolve(), entry)
                _relink(target / "eval" / set_dir.name / side.name, entry)
            elif side.is_dir():
                _publish_side(side, target / "eval" / set_dir.name / side.name)
    write_atomic(target / "machine.json", json.dumps(machine(), indent=2) + "\n")
    return target


def publish(runs_dir: Path, dest: Path, names: list[str] | None = None) -> list[Path]:
    """Publish the finished runs under ``runs_dir`` (only ``names`` when given); return the folders written."""
    if not runs_dir.is_dir():
        raise DataError(f"'{runs_dir}' is not a directory of runs")
    candidates = [runs_dir / name for name in names] if names else sorted(
        p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    missing = [p.name for p in candidates if not RunLayout(p).config.is_file()]
    if missing:
        raise DataError(f"no run named {', '.join(missing)} under {runs_dir}")
    written = [publish_run(run, runs_dir, dest) for run in candidates if finished(run)]
    status = runs_dir / "sweep_status.json"
    if status.is_file():
        _copy(status, dest / "sweep_status.json")
    return written
