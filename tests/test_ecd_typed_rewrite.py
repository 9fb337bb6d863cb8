"""ECD's rewrite keeps what its pairs claim (issue #20, item 8): with ``ecd.compose=rewrite`` an evolved
instruction that no longer states a typed constraint the previous one stated ends the chain
(``typed_constraint_dropped``), instead of making a pair whose typed list (audit, checker verification) names a
constraint its prompt does not ask for."""

from __future__ import annotations

import random

import pytest
from helpers import write_jsonl

from musc_ecd.config import load_config
from musc_ecd.constraints.evolve import sample_operation
from musc_ecd.constraints.typed import TypedConstraint
from musc_ecd.constraints.typed.statement import states
from musc_ecd.items import load_items
from musc_ecd.methods import ecd
from musc_ecd.methods.base import item_seed
from musc_ecd.models.roles import ModelRoles
from musc_ecd.models.scripted import ScriptedGenerator

BASE = ("Write a detailed guide about lighthouses on rocky coasts, their keepers, their lamps, the winter storms "
        "they face and the fishing ships they save.")
END = 'Finish with the exact phrase "Hope this helps you get started." and write nothing after it.'
PARAGRAPHS = ("Give exactly 4 paragraphs and put the markdown divider *** on its own line between consecutive "
              "paragraphs (nowhere else).")
SEED = {"id": "v1", "instruction": f"{BASE} {END} {PARAGRAPHS}", "base_instruction": BASE,
        "instruction_id_list": ["startend:end_checker", "length_constraints:number_paragraphs"],
        "kwargs": [{"end_phrase": "Hope this helps you get started."}, {"num_paragraphs": 4}],
        "typed_texts": [END, PARAGRAPHS]}
NEW = "Mention the lighthouse at Alexandria."


def _task(request) -> str:
    return request[0]["content"].splitlines()[0] if request[0]["role"] == "system" else ""


def policy(rewrite):
    """Evolves with ``rewrite(instruction) -> evolved instruction`` (adding NEW), answers, judges "No"."""
    def respond(request, index, params):
        task, content = _task(request), request[-1]["content"]
        if "evolve an instruction" in task:
            return f"New requirement: {NEW}\nEvolved instruction: {rewrite(content.removeprefix('Instruction: '))}"
        if "check one constraint" in task:
            return "Analysis: looked.\nAnswer: No"
        return f"answer {index} to [{content}]"
    return ScriptedGenerator(respond, name="scripted-policy")


def _run(tmp_path, generator, *overrides, seeds=(SEED,)):
    path = write_jsonl(tmp_path / "seeds.jsonl", list(seeds))
    cfg = load_config(None, ["method=ecd", "ecd.compose=rewrite", *overrides])
    return ecd.build(ModelRoles.of(generator), cfg)(load_items(path, prompt_field="instruction", id_field="id"))


def test_a_rewrite_that_drops_a_seeds_typed_sentence_ends_the_chain(tmp_path):
    pairs, rejects = _run(tmp_path, policy(lambda i: f"{i.replace(END, '').strip()} {NEW}"), "ecd.rounds=1",
                          "ecd.categories=[content]")
    assert pairs == []
    assert [(r["id"], r["stage"], r["reason"]) for r in rejects] == [("v1#r1", "evolve", "typed_constraint_dropped")]
    assert "startend:end_checker" in rejects[0]["detail"] and "number_paragraphs" not in rejects[0]["detail"]


def test_a_rewrite_that_keeps_or_rephrases_the_typed_sentences_makes_pairs(tmp_path):
    kept, rejects = _run(tmp_path, policy(lambda i: f"{i} {NEW}"), "ecd.rounds=1", "ecd.categories=[content]")
    assert rejects == [] and len(kept) == 1
    rephrased = 'End your answer with "Hope this helps you get started."'
    pairs, rejects = _run(tmp_path, policy(lambda i: f"{i.replace(END, rephrased)} {NEW}"), "ecd.rounds=1",
                          "ecd.categories=[content]")
    assert rejects == [] and len(pairs) == 1 and rephrased in pairs[0]["prompt"][0]["content"]
    assert [c["id"] for c in pairs[0]["meta"]["typed_constraints"]] == SEED["instruction_id_list"]


def _format_then_content(seed_id: str) -> int:
    """A run seed whose round 1 draws a format operation (typed) and round 2 a content one (the evolver)."""
    categories = ["format", "content"]
    for seed in range(200):
        first = sample_operation(random.Random(item_seed(seed, seed_id, "evolve-1")), categories)
        second = sample_operation(random.Random(item_seed(seed, seed_id, "evolve-2")), categories, avoid=[first])
        if first.category == "format" and second.category == "content":
            return seed
    raise AssertionError("no such run seed")


def test_a_rewrite_that_drops_an_earlier_rounds_typed_requirement_ends_the_chain(tmp_path):
    seed = _format_then_content("s0")
    plain = {"id": "s0", "instruction": BASE}
    # the evolver keeps the task and drops whatever round 1 appended to it
    pairs, rejects = _run(tmp_path, policy(lambda i: f"{BASE} {NEW}"), f"seed={seed}", "ecd.rounds=2",
                          "ecd.categories=[format,content]", "ecd.typed_format=true", seeds=(plain,))
    assert [p["meta"]["round"] for p in pairs] == [1] and pairs[0]["meta"]["typed_constraints"]
    assert [(r["id"], r["reason"]) for r in rejects] == [("s0#r2", "typed_constraint_dropped")]
    assert pairs[0]["meta"]["chain"][1]["typed"][0]["id"] in rejects[0]["detail"]
    assert ecd.summarize(pairs, rejects, load_config(None, ["method=ecd"]))["rejects_by_step"] == {
        "evolve:typed_constraint_dropped": 1}


@pytest.mark.parametrize(("instruction", "stated"), [
    (f"Write about rain. {END}", True),
    ("Write about rain. finish with the exact phrase “Hope this helps you get started.”  and write nothing after it",
     True),  # case, spacing, quote style, final punctuation
    ('Write about rain and close with "Hope this helps you get started."', True),  # rephrased, phrase kept
    ("Write about rain and close with a friendly sentence.", False),
])
def test_a_typed_constraint_is_stated_by_its_sentence_or_by_every_value_it_checks(instruction, stated):
    constraint = TypedConstraint("startend:end_checker", {"end_phrase": "Hope this helps you get started."})
    assert states(instruction, constraint, END) is stated


def test_numbers_may_be_words_and_a_kind_without_values_needs_its_sentence():
    words = TypedConstraint("length_constraints:number_words", {"num_words": 12, "relation": "less than"})
    assert states("Tell a story in fewer than twelve words.", words, "Keep your answer under 12 words.")
    assert not states("Tell a story in fewer than 120 words.", words, "Keep your answer under 12 words.")
    no_comma = TypedConstraint("punctuation:no_comma", {})
    assert states("Tell a story. Avoid commas entirely.", no_comma, "Avoid commas entirely.")
    assert not states("Tell a story without any commas.", no_comma, "Avoid commas entirely.")
