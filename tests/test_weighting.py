"""The weights stage: aligned with the trainer's tokens, each scheme's invariants, clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import write_jsonl

from musc_ecd.cli import main
from musc_ecd.config import load_config
from musc_ecd.errors import ConfigError
from musc_ecd.models import load_model
from musc_ecd.store import read_jsonl
from musc_ecd.training import completion_token_ids
from musc_ecd.weighting import weights_stage

REPO = Path(__file__).resolve().parents[1]
TRAIN_TINY = str(REPO / "configs" / "train_tiny.yaml")


def _pairs(tmp_path, negative=True, same_negative=False):
    rows = []
    for i, (prompt, chosen, rejected) in enumerate([
        ("Write a haiku about rain in lowercase.", "soft rain on the roof", "SOFT RAIN ON THE ROOF"),
        ("List two fruits without commas.", "apple and pear", "apple, pear"),
        ("Answer in one word: capital of France?", "Paris", "The capital of France is Paris, of course."),
    ]):
        meta = {"method": "test"}
        if negative:
            meta["negative_instruction"] = prompt if same_negative else prompt.split(" in ")[0].split(" without")[0]
        rows.append({"id": f"p{i}", "prompt": [{"role": "user", "content": prompt}],
                     "chosen": [{"role": "assistant", "content": chosen}],
                     "rejected": [{"role": "assistant", "content": rejected}], "meta": meta})
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


def _run(tmp_path, scheme, pairs):
    cfg = load_config(TRAIN_TINY, [f"run_dir={tmp_path}", f"train.pairs={pairs}", f"train.weights={scheme}"])
    weights_stage(cfg, tmp_path)
    return read_jsonl(tmp_path / "weights" / "pairs.jsonl")


@pytest.mark.parametrize("scheme", ["uniform", "edit", "kl", "bi_kl", "pmi", "entropy"])
def test_weights_align_with_the_trainers_tokens_and_are_normalised(tmp_path, scheme):
    _, tokenizer = load_model("tiny", device="cpu")
    for row in _run(tmp_path, scheme, _pairs(tmp_path)):
        for side in ("chosen", "rejected"):
            weights = row[f"{side}_weights"]
            assert len(weights) == len(completion_token_ids(tokenizer, row["prompt"], row[side]))
            assert all(0 <= w <= 2.0 for w in weights)
            assert sum(weights) / len(weights) <= 1.0 + 1e-4  # mean 1 before clipping, ≤ 1 after
        assert row["meta"]["weights"] == {"scheme": scheme, "w_max": 2.0}
        if scheme == "uniform":
            assert set(row["chosen_weights"]) == {1.0}


def test_kl_is_uniform_when_the_corrupted_instruction_equals_the_prompt(tmp_path):
    for row in _run(tmp_path, "kl", _pairs(tmp_path, same_negative=True)):
        assert set(row["chosen_weights"]) == {1.0} and set(row["rejected_weights"]) == {1.0}


def test_kl_without_a_corrupted_instruction_names_the_scheme_that_applies(tmp_path):
    with pytest.raises(ConfigError, match=r"train.weights=kl .* use train.weights=edit"):
        _run(tmp_path, "kl", _pairs(tmp_path, negative=False))


def test_train_with_weights_reads_the_weighted_pairs(tmp_path):
    pairs = _pairs(tmp_path)
    args = [TRAIN_TINY, f"run_dir={tmp_path}", f"train.pairs={pairs}", "train.weights=kl", "train.batch_size=3",
            "train.gradient_accumulation_steps=1"]
    assert main(["weights", *args]) == 0
    assert main(["train", *args]) == 0
    summary = json.loads((tmp_path / "model" / "train_summary.json").read_text())
    assert summary["weighted_pairs"] == 3 and summary["pairs_path"].endswith("weights/pairs.jsonl")
    metrics = read_jsonl(tmp_path / "train" / "metrics.jsonl")
    assert any(m.get("weights/chosen_mean", 1.0) != 1.0 for m in metrics)


@pytest.mark.integration
def test_smollm2_weights_align_with_the_trainer_despite_its_default_system_prompt(tmp_path):
    """SmolLM2's chat template inserts a system prompt; the weights must still land on the scored tokens."""
    from datasets import Dataset

    from musc_ecd.training import TokenWeightedDPOConfig, TokenWeightedDPOTrainer

    model, tokenizer = load_model("smollm2-135m-instruct", dtype="float32", device="cpu")
    assert "system" in tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    rows = [json.loads(line) for line in _pairs(tmp_path).read_text().splitlines()]
    for row in rows:
        for side in ("chosen", "rejected"):
            row[f"{side}_weights"] = [0.5] * len(completion_token_ids(tokenizer, row["prompt"], row[side]))
        del row["meta"], row["id"]
    trainer = TokenWeightedDPOTrainer(
        model=model, processing_class=tokenizer, train_dataset=Dataset.from_list(rows),
        args=TokenWeightedDPOConfig(output_dir=str(tmp_path / "t"), use_cpu=True, bf16=False, report_to="none",
                                    gradient_checkpointing=False, per_device_train_batch_size=3))
    for example in trainer.train_dataset:  # the trainer validated lengths; check the ids themselves too
        assert len(example["chosen_weights"]) == len(example["chosen_ids"])


