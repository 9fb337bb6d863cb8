"""``musc-ecd run``: generate → [weights] → train → evaluate (base and trained) → compare, each resumable.

Every stage writes into the run directory and skips itself when its artifact is complete, so rerunning
after a failure or a kill continues where it stopped; a failure names the stage and keeps what earlier
stages produced.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

from musc_ecd.config import Config
from musc_ecd.errors import UserError
from musc_ecd.store import write_atomic

log = logging.getLogger(__name__)


class StageFailed(UserError):
    """A pipeline stage failed; earlier stages' artifacts are kept."""

    exit_code = 1


def run(cfg: Config, run_dir: Path) -> dict:
    from musc_ecd.evaluation.compare import format_comparison, paired_bootstrap
    from musc_ecd.evaluation.evaluate import evaluate
    from musc_ecd.evaluation.ifeval import PromptResult
    from musc_ecd.generate import generate
    from musc_ecd.training.run import train

    timings: dict[str, float] = {}

    def stage(name: str, function, stage_cfg: Config, directory: Path):
        log.info("== stage %s ==", name)
        started = time.perf_counter()
        try:
            result = function(stage_cfg, directory)
        except UserError:
            raise
        except Exception as exc:  # name the stage; the traceback is in the log file
            log.exception("stage %s failed", name)
            raise StageFailed(f"stage '{name}' failed: {type(exc).__name__}: {exc}; earlier stages are kept in "
                              f"{run_dir}; rerun the same command to resume") from None
        timings[name] = round(time.perf_counter() - started, 1)
        return result

    generation = stage("generate", generate, cfg, run_dir / "generate")
    training_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, pairs=str(run_dir / "generate" /
                                                                                            "pairs.jsonl")))
    if cfg.train.weights != "none":
        from musc_ecd.weighting import weights_stage

        stage("weights", weights_stage, training_cfg, run_dir)
    training = stage("train", train, training_cfg, run_dir)
    base = stage("evaluate-base", evaluate, dataclasses.replace(cfg, eval=dataclasses.replace(
        cfg.eval, adapter=None, name="base")), run_dir)
    trained = stage("evaluate-trained", evaluate, dataclasses.replace(cfg, eval=dataclasses.replace(
        cfg.eval, adapter=str(run_dir / "model"), name="trained")), run_dir)
    comparison = paired_bootstrap([PromptResult.from_json(r) for r in base["per_prompt"]],
                                  [PromptResult.from_json(r) for r in trained["per_prompt"]])
    table = format_comparison(comparison, f"base ({cfg.model.policy})", f"trained ({cfg.method}, {cfg.train.loss})")
    report = {"pairs": generation["accepted"], "generation": {k: generation.get(k) for k in
                                                              ("items", "accepted", "rejected", "yield_per_stage")},
              "train_steps": training["global_steps"], "comparison": comparison, "stage_seconds": timings}
    write_atomic(run_dir / "report.json", json.dumps(report, indent=2) + "\n")
    write_atomic(run_dir / "report.md", f"# {run_dir.name}\n\n{generation['accepted']} pairs from "
                 f"{generation['items']} seeds; {training['global_steps']} training steps.\n\n```\n{table}\n```\n")
    print(table)
    return report
