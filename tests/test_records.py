"""The data model: pairs, provenance and rejects through JSON and back, older rows, and — per method — that
chosen and rejected are the sides METHODS.md says they are.

The orientation tests run each builder on a scripted model whose every answer names what it answers (the
instruction, the sample, the round, the responder), so each side of a pair can be told apart; each check is
also run on the pair with its sides swapped, where it must fail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import write_jsonl

from musc_ecd.config import load_config
from musc_ecd.constraints.corrupt import Corruption, apply_corruption
from musc_ecd.constraints.decompose import Decomposition
from musc_ecd.constraints.typed import TypedConstraint
from musc_ecd.errors import DataError
from musc_ecd.items import load_items
from musc_ecd.methods import apc, ecd, musc_coarse, musc_fine
from musc_ecd.models.roles import ModelRoles
from musc_ecd.models.scripted import ScriptedGenerator
from musc_ecd.records import (
    PAIR_PROBLEMS,
    PROVENANCES,
    SCHEMA_VERSION,
    ApcProvenance,
    BySide,
    ChainRound,
    CoarseJudgeFilter,
    EcdProvenance,
    EcdRoles,
    ForeignProvenance,
    JudgedSample,
    JudgeVerdicts,
    MuscCoarseProvenance,
    MuscFineProvenance,
    Pair,
    Reject,
    TokenWeights,
    make_pair,
    pair_problem,
    schema_version,
)
from musc_ecd.store import read_jsonl

REPO = Path(__file__).resolve().parents[1]
LOWER = TypedConstraint("change_case:english_lowercase")
WORDS = TypedConstraint("length_constraints:number_words", {"num_words": 50, "relation": "less than"})
SAMPLING = {"respond": {"n": 1, "temperature": 0.5, "top_p": 1.0, "max_new_tokens": 64, "stop": [], "seed": 3}}


# -- one hand-made provenance of each kind, every optional part filled ------------------------------------

def coarse_provenance(**changes) -> MuscCoarseProvenance:
    fields = dict(
        source_instruction="Write about rain. Use three lines. Write in lowercase.", source_line=4,
        typed_constraints=(LOWER,),
        decomposition=Decomposition(("Write about rain", "Use three lines", "Write in lowercase"), None, "parsed"),
        corruptions=(Corruption(1, "drop", "Use three lines"),
                     Corruption(2, "negate", "Write in lowercase", "Write in capitals", None, None, LOWER.to_json(),
                                TypedConstraint("change_case:english_capital").to_json())),
        corrupted_typed_constraints=(TypedConstraint("change_case:english_capital"),),
        positive_instruction="Write about rain in three lines, in lowercase.",
        negative_instruction="Write about rain, in capitals.",
        finish_reasons=BySide("stop", "length"),
        judge_filter=CoarseJudgeFilter((), (), BySide((True,), (False,)), "checkers"),
        models={"policy": "p"}, sampling=SAMPLING, seed=3, templates={"decompose": "abc123"})
    return MuscCoarseProvenance(**{**fields, **changes})


def fine_provenance(**changes) -> MuscFineProvenance:
    fields = dict(
        source_instruction="Write about rain without commas.", source_line=1, typed_constraints=None,
        decomposition=Decomposition(("Write about rain", "Avoid commas"), None, "spacy_fallback"),
        samples=(JudgedSample("rain falls", (True, True), ("model", "model"), 1.0, ("Answer: Yes", "Answer: Yes")),
                 JudgedSample("rain, falls", (True, None), ("model", "model"), 0.95, ("Answer: Yes", "?"))),
        typed_positions=(), rejected_sample=1, violated_constraints=("Avoid commas",), correction_raw="rain falls!",
        revision_kept_share=1.0, models={"policy": "p", "judge": "p"}, sampling=SAMPLING, seed=0,
        templates={"correct": "def456"})
    return MuscFineProvenance(**{**fields, **changes})


def ecd_provenance(**changes) -> EcdProvenance:
    chain = (ChainRound(0, "Write a note.", "seed", (), "A note.", "stop"),
             ChainRound(1, "Write a note. Use fewer than 50 words.", "format/length", ("Use fewer than 50 words.",),
                        "A short note.", "stop", (WORDS,)),
             ChainRound(2, "Write a note. Use fewer than 50 words. Mention the sea.", "content/mention",
                        ("Mention the sea.",), "A short note on the sea.", "length"))
    fields = dict(
        seed_id="s0", source_instruction="Write a note.", source_line=2, typed_constraints=(WORDS,), round=2,
        negative_round=1, operation="content/mention", new_requirements=("Mention the sea.",),
        negative_instruction=chain[1].instruction, chain=chain, evolve_raw="New requirement: Mention the sea.",
        judge=JudgeVerdicts((False,), ("Answer: No",)), roles=EcdRoles("teacher", "policy", False),
        models={"policy": "p", "evolver": "t", "responder": "p", "judge": "p"}, sampling=SAMPLING, seed=1,
        templates={"evolve_content_mention": "0f0f", "judge": "1e1e"})
    return EcdProvenance(**{**fields, **changes})


def apc_provenance(**changes) -> ApcProvenance:
    fields = dict(
        seed_id="p0", source_instruction="Name a colour.", source_line=7, typed_constraints=None, chosen_rank=0,
        rejected_rank=2, strengths=BySide(2.0, 0.0), models={"policy": "m1", "chosen": "m0", "rejected": "m2"},
        finish_reasons=BySide("stop", "stop"), sft_target="Blue.", sft_model="m0", sft_rank=0,
        sampling=BySide(SAMPLING["respond"], {**SAMPLING["respond"], "temperature": 1.2}), seed=5)
    return ApcProvenance(**{**fields, **changes})


KINDS = {"musc_coarse": coarse_provenance, "musc_fine": fine_provenance, "ecd": ecd_provenance, "apc": apc_provenance}


def hand_pair(method: str, **provenance_changes) -> Pair:
    provenance = KINDS[method](**provenance_changes)
    item = "s0" if method in ("ecd", "apc") else None
    return make_pair(f"{method}-1", provenance.source_instruction, "the better answer", "the worse answer", 2 / 3,
                     provenance, item_id=item)


@pytest.mark.parametrize("method", sorted(KINDS))
def test_each_provenance_kind_goes_through_json_and_back(method):
    pair = hand_pair(method)
    row = pair.to_json()
    assert json.loads(json.dumps(row)) == row  # plain JSON, nothing left typed
    assert Pair.from_json(row) == pair
    assert Pair.from_json(json.loads(json.dumps(row))).to_json() == row
    assert list(row)[:2] == (["id", "item_id"] if pair.item_id else ["id", "prompt"])
    assert row["prompt"] == [{"role": "user", "content": pair.provenance.source_instruction}]
    assert row["chosen"] == [{"role": "assistant", "content": "the better answer"}]
    assert row["rejected"] == [{"role": "assistant", "content": "the worse answer"}]
    assert row["difficulty"] == 0.6667  # make_pair keeps four decimals
    assert list(row["meta"])[:2] == ["schema", "method"] and row["meta"]["schema"] == SCHEMA_VERSION
    assert row["meta"]["method"] == method and PROVENANCES[method] is type(pair.provenance)


def test_the_optional_parts_left_empty_go_through_json_too():
    cases = [hand_pair("musc_coarse", typed_constraints=None, corrupted_typed_constraints=None, judge_filter=None),
             hand_pair("ecd", typed_constraints=None, judge=None, negative_round=0),
             hand_pair("apc", sft_target=None, sft_model=None, sft_rank=None)]
    for pair in cases:
        assert Pair.from_json(pair.to_json()) == pair


def test_method_names_are_the_builders_own():
    assert {m.METHOD for m in (musc_coarse, musc_fine, ecd, apc)} == set(PROVENANCES)
    for module in (musc_coarse, musc_fine, ecd, apc):
        assert PROVENANCES[module.METHOD].method == module.METHOD


# -- rows written before: no schema, fields added since -----------------------------------------------------

@pytest.mark.parametrize("method", sorted(KINDS))
def test_a_row_without_the_schema_version_is_version_1(method):
    row = hand_pair(method).to_json()
    del row["meta"]["schema"]
    assert schema_version(row) == 1
    assert Pair.from_json(row) == hand_pair(method)


def test_version_1_rows_lacking_fields_added_over_time_read_their_defaults():
    coarse = hand_pair("musc_coarse").to_json()
    for key in ("schema", "typed_constraints", "corrupted_typed_constraints", "judge_filter", "source_line"):
        del coarse["meta"][key]
    for corruption in coarse["meta"]["corruptions"]:
        corruption.pop("fallback_reason"), corruption.pop("typed_original", None), corruption.pop("typed_new", None)
    provenance = Pair.from_json(coarse).provenance
    assert provenance.typed_constraints is None and provenance.judge_filter is None
    assert [c.fallback_reason for c in provenance.corruptions] == [None, None]

    fine = hand_pair("musc_fine").to_json()
    for key in ("typed_positions", "revision_kept_share"):
        del fine["meta"][key]
    for sample in fine["meta"]["samples"]:
        del sample["judged_by"]
    provenance = Pair.from_json(fine).provenance
    assert provenance.typed_positions == () and provenance.revision_kept_share is None
    assert [s.judged_by for s in provenance.samples] == [("model", "model")] * 2  # before checkers: the model

    chain = hand_pair("ecd").to_json()
    for r in chain["meta"]["chain"]:
        del r["typed"]
    assert all(r.typed == () for r in Pair.from_json(chain).provenance.chain)

    old_apc = hand_pair("apc").to_json()
    del old_apc["meta"]["sft_rank"], old_apc["meta"]["typed_constraints"]
    assert Pair.from_json(old_apc).provenance.sft_rank is None


def test_rows_of_a_newer_schema_and_rows_missing_a_required_field_are_refused():
    row = hand_pair("ecd").to_json()
    with pytest.raises(DataError, match="meta.schema 2 was written by a newer musc-ecd"):
        Pair.from_json({**row, "meta": {**row["meta"], "schema": SCHEMA_VERSION + 1}})
    for bad in (0, "1", True):
        with pytest.raises(DataError, match="positive integer"):
            Pair.from_json({**row, "meta": {**row["meta"], "schema": bad}})
    del row["meta"]["negative_round"]
    with pytest.raises(DataError, match=r"meta.negative_round is missing \(every ecd pair has it\)"):
        Pair.from_json(row)
    with pytest.raises(DataError, match="no 'rejected' field"):
        Pair.from_json({"prompt": "p", "chosen": "a"})


def test_the_shipped_sample_artifact_loads():
    rows = read_jsonl(REPO / "configs" / "data" / "pairs_sample.jsonl")
    pairs = [Pair.from_json(row) for row in rows]
    assert all(isinstance(p.provenance, ForeignProvenance) for p in pairs)
    assert pairs[0].prompt == rows[0]["prompt"][0]["content"] and pairs[0].difficulty == rows[0]["difficulty"]
    assert [p.to_json() for p in pairs] == rows  # a foreign meta is kept as it is, with no schema added


def test_foreign_rows_plain_strings_no_id_no_meta():
    row = {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
           "chosen": "Hello.", "rejected": [{"role": "assistant", "content": "Go away."}],
           "meta": {"method": "elsewhere", "negative_instruction": "Hi, rudely", "typed_constraints": [
               {"id": "punctuation:no_comma", "kwargs": {}}]}}
    pair = Pair.from_json(row)
    assert (pair.id, pair.prompt, pair.chosen, pair.rejected, pair.difficulty) == (None, "Hi", "Hello.", "Go away.",
                                                                                    None)
    assert pair.method == "elsewhere" and pair.negative_instruction == "Hi, rudely"
    assert pair.typed_constraints == (TypedConstraint("punctuation:no_comma"),)
    bare = Pair.from_json({"prompt": "p", "chosen": "a", "rejected": "b"})
    assert bare.negative_instruction is None and bare.typed_constraints is None and "meta" not in bare.to_json()
    assert Pair.from_json({"prompt": "p", "chosen": "a", "rejected": "b", "meta": "notes"}).method is None
    with pytest.raises(ValueError, match="must be a list"):
        Pair.from_json({**row, "meta": {"typed_constraints": "punctuation:no_comma"}})


def test_a_weighted_row_keeps_its_weights_and_scheme():
    row = {**hand_pair("musc_coarse").to_json(), "chosen_weights": [1.0, 0.5], "rejected_weights": [2.0]}
    row["meta"]["weights"] = {"scheme": "kl", "w_max": 2.0}
    pair = Pair.from_json(row)
    assert pair.weights == TokenWeights("kl", 2.0) and pair.chosen_weights == (1.0, 0.5)
    assert pair.provenance == coarse_provenance()
    assert pair.to_json() == row and list(pair.to_json()["meta"])[-1] == "weights"


# -- rejects ---------------------------------------------------------------------------------------------

def test_reject_round_trip_and_its_home():
    from musc_ecd import items

    assert items.Reject is Reject
    full = Reject("s1#r2", "judge", "previous_answer_satisfies", "detail", 3, "s1", {"yes": 1, "no": 0,
                                                                                   "unparsable": 0}, 2)
    assert Reject.from_json(full.to_json()) == full
    assert list(full.to_json()) == ["id", "stage", "reason", "detail", "line", "item_id", "round", "judge"]
    bare = Reject("line-3", "load", "invalid_json", "bad")
    assert bare.to_json() == {"id": "line-3", "stage": "load", "reason": "invalid_json", "detail": "bad"}
    assert Reject.from_json(bare.to_json()) == bare


@pytest.mark.parametrize(("record", "expected"), [
    ({"id": "s1#r2", "item_id": "s1"}, 2),
    ({"id": "s1#r3n0", "item_id": "s1"}, 3),  # an older negative's pair
    ({"id": "a#rb#r10", "item_id": "a#rb"}, 10),
    ({"id": "p0#0>1", "item_id": "p0"}, None),  # an APC pair
    ({"id": "s1#r2"}, None),  # no item: not an ECD round
    ({"id": "s1#r2", "item_id": "s1", "round": 5}, 5),  # the field wins
])
def test_an_ecd_reject_written_before_round_was_a_field_reads_it_from_its_id(record, expected):
    assert Reject.from_json({"stage": "judge", "reason": "r", **record}).round == expected


# -- pair problems ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("chosen", "rejected", "problem"), [
    ("", "b", "empty_chosen"), ("", "", "empty_chosen"), ("a", "", "empty_rejected"),
    ("same", "same", "identical_responses"), ("M" * 200, "fine answer", "degenerate_chosen"),
    ("fine answer", "M" * 200, None),  # a looping rejected answer is a true negative
    ("good", "bad", None), ("same ", "same", None),  # the builders compare stripped texts
])
def test_pair_problem(chosen, rejected, problem):
    assert pair_problem(chosen, rejected) == problem
    assert problem is None or problem in PAIR_PROBLEMS


def test_make_pair_refuses_what_a_builder_must_reject():
    with pytest.raises(ValueError, match="identical_responses"):
        make_pair("x", "p", "same", "same", 1.0, apc_provenance())
    assert make_pair("x", "p", "a", "b", 1 / 3, apc_provenance()).difficulty == 0.3333


# -- orientation, method by method -----------------------------------------------------------------------------

def _task(request) -> str:
    return request[0]["content"].splitlines()[0] if request[0]["role"] == "system" else ""


def _items(tmp_path, rows, prompt_field="instruction"):
    return load_items(write_jsonl(tmp_path / "seeds.jsonl", rows), prompt_field=prompt_field, id_field="id")


def swapped(row: dict) -> dict:
    return {**row, "chosen": row["rejected"], "rejected": row["chosen"]}


CONSTRAINTS = ("Write about TOPIC", "Use three lines", "Be formal", "Avoid commas", "End with a question")


def coarse_policy():
    """Decomposes into CONSTRAINTS, rewrites into marked constraints, recombines by joining the list, and
    answers an instruction with ``ANSWER to: <the instruction>``."""
    def respond(request, index, params):
        task, content = _task(request), request[-1]["content"]
        if "decompose" in task:
            return "\n".join(f"{i}. {c}" for i, c in enumerate(CONSTRAINTS, 1)) + "\nInput: none"
        if "replace" in task:
            return "New constraint: SUBSTITUTED " + content.strip()
        if "negate" in task:
            return "Rewritten: NEGATED " + content.strip()
        if "write one instruction" in task:
            listing = content.split("Input:")[0]
            return "; ".join(line.split(". ", 1)[1] for line in listing.strip().splitlines()) + "."
        if "check one constraint" in task:
            return "Analysis: no.\nAnswer: No"
        return f"ANSWER to: {content}"
    return ScriptedGenerator(respond, name="policy")


def coarse_oriented(row: dict) -> bool:
    """chosen answers the recombination of the intact list, rejected that of the corrupted list."""
    pair = Pair.from_json(row)
    p = pair.provenance
    intact = "; ".join(p.decomposition.constraints) + "."
    corrupted = "; ".join(apply_corruption(p.decomposition.constraints, p.corruptions)) + "."
    return (pair.prompt == p.source_instruction and p.positive_instruction == intact
            and p.negative_instruction == corrupted and intact != corrupted
            and pair.chosen == f"ANSWER to: {intact}" and pair.rejected == f"ANSWER to: {corrupted}")


@pytest.mark.parametrize("operator", ["drop", "substitute", "negate"])
@pytest.mark.parametrize("extra", [(), ("musc.self_judge_filter=true",), ("musc.drop_ratio=0.8",)])
def test_musc_coarse_chosen_answers_the_intact_instruction(tmp_path, operator, extra):
    weights = {op: int(op == operator) for op in ("drop", "substitute", "negate")}
    cfg = load_config(None, ["seed=5", *(f"musc.p_{op}={w}" for op, w in weights.items()), *extra])
    seeds = [{"id": f"s{i}", "instruction": f"Write about topic {i}, formally, in three lines."} for i in range(8)]
    pairs, rejects = musc_coarse.build(ModelRoles.of(coarse_policy()), cfg)(_items(tmp_path, seeds))
    assert len(pairs) == 8 and not rejects
    for row in pairs:
        corruptions = Pair.from_json(row).provenance.corruptions
        assert {c.operator for c in corruptions} == {operator} and all(c.index > 0 for c in corruptions)
        assert coarse_oriented(row) and not coarse_oriented(swapped(row))


def fine_policy(bad: dict[int, set[str]]):
    """Samples ``sample i``; the judge says No to (sample i, constraint c) for c in ``bad[i]``; the correction
    is the judged answer with `` (revised)`` added."""
    def respond(request, index, params):
        task, content = _task(request), request[-1]["content"]
        if "decompose" in task:
            return "\n".join(f"{i}. {c}" for i, c in enumerate(CONSTRAINTS[:3], 1)) + "\nInput: none"
        if "check one constraint" in task:
            sample = int(re.search(r"sample (\d)", content).group(1))
            constraint = content.rstrip().rsplit("Constraint: ", 1)[1]
            return "Analysis: x.\nAnswer: " + ("No" if constraint in bad.get(sample, set()) else "Yes")
        if "correct a response" in task:
            return re.search(r"Response:\n(sample \d)", content).group(1) + " (revised)"
        return f"sample {index}"
    return ScriptedGenerator(respond, name="policy")


def fine_oriented(row: dict, worst: int) -> bool:
    """rejected is the worst-judged sample, chosen its correction."""
    pair = Pair.from_json(row)
    p = pair.provenance
    lowest = min(range(len(p.samples)), key=lambda i: (p.samples[i].score, i))
    return (lowest == worst == p.rejected_sample and pair.rejected == p.samples[worst].text == f"sample {worst}"
            and pair.chosen == f"sample {worst} (revised)")


@pytest.mark.parametrize(("bad", "worst"), [
    ({0: {"Be formal"}}, 0),
    ({1: {"Use three lines"}}, 1),
    ({2: {"Be formal"}, 3: {"Be formal", "Use three lines"}}, 3),  # fails two: worse than failing one
    ({3: {"Write about TOPIC"}}, 3),
    ({1: {"Be formal"}, 2: {"Use three lines"}}, 1),  # a tie goes to the earliest sample
    ({0: {"Be formal"}, 1: set(CONSTRAINTS[:3]), 2: {"Use three lines"}}, 1),
])
def test_musc_fine_rejected_is_the_worst_judged_sample_and_chosen_its_correction(tmp_path, bad, worst):
    cfg = load_config(None, ["method=musc_fine"])
    (row,), rejects = musc_fine.build(ModelRoles.of(fine_policy(bad)), cfg)(
        _items(tmp_path, [{"id": "s0", "instruction": "Write about rain formally in three lines."}]))
    assert not rejects
    violated = Pair.from_json(row).provenance.violated_constraints
    assert set(violated) == bad[worst]
    assert fine_oriented(row, worst) and not fine_oriented(swapped(row), worst)


def ecd_policy():
    """Evolves by appending ``Mention the word wN.`` (N = round); answers ``answer to [<instruction>]``."""
    def respond(request, index, params):
        task, content = _task(request), request[-1]["content"]
        if "evolve an instruction" in task:
            instruction = content.removeprefix("Instruction: ")
            requirement = f"Mention the word w{instruction.count('Mention the word') + 1}."
            return f"New requirement: {requirement}\nEvolved instruction: {instruction} {requirement}"
        if "check one constraint" in task:
            return "Analysis: x.\nAnswer: No"
        return f"answer to [{content}]"
    return ScriptedGenerator(respond, name="policy")


def ecd_oriented(row: dict) -> bool:
    """prompt I^k, chosen R^k (the answer to I^k), rejected R^j (the answer to I^j, j < k)."""
    pair = Pair.from_json(row)
    p = pair.provenance
    k, j = p.round, p.negative_round
    return (0 <= j < k and pair.prompt == p.chain[k].instruction and p.negative_instruction == p.chain[j].instruction
            and f"w{k}." in pair.prompt and f"w{k + 1}." not in pair.prompt
            and pair.chosen == p.chain[k].response == f"answer to [{pair.prompt}]"
            and pair.rejected == p.chain[j].response == f"answer to [{p.chain[j].instruction}]"
            and pair.difficulty == round(1 / (k - j), 4))


@pytest.mark.parametrize("older", [False, True])
def test_ecd_chosen_is_this_rounds_answer_rejected_an_earlier_ones(tmp_path, older):
    cfg = load_config(None, ["method=ecd", "ecd.rounds=3", f"ecd.older_negatives={str(older).lower()}"])
    seeds = [{"id": f"s{i}", "instruction": f"Write a note about topic {i}."} for i in range(3)]
    pairs, rejects = ecd.build(ModelRoles.of(ecd_policy()), cfg)(_items(tmp_path, seeds))
    assert not rejects
    expected = {(k, j) for k in (1, 2, 3) for j in range(k) if older or j == k - 1}
    for seed in ("s0", "s1", "s2"):
        rounds = {(p.round, p.negative_round) for p in (Pair.from_json(r).provenance for r in pairs)
                  if p.seed_id == seed}
        assert rounds == expected  # every (k, j) once: hard negatives, and with older_negatives the easier ones
    for row in pairs:
        assert ecd_oriented(row) and not ecd_oriented(swapped(row))
        assert row["item_id"] == Pair.from_json(row).provenance.seed_id


def apc_oriented(row: dict) -> bool:
    """chosen is the stronger (lower-ranked) responder's answer."""
    pair = Pair.from_json(row)
    p = pair.provenance
    return (p.chosen_rank < p.rejected_rank and p.strengths.chosen > p.strengths.rejected
            and pair.chosen == f"m{p.chosen_rank} answers {pair.prompt}"
            and pair.rejected == f"m{p.rejected_rank} answers {pair.prompt}"
            and (p.models["chosen"], p.models["rejected"]) == (f"m{p.chosen_rank}", f"m{p.rejected_rank}"))


