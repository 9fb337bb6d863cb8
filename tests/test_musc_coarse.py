"""MuSC coarse: parsers, corruption invariants, every reject reason, batching, provenance."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from helpers import write_jsonl

from musc_ecd.config import load_config
from musc_ecd.constraints.corrupt import (
    apply_corruption,
    corruption_count,
    parse_rewritten_constraint,
    plan_corruption,
    with_rewrite,
)
from musc_ecd.constraints.decompose import fallback_decomposition, parse_decomposition
from musc_ecd.constraints.judge import parse_verdict
from musc_ecd.constraints.recombine import parse_recombined
from musc_ecd.items import load_items
from musc_ecd.methods import musc_coarse
from musc_ecd.models.roles import ModelRoles
from musc_ecd.models.scripted import ScriptedGenerator

PROBABILITIES = {"drop": 0.5, "substitute": 0.25, "negate": 0.25}


# -- decomposition parsing ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text",
    [
        "Constraints:\n1. Write a poem\n2. For children\n3. At most eight lines\nInput: none",
        "1) Write a poem\n2) For children\n3) At most eight lines",
        "(1) Write a poem\n(2) For children\n(3) At most eight lines\n",
        "- Write a poem\n- For children\n* At most eight lines",
        "Constraint 1: Write a poem.\nConstraint 2: For children.\nConstraint 3: At most eight lines.",
        "Sure! Here are the constraints:\n\n1. Write a poem\n2. For children\n3. At most eight lines\n\nHope it helps",
        "1. Write a poem\n2. For children\n3. At most eight lines\nInput: none\nInstruction: Another one\n1. Nope",
    ],
    ids=["header", "paren", "double-paren", "bullets", "labelled", "chatter", "runs-on"],
)
def test_parser_accepts_numbering_styles_and_ignores_chatter(text):
    parsed = parse_decomposition(text)
    assert parsed.constraints[:3] == ("Write a poem", "For children", "At most eight lines")
    assert parsed.input is None and parsed.source == "parsed"


def test_parser_keeps_multiline_input_and_quoted_periods():
    parsed = parse_decomposition('1. Summarise the text\n2. End with "The end."\nInput: First line.\nSecond line.')
    assert parsed.constraints == ("Summarise the text", 'End with "The end."')
    assert parsed.input == "First line.\nSecond line."


@pytest.mark.parametrize("text", ["", "   \n", "I am not able to help with that.", "Input: none"])
def test_parser_returns_none_without_a_list(text):
    assert parse_decomposition(text) is None


def test_spacy_fallback_splits_sentences_and_clauses():
    result = fallback_decomposition("Write a poem about rain for kids. Use at most six lines and do not rhyme; "
                                    "end with a question.")
    assert result.source == "spacy_fallback"
    assert result.constraints == ("Write a poem about rain for kids", "Use at most six lines", "do not rhyme",
                                  "end with a question")


# -- corruption ---------------------------------------------------------------------------------

@pytest.mark.parametrize("n", range(2, 11))
@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 1.0])
def test_corruption_keeps_first_and_touches_k(n, ratio):
    constraints = [f"c{i}" for i in range(n)]
    rng = random.Random(0)
    plan = plan_corruption(constraints, rng, ratio, PROBABILITIES, keep_first=True)
    assert len(plan) == min(max(1, round(ratio * n)), n - 1) == corruption_count(n, ratio, True)
    assert all(c.index > 0 for c in plan) and len({c.index for c in plan}) == len(plan)
    assert [c.original for c in plan] == [constraints[c.index] for c in plan]


def test_corruption_may_touch_first_only_when_asked():
    hits = Counter(c.index for s in range(300)
                   for c in plan_corruption(["a", "b", "c"], random.Random(s), 0.3, PROBABILITIES, keep_first=False))
    assert hits[0] > 0


def test_operator_frequencies_follow_the_probabilities():
    counts = Counter(c.operator for s in range(4000)
                     for c in plan_corruption(["a", "b", "c", "d"], random.Random(s), 0.3, PROBABILITIES))
    total = sum(counts.values())
    assert counts["drop"] / total == pytest.approx(0.5, abs=0.03)
    assert counts["substitute"] / total == pytest.approx(0.25, abs=0.03)
    assert counts["negate"] / total == pytest.approx(0.25, abs=0.03)


def test_corruption_is_reproducible_from_the_seed():
    constraints = [f"c{i}" for i in range(8)]
    assert (plan_corruption(constraints, random.Random(5), 0.3, PROBABILITIES)
            == plan_corruption(constraints, random.Random(5), 0.3, PROBABILITIES))


def test_apply_corruption_and_rewrite_fallback():
    plan = plan_corruption(["a", "b", "c", "d"], random.Random(1), 0.5, {"drop": 0, "substitute": 1, "negate": 0})
    filled = [with_rewrite(c, f"not {c.original}") for c in plan]
    result = apply_corruption(["a", "b", "c", "d"], filled)
    assert len(result) == 4 and result[0] == "a" and sum(r.startswith("not ") for r in result) == len(plan)
    dropped = with_rewrite(plan[0], None)
    assert dropped.operator == "drop" and dropped.fallback_from == "substitute"
    assert len(apply_corruption(["a", "b", "c", "d"], [dropped])) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("New constraint: Use at least twenty lines", "Use at least twenty lines"),
        ("\n\n1. Make it casual\nmore text", "Make it casual"),
        ('"Mention fish"', "Mention fish"),
        ("Use at most eight lines.", None),  # unchanged
        ("", None),
        ("word " * 41, None),
    ],
)
def test_parse_rewritten_constraint(text, expected):
    assert parse_rewritten_constraint(text, "Use at most eight lines") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Write a poem for kids in eight lines.", ("Write a poem for kids in eight lines.", "")),
        ("Here is the instruction:\nWrite a poem.", ("Write a poem.", "")),
        ('"Write a poem."', ("Write a poem.", "")),
        ("", (None, "recombine_empty")),
        ("Constraints:\n1. Write a poem", (None, "recombine_leak")),
        ("Write a poem.\nInput: none", (None, "recombine_leak")),
        ("The company has been accused of using a credit score. " * 8, (None, "recombine_degenerate")),
        ("Write a persuasive essay of at least 400 words on personal finance, with the keywords 'compound' and "
         "'budget', and end with a question.", ("Write a persuasive essay of at least 400 words on personal "
                                                "finance, with the keywords 'compound' and 'budget', and end with "
                                                "a question.", "")),
    ],
)
def test_parse_recombined(text, expected):
    assert parse_recombined(text) == expected


@pytest.mark.parametrize(("text", "verdict"), [("Analysis: fine.\nAnswer: Yes", True), ("Answer: **No**", False),
                                               ("answer: no. Answer: yes", True), ("It is fine.", None)])
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) is verdict


# -- the method with a scripted policy ---------------------------------------------------------------

def _task(request) -> str:
    """The template's task line (first line of its system message); '' for a bare user request."""
    return request[0]["content"].splitlines()[0] if request[0]["role"] == "system" else ""


