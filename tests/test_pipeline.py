"""`musc-ecd run` on the tiny model: every stage, the report, resume after a kill at each stage, sharing."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from musc_ecd.cli import main
from musc_ecd.store import read_jsonl

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = str(REPO / "configs" / "musc_full_cpu.yaml")  # full MuSC, every stage
IFEVAL = REPO.parent / "shared" / "data" / "ifeval" / "input_data.jsonl"
TINY = ["model.policy=tiny", "model.dtype=float32", "generation.backend=hf",
        f"data.seeds={REPO / 'configs/data/seeds.jsonl'}",
        "data.limit=6", "musc.decompose_max_tokens=24", "musc.recombine_max_tokens=16", "musc.rewrite_max_tokens=8",
        "musc.respond_max_tokens=12", "musc_fine.respond_max_tokens=12", "musc_fine.judge_max_tokens=8",
        "musc_fine.correct_max_tokens=12", "train.epochs=1", "train.precision=fp32", "eval.limit=4",
        "eval.max_new_tokens=8",
        "musc_fine.min_revision_kept=0"]  # the random tiny model never revises minimally: keep its fine pairs
METRICS = {"prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc"}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One uninterrupted run, shared by the tests that compare with it."""
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    assert main(["run", QUICKSTART, *TINY, f"run_dir={run_dir}"]) == 0
    return run_dir


def test_run_chains_every_stage_and_reports(finished_run, capsys):
    run_dir = finished_run
    report = json.loads((run_dir / "report.json").read_text())
    assert report["pairs"] > 0 and report["train_steps"] >= 1
    assert list(report["comparisons"]) == ["own"] and set(report["comparisons"]["own"]) == METRICS
    for side in ("base", "trained"):
        results = json.loads((run_dir / "eval" / "own" / side / "results.json").read_text())
        assert results["num_prompts"] == 4 and len(results["per_prompt"]) == 4
    assert list((run_dir / "eval").glob("merged-*/config.json"))  # the adapter merged once for evaluation
    markdown = (run_dir / "report.md").read_text()
    assert "95% paired bootstrap CI" in markdown and "| run | status | method |" in markdown
    assert f"| {run_dir.name} | done | musc | self | sigmoid | kl | random | tiny | {report['pairs']} |" \
        in markdown
    for plot in ("metrics", "curves", "yield"):
        assert f"![{plot}](plots/{plot}.png)" in markdown
        assert (run_dir / "plots" / f"{plot}.png").read_bytes().startswith(PNG)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "done" and set(status["stages"]) == {
        "generate", "weights", "train", "evaluate-base[own]", "evaluate-trained[own]", "report"}


def test_a_finished_run_skips_every_stage(finished_run, tmp_path):
    manifests = sorted(finished_run.glob("**/manifest.json"))
    before = {path: path.stat().st_mtime_ns for path in manifests}
    assert main(["run", str(finished_run / "config.yaml")]) == 0
    assert {path: path.stat().st_mtime_ns for path in manifests} == before
    assert (finished_run / "log.txt").read_text().count("nothing to do") >= 4


def test_the_single_commands_work_on_the_run_directory_that_run_made(finished_run, tmp_path, capsys):
    """generate, weights, train, show-pair and report read and write the same layout as ``run``: on a finished
    run every stage command finds its artifact done, and the viewers open it."""
    manifests = sorted(finished_run.glob("**/manifest.json"))
    before = {path: path.stat().st_mtime_ns for path in manifests}
    saved = str(finished_run / "config.yaml")
    for command in ("generate", "weights", "train"):
        assert main([command, saved]) == 0, command
    assert {path: path.stat().st_mtime_ns for path in manifests} == before  # nothing redone, nothing moved
    out = capsys.readouterr().out
    assert f"-> {finished_run / 'generate' / 'pairs.jsonl'}" in out and f"-> {finished_run / 'model'}" in out
    assert main(["show-pair", str(finished_run), "--index", "0"]) == 0
    page = (finished_run / "show-pair-0.html").read_text()
    assert str(finished_run / "weights" / "pairs.jsonl") in page  # what the loss sees: the weighted pairs
    assert main(["report", str(finished_run)]) == 0
    assert f"| {finished_run.name} | done | musc |" in (finished_run / "report.md").read_text()


