"""``musc-ecd run``: generate → [weights] → train → evaluate base and trained on each set → report.

Every stage writes into the run directory and skips itself when its artifact is complete, so rerunning
after a failure or a kill continues where it stopped; a failure names the stage and keeps what earlier
stages produced. Progress goes to the console and ``RUN_DIR/log.txt``; ``RUN_DIR/status.json`` says
which stage is running, which are done (with their wall time, summed over the sessions that worked on them)
and, after a failure, the error.

Every artifact's path is named by ``musc_ecd.layout.RunLayout`` (the same layout ``musc-ecd generate``,
``train`` and ``evaluate`` write), so each stage can also be run on its own on the same run directory.

**Sharing.** With ``share_dir`` set (``musc-ecd sweep`` sets RUNS_DIR/_shared), the two artifacts that
many runs have in common live there once, named by a hash of the config that determines them:
``generate-<hash>`` and ``eval-base-<hash>`` (``musc_ecd.fingerprints`` says what each hash covers);
``RUN_DIR/generate`` and ``RUN_DIR/eval/SET/base`` are relative symlinks to them. Runs of a sweep that
differ only in training options therefore generate once and evaluate the base model once. Two processes
that want the same entry at once take turns on a ``DirectoryLock`` in the share directory: the second
waits, then finds the work done and skips it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from musc_ecd.config import Config
from musc_ecd.errors import RunDirConflictError, UserError
from musc_ecd.fingerprints import base_eval_share_key, config_fingerprint, generate_share_key
from musc_ecd.layout import RunLayout
from musc_ecd.run_status import RunStatus
from musc_ecd.store import DirectoryLock, write_atomic

log = logging.getLogger(__name__)

WAIT_SECONDS = 2.0  # poll interval while another process holds a shared entry


class StageFailed(UserError):
    """A pipeline stage failed; earlier stages' artifacts are kept."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    action: Callable[[], Any]


def run(cfg: Config, run_dir: Path) -> dict:
    """Run every stage that is not done yet; return the report (also in RUN_DIR/report.json)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    stages = plan(cfg, run_dir)
    status = RunStatus(run_dir, config_fingerprint(cfg))
    for number, stage in enumerate(stages, start=1):
        status.begin(stage.name)
        try:
            announce(stage.name, number, len(stages))
            stage.action()
        except KeyboardInterrupt:
            status.end("interrupted", stage.name, "interrupted")
            raise
        except UserError as exc:
            status.end("failed", stage.name, str(exc))
            raise StageFailed(f"stage '{stage.name}' failed: {exc}", exit_code=exc.exit_code) from None
        except Exception as exc:  # name the stage; the traceback is in the log file
            log.exception("stage %s failed", stage.name)
            error = f"{type(exc).__name__}: {exc}"
            status.end("failed", stage.name, error)
            raise StageFailed(f"stage '{stage.name}' failed: {error}; earlier stages are kept in {run_dir}; "
                              "rerun the same command to resume") from None
        status.stage_done(stage.name)
    status.end("done")
    return json.loads(RunLayout(run_dir).report_json.read_text())


def announce(name: str, number: int, total: int) -> None:
    """Progress: one line per stage, on the console and in the log."""
    log.info("== [%d/%d] %s ==", number, total, name)


def plan(cfg: Config, run_dir: Path) -> list[Stage]:
    """The stages of ``run`` in order; each one skips itself when its artifact is complete. With
    ``eval.base_only`` only the base model's evaluations and their report."""
    if cfg.eval.base_only:
        stages = [Stage(f"evaluate-base[{name}]", lambda name=name: evaluate_base_stage(cfg, run_dir, name))
                  for name in cfg.eval.set_names()]
        return [*stages, Stage("report", lambda: base_report_stage(cfg, run_dir))]
    stages = [Stage("generate", lambda: generate_stage(cfg, run_dir))]
    if cfg.train.weights != "none":
        stages.append(Stage("weights", lambda: weights_stage(cfg, run_dir)))
    stages.append(Stage("train", lambda: train_stage(cfg, run_dir)))
    for name in cfg.eval.set_names():
        stages.append(Stage(f"evaluate-base[{name}]", lambda name=name: evaluate_base_stage(cfg, run_dir, name)))
    for name in cfg.eval.set_names():
        stages.append(Stage(f"evaluate-trained[{name}]",
                            lambda name=name: evaluate_trained_stage(cfg, run_dir, name)))
    stages.append(Stage("report", lambda: report_stage(cfg, run_dir)))
    return stages


# ----------------------------------------------------------------------------------------------
# Stages


def generate_stage(cfg: Config, run_dir: Path) -> dict:
    from musc_ecd.generate import generate, generate_into

    target = RunLayout(run_dir).generate
    if cfg.share_dir is None or (target.is_dir() and not target.is_symlink()):
        return generate(cfg, run_dir)  # unshared (or made before sharing was turned on): stays in the run
    entry = Path(cfg.share_dir) / f"generate-{generate_share_key(cfg)}"
    if target.is_symlink() and target.resolve() != entry.resolve():
        # A trained model here was made from the other pairs: refuse, as the run store does, rather than mix.
        raise RunDirConflictError(f"{target} links to pairs made with a different config ({os.readlink(target)}); "
                                  "use another run_dir or delete this one")
    with shared_entry(entry):
        summary = generate_into(cfg, entry)
    link(target, entry)
    return summary


