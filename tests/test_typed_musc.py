"""MuSC on verifiable seeds: typed constraints join the policy's decomposition, are corrupted exactly on
their kwargs, and with ``model.judge=checkers`` are judged by code (the filter and the fine scores)."""

from __future__ import annotations

import pytest
from helpers import write_jsonl

from musc_ecd.config import load_config
from musc_ecd.errors import ConfigError
from musc_ecd.evaluation.report import roles
from musc_ecd.items import load_items
from musc_ecd.label_audit import label_accuracy
from musc_ecd.methods import check_roles, ecd, musc_coarse, musc_fine
from musc_ecd.models.roles import ModelRoles
from musc_ecd.models.scripted import ScriptedGenerator

BASE = "Describe a lighthouse. Mention the keeper."
TYPED_TEXT = "Write everything in lowercase letters."
SEED = {"id": "v1", "instruction": f"{BASE} {TYPED_TEXT}", "base_instruction": BASE,
        "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}], "typed_texts": [TYPED_TEXT]}
LOWER = "a tall white lighthouse stands on the rock and the keeper lights the lamp every night"


def _task(request) -> str:
    return request[0]["content"].splitlines()[0] if request[0]["role"] == "system" else ""


def policy(answer=None, judge_log=None, decomposed=None, correction=LOWER):
    """Decomposes, rewrites, recombines by joining the list; answers in lowercase only when asked to."""
    def respond(request, index, params):
        task, content = _task(request), request[-1]["content"]
        if "decompose" in task:
            decomposed.append(content) if decomposed is not None else None
            return "1. Describe a lighthouse\n2. Mention the keeper\nInput: none"
        if "negate a constraint" in task or "replace a constraint" in task:
            return "Do not mention the keeper"
        if "write one instruction" in task:
            return " ".join(line.split(". ", 1)[1] for line in content.splitlines() if line[:1].isdigit())
        if "check one constraint" in task:
            judge_log.append(content) if judge_log is not None else None
            return "Analysis: x.\nAnswer: Yes"
        if "correct a response" in task:
            return correction
        if answer is not None:
            return answer(content, index)
        return LOWER if "lowercase" in content else LOWER.upper() + f" {index}"
    return ScriptedGenerator(respond)


def _run(module, method, tmp_path, generator, *overrides):
    path = write_jsonl(tmp_path / "seeds.jsonl", [SEED])
    cfg = load_config(None, [f"method={method}", *overrides])
    return module.build(ModelRoles.of(generator), cfg)(load_items(path, prompt_field="instruction", id_field="id"))


def test_typed_constraints_join_the_decomposition_and_are_corrupted_exactly(tmp_path):
    decomposed = []
    (pair,), _ = _run(musc_coarse, "musc_coarse", tmp_path, policy(decomposed=decomposed), "musc.drop_ratio=1",
                      "musc.p_drop=0", "musc.p_substitute=0")
    assert decomposed == [f"Instruction: {BASE}"]  # the policy decomposes the untyped part only
    meta = pair["meta"]
    assert meta["decomposition"]["constraints"] == ["Describe a lighthouse", "Mention the keeper", TYPED_TEXT]
    typed = next(c for c in meta["corruptions"] if c.get("typed_original"))
    assert typed["typed_original"] == {"id": "change_case:english_lowercase", "kwargs": {}}
    assert typed["typed_new"]["id"] == "change_case:english_capital" and typed["new"] != TYPED_TEXT
    assert meta["typed_constraints"] == [typed["typed_original"]]
    assert meta["corrupted_typed_constraints"] == [typed["typed_new"]]
    assert typed["new"] in meta["negative_instruction"] and TYPED_TEXT in meta["positive_instruction"]
    assert label_accuracy([pair])["chosen_better"] == 1.0  # chosen lowercase, rejected in capitals


def test_the_checkers_filter_keeps_pairs_the_typed_corruption_separates(tmp_path):
    judged = []
    pairs, rejects = _run(musc_coarse, "musc_coarse", tmp_path, policy(judge_log=judged), "musc.drop_ratio=1",
                          "musc.p_drop=0", "musc.p_substitute=0", "musc.self_judge_filter=true", "model.judge=checkers")
    assert len(pairs) == 1 and not rejects and judged == []  # decided by code: no model judge call
    assert pairs[0]["meta"]["judge_filter"]["code"] == {"chosen": [True], "rejected": [False]}
    both_lower = policy(answer=lambda content, index: LOWER + (" again" if "lowercase" not in content else ""))
    pairs, rejects = _run(musc_coarse, "musc_coarse", tmp_path, both_lower, "musc.drop_ratio=1", "musc.p_drop=0",
                          "musc.p_substitute=0", "musc.self_judge_filter=true", "model.judge=checkers")
    assert pairs == [] and [r["reason"] for r in rejects] == ["no_corrupted_typed_constraint_separates"]


def test_fine_scores_typed_constraints_by_code(tmp_path):
    judged = []

    def answers(content, index):  # sample 1 breaks the typed constraint; every untyped one is judged Yes
        return LOWER.upper() if index == 1 else LOWER + f" {index}"
    (pair,), _ = _run(musc_fine, "musc_fine", tmp_path, policy(answer=answers, judge_log=judged),
                      "model.judge=checkers")
    meta = pair["meta"]
    assert meta["rejected_sample"] == 1 and meta["violated_constraints"] == [TYPED_TEXT]
    assert [s["judged_by"] for s in meta["samples"]][0] == ["model", "model", "code"]
    assert len(judged) == 4 * 2  # the model judged only the untyped constraints
    assert meta["models"]["judge"] == "checkers"
    judged.clear()
    decomposed = []  # with the untyped constraints judged by nobody, the policy is not asked to list them
    (pair,), _ = _run(musc_fine, "musc_fine", tmp_path, policy(answer=answers, judge_log=judged, decomposed=decomposed),
                      "model.judge=checkers", "model.judge_untyped=skip")
    assert judged == [] and decomposed == [] and pair["meta"]["samples"][0]["judged_by"] == ["code"]
    assert pair["meta"]["decomposition"] == {"constraints": [TYPED_TEXT], "input": None, "source": "seed",
                                             "repeats_removed": 0}
    assert pair["meta"]["rejected_sample"] == 1 and pair["meta"]["violated_constraints"] == [TYPED_TEXT]


UPPER = LOWER.upper()


def test_with_checkers_code_verifies_the_revision_or_pairs_the_best_sample(tmp_path):
    def answers(content, index):  # samples 0 and 2 break the typed constraint (capitals), 1 and 3 keep it
        return f"{UPPER} {index}" if index % 2 == 0 else f"{LOWER} {index}"

    # A revision that fixes the constraint is verified by code and kept as the minimal correction.
    (pair,), _ = _run(musc_fine, "musc_fine", tmp_path, policy(answer=answers), "model.judge=checkers")
    assert pair["meta"]["chosen_source"] == "revision" and pair["chosen"][0]["content"] == LOWER
    assert pair["meta"]["typed_passed"] == [0, 1, 0, 1] and pair["meta"]["rejected_sample"] == 0
    # A revision that does not fix it (a 135M policy's usual one) is replaced by the best sample...
    unfixed = policy(answer=answers, correction=UPPER + " now")
    (pair,), rejects = _run(musc_fine, "musc_fine", tmp_path, unfixed, "model.judge=checkers")
    meta = pair["meta"]
    assert meta["chosen_source"] == "best_sample" and meta["revision_rejected"] == "revision_not_verified"
    assert pair["chosen"][0]["content"] == f"{LOWER} 1" and pair["rejected"][0]["content"] == f"{UPPER} 0"
    assert label_accuracy([pair])["chosen_better"] == 1.0 and rejects == []
    # ... or, without the fallback, rejected with its reason.
    pairs, rejects = _run(musc_fine, "musc_fine", tmp_path, unfixed, "model.judge=checkers",
                          "musc_fine.best_sample_fallback=false")
    assert pairs == [] and [(r["stage"], r["reason"]) for r in rejects] == [("verify", "revision_not_verified")]
    # A revision the correct step rejects (here: it pastes the prompt's labels) also falls back.
    leaked = policy(answer=answers, correction=f"{LOWER}\n\nViolated constraints:\n- {TYPED_TEXT}")
    (pair,), _ = _run(musc_fine, "musc_fine", tmp_path, leaked, "model.judge=checkers")
    assert pair["meta"]["chosen_source"] == "best_sample" and pair["meta"]["revision_rejected"] == "revision_leak"
    summary = musc_fine.summarize([pair], [], load_config(None, ["method=musc_fine"]))
    assert summary["chosen_source"] == {"best_sample": 1} and summary["yield_per_stage"]["corrected"] == 0


def test_checkers_in_roles_and_refusals():
    cfg = {"method": "musc_fine", "model": {"policy": "p", "judge": "checkers"}}
    assert roles(cfg) == "judge:checkers"
    check_roles(load_config(None, ["method=musc_fine", "model.judge=checkers"]))
    with pytest.raises(ConfigError, match="needs ecd.typed_format=true"):
        ecd.check(load_config(None, ["method=ecd", "model.judge=checkers"]))


# -- ECD: format operations as typed requirements ---------------------------------------------------------

def test_ecd_typed_format_rounds_are_drawn_and_judged_by_code(tmp_path):
    from musc_ecd.constraints.typed import TypedConstraint

    calls = {"evolve": 0, "judge": 0}

    def respond(request, index, params):
        task = _task(request)
        if "evolve an instruction" in task:
            calls["evolve"] += 1
            return "New requirement: Mention the sea.\nEvolved instruction: x"
        if "check one constraint" in task:
            calls["judge"] += 1
            return "Analysis: x.\nAnswer: No"
        return f"answer {len(request[-1]['content'])}"
    path = write_jsonl(tmp_path / "seeds.jsonl", [{"id": f"s{i}", "instruction": f"Write about lighthouses {i}."}
                                                  for i in range(6)])
    cfg = load_config(None, ["method=ecd", "ecd.typed_format=true", "ecd.categories=[format]", "ecd.rounds=2",
                             "ecd.compose=append", "model.judge=checkers", "ecd.verify_with_checkers=false"])
    items = load_items(path, prompt_field="instruction", id_field="id")
    pairs, rejects = ecd.build(ModelRoles.of(ScriptedGenerator(respond)), cfg)(items)
    assert calls == {"evolve": 0, "judge": 0}  # every round typed: no evolver call, no model judge
    assert pairs and all(p["meta"]["typed_constraints"] for p in pairs)
    for pair in pairs:
        meta = pair["meta"]
        assert len(meta["typed_constraints"]) == meta["round"]  # one typed requirement per round so far
        new = TypedConstraint.from_json(meta["chain"][meta["round"]]["typed"][0])
        assert new.describe is not None and meta["new_requirements"][0] in pair["prompt"][0]["content"]
        assert meta["judge"]["raw"] == ["checkers"]
    assert all(r["stage"] != "judge" or r["reason"] == "previous_answer_satisfies" for r in rejects)
    health = ecd.summarize(pairs, rejects, cfg)["judge"]
    assert health["total"] == 0 and "warning" not in health  # code's verdicts are not the judge model's

    # With the verification (the default under checkers) a pair stays only where code finds chosen better.
    verified_cfg = load_config(None, ["method=ecd", "ecd.typed_format=true", "ecd.categories=[format]",
                                      "ecd.rounds=2", "ecd.compose=append", "model.judge=checkers"])
    kept, refused = ecd.build(ModelRoles.of(ScriptedGenerator(respond)), verified_cfg)(items)
    unverified = [r for r in refused if r["reason"] == "chosen_not_verified"]
    assert len(kept) + len(unverified) == len(pairs) and unverified  # the scripted answers ignore most formats
    assert not kept or label_accuracy(kept)["chosen_better"] == 1.0
    assert all("typed constraints" in r["detail"] and r["round"] >= 1 for r in unverified)
