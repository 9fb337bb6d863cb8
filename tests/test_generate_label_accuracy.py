"""Pairs built from seeds with typed constraints carry them, and the generate summary measures the labels."""

from __future__ import annotations

from helpers import write_jsonl

from musc_ecd.config import load_config
from musc_ecd.items import load_items
from musc_ecd.label_audit import label_accuracy
from musc_ecd.methods import musc_fine
from musc_ecd.models.roles import ModelRoles
from musc_ecd.models.scripted import ScriptedGenerator

SEED = {"id": "v1", "instruction": "Describe a lighthouse. Write everything in lowercase letters.",
        "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]}


def _task(request) -> str:
    return request[0]["content"].splitlines()[0] if request[0]["role"] == "system" else ""


def test_fine_pairs_carry_the_seed_constraints_and_the_summary_scores_them(tmp_path):
    def respond(request, index, params):
        task = _task(request)
        if "decompose" in task:
            return "1. Describe a lighthouse\n2. Write everything in lowercase letters\nInput: none"
        if "check one constraint" in task:
            return "Analysis: x.\nAnswer: " + ("No" if "lowercase" in request[-1]["content"].split("Constraint:")[-1]
                                                else "Yes")
        if "correct a response" in task:
            return "a tall lighthouse stands on the rock and its light turns all night long"
        return "A TALL LIGHTHOUSE STANDS ON THE ROCK AND ITS LIGHT TURNS ALL NIGHT LONG" + " ." * index
    path = write_jsonl(tmp_path / "seeds.jsonl", [SEED])
    builder = musc_fine.build(ModelRoles.of(ScriptedGenerator(respond)), load_config(None, ["method=musc_fine"]))
    (pair,), rejects = builder(load_items(path, prompt_field="instruction", id_field="id"))
    assert pair["meta"]["typed_constraints"] == [{"id": "change_case:english_lowercase", "kwargs": {}}]
    accuracy = label_accuracy([pair])
    assert (accuracy["with_constraints"], accuracy["chosen_better"], accuracy["reversed"]) == (1, 1.0, 0.0)


def test_untyped_seeds_give_no_typed_constraints(tmp_path):
    from musc_ecd.methods.base import seed_typed_constraints

    (item,) = load_items(write_jsonl(tmp_path / "s.jsonl", [{"prompt": "x"}]))
    assert seed_typed_constraints(item) is None