def weights_stage(cfg: Config, run_dir: Path) -> dict:
    from musc_ecd.weighting import weights_stage as compute_weights

    return compute_weights(cfg, run_dir)


def train_stage(cfg: Config, run_dir: Path) -> dict:
    from musc_ecd.training.run import train

    return train(cfg, run_dir)


def _eval_cfg(cfg: Config, set_name: str, adapter: str | None, name: str) -> Config:
    """``evaluate``'s config for one set: the one set named, so that evaluate answers that set."""
    return dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, adapter=adapter, name=name, sets=[set_name]))


def evaluate_base_stage(cfg: Config, run_dir: Path, set_name: str) -> dict:
    from musc_ecd.evaluation.evaluate import evaluate

    target = RunLayout(run_dir).eval_side(set_name, "base")
    if cfg.share_dir is None or (target.is_dir() and not target.is_symlink()):
        return evaluate(_eval_cfg(cfg, set_name, None, f"{set_name}/base"), run_dir)
    entry = Path(cfg.share_dir) / f"eval-base-{base_eval_share_key(cfg, set_name)}"
    with shared_entry(entry):
        results = evaluate(_eval_cfg(cfg, set_name, None, "base"), entry)  # -> entry/eval/base
    link(target, RunLayout(entry).eval_dir("base"))
    return results


def evaluate_trained_stage(cfg: Config, run_dir: Path, set_name: str) -> dict:
    from musc_ecd.evaluation.evaluate import evaluate

    return evaluate(_eval_cfg(cfg, set_name, str(RunLayout(run_dir).model), f"{set_name}/trained"), run_dir)


def report_stage(cfg: Config, run_dir: Path) -> dict:
    """Compare base and trained on every set (paired bootstrap), write report.json, render report.md."""
    from musc_ecd.evaluation.compare import paired_bootstrap
    from musc_ecd.evaluation.ifeval import PromptResult
    from musc_ecd.evaluation.report import render_run_report

    layout = RunLayout(run_dir)
    comparisons = {}
    for set_name in cfg.eval.set_names():
        base, trained = (json.loads(layout.eval_results(set_name, side).read_text()) for side in ("base", "trained"))
        comparisons[set_name] = paired_bootstrap([PromptResult.from_json(r) for r in base["per_prompt"]],
                                                 [PromptResult.from_json(r) for r in trained["per_prompt"]])
    generation = json.loads(layout.generate_summary.read_text())
    training = json.loads((layout.model / "manifest.json").read_text())["summary"]
    report = {
        "config_fingerprint": config_fingerprint(cfg),
        "pairs": training.get("pairs", generation["accepted"]),  # trained on, after train.max_pairs
        "generated_pairs": generation["accepted"],
        "generation": {k: generation.get(k) for k in ("items", "accepted", "rejected", "yield_per_stage")},
        "train_steps": training["global_steps"],
        "comparisons": comparisons,
        "labels": {"base": f"base ({cfg.model.policy})", "trained": f"trained ({cfg.method}, {cfg.train.loss})"},
    }
    write_atomic(layout.report_json, json.dumps(report, indent=2) + "\n")
    render_run_report(run_dir)
    return report


def base_report_stage(cfg: Config, run_dir: Path) -> dict:
    """``eval.base_only``: the base model's metrics on every set (report.json, report.md); nothing to compare."""
    from musc_ecd.evaluation.report import render_run_report

    layout = RunLayout(run_dir)
    scores = {name: json.loads(layout.eval_results(name, "base").read_text())["metrics"]
              for name in cfg.eval.set_names()}
    report = {"config_fingerprint": config_fingerprint(cfg), "base_only": True, "base_scores": scores,
              "labels": {"base": f"base ({cfg.model.policy})"}}
    write_atomic(layout.report_json, json.dumps(report, indent=2) + "\n")
    render_run_report(run_dir)
    return report


# ----------------------------------------------------------------------------------------------
# The share directory


class shared_entry:
    """Hold ``entry``'s lock in the share directory, waiting while another process holds it."""

    def __init__(self, entry: Path):
        self.entry = entry

    def __enter__(self) -> Path:
        waited = False
        while True:
            try:
                self._lock = DirectoryLock(self.entry.parent, self.entry.name)
                return self.entry
            except RunDirConflictError:
                if not waited:
                    log.info("waiting for another run to finish %s", self.entry)
                    waited = True
                time.sleep(WAIT_SECONDS)

    def __exit__(self, *exc) -> None:
        self._lock.release()


def link(path: Path, target: Path) -> None:
    """Make ``path`` a relative symlink to ``target`` (replacing an older link atomically)."""
    relative = os.path.relpath(target, path.parent)
    if path.is_symlink() and os.readlink(path) == relative:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.link")
    tmp.unlink(missing_ok=True)
    os.symlink(relative, tmp)
    os.replace(tmp, path)
