"""Honest data: no kept output copies a template's demonstration, revisions are minimal, MuSC's judges see
the original instruction and take their decoding from config, an unparsable judge is reported, and each
method calls exactly the roles it is given (issue: correct on every machine and honest data)."""

from __future__ import annotations

import logging

import pytest
from helpers import write_jsonl

from musc_ecd.config import load_config
from musc_ecd.errors import ConfigError
from musc_ecd.items import load_items
from musc_ecd.methods import apc, check_roles, ecd, musc_coarse, musc_fine
from musc_ecd.models.roles import ModelRoles
from musc_ecd.models.scripted import ScriptedGenerator
from musc_ecd.prompts import load_template

INSTRUCTION = "Write an email to my landlord about the heater. Keep it polite. End with 'Thanks'."
CONSTRAINTS = ["Write an email to my landlord about the heater", "Keep it polite", "End with 'Thanks'"]
ANSWER = "Dear landlord, the heater in my flat is broken again and the rooms are cold. Could you fix it soon? Best"
CORRECT_DEMO = load_template("correct").demonstrations[0]


def _task(request) -> str:
    return request[0]["content"].splitlines()[0] if request[0]["role"] == "system" else ""


def scripted(decompose=None, rewrite=None, recombine=None, judge=None, correct=None, name="policy"):
    """One policy dispatching on the template; each step's reply can be replaced."""
    def respond(request, index, params):
        task, content = _task(request), request[-1]["content"]
        if "decompose" in task:
            return decompose or "\n".join(f"{i}. {c}" for i, c in enumerate(CONSTRAINTS, 1)) + "\nInput: none"
        if "negate a constraint" in task or "replace a constraint" in task:
            return rewrite or "Do not end with 'Thanks'"
        if "write one instruction" in task:  # the listed constraints, joined into one sentence
            listed = [line.split(". ", 1)[1] for line in content.splitlines() if line[:1].isdigit()]
            return recombine or "; ".join(listed) + "."
        if "check one constraint" in task:
            return judge(content) if judge else "Analysis: looked.\nAnswer: No"
        if "correct a response" in task:
            return correct if correct is not None else ANSWER.replace("Best", "Thanks")
        # the first answer to the seed itself is ANSWER; every other (instruction, sample) gets its own answer
        return ANSWER if index == 0 and content == INSTRUCTION else f"{ANSWER} v{index}-{len(content)}"
    return ScriptedGenerator(respond, name=name)


def _items(tmp_path):
    path = write_jsonl(tmp_path / "seeds.jsonl", [{"id": "s0", "instruction": INSTRUCTION}])
    return load_items(path, prompt_field="instruction", id_field="id")


def _fine(tmp_path, generator, *overrides, judge=None):
    models = ModelRoles.of(generator, judge=judge) if judge else ModelRoles.of(generator)
    builder = musc_fine.build(models, load_config(None, ["method=musc_fine", *overrides]))
    return builder(_items(tmp_path))


def _coarse(tmp_path, generator, *overrides, judge=None):
    models = ModelRoles.of(generator, judge=judge) if judge else ModelRoles.of(generator)
    builder = musc_coarse.build(models, load_config(None, ["method=musc_coarse", "musc.p_drop=0", *overrides]))
    return builder(_items(tmp_path))


# -- copied demonstrations ------------------------------------------------------------------------------

def test_every_template_knows_its_demonstrations():
    for name in ("decompose", "recombine", "negate", "substitute", "correct", "judge", "evolve_format_length"):
        template = load_template(name)
        for demo in template.demonstrations:
            assert template.copies_demonstration(demo) and template.copies_demonstration(demo.upper())
            if len(demo) >= 24:
                assert template.copies_demonstration(f"Sure, here it is.\n{demo}")
    assert not load_template("correct").copies_demonstration(ANSWER)


def test_a_revision_that_is_the_correction_demo_is_rejected_not_chosen(tmp_path):
    for reply in (CORRECT_DEMO, f"{CORRECT_DEMO}\n\n{ANSWER.replace('Best', 'Thanks')}"):
        pairs, rejects = _fine(tmp_path, scripted(correct=reply))
        assert pairs == [] and [r["reason"] for r in rejects] == ["copied_demonstration"]