STAGES = ["generate", "weights", "train", "evaluate-base[own]", "evaluate-trained[own]", "report"]
# The artifact whose manifest proves that a stage finished; it must not be rewritten by a later session.
FINISHED = {"generate": "generate/manifest.json", "weights": "weights/manifest.json", "train": "model/manifest.json",
            "evaluate-base[own]": "eval/own/base/manifest.json",
            "evaluate-trained[own]": "eval/own/trained/manifest.json"}


def test_run_resumes_after_a_kill_at_each_stage(finished_run, tmp_path, monkeypatch, capsys):
    """Killed (Ctrl-C) as stage N starts, then rerun: stages before N are skipped, not recomputed; the
    final report equals the uninterrupted run's."""
    from musc_ecd import pipeline

    real_announce = pipeline.announce
    for kill_at in STAGES:
        def announce(name, number, total, kill_at=kill_at):
            if name == kill_at:
                raise KeyboardInterrupt
            real_announce(name, number, total)

        monkeypatch.setattr(pipeline, "announce", announce)
        before = {stage: (tmp_path / path).stat().st_mtime_ns for stage, path in FINISHED.items()
                  if (tmp_path / path).exists()}
        assert main(["run", QUICKSTART, *TINY, f"run_dir={tmp_path}"]) == 130
        status = json.loads((tmp_path / "status.json").read_text())
        assert status["status"] == "interrupted" and status["stage"] == kill_at
        assert {stage: (tmp_path / FINISHED[stage]).stat().st_mtime_ns for stage in before} == before
        finished = {stage for stage, path in FINISHED.items() if (tmp_path / path).exists()}
        assert finished == set(STAGES[: STAGES.index(kill_at)]) - {"report"}  # exactly the stages before N
    monkeypatch.setattr(pipeline, "announce", real_announce)
    before = {stage: (tmp_path / path).stat().st_mtime_ns for stage, path in FINISHED.items()}
    assert main(["run", QUICKSTART, *TINY, f"run_dir={tmp_path}"]) == 0
    assert {stage: (tmp_path / path).stat().st_mtime_ns for stage, path in FINISHED.items()} == before

    resumed, uninterrupted = (json.loads((d / "report.json").read_text()) for d in (tmp_path, finished_run))
    assert resumed == uninterrupted
    assert (tmp_path / "generate" / "pairs.jsonl").read_bytes() == \
        (finished_run / "generate" / "pairs.jsonl").read_bytes()
    for side in ("base", "trained"):  # the same answers (the model field names each run's merged directory)
        resumed_answers, answers = ([(r["id"], r["response"]) for r in read_jsonl(d / "eval" / "own" / side /
                                                                                 "responses.jsonl")]
                                    for d in (tmp_path, finished_run))
        assert resumed_answers == answers


