"""Repetition a small model produces (issue #19, point 5): an answer whose *tail* loops is degenerate in every
method (a looping chosen is rejected, a looping rejected kept), and a decomposition that lists its constraints
again and again is deduplicated, and rejected when too few distinct ones remain."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import SHARED
from helpers import write_jsonl
from test_apc import responders
from test_ecd import _self_based
from test_musc_coarse import _task, scripted_policy
from test_musc_fine import policy as fine_policy

from musc_ecd.config import load_config
from musc_ecd.constraints.decompose import parse_decomposition
from musc_ecd.degenerate import is_degenerate
from musc_ecd.items import load_items
from musc_ecd.methods import apc, ecd, musc_coarse, musc_fine
from musc_ecd.methods.base import pair_problem
from musc_ecd.models.roles import ModelRoles
from musc_ecd.models.scripted import ScriptedGenerator

REASONABLE = ("Rivers shape the land over thousands of years by carrying sediment downstream. They provide water for "
              "farms, cities and wildlife along their banks. Protecting them from pollution keeps these ecosystems "
              "healthy for future generations.")
LAUGH = " ".join(["haha"] * 31)
LOOPING_TAIL = f"{REASONABLE} {LAUGH}"
"""A reasonable three-sentence answer that runs on into "haha haha …" for about 40% of its length."""
PACKING_LIST = ("Here is a packing list for a weekend hike:\n- water bottle\n- trail mix\n- rain jacket\n"
                "- first-aid kit\n- map and compass\n- headlamp\n- sunscreen\n- extra socks\n"
                "- extra socks for the second day\nEnjoy the hike, and check the weather before you leave.")
RECIPE_STEPS = ("1. Add the flour to the bowl.\n2. Add the sugar to the bowl.\n3. Add the eggs to the bowl.\n"
                "4. Add the milk to the bowl.\n5. Add the butter to the bowl.\n"
                "6. Stir until smooth, then bake for 25 minutes.")
FOUR = ("Write in English.", "Use at most 100 words.", "Include the keyword 'river'.", "End with a question.")
NINE_TIMES = "\n".join(f"{number}. {constraint}" for number, constraint in enumerate(FOUR * 9, start=1))
"""A decomposition listing the same four constraints nine times, numbered 1..36."""


def _items(tmp_path, prompts):
    path = write_jsonl(tmp_path / "seeds.jsonl", [{"id": f"s{i}", "instruction": p} for i, p in enumerate(prompts)])
    return load_items(path, prompt_field="instruction", id_field="id")


# -- the check ----------------------------------------------------------------------------------------------


def test_a_looping_tail_is_degenerate_although_the_whole_answer_compresses_like_prose():
    assert 0.35 < len(LAUGH) / len(LOOPING_TAIL) < 0.45
    assert is_degenerate(LOOPING_TAIL)
    assert is_degenerate(REASONABLE + " " + "I hope this helps you. " * 12)  # a sentence looping at the end


@pytest.mark.parametrize("answer", [REASONABLE, PACKING_LIST, RECIPE_STEPS])
def test_answers_with_ordinary_repetition_are_not_degenerate(answer):
    assert not is_degenerate(answer)


def test_no_ifeval_reference_answer_is_degenerate_in_any_script():
    """GPT-4's answers to IFEval, four of them in Punjabi, Marathi, Telugu or Nepali (three UTF-8 bytes a
    character): sound answers, long and short, repetitive (a JSON rubric, a song's chorus) and not."""
    path = SHARED / "data" / "ifeval" / "input_response_data_gpt4_20231107.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    answers = [json.loads(line)["response"] for line in path.read_text().splitlines()]
    assert len(answers) == 541 and [a[:60] for a in answers if is_degenerate(a)] == []
    assert [a[:60] for a in answers if pair_problem(a, "a worse answer") is not None] == []  # what builders ask


# -- in every method: a looping chosen is rejected, a looping rejected kept -------------------------------------


def _coarse_answering(chosen: str, rejected: str):
    """MuSC coarse's policy, answering the intact recombination with ``chosen`` and the corrupted one with
    ``rejected``."""
    policy = scripted_policy()
    follow_templates = policy.respond

    def respond(request, index, params):
        if _task(request):
            return follow_templates(request, index, params)
        content = request[-1]["content"]
        intact = all(c in content for c in ("Use three lines", "Be formal", "Avoid commas"))
        return chosen if intact else rejected
    policy.respond = respond
    return policy


def test_musc_coarse_rejects_a_chosen_answer_with_a_looping_tail_and_keeps_such_a_rejected_one(tmp_path):
    cfg = load_config(None, ["method=musc_coarse", "seed=3"])
    looping_chosen = musc_coarse.build(ModelRoles.of(_coarse_answering(LOOPING_TAIL, REASONABLE)), cfg)
    pairs, rejects = looping_chosen(_items(tmp_path, ["Write about rain."]))
    assert pairs == [] and [(r["stage"], r["reason"], r["detail"]) for r in rejects] == [
        ("filter", "degenerate_response", "chosen")]
    looping_rejected = musc_coarse.build(ModelRoles.of(_coarse_answering(REASONABLE, LOOPING_TAIL)), cfg)
    (pair,), rejects = looping_rejected(_items(tmp_path, ["Write about rain."]))
    assert rejects == [] and pair["rejected"][0]["content"] == LOOPING_TAIL


def test_musc_fine_rejects_a_revision_with_a_looping_tail(tmp_path):
    seeds = _items(tmp_path, ["Write about rain in three lines."])
    revision = f"answer 2 without commas. {LOOPING_TAIL}"
    builder = musc_fine.build(ModelRoles.of(fine_policy(correction=revision)), load_config(None, ["method=musc_fine"]))
    pairs, rejects = builder(seeds)
    assert pairs == [] and [(r["stage"], r["reason"]) for r in rejects] == [("correct", "degenerate_response")]


def test_ecd_ends_a_chain_at_an_answer_with_a_looping_tail(tmp_path):
    def loops_in_round_2(request, index, params):
        content = request[0]["content"]
        return LOOPING_TAIL if "w2" in content and "w3" not in content else f"answer to [{content}]"

    generator = _self_based(answer=ScriptedGenerator(loops_in_round_2))
    pairs, rejects = ecd.build(ModelRoles.of(generator), load_config(None, ["method=ecd"]))(
        _items(tmp_path, ["Write a note about rivers."]))
    assert [p["meta"]["round"] for p in pairs] == [1]
    assert [(r["id"], r["stage"], r["reason"]) for r in rejects] == [("s0#r2", "respond", "degenerate_response")]


def test_apc_rejects_pairs_whose_stronger_answer_loops_and_keeps_those_whose_weaker_one_does(tmp_path):
    def answer(rank, prompt):
        return LOOPING_TAIL if rank == 0 else f"{REASONABLE} (m{rank})"
    generators = responders(3, answer)
    cfg = load_config(None, ["method=apc", "model.responders=[m0,m1,m2]"])
    pairs, rejects = apc.build(ModelRoles.of(generators[0], responders=generators), cfg)(_items(tmp_path, ["p0"]))
    assert [p["id"] for p in pairs] == ["s0#1>2"]
    assert sorted((r["id"], r["reason"]) for r in rejects) == [("s0#0>1", "degenerate_chosen"),
                                                               ("s0#0>2", "degenerate_chosen")]
    weakest_loops = responders(3, lambda rank, prompt: LOOPING_TAIL if rank == 2 else f"{REASONABLE} (m{rank})")
    pairs, rejects = apc.build(ModelRoles.of(weakest_loops[0], responders=weakest_loops), cfg)(_items(tmp_path,
                                                                                                      ["p0"]))
    assert len(pairs) == 3 and rejects == []


# -- a decomposition that repeats its constraints -------------------------------------------------------------


def test_a_decomposition_listing_its_constraints_nine_times_keeps_each_once():
    decomposition = parse_decomposition(NINE_TIMES)
    assert decomposition.constraints == tuple(c.rstrip(".") for c in FOUR)
    assert decomposition.repeats_removed == 32 and decomposition.source == "parsed"
    spelled_differently = parse_decomposition("1. Use at most 100 words\n2) use AT MOST 100 words!\n"
                                              "3. Constraint 4: Use at most 100 words.\n4. Use at most 200 words")
    assert spelled_differently.constraints == ("Use at most 100 words", "Use at most 200 words")


def _decomposing_nine_times():
    policy = scripted_policy({("decompose", ""): NINE_TIMES})
    follow_templates = policy.respond
    policy.respond = lambda r, i, p: follow_templates(r, i, p) if _task(r) else f"answer to {r[-1]['content']}"
    return policy


def test_musc_keeps_the_distinct_constraints_and_counts_the_decomposition(tmp_path):
    cfg = load_config(None, ["method=musc_coarse", "seed=3"])
    (pair,), rejects = musc_coarse.build(ModelRoles.of(_decomposing_nine_times()), cfg)(
        _items(tmp_path, ["Write about a river in English."]))
    assert rejects == [] and len(pair["meta"]["decomposition"]["constraints"]) == 4
    assert pair["meta"]["decomposition"]["repeats_removed"] == 32
    assert musc_coarse.summarize([pair], [], cfg)["decompositions_with_repeats"] == 1


@pytest.mark.parametrize("method", ["musc_coarse", "musc_fine"])
def test_too_few_distinct_constraints_is_a_counted_reject(method, tmp_path):
    cfg = load_config(None, [f"method={method}", "musc.min_constraints=5"])
    module = {"musc_coarse": musc_coarse, "musc_fine": musc_fine}[method]
    pairs, rejects = module.build(ModelRoles.of(_decomposing_nine_times()), cfg)(
        _items(tmp_path, ["Write about a river in English.", "FEW"]))
    assert pairs == []
    assert Counter((r["stage"], r["reason"]) for r in rejects) == {("decompose", "repeated_constraints"): 2}
    assert rejects[0]["detail"] == "4 distinct constraint(s) of 36 listed via parsed"