def test_a_revision_keeping_too_little_of_the_answer_is_not_minimal(tmp_path):
    rewrite = "The response is polite and ends correctly, so it satisfies the instruction."
    pairs, rejects = _fine(tmp_path, scripted(correct=rewrite))
    assert pairs == [] and [r["reason"] for r in rejects] == ["revision_not_minimal"]
    assert float(rejects[0]["detail"].split()[1]) < 0.5  # "kept 0.19 of the answer's words"
    pairs, rejects = _fine(tmp_path, scripted(correct=rewrite), "musc_fine.min_revision_kept=0")
    assert len(pairs) == 1 and not rejects


def test_re_casing_and_re_punctuating_are_minimal():
    from musc_ecd.constraints.correct import kept_share

    assert kept_share("THE HEATER IS BROKEN, PLEASE FIX IT.", "the heater is broken please fix it") == 1.0
    assert kept_share("one two three four", "one two") == 0.5


def test_a_minimal_revision_is_kept_with_its_kept_share(tmp_path):
    (pair,), rejects = _fine(tmp_path, scripted())
    assert not rejects and pair["chosen"][0]["content"].endswith("Thanks")
    assert pair["meta"]["revision_kept_share"] == pytest.approx(20 / 21, abs=1e-3)


def test_a_decomposition_copying_the_demo_is_rejected(tmp_path):
    demo = load_template("decompose").demonstrations[0]
    pairs, rejects = _coarse(tmp_path, scripted(decompose=demo))
    assert pairs == [] and [(r["stage"], r["reason"]) for r in rejects] == [("decompose", "copied_demonstration")]


def test_a_recombination_copying_the_demo_is_rejected(tmp_path):
    demo = load_template("recombine").demonstrations[0]
    pairs, rejects = _coarse(tmp_path, scripted(recombine=demo))
    assert pairs == [] and [(r["stage"], r["reason"]) for r in rejects] == [("recombine", "copied_demonstration")]


def test_a_rewrite_copying_the_demo_falls_back_to_drop_and_is_counted(tmp_path):
    demo = load_template("negate").demonstrations[-1]  # 'Do not end with "Thank you for your help."'
    pairs, _ = _coarse(tmp_path, scripted(rewrite=demo), "musc.p_substitute=0")
    corruptions = [c for p in pairs for c in p["meta"]["corruptions"]]
    assert corruptions and all(c["operator"] == "drop" and c["fallback_reason"] == "copied_demonstration"
                               for c in corruptions)
    assert musc_coarse.summarize(pairs, [], load_config(None))["rewrites_copying_a_demonstration"] == len(corruptions)


def test_an_evolution_copying_the_demo_ends_the_chain(tmp_path):
    def respond(request, index, params):
        if "evolve an instruction" in _task(request):
            demo = load_template(_template_of(request)).demonstrations[0]
            return demo
        if "check one constraint" in _task(request):
            return "Analysis: x.\nAnswer: No"
        return f"answer to {request[-1]['content']}"
    policy = ScriptedGenerator(respond)
    path = write_jsonl(tmp_path / "seeds.jsonl", [{"id": "s0", "instruction": INSTRUCTION}])
    builder = ecd.build(ModelRoles.of(policy), load_config(None, ["method=ecd", "ecd.compose=append"]))
    pairs, rejects = builder(load_items(path, prompt_field="instruction", id_field="id"))
    assert pairs == [] and [(r["stage"], r["reason"]) for r in rejects] == [("evolve", "copied_demonstration")]


def _template_of(request) -> str:
    from musc_ecd.constraints.evolve import all_operations

    task = _task(request)
    return next(op.template for op in all_operations() if load_template(op.template).task_line == task)


# -- MuSC's judges ---------------------------------------------------------------------------------------

def test_the_coarse_filter_judge_sees_the_original_instruction(tmp_path):
    seen = []

    def judge(content):
        seen.append(content)
        return "Analysis: x.\nAnswer: No"
    _coarse(tmp_path, scripted(judge=judge), "musc.self_judge_filter=true", "musc.p_substitute=0")
    assert seen and all(content.startswith(f"Instruction: {INSTRUCTION}") for content in seen)
    assert all("Do not end with" not in content.split("Response:")[0] for content in seen)