def test_a_failing_stage_is_named_and_earlier_work_kept(tmp_path, capsys, monkeypatch):
    from musc_ecd.training import run as training_run

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(training_run, "_fit", broken)
    assert main(["run", QUICKSTART, *TINY, f"run_dir={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert "stage 'train' failed: RuntimeError: disk on fire" in err and "Traceback" not in err
    assert (tmp_path / "generate" / "pairs.jsonl").is_file()
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["status"] == "failed" and status["stage"] == "train" and "disk on fire" in status["error"]


def test_a_user_error_keeps_its_exit_code_and_names_the_stage(tmp_path, capsys):
    # kl weights need a corrupted instruction per pair; these pairs come from a file without them.
    pairs = REPO / "configs" / "data" / "pairs_sample.jsonl"
    overrides = [*TINY, "data.limit=1", f"run_dir={tmp_path}", "train.weights=kl", "train.weights_fallback=none",
                 f"train.pairs={pairs}"]
    assert main(["run", QUICKSTART, *overrides]) == 2
    assert "stage 'weights' failed: config error: train.weights=kl" in capsys.readouterr().err


def test_runs_differing_in_training_share_generation_and_base_evaluation(tmp_path, capsys):
    share = tmp_path / "shared"
    common = [*TINY, f"share_dir={share}", "eval.sets=[own,ifeval]", f"eval.ifeval_path={IFEVAL}"]
    assert main(["run", QUICKSTART, *common, f"run_dir={tmp_path / 'a'}"]) == 0
    generated = sorted(share.glob("generate-*"))
    evaluated = sorted(share.glob("eval-base-*"))
    assert len(generated) == 1 and len(evaluated) == 2  # one per evaluation set
    manifests = {p: p.stat().st_mtime_ns for p in share.glob("*/**/manifest.json")}

    assert main(["run", QUICKSTART, *common, "train.loss=[hinge]", f"run_dir={tmp_path / 'b'}"]) == 0
    assert sorted(share.glob("generate-*")) == generated and sorted(share.glob("eval-base-*")) == evaluated
    assert {p: p.stat().st_mtime_ns for p in share.glob("*/**/manifest.json")} == manifests  # nothing redone
    for run in ("a", "b"):
        link = tmp_path / run / "generate"
        assert link.is_symlink() and not os.path.isabs(os.readlink(link)) and link.resolve() == generated[0]
        assert (tmp_path / run / "eval" / "ifeval" / "base").is_symlink()
    a, b = (json.loads((tmp_path / run / "report.json").read_text()) for run in ("a", "b"))
    assert list(a["comparisons"]) == ["own", "ifeval"]
    for set_name in ("own", "ifeval"):
        assert {m: c["a"] for m, c in a["comparisons"][set_name].items()} == \
            {m: c["a"] for m, c in b["comparisons"][set_name].items()}  # the same base results

    # Another seed and a named teacher change the pairs, not the base model's greedy answers: shared.
    assert main(["run", QUICKSTART, *common, "seed=1", "model.teacher=tiny", f"run_dir={tmp_path / 'c'}"]) == 0
    assert len(sorted(share.glob("generate-*"))) == 2 and sorted(share.glob("eval-base-*")) == evaluated

    # Other pairs for a run that has a model trained on the first ones: refused, not mixed.
    assert main(["run", QUICKSTART, *common, "musc.drop_ratio=0.5", f"run_dir={tmp_path / 'a'}"]) == 2
    assert "links to pairs made with a different config" in capsys.readouterr().err
    assert (tmp_path / "a" / "generate").resolve() == generated[0]


def test_a_shared_entry_in_use_is_waited_for(tmp_path, monkeypatch):
    from musc_ecd import pipeline
    from musc_ecd.store import DirectoryLock

    monkeypatch.setattr(pipeline, "WAIT_SECONDS", 0.02)
    entry = tmp_path / "generate-abc"
    holder = DirectoryLock(tmp_path, entry.name)  # another process's lock (flock: per open file)
    events = []

    def worker():
        with pipeline.shared_entry(entry):
            events.append("entered")

    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(0.2)
    assert events == [] and thread.is_alive()  # still waiting
    holder.release()
    thread.join(timeout=5)
    assert events == ["entered"]


def test_share_keys_follow_what_determines_the_artifact():
    from musc_ecd.config import load_config
    from musc_ecd.fingerprints import base_eval_share_key as base_eval_key
    from musc_ecd.fingerprints import config_fingerprint
    from musc_ecd.fingerprints import generate_share_key as generate_key

    base = load_config(QUICKSTART, TINY)

    def keys(*overrides):
        cfg = load_config(QUICKSTART, [*TINY, f"eval.ifeval_path={IFEVAL}", *overrides])
        return generate_key(cfg), base_eval_key(cfg, "own"), base_eval_key(cfg, "ifeval")

    generate, own, ifeval = keys()
    assert own != ifeval
    assert keys("train.loss=[hinge]", "train.weights=edit", "run_dir=elsewhere", "generation.batch_size=3") == \
        (generate, own, ifeval)  # training options, locations and batch sizes share everything
    assert keys("musc.drop_ratio=0.5")[0] != generate and keys("musc.drop_ratio=0.5")[1:] == (own, ifeval)
    assert keys("data.limit=7")[0] != generate  # no two runs extend one shared artifact concurrently
    assert keys("seed=1")[0] != generate and keys("seed=1")[1:] == (own, ifeval)  # greedy answers: seed-free
    assert keys("seed=1", "eval.temperature=0.7")[1] != keys("eval.temperature=0.7")[1]
    assert keys("eval.limit=5")[1] != own and keys("model.policy=smollm2-135m-instruct")[1] != own
    moved = load_config(QUICKSTART, [*TINY, "run_dir=x", "share_dir=y"])
    assert config_fingerprint(moved) == config_fingerprint(base)
    assert config_fingerprint(load_config(QUICKSTART, [*TINY, "train.beta=0.2"])) != config_fingerprint(base)


def test_eval_sets_are_checked_before_anything_runs(tmp_path, capsys):
    assert main(["run", QUICKSTART, *TINY, f"run_dir={tmp_path}", "eval.sets=[ifeval]"]) == 2
    assert "'ifeval' only together with eval.ifeval_path" in capsys.readouterr().err
    assert main(["run", QUICKSTART, *TINY, f"run_dir={tmp_path}", "eval.sets=[own,mmlu]"]) == 2
    assert "eval.sets" in capsys.readouterr().err


@pytest.mark.parametrize("eval_set", ["own", "ifeval"])
def test_evaluate_base_model(tmp_path, eval_set):
    extra = [f"eval.ifeval_path={IFEVAL}"] if eval_set == "ifeval" else []
    assert main(["evaluate", QUICKSTART, *TINY, *extra, f"run_dir={tmp_path}"]) == 0
    results = json.loads((tmp_path / "eval" / "base" / "results.json").read_text())
    assert results["num_prompts"] == 4 and 0 <= results["metrics"]["inst_level_loose_acc"] <= 1


def test_raising_data_limit_retrains_on_the_extended_pairs(tmp_path):
    """No stale stage: generate extends the pairs, and weights, train and the trained evaluation follow
    their input (the pairs' content), not only their config."""
    run_dir = tmp_path / "grow"
    small = [*TINY, "data.limit=3", f"run_dir={run_dir}"]
    assert main(["run", QUICKSTART, *small]) == 0
    first = json.loads((run_dir / "model" / "manifest.json").read_text())
    first_pairs = len(read_jsonl(run_dir / "generate" / "pairs.jsonl"))
    answered_by = json.loads((run_dir / "eval" / "own" / "trained" / "model.json").read_text())["model"]
    assert main(["run", QUICKSTART, *TINY, "data.limit=6", f"run_dir={run_dir}"]) == 0
    pairs = read_jsonl(run_dir / "generate" / "pairs.jsonl")
    weighted = read_jsonl(run_dir / "weights" / "pairs.jsonl")
    second = json.loads((run_dir / "model" / "manifest.json").read_text())
    assert len(pairs) > first_pairs, "the larger limit must add pairs for this test to mean anything"
    assert [w["id"] for w in weighted] == [p["id"] for p in pairs]
    assert second["summary"]["pairs"] == len(pairs) != first["summary"]["pairs"]
    assert second["pairs_sha256"] != first["pairs_sha256"]
    assert list(run_dir.glob("model.stale-*/manifest.json"))  # the old model is kept aside, not deleted
    assert json.loads((run_dir / "eval" / "own" / "trained" / "model.json").read_text())["model"] != answered_by
    report = json.loads((run_dir / "report.json").read_text())
    assert report["pairs"] == len(pairs)