def scripted_policy(overrides=None):
    """A policy that follows the templates; ``overrides`` maps (task keyword, instruction marker) → text."""
    overrides = overrides or {}

    def respond(request, index, params):
        content = request[-1]["content"]
        task = _task(request) or "ANSWER"
        for (keyword, marker), text in overrides.items():
            if keyword in task and marker in content:
                return text
        if "decompose" in task:
            if "FEW" in content:
                return "1. Just one thing"
            return "1. Write about TOPIC\n2. Use three lines\n3. Be formal\n4. Avoid commas\nInput: none"
        if "replace" in task:
            return "New constraint: Use ninety lines"
        if "negate" in task:
            return "Rewritten: Do not be formal"
        if "write one instruction" in task:
            listing = content.split("Input:")[0]
            items = [line.split(". ", 1)[1] for line in listing.strip().splitlines()]
            return "; ".join(items) + "."
        if "check one constraint" in task:
            return "Analysis: ok.\nAnswer: Yes"
        return f"ANSWER to: {content}"  # respond: echo the instruction so answers differ

    return ScriptedGenerator(respond, name="scripted-policy")


def _items(tmp_path, instructions):
    path = write_jsonl(tmp_path / "seeds.jsonl", [{"id": f"s{i}", "instruction": t}
                                                   for i, t in enumerate(instructions)])
    return load_items(path, prompt_field="instruction", id_field="id")


def _run(tmp_path, instructions, overrides=None, *config):
    cfg = load_config(None, ["seed=3", *config])
    builder = musc_coarse.build(ModelRoles.of(scripted_policy(overrides)), cfg)
    pairs, rejects = builder(_items(tmp_path, instructions))
    return builder, pairs, rejects


