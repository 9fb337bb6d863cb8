"""MuSC fine: scores, selection of the worst sample, minimal correction, rejects, batching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_jsonl

from musc_ecd.cli import main
from musc_ecd.config import load_config
from musc_ecd.constraints.correct import parse_revision
from musc_ecd.items import load_items
from musc_ecd.methods import musc_fine
from musc_ecd.models.roles import ModelRoles
from musc_ecd.models.scripted import ScriptedGenerator

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = ["Write about TOPIC", "Use three lines", "Avoid commas"]


def _task(request) -> str:
    return request[0]["content"].splitlines()[0] if request[0]["role"] == "system" else ""


def policy(judge=None, correction=None):
    """Samples 'answer 0..3'; by default sample 2 breaks 'Avoid commas', the judge says so; fixes it."""
    def respond(request, index, params):
        task, content = _task(request), request[-1]["content"]
        if "decompose" in task:
            return "\n".join(f"{i}. {c}" for i, c in enumerate(CONSTRAINTS, start=1)) + "\nInput: none"
        if "check one constraint" in task:
            if judge is not None:
                return judge(content)
            bad = "answer 2, with commas" in content and content.rstrip().endswith("Constraint: Avoid commas")
            return "Analysis: checked.\nAnswer: " + ("No" if bad else "Yes")
        if "correct a response" in task:
            return correction if correction is not None else "answer 2 without commas"
        return ["answer 0", "answer 1", "answer 2, with commas", "answer 3"][index]
    return ScriptedGenerator(respond, name="scripted-policy")


def _build(tmp_path, generator, *overrides):
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"id": "s0", "instruction": "Write about rain in three lines."}])
    items = load_items(seeds, prompt_field="instruction", id_field="id")
    builder = musc_fine.build(ModelRoles.of(generator), load_config(None, ["method=musc_fine", *overrides]))
    return builder, *builder(items)


def test_answer_score_with_unparsable_verdicts():
    assert musc_fine.answer_score([True, None, False], 0.9) == pytest.approx((1 + 0.9 + 0) / 3)
    assert musc_fine.answer_score([True, True], 0.9) == 1.0


def test_worst_sample_is_rejected_and_its_revision_chosen(tmp_path):
    builder, pairs, rejects = _build(tmp_path, policy())
    assert not rejects
    (pair,) = pairs
    assert pair["rejected"][0]["content"] == "answer 2, with commas"
    assert pair["chosen"][0]["content"] == "answer 2 without commas"
    meta = pair["meta"]
    assert meta["rejected_sample"] == 2 and meta["violated_constraints"] == ["Avoid commas"]
    assert [s["score"] for s in meta["samples"]] == [1.0, 1.0, round(2 / 3, 4), 1.0]
    assert meta["samples"][2]["verdicts"] == [True, True, False] and len(meta["samples"][2]["judge_raw"]) == 3
    assert pair["difficulty"] == round(2 / 3, 4)
    # decompose, sample (n=4), judge (4 samples × 3 constraints), correct: four batched calls
    assert [len(call[0]) for call in builder.generator.calls] == [1, 1, 12, 1]
    assert builder.generator.calls[1][1].n == 4


def test_unparsable_verdict_scores_point_nine_and_counts_as_violated(tmp_path):
    def judge(content):
        return "I am not sure." if "answer 1" in content and content.endswith("Use three lines") else "Answer: Yes"
    _, pairs, _ = _build(tmp_path, policy(judge=judge))
    (pair,) = pairs
    assert pair["meta"]["rejected_sample"] == 1 and pair["meta"]["violated_constraints"] == ["Use three lines"]
    assert pair["difficulty"] == round((1 + 0.9 + 1) / 3, 4)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [({"judge": lambda content: "Answer: Yes"}, "all_answers_perfect"),
     ({"correction": ""}, "revision_empty"),
     ({"correction": "answer 2,  with commas"}, "revision_unchanged")],
)
def test_rejects(tmp_path, kwargs, reason):
    _, pairs, rejects = _build(tmp_path, policy(**kwargs))
    assert not pairs and [r["reason"] for r in rejects] == [reason]


def test_parse_revision():
    assert parse_revision("  fixed text \n", "old") == ("fixed text", "")
    assert parse_revision("same   words", "same words") == (None, "revision_unchanged")


def test_musc_fine_end_to_end_on_tiny(tmp_path):
    assert main(["generate", str(REPO / "configs" / "musc_coarse.yaml"), "method=musc_fine", "model.policy=tiny",
                 "model.dtype=float32", f"data.seeds={REPO / 'configs/data/seeds.jsonl'}", "data.limit=3",
                 "musc.decompose_max_tokens=24", "musc_fine.respond_max_tokens=12", "musc_fine.judge_max_tokens=8",
                 "musc_fine.correct_max_tokens=12", f"run_dir={tmp_path}"]) == 0
    summary = json.loads((tmp_path / "generate" / "summary.json").read_text())
    assert summary["method"] == "musc_fine" and summary["items"] == 3
    assert summary["accepted"] + summary["rejected"] == 3


def test_full_musc_splits_seeds_between_granularities_and_weights_both(tmp_path):
    args = [str(REPO / "configs" / "musc.yaml"), "model.policy=tiny", "model.dtype=float32",
            f"data.seeds={REPO / 'configs/data/seeds.jsonl'}", "data.limit=8", "musc.decompose_max_tokens=24",
            "musc.recombine_max_tokens=16", "musc.rewrite_max_tokens=8", "musc.respond_max_tokens=12",
            "musc_fine.respond_max_tokens=12", "musc_fine.judge_max_tokens=8", "musc_fine.correct_max_tokens=12",
            "train.precision=fp32", "train.max_steps=1", f"run_dir={tmp_path}"]
    assert main(["generate", *args]) == 0
    summary = json.loads((tmp_path / "generate" / "summary.json").read_text())
    assert summary["method"] == "musc" and summary["items"] == 8
    from musc_ecd.methods.musc import goes_to_fine

    fine = [goes_to_fine(0, f"seed-{i:04d}", 0.5) for i in range(1, 9)]
    assert 0 < sum(fine) < 8  # both builders got seeds
    assert main(["weights", *args, "train.weights=kl"]) == 0
    assert main(["train", *args, "train.weights=kl"]) == 0
    from musc_ecd.store import read_jsonl

    for pair in read_jsonl(tmp_path / "weights" / "pairs.jsonl"):
        expected = "kl" if pair["meta"]["method"] == "musc_coarse" else "edit"
        assert pair["meta"]["weights"]["scheme"] == expected