def test_judge_decoding_comes_from_config(tmp_path):
    policy = scripted()
    _fine(tmp_path, policy, "musc_fine.judge_temperature=0.3", "musc_fine.judge_stop=[END]")
    (params,) = [p for requests, p in policy.calls if "check one constraint" in _task(requests[0])]
    assert params.temperature == 0.3 and params.stop == ("END",)
    policy = scripted()
    _coarse(tmp_path, policy, "musc.self_judge_filter=true", "musc.judge_temperature=0.2", "musc.judge_stop=[X]")
    (params,) = [p for requests, p in policy.calls if "check one constraint" in _task(requests[0])]
    assert params.temperature == 0.2 and params.stop == ("X",)
    cfg = load_config(None, ["method=ecd", "ecd.judge_temperature=0.4", "ecd.judge_stop=[Y]"])
    params = ecd.build(ModelRoles.of(policy), cfg)._params("judge")
    assert params.temperature == 0.4 and params.stop == ("Y",)


def test_mostly_unparsable_verdicts_are_reported_and_logged(tmp_path, caplog):
    from musc_ecd.generate import generate

    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"id": "s0", "instruction": INSTRUCTION}])
    cfg = load_config(None, ["method=musc_fine", "model.policy=tiny", f"data.seeds={seeds}",
                             "data.prompt_field=instruction", "data.id_field=id"])
    import musc_ecd.generate as generate_module

    class Fixed:  # the rambling judge of a 135M model: never an "Answer: Yes|No" line
        @staticmethod
        def from_config(cfg):
            return ModelRoles.of(scripted(judge=lambda content: "Well, the response is an email about"))

    original = generate_module.ModelRoles
    generate_module.ModelRoles = Fixed
    try:
        with caplog.at_level(logging.WARNING):
            summary = generate(cfg, tmp_path / "run")
    finally:
        generate_module.ModelRoles = original
    health = summary["judge"]
    assert health["unparsable"] == health["total"] == 12 and health["unparsable_share"] == 1.0
    assert "musc_fine.judge_max_tokens" in health["warning"] and summary["warnings"] == [health["warning"]]
    assert "12 of 12 judge verdicts were unparsable" in caplog.text


def test_a_parsable_judge_raises_no_warning(tmp_path):
    pairs, rejects = _fine(tmp_path, scripted())
    summary = musc_fine.summarize(pairs, rejects, load_config(None, ["method=musc_fine"]))
    assert summary["judge"]["unparsable"] == 0 and "warning" not in summary["judge"]


# -- roles: each method calls exactly what it is given ---------------------------------------------------

def test_musc_judges_with_model_judge_when_named(tmp_path):
    policy, judge = scripted(), scripted(name="judge-model")
    _fine(tmp_path, policy, judge=judge)
    assert any("check one constraint" in _task(r[0]) for r, _ in judge.calls)
    assert not any("check one constraint" in _task(r[0]) for r, _ in policy.calls)


@pytest.mark.parametrize("method, overrides, role", [
    ("musc_fine", ["model.teacher=big"], "teacher"),
    ("musc_coarse", ["model.judge=big"], "judge"),  # the filter (the only judge call) is off
    ("musc", ["model.responders=[a,b]"], "responders"),
    ("ecd", ["model.teacher=big", "ecd.evolver=policy", "ecd.responder=policy"], "teacher"),
    ("ecd", ["model.judge=big", "ecd.judge_filter=false"], "judge"),
    ("apc", ["model.responders=[a,b]", "model.teacher=big"], "teacher"),
])
def test_a_role_the_method_never_calls_is_refused(method, overrides, role):
    with pytest.raises(ConfigError, match=f"model.{role} is set but method={method} never calls"):
        load_config(None, [f"method={method}", *overrides])  # at load, before any model loads


@pytest.mark.parametrize("method, overrides", [
    ("musc_fine", ["model.judge=big"]),
    ("musc_coarse", ["model.judge=big", "musc.self_judge_filter=true"]),
    ("ecd", ["model.teacher=big", "model.judge=j"]),
    ("apc", ["model.responders=[a,b]"]),
    ("musc", ["model.teacher=smollm2-135m-instruct"]),  # the policy itself named as teacher: harmless
])
def test_roles_the_method_calls_are_accepted(method, overrides):
    check_roles(load_config(None, [f"method={method}", *overrides]))


# -- APC's SFT target -------------------------------------------------------------------------------------

def test_the_sft_target_is_the_strongest_non_empty_answer():
    texts = [("", "stop"), ("second best", "stop"), ("worst", "stop")]
    assert apc.sft_target(texts, ["a", "b", "c"]) == {"sft_target": "second best", "sft_model": "b", "sft_rank": 1}
    assert apc.sft_target([("", "stop"), ("", "length")], ["a", "b"])["sft_target"] is None