def test_pairs_have_trl_columns_and_full_provenance(tmp_path):
    builder, pairs, rejects = _run(tmp_path, ["Write about rain in three lines.", "Write about snow."])
    assert not rejects and len(pairs) == 2
    pair = pairs[0]
    assert pair["prompt"] == [{"role": "user", "content": "Write about rain in three lines."}]
    assert pair["chosen"][0]["role"] == pair["rejected"][0]["role"] == "assistant"
    meta = pair["meta"]
    assert meta["decomposition"]["source"] == "parsed" and len(meta["decomposition"]["constraints"]) == 4
    (corruption,) = meta["corruptions"]  # k = round(0.3 · 4) = 1
    constraints = meta["decomposition"]["constraints"]
    assert corruption["index"] > 0 and corruption["original"] == constraints[corruption["index"]]
    assert pair["difficulty"] == 1.0
    assert meta["positive_instruction"] != meta["negative_instruction"]
    assert pair["chosen"][0]["content"] == f"ANSWER to: {meta['positive_instruction']}"
    assert pair["rejected"][0]["content"] == f"ANSWER to: {meta['negative_instruction']}"
    assert set(meta["templates"]) == {"decompose", "recombine", "substitute", "negate", "judge"}
    assert meta["models"] == {"policy": "scripted-policy"} and meta["seed"] == 3
    assert meta["sampling"]["decompose"]["temperature"] == 0.1 and meta["sampling"]["respond"]["temperature"] == 0.5


def test_each_stage_is_one_batched_call(tmp_path):
    builder, pairs, _ = _run(tmp_path, [f"Write about topic {i}." for i in range(12)], None,
                             "musc.p_drop=0", "musc.p_substitute=1", "musc.p_negate=0")
    tasks = [_task(call[0][0]) or "respond" for call in builder.generator.calls]
    assert len(tasks) == 4  # decompose, rewrite, recombine, respond — whatever the number of items
    assert [len(call[0]) for call in builder.generator.calls] == [12, 12, 24, 24]
    assert {c["operator"] for p in pairs for c in p["meta"]["corruptions"]} == {"substitute"}


@pytest.mark.parametrize(
    ("reason", "overrides", "answer", "config"),
    [
        ("too_few_constraints", {}, None, ()),
        ("recombine_empty", {("write one instruction", "Be formal"): ""}, None, ()),
        ("recombine_leak", {("write one instruction", "Be formal"): "Constraints:\n1. leaked"}, None, ()),
        ("recombine_identical", {("write one instruction", "TOPIC"): "Same for both."}, None, ()),
        ("empty_response", {}, "", ()),
        ("identical_responses", {}, "same answer", ()),
        ("rejected_satisfies_corrupted", {}, None, ("musc.self_judge_filter=true",)),
    ],
)
def test_every_reject_reason_is_reachable(tmp_path, reason, overrides, answer, config):
    instruction = "FEW constraints here" if reason == "too_few_constraints" else "Write about rain."
    policy = scripted_policy(overrides)
    if answer is not None:  # answers to the recombined instructions (requests without a template)
        follow_templates = policy.respond
        policy.respond = lambda r, i, p: follow_templates(r, i, p) if _task(r) else answer
    builder = musc_coarse.build(ModelRoles.of(policy), load_config(None, ["seed=3", *config]))
    pairs, rejects = builder(_items(tmp_path, [instruction]))
    assert not pairs
    assert [r["reason"] for r in rejects] == [reason]
    assert rejects[0]["id"] == "s0" and rejects[0]["line"] == 1


def test_unusable_rewrite_falls_back_to_drop_and_is_counted(tmp_path):
    overrides = {("replace", ""): "", ("negate", ""): "too long " * 30}  # empty; over 40 words
    builder, pairs, _ = _run(tmp_path, [f"Write about {i}." for i in range(20)], overrides,
                             "musc.p_drop=0", "musc.p_substitute=0.5", "musc.p_negate=0.5")
    corruptions = [c for p in pairs for c in p["meta"]["corruptions"]]
    assert corruptions and all(c["operator"] == "drop" and c["fallback_from"] for c in corruptions)
    summary = musc_coarse.summarize(pairs, [], load_config(None))
    assert summary["rewrite_fallbacks_to_drop"] == len(corruptions)


def test_unparsable_decomposition_uses_spacy_and_says_so(tmp_path):
    overrides = {("decompose", ""): "I would rather not."}
    _, pairs, _ = _run(tmp_path, ["Write a poem about rain. Use six lines and avoid rhymes."], overrides)
    (pair,) = pairs
    assert pair["meta"]["decomposition"]["source"] == "spacy_fallback"
    assert pair["meta"]["decomposition"]["constraints"] == ["Write a poem about rain", "Use six lines",
                                                            "avoid rhymes"]
    assert musc_coarse.summarize(pairs, [], load_config(None))["decomposition_fallback_rate"] == 1.0


def test_summary_counts_yield_per_stage_and_operators(tmp_path):
    _, pairs, rejects = _run(tmp_path, ["FEW", "Write about a.", "Write about b.", "Write about c."])
    summary = musc_coarse.summarize(pairs, rejects, load_config(None))
    assert summary["yield_per_stage"] == {"seeds": 4, "decomposed": 3, "recombined": 3, "responded_and_filtered": 3}
    assert sum(summary["operators"].values()) == 3 and summary["mean_constraints_per_instruction"] == 4.0
