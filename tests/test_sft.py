"""SFT on the best answers: APC's ``loss=[sft]`` trains on sft.jsonl (one row per prompt), and the
``train.sft_first`` phase runs before the preference phase, resumably, with the SFT model as its base."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import write_jsonl

from musc_ecd.cli import main
from musc_ecd.store import read_jsonl
from musc_ecd.training.sft import sft_rows, sft_source

REPO = Path(__file__).resolve().parents[1]
TRAIN_TINY = str(REPO / "configs" / "train_tiny.yaml")
TRAIN = ["train.pairs=null", "train.batch_size=2", "train.gradient_accumulation_steps=1", "train.epochs=1",
         "train.save_steps=100", "train.precision=fp32"]


@pytest.fixture(scope="module")
def apc_run(tmp_path_factory) -> tuple[Path, list[str]]:
    """Three decodings of the tiny model as responders on 6 prompts: 3 pairs per prompt, one SFT row each."""
    tmp = tmp_path_factory.mktemp("apc")
    seeds = write_jsonl(tmp / "seeds.jsonl", [{"id": f"s{i}", "prompt": f"Say something about {i}."} for i in range(6)])
    run_dir = tmp / "run"
    common = [f"run_dir={run_dir}", "method=apc", "model.policy=tiny", "model.dtype=float32",
              "model.responders=[tiny,tiny,tiny]", "apc.temperatures=[0.0,1.0,1.5]", "apc.max_new_tokens=[12,8,4]",
              f"data.seeds={seeds}", "data.id_field=id"]
    assert main(["generate", TRAIN_TINY, *common]) == 0
    return run_dir, common


def test_sft_set_is_one_best_answer_per_prompt(apc_run):
    run_dir, _ = apc_run
    pairs = read_jsonl(run_dir / "generate" / "pairs.jsonl")
    assert sft_source(run_dir / "generate" / "pairs.jsonl", None) == run_dir / "generate" / "sft.jsonl"
    rows = sft_rows(run_dir / "generate" / "sft.jsonl")
    assert len(rows) == len({p["item_id"] for p in pairs}) < len(pairs)
    assert all(r["completion"][-1]["role"] == "assistant" and r["completion"][-1]["content"] for r in rows)


def test_pairs_without_an_sft_file_give_each_distinct_chosen_once(tmp_path):
    pair = {"prompt": [{"role": "user", "content": "p"}], "chosen": [{"role": "assistant", "content": "a"}],
            "rejected": [{"role": "assistant", "content": "b"}]}
    path = write_jsonl(tmp_path / "pairs.jsonl", [pair, pair, {**pair, "chosen": "plain"}])
    assert sft_source(path, None) == path
    assert [r["completion"][0]["content"] for r in sft_rows(path)] == ["a", "plain"]


def test_loss_sft_on_apc_trains_on_the_sft_file(apc_run, tmp_path):
    run_dir, common = apc_run
    target = tmp_path / "sft_only"
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("train", "model"))
    args = [a for a in common if not a.startswith("run_dir=")] + [f"run_dir={target}"]
    assert main(["train", TRAIN_TINY, *args, *TRAIN, "train.loss=[sft]"]) == 0
    summary = json.loads((target / "model" / "manifest.json").read_text())["summary"]
    assert summary["loss"] == ["sft"] and summary["sft_data"].endswith("sft.jsonl")
    assert summary["sft_examples"] == len(read_jsonl(target / "generate" / "sft.jsonl")) == 6
    assert summary["global_steps"] == 3 and (target / "model" / "adapter_config.json").is_file()


def test_sft_first_then_dpo_resumes_and_evaluates_on_the_sft_base(apc_run, tmp_path):
    run_dir, common = apc_run
    target = tmp_path / "sft_then_dpo"
    shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("train", "model"))
    args = [a for a in common if not a.startswith("run_dir=")] + [f"run_dir={target}"]
    options = [*TRAIN, "train.sft_first=true", "train.sft_epochs=2"]
    assert main(["train", TRAIN_TINY, *args, *options]) == 0
    summary = json.loads((target / "model" / "manifest.json").read_text())["summary"]
    assert summary["sft_phase"]["sft_examples"] == 6 and summary["sft_phase"]["global_steps"] == 6
    base = json.loads((target / "model" / "base_model.json").read_text())["base_model"]
    assert base == str(target / "train" / "sft" / "merged") and summary["base_model"] == base
    assert (Path(base) / "config.json").is_file() and summary["global_steps"] >= 1
    # A kill during the preference phase: the SFT phase is not redone, the preference phase is.
    sft_manifest = (target / "train" / "sft" / "manifest.json").stat().st_mtime_ns
    (target / "model" / "manifest.json").unlink()
    assert main(["train", TRAIN_TINY, *args, *options]) == 0
    assert (target / "train" / "sft" / "manifest.json").stat().st_mtime_ns == sft_manifest
    assert (target / "model" / "manifest.json").is_file()
    assert main(["evaluate", TRAIN_TINY, *args, f"eval.adapter={target / 'model'}", "eval.limit=2",
                 "eval.max_new_tokens=4"]) == 0
    assert json.loads((target / "eval" / "trained" / "results.json").read_text())["num_prompts"] == 2


def test_sft_first_with_loss_sft_alone_is_refused():
    from musc_ecd.config import load_config
    from musc_ecd.errors import ConfigError

    with pytest.raises(ConfigError, match="train.sft_first"):
        load_config(None, ["train.loss=[sft]", "train.sft_first=true"])