def test_show_pair_renders_weights_and_constraints(tmp_path, capsys):
    pairs = _pairs(tmp_path)
    args = [TRAIN_TINY, f"run_dir={tmp_path}", f"train.pairs={pairs}", "train.weights=bi_kl"]
    assert main(["weights", *args]) == 0
    capsys.readouterr()
    assert main(["show-pair", str(tmp_path), "--index", "1"]) == 0
    out = capsys.readouterr().out
    assert "CHOSEN" in out and "\033[48;5;" in out
    page = (tmp_path / "show-pair-1.html").read_text()
    assert "Pair p1" in page and page.count('<span title="w=') > 4 and "weights: bi_kl" in page
    assert main(["show-pair", str(tmp_path), "--index", "9"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_batched_signals_equal_one_at_a_time(tmp_path):
    from musc_ecd.weighting import weigh_pairs

    model, tokenizer = load_model("tiny", dtype="float32", device="cpu")
    pairs = [json.loads(line) for line in _pairs(tmp_path).read_text().splitlines()]
    cfg = load_config(TRAIN_TINY, [])
    for scheme in ("kl", "pmi", "entropy"):
        batched = weigh_pairs(pairs, scheme, model, tokenizer, cfg, batch_size=8)
        alone = weigh_pairs(pairs, scheme, model, tokenizer, cfg, batch_size=1)
        for a, b in zip(batched, alone, strict=True):
            assert a["chosen_weights"] == pytest.approx(b["chosen_weights"], abs=1e-4)
            assert a["rejected_weights"] == pytest.approx(b["rejected_weights"], abs=1e-4)


@pytest.mark.parametrize("scheme", ["edit", "uniform"])
def test_text_only_schemes_never_load_the_model(tmp_path, monkeypatch, scheme):
    from musc_ecd.models import loading

    def refuse(*args, **kwargs):
        raise AssertionError(f"train.weights={scheme} loaded the model")

    monkeypatch.setattr(loading, "load_model", refuse)
    _, tokenizer = load_model("tiny", device="cpu")
    for row in _run(tmp_path, scheme, _pairs(tmp_path)):
        assert len(row["chosen_weights"]) == len(completion_token_ids(tokenizer, row["prompt"], row["chosen"]))


def test_signals_computed_a_chunk_of_positions_at_a_time_equal_the_full_logits(tmp_path):
    """The LM head never holds more than ``logits_per_chunk`` logits, and the signals are those of the full
    (rows × length × vocabulary) logits, computed here the plain way."""
    from musc_ecd.models.generator import encode_chat
    from musc_ecd.weighting import _conditions, _position_logits, _signal, model_signals

    model, tokenizer = load_model("tiny", dtype="float32", device="cpu")
    pairs = [json.loads(line) for line in _pairs(tmp_path).read_text().splitlines()]
    jobs = [(_conditions(pair, scheme), completion_token_ids(tokenizer, pair["prompt"], pair[side]), scheme)
            for scheme in ("kl", "bi_kl", "pmi", "entropy") for pair in pairs for side in ("chosen", "rejected")]
    vocabulary = model.get_output_embeddings().weight.size(0)
    sizes = []
    hook = model.get_output_embeddings().register_forward_hook(lambda module, args, out: sizes.append(out.numel()))
    try:
        chunked = model_signals(jobs, model, tokenizer, batch_size=8, logits_per_chunk=2 * vocabulary)
    finally:
        hook.remove()
    assert max(sizes) <= 2 * vocabulary and len(sizes) > len(jobs)  # two positions per head call, many calls
    for (conditions, response, scheme), signal in zip(jobs, chunked, strict=True):
        logps = []
        for condition in conditions:
            prompt = encode_chat(tokenizer, condition)
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([prompt + response])).logits[0]
            logps.append(torch.log_softmax(logits[len(prompt) - 1 : len(prompt) - 1 + len(response)], dim=-1))
        torch.testing.assert_close(signal, _signal(scheme, logps, torch.tensor(response)), atol=1e-5, rtol=1e-5)
    # the fallback for a model whose head is not the last step of its logits gives the same logits
    ids = torch.tensor([encode_chat(tokenizer, jobs[0][0][0]) + jobs[0][1]])
    with torch.no_grad():
        full, alone = (_position_logits(model, ids, torch.ones_like(ids), head_alone)(0, 0, ids.size(1))
                       for head_alone in (False, True))
    torch.testing.assert_close(alone, full, atol=1e-5, rtol=1e-5)
