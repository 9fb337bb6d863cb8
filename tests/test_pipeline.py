"""`musc-ecd run` on the tiny model: every stage, the report, resume, and evaluation with an adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musc_ecd.cli import main

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
TINY = ["model.policy=tiny", "model.dtype=float32", f"data.seeds={REPO / 'configs/data/seeds.jsonl'}",
        "data.limit=6", "musc.decompose_max_tokens=24", "musc.recombine_max_tokens=16", "musc.rewrite_max_tokens=8",
        "musc.respond_max_tokens=12", "train.epochs=1", "train.precision=fp32", "eval.limit=4",
        "eval.max_new_tokens=8"]


def test_run_chains_every_stage_and_resumes(tmp_path, capsys):
    assert main(["run", QUICKSTART, *TINY, f"run_dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["pairs"] > 0 and report["train_steps"] >= 1
    assert set(report["comparison"]) == {"prompt_level_strict_acc", "inst_level_strict_acc",
                                         "prompt_level_loose_acc", "inst_level_loose_acc"}
    for name in ("base", "trained"):
        results = json.loads((tmp_path / "eval" / name / "results.json").read_text())
        assert results["num_prompts"] == 4 and len(results["per_prompt"]) == 4
    assert list((tmp_path / "eval").glob("merged-*/config.json"))  # the adapter merged once for evaluation
    assert "95% paired bootstrap CI" in (tmp_path / "report.md").read_text()

    capsys.readouterr()
    assert main(["run", str(tmp_path / "config.yaml")]) == 0  # everything is done: every stage skips
    log = (tmp_path / "log.txt").read_text()
    assert log.count("nothing to do") >= 4


def test_a_failing_stage_is_named_and_earlier_work_kept(tmp_path, capsys, monkeypatch):
    from musc_ecd.training import run as training_run

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(training_run, "_fit", broken)
    assert main(["run", QUICKSTART, *TINY, f"run_dir={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert "stage 'train' failed: RuntimeError: disk on fire" in err and "Traceback" not in err
    assert (tmp_path / "generate" / "pairs.jsonl").is_file()


@pytest.mark.parametrize("eval_set", ["own", "ifeval"])
def test_evaluate_base_model(tmp_path, eval_set):
    extra = [f"eval.ifeval_path={REPO.parent / 'shared/data/ifeval/input_data.jsonl'}"] if eval_set == "ifeval" else []
    assert main(["evaluate", QUICKSTART, *TINY, *extra, f"run_dir={tmp_path}"]) == 0
    results = json.loads((tmp_path / "eval" / "base" / "results.json").read_text())
    assert results["num_prompts"] == 4 and 0 <= results["metrics"]["inst_level_loose_acc"] <= 1
