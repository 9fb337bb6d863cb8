"""`musc-ecd train` end to end on the tiny model: adapter out, resume, curriculum order, NaN stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import write_jsonl

from musc_ecd.cli import main
from musc_ecd.config import load_config
from musc_ecd.errors import ConfigError, TrainingDivergedError
from musc_ecd.store import read_jsonl
from musc_ecd.training import callbacks
from musc_ecd.training.run import train

REPO = Path(__file__).resolve().parents[1]
TRAIN_TINY = str(REPO / "configs" / "train_tiny.yaml")
PAIRS = REPO / "configs" / "data" / "pairs_sample.jsonl"


def _cfg(tmp_path, *overrides):
    return load_config(TRAIN_TINY, [f"run_dir={tmp_path}", f"train.pairs={PAIRS}", *overrides])


def test_train_saves_an_adapter_that_loads_with_peft_and_generates(tmp_path):
    assert main(["train", TRAIN_TINY, f"run_dir={tmp_path}", f"train.pairs={PAIRS}"]) == 0
    model_dir = tmp_path / "model"
    summary = json.loads((model_dir / "train_summary.json").read_text())
    assert summary["pairs"] == 32 and summary["global_steps"] == 4 and summary["finetuning"] == "lora"
    metrics = read_jsonl(tmp_path / "train" / "metrics.jsonl")
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3, 4]
    assert {"rewards/margins", "weights/chosen_mean", "logps/chosen"} <= metrics[0].keys()

    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    model = AutoPeftModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # the adapter learned something
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                           add_generation_prompt=True)
    out = model.generate(**tokenizer(prompt, return_tensors="pt"), max_new_tokens=5, do_sample=False)
    assert out.shape[1] > len(tokenizer(prompt)["input_ids"])

    # a finished run is not redone
    assert main(["train", str(tmp_path / "config.yaml")]) == 0
    assert "nothing to do" in (tmp_path / "log.txt").read_text()


def test_interrupted_training_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    overrides = ("train.max_steps=8", "train.save_steps=2", "train.batch_size=2")
    clean = train(_cfg(tmp_path / "clean", *overrides), tmp_path / "clean")

    original_on_log = callbacks.MetricsJsonl.on_log

    def interrupt_at_step_5(self, args, state, control, logs=None, **kwargs):
        original_on_log(self, args, state, control, logs, **kwargs)
        if state.global_step == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.MetricsJsonl, "on_log", interrupt_at_step_5)
    run_dir = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(run_dir, *overrides), run_dir)
    assert (run_dir / "train" / "checkpoint-4").is_dir() and not (run_dir / "model").exists()
    monkeypatch.setattr(callbacks.MetricsJsonl, "on_log", original_on_log)

    resumed = train(_cfg(run_dir, *overrides), run_dir)
    assert resumed["resumed_from"].endswith("checkpoint-4") and resumed["global_steps"] == 8
    steps = [m["step"] for m in read_jsonl(run_dir / "train" / "metrics.jsonl") if "loss" in m]
    assert steps == list(range(1, 9))  # step 5 was logged before the kill, dropped, and redone once

    from safetensors.torch import load_file

    a = load_file(tmp_path / "clean" / "model" / "adapter_model.safetensors")
    b = load_file(run_dir / "model" / "adapter_model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4)
    assert clean["global_steps"] == 8


def test_staged_curriculum_feeds_levels_in_order(tmp_path, monkeypatch):
    """Record what the trainer actually batches, map each pair back to its difficulty."""
    from musc_ecd.models import load_model
    from musc_ecd.training import DataCollatorForWeightedPreference, completion_token_ids

    _, tokenizer = load_model("tiny", device="cpu")
    rows = read_jsonl(PAIRS)
    difficulty_of = {(tuple(completion_token_ids(tokenizer, r["prompt"], r["chosen"])), r["prompt"][0]["content"]):
                     r["difficulty"] for r in rows}
    prompt_of = {tuple(tokenizer.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=True,
                                                     return_dict=True)["input_ids"]): r["prompt"][0]["content"]
                 for r in rows}
    consumed = []
    original = DataCollatorForWeightedPreference.torch_call

    def record(self, examples):
        for e in examples:
            consumed.append(difficulty_of[tuple(e["chosen_ids"]), prompt_of[tuple(e["prompt_ids"])]])
        return original(self, examples)

    monkeypatch.setattr(DataCollatorForWeightedPreference, "torch_call", record)
    # a live reference: a precompute pass would feed the collator every pair once more, in dataset order
    train(_cfg(tmp_path, "train.curriculum=staged", "train.epochs=2", "train.batch_size=8",
               "train.gradient_accumulation_steps=1", "train.precompute_ref_log_probs=off"), tmp_path)
    assert len(consumed) == 64  # 32 pairs × 2 epochs
    assert consumed == sorted(consumed)  # every level-1 pass (both epochs' worth) before any level 2, ...
    assert consumed[:16] == [1] * 16


def test_curriculum_without_difficulty_is_a_config_error(tmp_path):
    rows = [dict(r, difficulty=None) for r in read_jsonl(PAIRS)]
    pairs = write_jsonl(tmp_path / "pairs.jsonl", rows)
    with pytest.raises(ConfigError, match="needs a difficulty"):
        train(load_config(TRAIN_TINY, [f"run_dir={tmp_path}", f"train.pairs={pairs}", "train.curriculum=staged"]),
              tmp_path)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path, capsys):
    code = main(["train", TRAIN_TINY, f"run_dir={tmp_path}", f"train.pairs={PAIRS}", "train.finetuning=full",
                 "train.learning_rate=1e30", "train.save_steps=1", "train.lr_scheduler=constant",
                 "train.warmup_ratio=0", "train.max_steps=6"])
    err = capsys.readouterr().err
    assert code == TrainingDivergedError.exit_code
    assert "the loss became nan" in err.lower() and "Last good checkpoint:" in err and "Traceback" not in err
    checkpoints = sorted((tmp_path / "train").glob("checkpoint-*"))
    assert checkpoints and not (tmp_path / "model").exists()


def test_pair_budget_trains_on_a_seeded_subset(tmp_path):
    from musc_ecd.training.run import within_budget

    rows = [{"id": i} for i in range(10)]
    kept = within_budget(rows, 4, seed=0)
    assert len(kept) == 4 and kept == sorted(kept, key=lambda r: r["id"]) and kept == within_budget(rows, 4, 0)
    assert kept != within_budget(rows, 4, seed=1) and within_budget(rows, 20, 0) == rows
    assert main(["train", TRAIN_TINY, f"run_dir={tmp_path}", f"train.pairs={PAIRS}", "train.max_pairs=8"]) == 0
    assert json.loads((tmp_path / "model" / "train_summary.json").read_text())["pairs"] == 8
    with pytest.raises(ConfigError, match="train.max_pairs"):
        load_config(TRAIN_TINY, ["train.max_pairs=0"])


# -- train reads the weights stage's artifact, never computes it ---------------------------------------


def _weights_args(tmp_path, pairs, scheme):
    return [TRAIN_TINY, f"run_dir={tmp_path}", f"train.pairs={pairs}", f"train.weights={scheme}", "train.max_steps=1"]


def test_train_with_weights_but_none_computed_names_the_weights_command(tmp_path, capsys):
    assert main(["train", *_weights_args(tmp_path, PAIRS, "uniform")]) == 2
    err = capsys.readouterr().err.strip()
    assert "train.weights=uniform" in err and "musc-ecd weights CONFIG" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "weights").exists() and not (tmp_path / "model").exists()


def test_train_refuses_weights_of_another_scheme_or_of_other_pairs(tmp_path, capsys):
    from musc_ecd.training.run import WeightsNotComputedError

    pairs = write_jsonl(tmp_path / "pairs.jsonl", read_jsonl(PAIRS)[:4])
    assert main(["weights", *_weights_args(tmp_path, pairs, "uniform")]) == 0
    with pytest.raises(WeightsNotComputedError, match=r"holds uniform weights, not the train.weights=edit weights"):
        train(load_config(TRAIN_TINY, _weights_args(tmp_path, pairs, "edit")[1:]), tmp_path)
    with pytest.raises(WeightsNotComputedError, match=r"uniform weights made with another config"):
        train(load_config(TRAIN_TINY, [*_weights_args(tmp_path, pairs, "uniform")[1:], "train.w_max=3"]), tmp_path)
    rows = read_jsonl(pairs)
    rows[1]["chosen"][0]["content"] += " (edited)"
    write_jsonl(pairs, rows)
    assert main(["train", *_weights_args(tmp_path, pairs, "uniform")]) == 2
    assert "holds the weights of other pairs than" in capsys.readouterr().err
    # the weights stage brings them up to date; train then runs on them
    assert main(["weights", *_weights_args(tmp_path, pairs, "uniform")]) == 0
    assert main(["train", *_weights_args(tmp_path, pairs, "uniform")]) == 0
    summary = json.loads((tmp_path / "model" / "train_summary.json").read_text())
    assert summary["weighted_pairs"] == 4 and summary["pairs_path"] == str(tmp_path / "weights" / "pairs.jsonl")


# -- one TrainConfig -> TRL mapping, and where metrics are reported --------------------------------------


def test_every_train_field_is_mapped_to_trl_or_consumed_elsewhere():
    from dataclasses import fields

    from trl import SFTConfig

    from musc_ecd.config import REPORT_TO, TrainConfig
    from musc_ecd.training.arguments import CONSUMED_ELSEWHERE, REPORT_PACKAGES, TRL_FIELDS
    from musc_ecd.training.trainer import TokenWeightedDPOConfig

    mapped = [f.ours for f in TRL_FIELDS]
    assert len(mapped) == len(set(mapped)) and not set(mapped) & CONSUMED_ELSEWHERE.keys()
    assert set(mapped) | CONSUMED_ELSEWHERE.keys() == {f.name for f in fields(TrainConfig)}
    targets = {"preference": TokenWeightedDPOConfig, "sft": SFTConfig}
    for entry in TRL_FIELDS:
        for phase in entry.phases:
            assert entry.theirs in {f.name for f in fields(targets[phase])}, (entry, phase)
    assert set(REPORT_PACKAGES) == set(REPORT_TO)


def test_the_reference_is_precomputed_by_default_only_when_a_run_has_more_than_one_epoch(tmp_path, caplog):
    from musc_ecd.training.arguments import trl_config

    def precomputed(*overrides):
        return trl_config(_cfg(tmp_path, *overrides), "preference", tmp_path).precompute_ref_log_probs

    with caplog.at_level("INFO", logger="musc_ecd.training.arguments"):
        assert precomputed("train.epochs=2") is True
    assert "train.precompute_ref_log_probs=auto -> on (2 epochs)" in caplog.text
    assert precomputed("train.epochs=1") is False and precomputed("train.epochs=2", "train.max_steps=5") is False
    # a YAML bool means on/off, and an explicit setting wins over the epochs
    assert precomputed("train.epochs=1", "train.precompute_ref_log_probs=true") is True
    assert precomputed("train.epochs=3", "train.precompute_ref_log_probs=off") is False
    with pytest.raises(ConfigError, match="train.precompute_ref_log_probs"):
        _cfg(tmp_path, "train.precompute_ref_log_probs=sometimes")


def test_both_phases_get_the_shared_fields_from_the_one_table(tmp_path):
    from musc_ecd.training.arguments import trl_config

    cfg = _cfg(tmp_path, "train.report_to=[tensorboard]", "train.learning_rate=0.003", "train.max_steps=5",
               "train.loss=[hinge,sft]", "train.loss_weights=[1,0.5]")
    preference, sft = trl_config(cfg, "preference", tmp_path), trl_config(cfg, "sft", tmp_path, num_train_epochs=2)
    for args in (preference, sft):
        assert args.report_to == ["tensorboard"] and args.learning_rate == 0.003 and args.max_steps == 5
        assert args.per_device_train_batch_size == 4 and args.output_dir == str(tmp_path) and args.seed == 0
    assert preference.loss_type == ["hinge", "sft"] and preference.loss_weights == [1.0, 0.5]
    assert sft.completion_only_loss is True and sft.num_train_epochs == 2 and sft.loss_type == "nll"
    assert trl_config(_cfg(tmp_path), "preference", tmp_path).report_to == []  # transformers' "none"


def test_report_to_tensorboard_writes_event_files_under_the_run(tmp_path):
    pytest.importorskip("tensorboard")
    assert main(["train", TRAIN_TINY, f"run_dir={tmp_path}", f"train.pairs={PAIRS}", "train.max_steps=2",
                 "train.report_to=[tensorboard]"]) == 0
    events = list((tmp_path / "train" / "runs").rglob("events.out.tfevents.*"))
    assert events and any(path.stat().st_size > 0 for path in events)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = EventAccumulator(str(events[0].parent)).Reload().Tags()["scalars"]
    assert "train/loss" in tags and "train/rewards/margins" in tags


def test_a_missing_report_backend_is_a_clear_error_before_any_model_loads(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    assert main(["train", TRAIN_TINY, f"run_dir={tmp_path}", f"train.pairs={PAIRS}", "train.report_to=[wandb]"]) == 2
    err = capsys.readouterr().err.strip()
    assert "needs the wandb package" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "train").exists()
    with pytest.raises(ConfigError, match="train.report_to"):
        load_config(TRAIN_TINY, ["train.report_to=[mlflow]"])


def test_a_launchers_mixed_precision_that_disagrees_with_train_precision_is_refused(tmp_path, capsys, monkeypatch):
    """``accelerate launch --config_file configs/accelerate/ddp.yaml`` sets bf16 through this variable, and
    transformers would train in it although train.precision=fp32 keys and records the model."""
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    assert main(["train", TRAIN_TINY, f"run_dir={tmp_path}", f"train.pairs={PAIRS}", "train.precision=fp32"]) == 2
    err = capsys.readouterr().err.strip()
    assert "mixed precision bf16" in err and "train.precision=fp32" in err and "--mixed_precision no" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1 and not (tmp_path / "train").exists()
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")  # as `accelerate launch --mixed_precision no` sets it
    assert main(["train", TRAIN_TINY, f"run_dir={tmp_path}", f"train.pairs={PAIRS}", "train.precision=fp32",
                 "train.max_steps=1"]) == 0


def test_wandb_is_offline_and_under_the_run_unless_the_user_says_otherwise(tmp_path, monkeypatch):
    import os

    from musc_ecd.training.arguments import reporting_environment

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    with reporting_environment(["wandb"], tmp_path / "train"):
        assert os.environ["WANDB_MODE"] == "offline" and os.environ["WANDB_DIR"] == str(tmp_path / "train")
    assert "WANDB_MODE" not in os.environ and "WANDB_DIR" not in os.environ  # nothing leaks into the next run
    monkeypatch.setenv("WANDB_MODE", "online")
    with reporting_environment(["wandb"], tmp_path / "train"):
        assert os.environ["WANDB_MODE"] == "online"
    with reporting_environment(["tensorboard"], tmp_path / "other"):
        assert "WANDB_DIR" not in os.environ


def test_pairs_of_several_methods_get_one_difficulty_scale(tmp_path):
    """MuSC coarse grades 1/k (mostly 1.0), fine the rejected answer's score in [0, 1): compared raw, every
    coarse pair would come after every fine one. On the common scale each is its rank within its method."""
    from musc_ecd.training.run import load_pairs

    rows = read_jsonl(PAIRS)[:8]
    graded = [("musc_coarse", 1.0), ("musc_coarse", 1.0), ("musc_coarse", 1.0), ("musc_coarse", 0.5),
              ("musc_fine", 0.0), ("musc_fine", 0.25), ("musc_fine", 0.5), ("musc_fine", 0.75)]
    for row, (method, difficulty) in zip(rows, graded, strict=True):
        row["meta"], row["difficulty"] = {"method": method}, difficulty
    loaded = load_pairs(write_jsonl(tmp_path / "pairs.jsonl", rows))
    assert [r["difficulty"] for r in loaded] == [0.625, 0.625, 0.625, 0.125, 0.125, 0.375, 0.625, 0.875]


def test_pairs_lacking_a_difficulty_train_under_the_random_curriculum(tmp_path):
    rows = [dict(r, difficulty=None) if i % 2 else r for i, r in enumerate(read_jsonl(PAIRS))]
    pairs = write_jsonl(tmp_path / "pairs.jsonl", rows)
    summary = train(load_config(TRAIN_TINY, [f"run_dir={tmp_path}", f"train.pairs={pairs}", "train.max_steps=1"]),
                    tmp_path)
    assert summary["global_steps"] == 1
    with pytest.raises(ConfigError, match="needs a difficulty on every pair"):
        train(load_config(TRAIN_TINY, [f"run_dir={tmp_path / 'staged'}", f"train.pairs={pairs}",
                                       "train.curriculum=staged"]), tmp_path / "staged")


def test_resume_passes_over_a_checkpoint_a_kill_cut_short(tmp_path):
    from musc_ecd.training.run import last_complete_checkpoint

    assert last_complete_checkpoint(tmp_path / "absent") is None
    for step, complete in ((2, True), (4, True), (6, False)):  # killed while writing checkpoint-6
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(b"")
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
