"""`musc-ecd generate` end to end on the tiny model (hf and vLLM), resume, and TRL consuming the artifact."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import interrupt_on_chunk, write_jsonl

from musc_ecd.cli import main
from musc_ecd.config import load_config
from musc_ecd.generate import generate_into as generate  # into a stage directory: X/pairs.jsonl
from musc_ecd.models.backend_choice import vllm_installed
from musc_ecd.store import read_jsonl

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "musc_coarse.yaml")
SEEDS = REPO / "configs" / "data" / "seeds.jsonl"
TINY = ["model.policy=tiny", "model.dtype=float32", "musc.decompose_max_tokens=24", "musc.recombine_max_tokens=16",
        "musc.rewrite_max_tokens=8", "musc.respond_max_tokens=12", f"data.seeds={SEEDS}"]


def test_generate_on_tiny_writes_a_dataset_that_trl_trains_on(tmp_path):
    assert main(["generate", CONFIG, *TINY, "data.limit=8", f"run_dir={tmp_path}"]) == 0
    summary = json.loads((tmp_path / "generate" / "summary.json").read_text())
    assert summary["items"] == 8 and summary["accepted"] + summary["rejected"] == 8 and summary["accepted"] > 0
    assert summary["yield_per_stage"]["seeds"] == 8

    from datasets import load_dataset
    from trl import DPOConfig, DPOTrainer

    from musc_ecd.models import load_model

    pairs = load_dataset("json", data_files=str(tmp_path / "generate" / "pairs.jsonl"), split="train")
    assert {"prompt", "chosen", "rejected", "difficulty", "meta"} <= set(pairs.column_names)
    model, tokenizer = load_model("tiny", dtype="float32", device="cpu")
    trainer = DPOTrainer(model=model, train_dataset=pairs, processing_class=tokenizer,
                         args=DPOConfig(output_dir=str(tmp_path / "trl"), max_steps=1, per_device_train_batch_size=2,
                                        use_cpu=True, bf16=False, report_to="none", save_strategy="no",
                                        gradient_checkpointing=False))
    assert trainer.train().global_step == 1


def test_interrupted_generate_resumes_to_the_same_pairs(tmp_path, monkeypatch):
    common = [*TINY, "data.limit=6", "store.commit_every=2", "musc.respond_temperature=0.9"]
    generate(load_config(CONFIG, [*common, f"run_dir={tmp_path / 'clean'}"]), tmp_path / "clean")

    from musc_ecd.methods import musc_coarse

    original = interrupt_on_chunk(monkeypatch, musc_coarse.MuscCoarse, 3)
    killed = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        generate(load_config(CONFIG, [*common, f"run_dir={killed}"]), killed)
    monkeypatch.setattr(musc_coarse.MuscCoarse, "__call__", original)
    generate(load_config(CONFIG, [*common, f"run_dir={killed}"]), killed)
    for name in ("pairs.jsonl", "rejects.jsonl"):
        assert (killed / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()


def test_malformed_seed_lines_become_rejects_and_the_run_goes_on(tmp_path):
    seeds = write_jsonl(tmp_path / "seeds.jsonl", ["{oops", {"id": "a", "instruction": "Write a poem. Use rhymes."},
                                                   {"id": "b"}])
    generate(load_config(CONFIG, [*TINY, f"data.seeds={seeds}", f"run_dir={tmp_path / 'run'}"]), tmp_path / "run")
    rejects = {r["line"]: r["reason"] for r in read_jsonl(tmp_path / "run" / "rejects.jsonl")}
    assert rejects[1] == "invalid_json" and rejects[3] == "missing_field"


@pytest.mark.vllm
@pytest.mark.skipif(not vllm_installed() and os.environ.get("MUSC_ECD_REQUIRE_VLLM") != "1",
                    reason="vLLM not installed")
def test_generate_with_the_vllm_backend(tmp_path):
    assert main(["generate", CONFIG, *TINY, "data.limit=4", "generation.backend=vllm",
                 "generation.vllm.max_model_len=2048", f"run_dir={tmp_path}"]) == 0
    summary = json.loads((tmp_path / "generate" / "summary.json").read_text())
    assert summary["items"] == 4 and summary["accepted"] + summary["rejected"] == 4
    assert all(p["meta"]["models"]["policy"] == "tiny" for p in read_jsonl(tmp_path / "generate" / "pairs.jsonl"))


@pytest.mark.integration
def test_smollm2_on_ten_seeds_makes_a_valid_pair(tmp_path):
    cfg = load_config(CONFIG, [f"data.seeds={SEEDS}", "data.limit=10", f"run_dir={tmp_path}",
                               "musc.respond_max_tokens=96"])
    summary = generate(cfg, tmp_path)
    pairs = read_jsonl(tmp_path / "pairs.jsonl")
    assert summary["accepted"] >= 1 and pairs
    for pair in pairs:
        assert pair["chosen"][0]["content"] and pair["rejected"][0]["content"]
        assert pair["chosen"][0]["content"] != pair["rejected"][0]["content"]
        assert pair["meta"]["positive_instruction"] != pair["meta"]["negative_instruction"]
