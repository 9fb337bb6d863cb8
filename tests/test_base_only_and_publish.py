"""The pieces a long sweep needs: an untrained ``base`` run (``eval.base_only``), running one run of a sweep at a
time (``sweep --only``), and ``publish``ing each finished run into a folder that ``report`` and ``power`` read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml
from test_report import comparison
from test_report_constraint_types import write_results

from musc_ecd.cli import main

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "musc_full_cpu.yaml"
TINY = ["model.policy=tiny", "model.dtype=float32", "generation.backend=hf", "eval.max_new_tokens=6",
        f"data.seeds={REPO / 'configs/data/seeds.jsonl'}"]


def _sweep(tmp_path: Path) -> Path:
    spec = {"base": str(QUICKSTART), "overrides": [*TINY, "eval.base_only=true"], "runs_dir": str(tmp_path / "runs"),
            "zip": [{"name": ["base", "base_more"], "eval.limit": [2, 3]}]}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_base_only_run_evaluates_and_stops_and_a_sweep_runs_one_run_at_a_time(tmp_path, capsys):
    sweep, runs = _sweep(tmp_path), tmp_path / "runs"
    assert main(["sweep", str(sweep), "--only", "base"]) == 0
    book = json.loads((runs / "sweep_status.json").read_text())["runs"]
    assert {name: entry["status"] for name, entry in book.items()} == {"base": "done", "base_more": "pending"}
    status = json.loads((runs / "base" / "status.json").read_text())
    assert set(status["stages"]) == {"evaluate-base[own]", "report"}  # no generate, weights or train
    assert not (runs / "base" / "generate").exists() and not (runs / "base" / "model").exists()
    report = json.loads((runs / "base" / "report.json").read_text())
    assert report["base_only"] and set(report["base_scores"]["own"]) >= {"prompt_level_strict_acc"}
    assert (runs / "base" / "eval" / "own" / "base").is_symlink()  # shared, as a trained run's base side is
    assert "prompt_level_strict_acc" in capsys.readouterr().out

    assert main(["sweep", str(sweep), "--only", "nope"]) == 2
    assert "no run named 'nope'" in capsys.readouterr().err
    assert main(["sweep", str(sweep), "--only", "base_more", "--only", "base"]) == 0
    assert "base: done, skipped" in capsys.readouterr().out

    # Publish: the checkable files, the shared base answers once, links as in the runs directory.
    results = tmp_path / "results"
    assert main(["publish", str(runs), str(results)]) == 0
    link = results / "base" / "eval" / "own" / "base"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    verdicts = json.loads((link / "results.json").read_text())["per_prompt"]
    assert len(verdicts) == 2 and (link / "responses.jsonl").is_file()
    assert not list(results.rglob("*.safetensors")) and not list(results.rglob("checkpoint-*"))
    machine = json.loads((results / "base" / "machine.json").read_text())
    assert machine["cores"] >= 1 and machine["cpu_capability"]  # a model name alone hides AVX2 vs AVX-512
    assert main(["report", str(results)]) == 0
    out = capsys.readouterr().out
    assert "| base | done | base (no training) |" in out and "(base) |" in out
    assert main(["power", str(results), "--churn", "0", "--simulations", "20", "--resamples", "200"]) == 0


def _trained_run(directory: Path, config: str, diff: float, fingerprint: str, moves: dict[str, tuple[int, float]]):
    (directory / "eval").mkdir(parents=True)
    (directory / "config.yaml").write_text(config)
    (directory / "status.json").write_text(json.dumps({"status": "done", "stages": {}}))
    (directory / "report.json").write_text(json.dumps({
        "config_fingerprint": fingerprint, "pairs": 3, "generated_pairs": 5, "train_steps": 2,
        "comparisons": {"ifeval": comparison(0.3, 0.3 + diff)}}))
    write_results(directory, "ifeval", "trained", moves)


MUSC = "method: musc\nmodel: {policy: tiny, judge: checkers}\ntrain: {loss: [sigmoid], weights: kl}\n"
REVERSE = ("method: musc\nmodel: {policy: tiny, judge: checkers}\n"
           "train: {loss: [sigmoid], weights: kl, swap_labels: true}\n")


def test_report_on_published_results_shows_moves_per_constraint_type_and_keeps_superseded_runs(tmp_path, capsys):
    runs, results = tmp_path / "runs", tmp_path / "results"
    shared_base = runs / "_shared" / "eval-base-abc" / "eval" / "base"
    shared_base.mkdir(parents=True)
    comma, title = "punctuation:no_comma", "detectable_format:title"
    base = {comma: (10, 0.5), title: (4, 0.25)}
    (shared_base / "results.json").write_text(json.dumps({"by_instruction_type": {
        t: {"count": n, "strict_acc": acc, "loose_acc": acc} for t, (n, acc) in base.items()}}))
    _trained_run(runs / "musc", MUSC, 0.05, "f1", {comma: (10, 0.7), title: (4, 0.25)})
    _trained_run(runs / "reverse", REVERSE, -0.1, "f2", {comma: (10, 0.2), title: (4, 0.0)})
    for run in ("musc", "reverse"):
        os.symlink("../../../_shared/eval-base-abc/eval/base", runs / run / "eval" / "ifeval" / "base")
    assert main(["publish", str(runs), str(results)]) == 0
    assert (results / "_shared" / "eval-base-abc" / "eval" / "base" / "results.json").is_file()
    assert main(["report", str(results)]) == 0
    out = capsys.readouterr().out
    assert "sigmoid, labels swapped" in out and "| musc | done | musc |" in out
    markdown = (results / "report.md").read_text()
    assert "## Moves per constraint type" in markdown
    assert "| constraint type | n | base | musc | reverse |" in markdown
    assert "| punctuation:no_comma | 10 | 0.500 | +0.200 | -0.300 |" in markdown
    assert "| detectable_format:title | 4 | 0.250 | +0.000 | -0.250 |" in markdown
    assert (results / "plots" / "constraint_types.png").read_bytes().startswith(b"\x89PNG")

    # The recipe changes: the reverse run is redone; its earlier copy is kept aside, its links still resolving.
    _report = json.loads((runs / "reverse" / "report.json").read_text())
    (runs / "reverse" / "report.json").write_text(json.dumps({**_report, "config_fingerprint": "f3"}))
    assert main(["publish", str(runs), str(results), "--run", "reverse"]) == 0
    kept = results / "_superseded" / "reverse-f2"
    assert json.loads((kept / "report.json").read_text())["config_fingerprint"] == "f2"
    assert (kept / "eval" / "ifeval" / "base" / "results.json").is_file()
    assert json.loads((results / "reverse" / "report.json").read_text())["config_fingerprint"] == "f3"