# -- degenerate repetition --------------------------------------------------------------------------------

def test_degenerate_repetition_is_recognised_and_prose_is_not():
    from musc_ecd.methods.base import is_degenerate

    assert is_degenerate("M" * 300) and is_degenerate("Subject: Admissions Transcripts Inquiry\n\n" * 6)
    assert not is_degenerate(ANSWER) and not is_degenerate("Mmm.")  # short answers are left alone
    assert not is_degenerate("The causes of the crash can be traced back to speculation, margin buying, weak "
                             "banks and a fall in demand; each fed the next as prices slid through October.")


def test_a_degenerate_answer_is_a_counted_reject(tmp_path):
    policy = scripted()
    real = policy.respond

    def loops_on_the_intact_instruction(chat, index, params):
        content = chat[-1]["content"]
        return "M" * 200 if content.endswith("'Thanks'.") and "Do not" not in content else real(chat, index, params)
    policy.respond = loops_on_the_intact_instruction
    pairs, rejects = _coarse(tmp_path, policy, "musc.p_substitute=0")
    assert pairs == [] and [(r["reason"], r["detail"]) for r in rejects] == [("degenerate_response", "chosen")]
    assert apc._pair_problem("M" * 200, "fine answer") == "degenerate_chosen"
    assert apc._pair_problem("fine answer", "M" * 200) == ""  # a looping weaker answer is a true negative


def test_a_revision_leaking_the_correction_prompt_is_rejected():
    from musc_ecd.constraints.correct import parse_revision

    leaked = "The journey begins\n\nViolated constraints:\n- Mention a central question\n" + ANSWER
    assert parse_revision(leaked, ANSWER, 0.5) == (None, "revision_leak")
    assert parse_revision(ANSWER.replace("Best", "Thanks"), ANSWER, 0.5)[1] == ""


# A looping tail and a repeating decomposition: the two texts read in the main command's pairs (issue #19).

SOUND = ("Rivers shape the land over thousands of years. They carve valleys and carry soil to the sea. People have "
         "always settled along their banks, for water, food and trade. ")
LOOPING_TAIL = SOUND + " ".join(["haha"] * 26)  # the loop is about 40% of the text


def test_a_looping_tail_is_degenerate_though_the_whole_text_is_not():
    from musc_ecd.degenerate import DEGENERATE_RATIO, compression_ratio
    from musc_ecd.records import is_degenerate, pair_problem

    assert compression_ratio(LOOPING_TAIL) >= DEGENERATE_RATIO  # the whole-text test alone passes it
    assert is_degenerate(LOOPING_TAIL)
    assert pair_problem(LOOPING_TAIL, SOUND) == "degenerate_chosen"
    assert pair_problem(SOUND, LOOPING_TAIL) is None  # a looping rejected answer is a true negative


def test_ordinary_repetition_is_not_a_loop():
    from musc_ecd.records import is_degenerate

    listing = "Here is the list:\n" + "\n".join(f"- {fruit}" for fruit in
                                                 ("apples", "bananas", "cherries", "dates", "figs", "grapes", "kiwis"))
    refrain = "The wind is cold.\nThe night is long.\nLa la la, la la la.\nLa la la, la la la.\nWe sing our song."
    assert not is_degenerate(listing) and not is_degenerate(refrain) and not is_degenerate(SOUND)


def test_a_decomposition_listing_the_same_constraints_nine_times_keeps_each_once():
    from musc_ecd.constraints.decompose import Decomposition, parse_decomposition

    four = ("Write in English.", "Use at most 100 words.", "Include the keyword 'river'.", "End with a question.")
    text = "Constraints:\n" + "\n".join(f"{4 * k + i + 1}. {c}" for k in range(9) for i, c in enumerate(four))
    parsed = parse_decomposition(text + "\nInput: none")
    assert parsed.constraints == ("Write in English", "Use at most 100 words", "Include the keyword 'river'",
                                  "End with a question")
    assert parsed.repeats_removed == 32 and Decomposition.from_json(parsed.to_json()) == parsed
    assert parse_decomposition("1. Be brief.\n2. be brief\n3. Use a list.").constraints == ("Be brief", "Use a list")