@pytest.mark.parametrize("count", [2, 3, 4])
@pytest.mark.parametrize("measured", [False, True])
def test_apc_the_stronger_responders_answer_is_chosen(tmp_path, count, measured):
    responders = [ScriptedGenerator(lambda request, i, p, rank=rank: f"m{rank} answers {request[-1]['content']}",
                                    name=f"m{rank}") for rank in range(count)]
    strengths = [round(1.0 - rank ** 1.5 / 10, 3) for rank in range(count)]
    cfg = load_config(None, ["method=apc", f"model.responders=[{','.join(f'm{r}' for r in range(count))}]",
                             *([f"apc.strengths=[{','.join(map(str, strengths))}]"] if measured else [])])
    builder = apc.build(ModelRoles.of(responders[0], responders=responders), cfg)
    pairs, rejects = builder(_items(tmp_path, [{"id": f"p{i}", "prompt": f"Prompt {i}."} for i in range(2)], "prompt"))
    assert not rejects
    ranks = {(p.chosen_rank, p.rejected_rank) for p in (Pair.from_json(r).provenance for r in pairs)}
    assert ranks == {(i, j) for i in range(count) for j in range(i + 1, count)} and len(pairs) == 2 * len(ranks)
    for row in pairs:
        assert apc_oriented(row) and not apc_oriented(swapped(row))
    by_gap = {}
    for row in pairs:  # the largest strength gap is the easiest pair
        p = Pair.from_json(row).provenance
        by_gap[p.strengths.chosen - p.strengths.rejected] = row["difficulty"]
    gaps = sorted(by_gap)
    assert [by_gap[g] for g in gaps] == sorted((by_gap[g] for g in gaps), reverse=True)
