"""APC: pairs from responders of different strength, difficulty by strength gap, SFT targets, curriculum."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import interrupt_on_chunk, write_jsonl

from musc_ecd.cli import main
from musc_ecd.config import load_config
from musc_ecd.errors import ConfigError
from musc_ecd.generate import generate_into as generate  # into a stage directory: X/pairs.jsonl
from musc_ecd.items import load_items
from musc_ecd.methods import apc
from musc_ecd.models.roles import ModelRoles
from musc_ecd.models.scripted import ScriptedGenerator
from musc_ecd.store import read_jsonl

REPO = Path(__file__).resolve().parents[1]
TRAIN_TINY = str(REPO / "configs" / "train_tiny.yaml")
FOUR = "model.responders=[m0,m1,m2,m3]"


def responders(count: int, answer=lambda rank, prompt: f"answer of m{rank} to {prompt}"):
    return [ScriptedGenerator(lambda request, i, p, rank=rank: answer(rank, request[-1]["content"]), name=f"m{rank}")
            for rank in range(count)]


def _run(tmp_path, generators, *overrides, prompts=("p0", "p1")):
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"id": p, "prompt": p} for p in prompts])
    cfg = load_config(None, ["method=apc", *overrides])
    builder = apc.build(ModelRoles.of(generators[0], responders=generators), cfg)
    return builder(load_items(seeds, id_field="id"))


def test_every_stronger_weaker_pair_with_difficulty_from_the_rank_gap(tmp_path):
    pairs, rejects = _run(tmp_path, responders(4), FOUR)
    assert not rejects and len(pairs) == 2 * 6
    by_ranks = {(p["meta"]["chosen_rank"], p["meta"]["rejected_rank"]): p for p in pairs if p["item_id"] == "p0"}
    assert {k: v["difficulty"] for k, v in by_ranks.items()} == {
        (0, 1): 0.6667, (1, 2): 0.6667, (2, 3): 0.6667, (0, 2): 0.3333, (1, 3): 0.3333, (0, 3): 0.0}
    for (i, j), pair in by_ranks.items():
        assert pair["chosen"][0]["content"] == f"answer of m{i} to p0"  # the stronger is always chosen
        assert pair["rejected"][0]["content"] == f"answer of m{j} to p0"
        assert pair["meta"]["models"]["chosen"] == f"m{i}" and pair["meta"]["sft_target"] == "answer of m0 to p0"
    summary = apc.summarize(pairs, rejects)
    assert summary["pairs_per_difficulty"] == {"0.0": 2, "0.3333": 4, "0.6667": 6}


def test_measured_strengths_grade_the_pairs(tmp_path):
    pairs, _ = _run(tmp_path, responders(3), "model.responders=[m0,m1,m2]", "apc.strengths=[0.5,0.4,0.2]",
                    prompts=("p0",))
    assert {(p["meta"]["chosen_rank"], p["meta"]["rejected_rank"]): p["difficulty"] for p in pairs} == {
        (0, 1): 0.6667, (1, 2): 0.3333, (0, 2): 0.0}
    assert apc.difficulty([3.0, 2.0, 1.0, 0.0], 0, 3) < apc.difficulty([3.0, 2.0, 1.0, 0.0], 0, 2) < \
        apc.difficulty([3.0, 2.0, 1.0, 0.0], 2, 3)


def test_one_batched_call_per_responder(tmp_path):
    generators = responders(3)
    _run(tmp_path, generators, "model.responders=[m0,m1,m2]", "apc.temperatures=[0.0,0.7,1.2]",
         "apc.max_new_tokens=[30,20,10]", prompts=("a", "b", "c"))
    for rank, generator in enumerate(generators):
        assert len(generator.calls) == 1 and len(generator.calls[0][0]) == 3
        params = generator.calls[0][1]
        assert (params.temperature, params.max_new_tokens) == ([0.0, 0.7, 1.2][rank], [30, 20, 10][rank])


def test_empty_and_identical_answers_are_rejected_per_pair(tmp_path):
    def answer(rank, prompt):
        return {0: "good", 1: "good", 2: ""}[rank]

    pairs, rejects = _run(tmp_path, responders(3, answer), "model.responders=[m0,m1,m2]", prompts=("p0",))
    assert pairs == []
    assert sorted((r["id"], r["reason"]) for r in rejects) == [
        ("p0#0>1", "identical_responses"), ("p0#0>2", "empty_rejected"), ("p0#1>2", "empty_rejected")]
    assert all(r["item_id"] == "p0" for r in rejects)


@pytest.mark.parametrize("overrides, message", [
    (["model.responders=[m0]"], "at least two"),
    ([FOUR, "apc.temperatures=[0.0,1.0]"], "apc.temperatures has 2 value"),
    ([FOUR, "apc.max_new_tokens=[1,2,3]"], "apc.max_new_tokens has 3 value"),
])
def test_responder_settings_are_checked_before_any_model_loads(tmp_path, overrides, message):
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"prompt": "p"}])
    cfg = load_config(None, ["method=apc", f"data.seeds={seeds}", *overrides])
    with pytest.raises(ConfigError, match=message):
        generate(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "pairs.parts").exists()


def test_strengths_must_decrease():
    with pytest.raises(ConfigError, match="apc.strengths"):
        load_config(None, ["apc.strengths=[0.2,0.5]"])


def test_apc_on_tiny_then_staged_training_goes_from_easy_to_hard(tmp_path):
    """Three decodings of the tiny model as responders → two difficulty levels; staged curriculum trains the
    easy level first (the mean difficulty per step never goes down)."""
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"id": f"s{i}", "prompt": f"Say something about {i}."}
                                                    for i in range(8)])
    run_dir = tmp_path / "run"
    common = [f"run_dir={run_dir}", "method=apc", "model.policy=tiny", "model.dtype=float32",
              "model.responders=[tiny,tiny,tiny]", "apc.temperatures=[0.0,1.0,1.5]", "apc.max_new_tokens=[12,8,4]",
              f"data.seeds={seeds}", "data.id_field=id"]
    assert main(["generate", TRAIN_TINY, *common]) == 0
    pairs = read_jsonl(run_dir / "generate" / "pairs.jsonl")
    assert {p["difficulty"] for p in pairs} == {0.0, 0.5} and len(pairs) > 8
    sft = read_jsonl(run_dir / "generate" / "sft.jsonl")
    assert len(sft) == len({p["item_id"] for p in pairs})
    by_seed = {p["item_id"]: p for p in pairs if p["meta"]["chosen_rank"] == 0}
    for row in sft:
        assert row["messages"][-1] == {"role": "assistant", "content": by_seed[row["id"]]["chosen"][0]["content"]}

    assert main(["train", TRAIN_TINY, *common, "train.pairs=null", "train.curriculum=staged", "train.batch_size=2",
                 "train.gradient_accumulation_steps=1", "train.epochs=1", "train.save_steps=100"]) == 0
    steps = [m for m in read_jsonl(run_dir / "train" / "metrics.jsonl") if "curriculum/difficulty" in m]
    order = [m["curriculum/difficulty"] for m in steps]
    assert len(order) == json.loads((run_dir / "model" / "train_summary.json").read_text())["global_steps"]
    assert order == sorted(order) and order[0] < order[-1]  # levels 0.0 then 0.5, as ranks among the pairs


def test_interrupted_apc_generate_resumes_to_the_same_pairs(tmp_path, monkeypatch):
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"id": f"s{i}", "prompt": f"Name a colour, {i}."} for i in range(6)])

    def cfg(run):
        return load_config(None, [f"run_dir={tmp_path / run}", "method=apc", "model.policy=tiny", "model.dtype=float32",
                                  "model.responders=[tiny,tiny]", "apc.temperatures=[0.0,1.2]",
                                  "apc.max_new_tokens=[8,4]", f"data.seeds={seeds}", "data.id_field=id",
                                  "store.commit_every=2"])

    generate(cfg("clean"), tmp_path / "clean")
    original = interrupt_on_chunk(monkeypatch, apc.Apc, 2)
    with pytest.raises(KeyboardInterrupt):
        generate(cfg("resumed"), tmp_path / "resumed")
    assert len(read_jsonl(next((tmp_path / "resumed" / "pairs.parts").glob("*.jsonl")))) > 0  # chunk 1 kept
    monkeypatch.setattr(apc.Apc, "__call__", original)
    generate(cfg("resumed"), tmp_path / "resumed")
    for name in ("pairs.jsonl", "rejects.jsonl", "sft.jsonl"):
        assert (tmp_path / "resumed" / name).read_text() == (tmp_path / "clean" / name).read_text()
