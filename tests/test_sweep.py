"""`musc-ecd sweep`: expansion and naming (pure), validation, dry run, a 2×2 sweep on the tiny model with a
failing run, rerun skipping finished runs, and the submitit executor."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from musc_ecd.cli import main
from musc_ecd.errors import ConfigError
from musc_ecd.sweep import Variant, dotlist_value, expand, load_sweep, run_names, short_keys
from musc_ecd.sweep.execute import import_submitit

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "configs" / "musc_full_cpu.yaml"  # full MuSC, every stage
TINY = ["model.policy=tiny", "model.dtype=float32", "generation.backend=hf", "musc_fine.min_revision_kept=0",
        f"data.seeds={REPO / 'configs/data/seeds.jsonl'}",
        "data.limit=4", "musc.decompose_max_tokens=24", "musc.recombine_max_tokens=16", "musc.rewrite_max_tokens=8",
        "musc.respond_max_tokens=12", "train.epochs=1", "train.precision=fp32", "eval.limit=3",
        "eval.max_new_tokens=8"]


def write_sweep(directory: Path, **spec) -> Path:
    spec = {"base": str(QUICKSTART), "overrides": TINY, "runs_dir": str(directory / "runs"), **spec}
    path = directory / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# ----------------------------------------------------------------------------------------------
# Pure: expansion, values, names


def test_grid_is_a_cartesian_product_and_zip_groups_vary_together():
    variants = expand({"a": [1, 2], "b": ["x", "y"]}, [{"name": ["self", "teacher"], "c": [None, "T"],
                                                          "d": [None, "T"]}])
    assert len(variants) == 8
    assert variants[0].settings == (("a", 1), ("b", "x"), ("c", None), ("d", None))
    assert variants[1].settings == (("a", 1), ("b", "x"), ("c", "T"), ("d", "T"))
    assert variants[-1].settings == (("a", 2), ("b", "y"), ("c", "T"), ("d", "T"))
    assert {v.labels for v in variants} == {(None, None, "self"), (None, None, "teacher")}
    assert expand({}, []) == [Variant((), ())]  # no axes: the base config alone


def test_run_names_are_short_safe_and_unique():
    axes = [["method"], ["train.loss"]]
    variants = [Variant((("method", "ecd"), ("train.loss", "hinge")), (None, None)),
                Variant((("method", "musc_coarse"), ("train.loss", ["hinge", "sft"])), (None, None))]
    assert run_names(variants, axes) == ["method-ecd_loss-hinge", "method-musc_coarse_loss-hinge+sft"]
    assert short_keys(["train.lora.r", "musc.r", "train.beta"]) == {
        "train.lora.r": "train-lora-r", "musc.r": "musc-r", "train.beta": "beta"}
    # paths and hub ids: their last part; unsafe characters become dashes
    odd = [Variant((("model.policy", "Org/Model v2:it"),), (None,))]
    assert run_names(odd, [["model.policy"]]) == ["policy-Model-v2-it"]
    # two values that read alike get a hash each; names stay stable across calls
    twins = [Variant((("x", "a/b"),), (None,)), Variant((("x", "c/b"),), (None,))]
    names = run_names(twins, [["x"]])
    assert names[0] != names[1] and all(n.startswith("x-b-") for n in names) and names == run_names(twins, [["x"]])
    long = [Variant((("data.seeds", "s" * 200),), (None,))]
    assert len(run_names(long, [["data.seeds"]])[0]) <= 80
    named = [Variant((("model.teacher", None), ("model.judge", None)), ("self",))]
    assert run_names(named, [["model.teacher", "model.judge"]]) == ["self"]


@pytest.mark.parametrize("value", [None, True, 3, 0.0001, 1e-05, "hinge", "a b: c", "null", "1.5", "x,y",
                                   ["hinge", "sft"], [1, 0.5], [], "Qwen/Qwen2.5-7B-Instruct"])
def test_dotlist_values_read_back_unchanged(value):
    parsed = OmegaConf.to_container(OmegaConf.from_dotlist([f"key={dotlist_value(value)}"]))["key"]
    assert parsed == value


# ----------------------------------------------------------------------------------------------
# Validation and dry run


def test_sweep_file_mistakes_are_one_clear_line(tmp_path, capsys):
    cases = [
        ({"grid": {"train.loss": []}}, "grid axis 'train.loss' is empty"),
        ({"grid": {"train.loss": "sigmoid"}}, "grid axis 'train.loss' must be a list"),
        ({"zip": [{"train.beta": [0.1, 0.2], "train.loss": [["hinge"]]}]},
         "zip group 1: lists of different lengths vary together: train.beta has 2, train.loss has 1"),
        ({"gird": {"seed": [0]}}, "unknown key 'gird' at the top level; allowed: base, overrides, grid, zip"),
        ({"slurm": {"partiton": "gpu"}}, "did you mean 'partition'?"),
        ({"grid": {"seed": [0, 1]}, "zip": [{"seed": [2]}]}, "'seed' is varied by two axes"),
        ({"grid": {"run_dir": ["a"]}}, "'run_dir' is set by the sweep"),
        ({"executor": "cloud"}, "executor 'cloud' is not allowed"),
        ({"base": "no/such.yaml"}, "base config"),
        # a bad key in the runs' overrides: the config loader's own error, naming the key, before anything runs
        ({"grid": {"train.lsos": ["hinge"]}}, "run 'lsos-hinge': config error: unknown key 'train.lsos'"),
        ({"grid": {"train.loss": [["sigmoid"], ["dpo"]]}}, "run 'loss-dpo': config error: train.loss=['dpo']"),
    ]
    for spec, message in cases:
        path = write_sweep(tmp_path, **spec)
        with pytest.raises(ConfigError, match=None) as caught:
            load_sweep(path)
        assert message in str(caught.value), (spec, str(caught.value))
        assert "\n" not in str(caught.value)
        assert main(["sweep", str(path), "--dry-run"]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing was written

    (tmp_path / "bad.yaml").write_text("grid: [unclosed\n")
    assert main(["sweep", str(tmp_path / "bad.yaml")]) == 2
    assert "cannot parse as YAML" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "sweep file" in err and "missing.yaml' does not exist" in err


def test_base_is_relative_to_the_sweep_file(tmp_path):
    experiment = tmp_path / "experiments" / "x"
    experiment.mkdir(parents=True)
    (experiment / "base.yaml").write_text(QUICKSTART.read_text())
    path = write_sweep(experiment, base="base.yaml", runs_dir=None)
    sweep = load_sweep(path)
    assert sweep.base == experiment / "base.yaml"
    assert sweep.runs_dir == Path("runs") / "x" and sweep.share_dir == Path("runs") / "x" / "_shared"


def test_dry_run_lists_every_run(tmp_path, capsys):
    path = write_sweep(tmp_path, grid={"train.loss": [["sigmoid"], ["hinge", "sft"]], "train.beta": [0.1, 0.5]},
                       zip=[{"name": ["self", "judged"], "model.judge": [None, "tiny"]}])
    assert main(["sweep", str(path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("8 runs of") and len(lines) == 9
    first = lines[1].split()
    assert first[:3] == ["loss-sigmoid_beta-0.1_self", "pending", str(tmp_path / "runs" / first[0])]
    assert first[3:] == ["train.loss=[sigmoid]", "train.beta=0.1", "model.judge=null"]
    assert any(line.startswith("loss-hinge+sft_beta-0.5_judged ") for line in lines)
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------------------------
# End to end on the tiny model

# Full fine-tuning ignores LoRA's target modules, so exactly one of the four runs fails, in training:
# LoRA on a module the model does not have.
GRID = {"train.finetuning": ["lora", "full"], "train.lora.target_modules": ["all-linear", "no_such_module"]}


def test_a_2x2_sweep_runs_records_a_failure_goes_on_and_skips_done_runs(tmp_path, capsys):
    path = write_sweep(tmp_path, grid=GRID)
    runs = tmp_path / "runs"
    assert main(["sweep", str(path)]) == 1  # one run failed
    out = capsys.readouterr().out
    status = json.loads((runs / "sweep_status.json").read_text())["runs"]
    failing = "finetuning-lora_target_modules-no_such_module"
    assert set(status) == {"finetuning-lora_target_modules-all-linear", failing,
                           "finetuning-full_target_modules-all-linear", "finetuning-full_target_modules-no_such_module"}
    assert {name: entry["status"] for name, entry in status.items() if name != failing} == dict.fromkeys(
        set(status) - {failing}, "done")
    assert status[failing]["status"] == "failed" and status[failing]["error"].startswith("stage 'train' failed")
    assert "no_such_module" in status[failing]["error"]
    assert f"{failing}: FAILED" in out and out.index(f"{failing}: FAILED") < out.rindex(": done in")  # went on
    for name, entry in status.items():
        if entry["status"] == "done":
            assert json.loads((runs / name / "report.json").read_text())["comparisons"]["own"]
    # one generation and one base evaluation, shared by all four runs
    assert len(list((runs / "_shared").glob("generate-*"))) == 1
    assert len(list((runs / "_shared").glob("eval-base-*"))) == 1

    assert main(["sweep", str(path), "--dry-run"]) == 0
    plan = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]}
    assert plan[failing] == "failed" and list(plan.values()).count("done") == 3

    # Rerun: the three finished runs are skipped (their reports untouched), the failed one is retried.
    reports = {name: (runs / name / "report.json").stat().st_mtime_ns for name in plan if plan[name] == "done"}
    assert main(["sweep", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.count("done, skipped") == 3 and f"{failing}: FAILED" in out
    assert {name: (runs / name / "report.json").stat().st_mtime_ns for name in reports} == reports

    # The multi-run report: a row per run, the failed one with its status.
    assert main(["report", str(runs)]) == 0
    markdown = (runs / "report.md").read_text()
    assert f"| {failing} | failed |" in markdown and markdown.count("| done |") == 3
    assert (runs / "report.csv").read_text().count("\n") == 5
    assert (runs / "plots" / "metrics.png").is_file()


def test_slurm_executor_through_submitit_local(tmp_path, capsys, monkeypatch):
    # submitit's local executor: the job is pickled and run by a fresh worker process, as on a cluster.
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    path = write_sweep(tmp_path, executor="slurm", slurm={"cluster": "local", "timeout_min": 10},
                       zip=[{"name": ["tiny-run"], "train.beta": [0.2]}])
    assert main(["sweep", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tiny-run: submitted as job" in out and "tiny-run: done" in out
    report = json.loads((tmp_path / "runs" / "tiny-run" / "report.json").read_text())
    assert report["train_steps"] >= 1
    status = json.loads((tmp_path / "runs" / "sweep_status.json").read_text())["runs"]["tiny-run"]
    assert status["status"] == "done" and status["job_id"]
    assert main(["sweep", str(path)]) == 0  # done: nothing is submitted
    assert "tiny-run: done, skipped" in capsys.readouterr().out


class _ClosesItsStream(logging.StreamHandler):
    """Like absl's handler (imported with OpenVINO's converter): closing it closes its stream."""

    def close(self):
        self.stream.close()
        super().close()


@pytest.mark.parametrize("asked", [None, "WARNING"])
def test_importing_submitit_leaves_the_processes_log_handlers_open(monkeypatch, asked):
    # submitit's import would run logging.config.dictConfig, closing every handler in the process; under pytest
    # that closed the capture file an absl handler held, and the session died with "lost sys.stderr".
    for name in [m for m in sys.modules if m == "submitit" or m.startswith("submitit.")]:
        monkeypatch.delitem(sys.modules, name)
    if asked is None:
        monkeypatch.delenv("SUBMITIT_LOG_LEVEL", raising=False)
    else:
        monkeypatch.setenv("SUBMITIT_LOG_LEVEL", asked)
    submitit_log = logging.getLogger("submitit")
    monkeypatch.setattr(submitit_log, "handlers", [])
    monkeypatch.setattr(submitit_log, "level", logging.NOTSET)
    stream = io.StringIO()
    handler = _ClosesItsStream(stream)
    holder = logging.getLogger("test_sweep.holder")
    monkeypatch.setattr(holder, "handlers", [handler])
    submitit = import_submitit()
    assert submitit.AutoExecutor and "submitit.core.logger" in sys.modules  # really imported anew
    assert not stream.closed
    assert os.environ.get("SUBMITIT_LOG_LEVEL") == asked  # the switch is not left behind for the workers
    assert submitit_log.level == getattr(logging, asked or "INFO") and len(submitit_log.handlers) == 1


def test_slurm_executor_records_a_failing_job(tmp_path, capsys):
    # submitit's debug executor runs the job in this process: quick, and the failure path is the same.
    path = write_sweep(tmp_path, executor="slurm", slurm={"cluster": "debug"},
                       zip=[{"name": ["broken"], "train.lora.target_modules": ["no_such_module"]}])
    assert main(["sweep", str(path)]) == 1
    status = json.loads((tmp_path / "runs" / "sweep_status.json").read_text())["runs"]["broken"]
    assert status["status"] == "failed" and "stage 'train' failed" in status["error"]
