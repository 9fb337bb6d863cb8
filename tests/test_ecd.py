"""ECD: the evolution taxonomy, parsing and filters, chain bookkeeping, roles, batching, resume."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from helpers import interrupt_on_chunk, write_jsonl

from musc_ecd.config import load_config
from musc_ecd.constraints.evolve import (
    TAXONOMY,
    Evolution,
    Operation,
    all_operations,
    append_requirements,
    check_evolution,
    evolve_request,
    parse_evolution,
    sample_operation,
)
from musc_ecd.errors import ConfigError
from musc_ecd.generate import generate_into as generate  # into a stage directory: X/pairs.jsonl
from musc_ecd.items import load_items
from musc_ecd.methods import ecd
from musc_ecd.models.roles import ModelRoles
from musc_ecd.models.scripted import ScriptedGenerator
from musc_ecd.store import read_jsonl

REPO = Path(__file__).resolve().parents[1]
SEEDS = [{"id": f"s{i}", "instruction": f"Write a note about topic {i}."} for i in range(3)]


def _task(request) -> str:
    return request[0]["content"].splitlines()[0] if request[0]["role"] == "system" else ""


def evolver(fail=lambda instruction: None, name="scripted-evolver"):
    """Adds 'Mention the word wN.' (N = round) to the instruction; ``fail(instruction)`` may return a bad reply."""
    def respond(request, index, params):
        assert "evolve an instruction" in _task(request)
        instruction = request[-1]["content"].removeprefix("Instruction: ")
        bad = fail(instruction)
        if bad is not None:
            return bad
        number = instruction.count("Mention the word") + 1
        requirement = f"Mention the word w{number}."
        return f"New requirement: {requirement}\nEvolved instruction: {instruction} {requirement}"
    return ScriptedGenerator(respond, name=name)


def responder(name="scripted-responder"):
    def respond(request, index, params):
        assert request[0]["role"] == "user" and len(request) == 1
        return f"answer to [{request[0]['content']}]"
    return ScriptedGenerator(respond, name=name)


def judge(says_yes=lambda content: False, name="scripted-judge"):
    def respond(request, index, params):
        assert "check one constraint" in _task(request)
        return "Analysis: looked.\nAnswer: " + ("Yes" if says_yes(request[-1]["content"]) else "No")
    return ScriptedGenerator(respond, name=name)


def _run(tmp_path, models, *overrides, seeds=SEEDS):
    path = write_jsonl(tmp_path / "seeds.jsonl", seeds)
    cfg = load_config(None, ["method=ecd", *overrides])
    return ecd.build(models, cfg)(load_items(path, prompt_field="instruction", id_field="id"))


def _self_based(evolve=None, answer=None, check=None):
    """One generator playing every role, dispatching on the template: what a self-based run looks like."""
    parts = {"evolve": evolve or evolver(), "judge": check or judge(), "respond": answer or responder()}

    def respond(request, index, params):
        task = _task(request)
        part = "evolve" if "evolve" in task else "judge" if "check one constraint" in task else "respond"
        return parts[part].respond(request, index, params)
    return ScriptedGenerator(respond, name="scripted-policy")


# -- taxonomy -----------------------------------------------------------------------------------------


def test_every_operation_has_a_template_that_fills_in():
    assert set(TAXONOMY) == {"content", "style", "format", "reasoning", "breadth"}
    assert all(len(ops) >= 2 for ops in TAXONOMY.values())
    for operation in all_operations():
        messages = evolve_request(operation, "Write a haiku about rain.")
        assert messages[0]["role"] == "system" and operation.category in messages[0]["content"]
        assert messages[-1] == {"role": "user", "content": "Instruction: Write a haiku about rain."}
        demos = [m["content"] for m in messages if m["role"] == "assistant"]
        assert demos and all(parse_evolution(d)[0] is not None for d in demos)  # demos follow our own format


def test_operation_sampling_is_seeded_covers_the_taxonomy_and_respects_categories():
    draws = [sample_operation(random.Random(seed), list(TAXONOMY)) for seed in range(400)]
    assert draws == [sample_operation(random.Random(seed), list(TAXONOMY)) for seed in range(400)]
    categories = Counter(op.category for op in draws)
    assert set(categories) == set(TAXONOMY) and min(categories.values()) > 50  # uniform over categories
    assert {str(op) for op in draws} == {str(op) for op in all_operations()}
    only_format = {sample_operation(random.Random(s), ["format"]).category for s in range(50)}
    assert only_format == {"format"}


def test_sampling_avoids_operations_already_used_in_the_chain():
    used = [Operation("style", "tone")]
    assert all(sample_operation(random.Random(s), ["style"], avoid=used) == Operation("style", "audience")
               for s in range(30))
    everything = [Operation("style", n) for n in TAXONOMY["style"]]
    assert sample_operation(random.Random(0), ["style"], avoid=everything).category == "style"  # falls back


def test_chain_operations_are_reproducible_per_item_and_round(tmp_path):
    pairs_a, _ = _run(tmp_path, ModelRoles.of(_self_based()), "seed=7")
    pairs_b, _ = _run(tmp_path, ModelRoles.of(_self_based()), "seed=7")
    pairs_c, _ = _run(tmp_path, ModelRoles.of(_self_based()), "seed=8")
    ops = [p["meta"]["operation"] for p in pairs_a]
    assert ops == [p["meta"]["operation"] for p in pairs_b]
    assert ops != [p["meta"]["operation"] for p in pairs_c]


# -- parsing and filters ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, instruction, requirements", [
    ("New requirement: Use four lines.\nEvolved instruction: Write a poem in four lines.",
     "Write a poem in four lines.", ("Use four lines.",)),
    ("**New requirement:** Use four lines.\n**Evolved instruction:** Write a poem\nin four lines.\n\nThanks!",
     "Write a poem\nin four lines.", ("Use four lines.",)),
    ("New requirement: A.\nNew requirement: B.\nEvolved instruction: \"Do it with A and B.\"",
     "Do it with A and B.", ("A.", "B.")),
])
def test_parse_evolution_reads_requirements_and_the_rewrite(text, instruction, requirements):
    evolution, reason = parse_evolution(text)
    assert reason == "" and evolution == Evolution(instruction, requirements)


@pytest.mark.parametrize("text, reason", [
    ("Evolved instruction: Write a poem.", "evolve_no_requirement"),
    ("New requirement: Use four lines.", "evolve_unparsable"),
    ("New requirement: Use four lines.\nEvolved instruction:   ", "evolve_empty"),
    ("New requirement: a\nNew requirement: b\nNew requirement: c\nEvolved instruction: x",
     "evolve_too_many_requirements"),
    ("Sure! Here is a poem about the sea.", "evolve_no_requirement"),
])
def test_parse_evolution_rejects_with_a_reason(text, reason):
    assert parse_evolution(text) == (None, reason)


def test_append_mode_keeps_the_previous_instruction_and_adds_the_requirement():
    evolution, _ = parse_evolution("New requirement: use no commas\nEvolved instruction: Write.", "Write a poem")
    assert evolution.instruction == "Write a poem. use no commas."
    assert append_requirements("Say hi!", ["Be brief.", "Sign it"]) == "Say hi! Be brief. Sign it."


PREVIOUS = "Write a short story about a lighthouse keeper and his cat."


@pytest.mark.parametrize("instruction, requirements, reason", [
    (PREVIOUS + " Use at most 100 words.", ("Use at most 100 words.",), ""),
    ("write a short story about a lighthouse keeper and his cat", ("Use at most 100 words.",), "evolve_unchanged"),
    (PREVIOUS + " ### Task: evolve", ("Use at most 100 words.",), "evolve_leak"),
    ("Instruction: " + PREVIOUS + " Be brief.", ("Be brief.",), "evolve_leak"),
    (PREVIOUS + " Use" + " very" * 70 + " few words.", ("Use few words.",), "evolve_runaway"),
    ("Write a recipe for pancakes in four steps.", ("Use four steps.",), "evolve_drift"),
    (PREVIOUS + " Make it sad.", ("Use at most 100 words.",), "evolve_requirement_missing"),
    (PREVIOUS + " About a lighthouse keeper.", ("About a lighthouse keeper.",), "evolve_nothing_new"),
])
def test_check_evolution_names_each_failure(instruction, requirements, reason):
    assert check_evolution(PREVIOUS, Evolution(instruction, requirements), max_growth_words=60,
                           min_overlap=0.5) == reason


# -- chains ----------------------------------------------------------------------------------------------


def test_every_pair_rejects_the_previous_rounds_answer(tmp_path):
    pairs, rejects = _run(tmp_path, ModelRoles.of(_self_based()))
    assert not rejects and len(pairs) == 3 * 3
    for pair in pairs:
        meta, k = pair["meta"], pair["meta"]["round"]
        chain = meta["chain"]
        assert [r["round"] for r in chain] == list(range(k + 1))
        assert pair["prompt"][0]["content"] == chain[k]["instruction"]
        assert pair["chosen"][0]["content"] == chain[k]["response"] == f"answer to [{chain[k]['instruction']}]"
        assert pair["rejected"][0]["content"] == chain[k - 1]["response"]
        assert meta["negative_instruction"] == chain[k - 1]["instruction"]
        assert meta["new_requirements"] == [f"Mention the word w{k}."]
        assert chain[k]["instruction"].endswith(f"Mention the word w{k}.")  # one requirement added per round
        assert pair["difficulty"] == 1.0 and pair["item_id"] == meta["seed_id"] == pair["id"].split("#")[0]
        assert chain[0]["operation"] == "seed" and all("/" in r["operation"] for r in chain[1:])
    assert len({p["id"] for p in pairs}) == len(pairs)


def test_older_answers_are_easier_negatives(tmp_path):
    pairs, _ = _run(tmp_path, ModelRoles.of(_self_based()), "ecd.older_negatives=true", seeds=SEEDS[:1])
    by_round = {(p["meta"]["round"], p["meta"]["negative_round"]): p for p in pairs}
    assert set(by_round) == {(1, 0), (2, 1), (2, 0), (3, 2), (3, 1), (3, 0)}
    assert [by_round[(3, j)]["difficulty"] for j in (2, 1, 0)] == [1.0, 0.5, 0.3333]
    for (k, j), pair in by_round.items():
        assert pair["rejected"][0]["content"] == pair["meta"]["chain"][j]["response"]
        assert pair["meta"]["judge"] is None if j < k - 1 else pair["meta"]["judge"]["verdicts"] == [False]


def test_a_failed_evolution_ends_the_chain_and_keeps_earlier_rounds(tmp_path):
    def second_round_of_s1_fails(instruction):
        return "Sure, here is a note." if "topic 1" in instruction and "w1" in instruction else None

    pairs, rejects = _run(tmp_path, ModelRoles.of(_self_based(evolve=evolver(second_round_of_s1_fails))))
    rounds = Counter(p["item_id"] for p in pairs)
    assert rounds == {"s0": 3, "s1": 1, "s2": 3}
    assert [(r["id"], r["stage"], r["reason"], r["line"], r["item_id"]) for r in rejects] == [
        ("s1#r2", "evolve", "evolve_no_requirement", 2, "s1")]
    summary = ecd.summarize(pairs, rejects, load_config(None, ["method=ecd"]))
    assert summary["yield_per_stage"] == {"seeds": 3, "round_1": 3, "round_2": 2, "round_3": 2, "pairs": 7}


def test_a_negative_the_judge_finds_already_satisfying_is_dropped_but_the_chain_goes_on(tmp_path):
    def yes_for_round_2(content):  # the judge sees I^k and R^{k-1}; say "already met" in round 2 only
        return "Constraint: Mention the word w2." in content

    models = ModelRoles.of(_self_based(check=judge(yes_for_round_2)))
    pairs, rejects = _run(tmp_path, models, seeds=SEEDS[:1])
    assert [p["meta"]["round"] for p in pairs] == [1, 3]
    assert pairs[1]["rejected"][0]["content"] == pairs[1]["meta"]["chain"][2]["response"]  # R^2 still the negative
    assert [(r["id"], r["reason"]) for r in rejects] == [("s0#r2", "previous_answer_satisfies")]
    assert ecd.summarize(pairs, rejects, load_config(None, ["method=ecd"]))["yield_per_stage"]["round_3"] == 1
    unfiltered, _ = _run(tmp_path, models, "ecd.judge_filter=false", seeds=SEEDS[:1])
    assert len(unfiltered) == 3


def test_an_empty_answer_ends_the_chain(tmp_path):
    def silent_on_round_1(request, index, params):
        content = request[0]["content"]
        return "" if "w1" in content and "w2" not in content else f"answer to [{content}]"

    pairs, rejects = _run(tmp_path, ModelRoles.of(_self_based(answer=ScriptedGenerator(silent_on_round_1))),
                          seeds=SEEDS[:1])
    assert pairs == [] and [(r["id"], r["stage"], r["reason"]) for r in rejects] == [
        ("s0#r1", "respond", "empty_response")]


def test_a_seed_answer_is_used_as_r0(tmp_path):
    seeds = [{**SEEDS[0], "response": "a known good answer"}]
    generator = _self_based()
    pairs, _ = _run(tmp_path, ModelRoles.of(generator), seeds=seeds)
    assert pairs[0]["rejected"][0]["content"] == "a known good answer"
    responded = [r[0]["content"] for requests, _ in generator.calls for r in requests if len(r) == 1]
    assert SEEDS[0]["instruction"] not in responded


def test_each_step_is_one_batched_call_per_round(tmp_path):
    generator = _self_based()
    _run(tmp_path, ModelRoles.of(generator), seeds=SEEDS)
    # respond R^0, then per round: evolve, respond, judge: every call covers all three seeds at once
    assert len(generator.calls) == 1 + 3 * 3
    assert all(len(requests) == 3 for requests, _ in generator.calls)


# -- roles -----------------------------------------------------------------------------------------------


def test_teacher_based_uses_the_teacher_for_evolving_and_answering(tmp_path):
    policy, teacher, check = responder("policy"), _self_based(), judge(name="judge")
    teacher.name = "teacher"
    pairs, _ = _run(tmp_path, ModelRoles.of(policy, teacher=teacher, judge=check), seeds=SEEDS[:1])
    assert policy.calls == [] and teacher.calls and check.calls
    assert pairs[0]["meta"]["models"] == {"policy": "policy", "evolver": "teacher", "responder": "teacher",
                                          "judge": "judge"}
    assert pairs[0]["meta"]["roles"] == {"evolver": "teacher", "responder": "teacher", "self_based": False}


def test_roles_can_be_mixed_teacher_evolves_policy_answers(tmp_path):
    policy, teacher = responder("policy"), evolver(name="teacher")
    pairs, _ = _run(tmp_path, ModelRoles.of(policy, teacher=teacher, judge=judge()), "ecd.responder=policy",
                    seeds=SEEDS[:1])
    assert len(pairs) == 3 and pairs[0]["meta"]["models"]["responder"] == "policy"
    assert all("evolve" in _task(r) for requests, _ in teacher.calls for r in requests)


def test_self_based_is_one_override_away():
    teacher = load_config(REPO / "configs" / "ecd_teacher.yaml")
    selfish = load_config(REPO / "configs" / "ecd_teacher.yaml", ["model.teacher=null"])
    specs = {role: selfish.model.role(role) for role in ("policy", "teacher", "judge")}
    roles = ModelRoles(specs, [], lambda spec: responder(spec))
    assert teacher.model.teacher == teacher.model.policy == "smollm2-135m-instruct"
    assert roles.is_self("teacher") and roles["teacher"] is roles["policy"]  # one model, loaded once


def test_bad_ecd_settings_fail_before_any_model_loads():
    with pytest.raises(ConfigError, match=re.escape("ecd.categories")):
        load_config(None, ["method=ecd", "ecd.categories=[format,poetry]"])
    with pytest.raises(ConfigError, match="ecd.evolver"):
        load_config(None, ["method=ecd", "ecd.evolver=oracle"])


# -- the generate stage: store, resume, tiny model --------------------------------------------------------


def _mixed_roles(tiny_hf):
    """A scripted teacher evolves, the real tiny model answers: real generation inside the method."""
    return ModelRoles.of(tiny_hf, teacher=evolver(name="teacher"), judge=judge(name="judge"))


def _stage_overrides(tmp_path, run: str):
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"id": f"s{i}", "instruction": f"Write about item {i}."}
                                                    for i in range(6)])
    return ["method=ecd", f"data.seeds={seeds}", "data.prompt_field=instruction", "data.id_field=id",
            "model.policy=tiny", "ecd.responder=policy", "ecd.respond_max_tokens=8", "ecd.respond_temperature=0.9",
            "store.commit_every=2", f"run_dir={tmp_path / run}"]


def test_generate_writes_ecd_pairs_with_the_tiny_model_answering(tmp_path, tiny_hf, monkeypatch):
    monkeypatch.setattr(ModelRoles, "from_config", classmethod(lambda cls, cfg: _mixed_roles(tiny_hf)))
    summary = generate(load_config(None, _stage_overrides(tmp_path, "run")), tmp_path / "run")
    pairs = list(read_jsonl(tmp_path / "run" / "pairs.jsonl"))
    assert summary["items"] == 6 and len(pairs) + summary["rejected"] >= 6 and pairs
    assert summary["yield_per_stage"]["seeds"] == 6
    assert all(p["meta"]["models"]["responder"] == "tiny" for p in pairs)


def test_interrupted_ecd_generate_resumes_to_the_same_pairs(tmp_path, tiny_hf, monkeypatch):
    monkeypatch.setattr(ModelRoles, "from_config", classmethod(lambda cls, cfg: _mixed_roles(tiny_hf)))
    generate(load_config(None, _stage_overrides(tmp_path, "clean")), tmp_path / "clean")
    original = interrupt_on_chunk(monkeypatch, ecd.Ecd, 2)
    cfg = load_config(None, _stage_overrides(tmp_path, "resumed"))
    with pytest.raises(KeyboardInterrupt):
        generate(cfg, tmp_path / "resumed")
    monkeypatch.setattr(ecd.Ecd, "__call__", original)
    generate(cfg, tmp_path / "resumed")
    for name in ("pairs.jsonl", "rejects.jsonl"):
        assert (tmp_path / "resumed" / name).read_text() == (tmp_path / "clean" / name).read_text()


def test_ecd_on_the_tiny_model_alone_rejects_every_seed_with_a_reason(tmp_path):
    """A random model cannot evolve: every seed ends as a counted evolve reject, nothing is lost."""
    overrides = _stage_overrides(tmp_path, "tiny")
    overrides = [o for o in overrides if not o.startswith("ecd.responder")] + ["ecd.evolve_max_tokens=12"]
    summary = generate(load_config(None, overrides), tmp_path / "tiny")
    rejects = [json.loads(line) for line in (tmp_path / "tiny" / "rejects.jsonl").read_text().splitlines()]
    assert summary["accepted"] == 0 and len(rejects) == 6
    assert {r["stage"] for r in rejects} == {"evolve"} and all(r["reason"].startswith("evolve_") for r in rejects)


def test_kl_weights_apply_to_ecd_pairs_through_the_previous_instruction(tmp_path):
    """ECD pairs carry I^{k-1} as ``negative_instruction``: kl weights them, one weighted record per pair."""
    from musc_ecd.weighting import weights_stage

    pairs, _ = _run(tmp_path, ModelRoles.of(_self_based()), seeds=SEEDS[:2])
    path = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    cfg = load_config(REPO / "configs" / "train_tiny.yaml", [f"run_dir={tmp_path}", f"train.pairs={path}",
                                                             "train.weights=kl"])
    summary = weights_stage(cfg, tmp_path)
    weighted = read_jsonl(tmp_path / "weights" / "pairs.jsonl")
    assert summary["accepted"] == len(weighted) == len(pairs) == 6
    assert all(p["meta"]["weights"]["scheme"] == "kl" and p["chosen_weights"] for p in weighted)
