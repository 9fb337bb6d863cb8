"""Typed constraints: every kind passes a response written for it and fails its negation; corruption,
phrasing, serialisation and compatibility rules; one check path shared with IFEval scoring."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from musc_ecd.constraints.typed import (
    TYPE_IDS,
    CorruptionUnavailable,
    TypedConstraint,
    UnknownConstraintError,
    compatible,
    conflict,
    corrupt,
    from_ifeval,
    group_of,
    to_ifeval,
)
from musc_ecd.constraints.typed.compatibility import incompatibility
from musc_ecd.constraints.typed.corruption import NO_SUBSTITUTE
from musc_ecd.evaluation.ifeval import score
from musc_ecd.store import read_jsonl

IFEVAL_INPUT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ifeval" / "input_data.jsonl"

# (id, kwargs, a response written to satisfy it) — one per kind, by hand.
CASES = [
    ("keywords:existence", {"keywords": ["harbor", "ferry"]}, "The ferry leaves the harbor at dawn every day."),
    ("keywords:frequency", {"keyword": "tide", "frequency": 3, "relation": "at least"},
     "The tide rose. A second tide followed, and the evening tide was the highest."),
    ("keywords:forbidden_words", {"forbidden_words": ["sugar"]}, "Use honey or dates to sweeten the cake."),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "less than"},
     "A calm morning by the lake."),
    ("language:response_language", {"language": "fr"},
     "Le marché ouvre tôt le samedi matin et les habitants viennent acheter du pain frais, des fromages et des "
     "légumes de saison."),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "at least"},
     "The first sentence sets the scene. The second one adds detail. The third one ends it."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "The first paragraph is about roots.\n***\nThe second paragraph is about leaves."),
    ("length_constraints:number_words", {"num_words": 10, "relation": "at least"},
     "Water the seedlings every morning and keep them near a bright window."),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "later"},
     "Morning starts with tea on the porch.\n\nLater we walk to the market."),
    ("detectable_content:number_placeholders", {"num_placeholders": 2}, "Dear [name], your order ships to [address]."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."}, "See you at the meeting.\nP.S. Bring the slides."),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "Two fruits:\n* apples\n* pears"),
    ("detectable_format:constrained_response", {}, "My answer is yes."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2}, "This is *important* and **urgent**."),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
     "Section 1\nWhy we start early.\nSection 2\nWhat we pack."),
    ("detectable_format:json_format", {}, '```json\n{"city": "Lisbon", "days": 3}\n```'),
    ("detectable_format:title", {}, "<<A Quiet Harbor>>\nThe boats rest at the pier."),
    ("combination:two_responses", {}, "Tea is calming.\n******\nCoffee is energising."),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Describe a lighthouse."},
     "Describe a lighthouse. It is a tall tower with a lamp that guides ships."),
    ("startend:end_checker", {"end_phrase": "Happy planning!"}, "Pack light and book early. Happy planning!"),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "This step is VERY IMPORTANT for everyone."),
    ("change_case:english_capital", {}, "THE TRAIN LEAVES AT NOON AND ARRIVES IN THE CITY BEFORE DINNER."),
    ("change_case:english_lowercase", {}, "the train leaves at noon and arrives in the city before dinner."),
    ("punctuation:no_comma", {}, "Rest well and drink plenty of water."),
    ("startend:quotation", {}, '"Stay curious and keep reading."'),
]
IDS = [c[0] for c in CASES]


def test_cases_cover_every_registered_kind():
    assert len(TYPE_IDS) == 25 and sorted(IDS) == sorted(TYPE_IDS)


@pytest.mark.parametrize(("instruction_id", "kwargs", "response"), CASES, ids=IDS)
def test_written_response_passes_and_fails_the_negation(instruction_id, kwargs, response):
    constraint = TypedConstraint(instruction_id, kwargs)
    assert constraint.check(response)
    negation = constraint.negate()
    assert negation != constraint
    assert not negation.check(response)


@pytest.mark.parametrize(("instruction_id", "kwargs", "response"), CASES, ids=IDS)
def test_check_is_the_scorer_s_verdict(instruction_id, kwargs, response):
    """One code path: the typed check and IFEval scoring agree, on a passing and a failing response."""
    constraint = TypedConstraint(instruction_id, kwargs)
    for text in (response, "1234"):
        row = {"key": 0, "prompt": "p", "instruction_id_list": [instruction_id], "kwargs": [kwargs]}
        (result,) = score([row], [text])
        assert result.strict == (constraint.check(text),)


# Responses written for the negation: they pass it and fail the original.
NEGATIVE_CASES = {
    "keywords:existence": "The boat leaves the pier at dawn.",
    "length_constraints:number_words": "Water them daily.",  # 3 < 10 // 2
    "change_case:english_capital": "the train leaves at noon and arrives in the city before dinner.",
    "length_constraints:nth_paragraph_first_word": "Morning starts with tea.\n\nThen we walk to the market.",
    "detectable_format:json_format": "Lisbon for three days.",
    "startend:end_checker": "Pack light and book early. Enjoy the trip.",
    "punctuation:no_comma": "Rest well, and drink water.",
    "language:response_language": "The market opens early on Saturday and people come to buy fresh bread.",
    "keywords:frequency": "The tide rose in the evening and the boats came home.",
    "keywords:forbidden_words": "Stir in two spoons of sugar and bake for forty minutes.",
    "keywords:letter_frequency": "A lazy zebra dozed in the hazy zoo.",
    "length_constraints:number_sentences": "One short sentence is enough here.",
    "length_constraints:number_paragraphs": "A single paragraph about roots and leaves, with no divider.",
    "detectable_content:number_placeholders": "Dear customer, your order ships today.",
    "detectable_content:postscript": "See you at the meeting and bring the slides.",
    "detectable_format:number_bullet_lists": "Two fruits: apples and pears.",
    "detectable_format:constrained_response": "I think we should go ahead.",
    "detectable_format:number_highlighted_sections": "This is important and urgent.",
    "detectable_format:multiple_sections": "Why we start early, and what we pack, in one go.",
    "detectable_format:title": "The boats rest at the pier.",
    "combination:two_responses": "Tea is calming and coffee is energising.",
    "combination:repeat_prompt": "A lighthouse is a tall tower with a lamp that guides ships.",
    "change_case:capital_word_frequency": "This step is important for everyone.",
    "change_case:english_lowercase": "THE TRAIN LEAVES AT NOON AND ARRIVES IN THE CITY BEFORE DINNER.",
    "startend:quotation": "Stay curious and keep reading.",
}


def test_every_kind_has_a_response_written_for_its_negation():
    assert sorted(NEGATIVE_CASES) == sorted(TYPE_IDS)


@pytest.mark.parametrize("instruction_id", sorted(NEGATIVE_CASES))
def test_response_written_for_the_negation_fails_the_original(instruction_id):
    kwargs = next(k for i, k, _ in CASES if i == instruction_id)
    constraint = TypedConstraint(instruction_id, kwargs)
    assert constraint.negate().check(NEGATIVE_CASES[instruction_id])
    assert not constraint.check(NEGATIVE_CASES[instruction_id])


def test_negation_rules_by_hand():
    words = TypedConstraint("length_constraints:number_words", {"num_words": 300, "relation": "at least"})
    assert words.negate().kwargs == {"num_words": 150, "relation": "less than"}
    assert words.negate().negate() == words
    keywords = TypedConstraint("keywords:existence", {"keywords": ["moon"]})
    assert keywords.negate() == TypedConstraint("keywords:forbidden_words", {"forbidden_words": ["moon"]})
    lower = TypedConstraint("change_case:english_lowercase")
    assert lower.negate().id == "change_case:english_capital" and lower.negate().negate() == lower
    title = TypedConstraint("detectable_format:title")
    assert title.negate().negated and title.negate().negate() == title
    assert TypedConstraint("language:response_language", {"language": "en"}).negate().negated


def test_undecided_passes_neither_the_constraint_nor_its_inverse():
    for instruction_id, kwargs, _ in CASES:
        constraint = TypedConstraint(instruction_id, kwargs)
        assert not constraint.check("   ") and not constraint.negate().check("   ")
    # no language can be detected in digits: neither "in English" nor "not in English" passes
    english = TypedConstraint("language:response_language", {"language": "en"})
    assert english.verdict("12345 678") is None
    assert not english.check("12345 678") and not english.negate().check("12345 678")


@pytest.mark.parametrize("instruction_id", TYPE_IDS)
def test_substitute_keeps_the_group_and_changes_the_kwargs(instruction_id):
    kwargs = next(k for i, k, _ in CASES if i == instruction_id)
    constraint = TypedConstraint(instruction_id, kwargs)
    if instruction_id in NO_SUBSTITUTE:
        with pytest.raises(CorruptionUnavailable):
            constraint.substitute(random.Random(0))
        assert constraint.operators() == ("drop", "negate")
        return
    for seed in range(5):
        other = constraint.substitute(random.Random(seed))
        assert other.group == constraint.group == group_of(instruction_id)
        assert (other.id, other.kwargs) != (constraint.id, constraint.kwargs)
    assert constraint.operators() == ("drop", "substitute", "negate")


def test_substitute_is_deterministic_and_loosens_bounds():
    words = TypedConstraint("length_constraints:number_words", {"num_words": 300, "relation": "at least"})
    assert words.substitute(random.Random(3)).kwargs == {"num_words": 150, "relation": "at least"}
    keyword = TypedConstraint("keywords:frequency", {"keyword": "tide", "frequency": 2, "relation": "at least"})
    assert keyword.substitute(random.Random(7)) == keyword.substitute(random.Random(7))
    with pytest.raises(CorruptionUnavailable):
        TypedConstraint("length_constraints:number_sentences", {"num_sentences": 1, "relation": "at least"}) \
            .substitute(random.Random(0))


def test_corrupt_applies_each_operator():
    constraint = TypedConstraint("keywords:existence", {"keywords": ["moon"]})
    assert corrupt(constraint, "drop", random.Random(0)) is None
    assert corrupt(constraint, "negate", random.Random(0)) == constraint.negate()
    assert corrupt(constraint, "substitute", random.Random(0)).id == "keywords:existence"
    with pytest.raises(ValueError, match="unknown corruption operator"):
        corrupt(constraint, "shuffle", random.Random(0))


@pytest.mark.parametrize(("instruction_id", "kwargs", "response"), CASES, ids=IDS)
def test_describe_is_deterministic_and_our_own_text(instruction_id, kwargs, response):
    from musc_ecd.checkers import build_checker

    constraint = TypedConstraint(instruction_id, kwargs)
    texts = {constraint.describe(random.Random(seed)) for seed in range(20)}
    assert constraint.describe(random.Random(5)) == constraint.describe(random.Random(5))
    assert all(t.strip() for t in texts)
    assert constraint.negate().describe(random.Random(0)).strip()
    if instruction_id not in ("length_constraints:number_paragraphs",):  # some kinds have one phrasing only
        assert len(texts) >= 2
    library_text = build_checker(instruction_id, kwargs, "p").build_description(**kwargs).lower().split()
    windows = {" ".join(library_text[i:i + 8]) for i in range(len(library_text) - 7)}
    for text in texts:
        words = text.lower().split()
        assert not windows & {" ".join(words[i:i + 8]) for i in range(len(words) - 7)}, text


def test_json_round_trip_and_ifeval_columns():
    constraints = [TypedConstraint(i, k) for i, k, _ in CASES]
    for c in constraints + [c.negate() for c in constraints]:
        assert TypedConstraint.from_json(c.to_json()) == c
    assert TypedConstraint("detectable_format:title").negate().to_json() == {
        "id": "detectable_format:title", "kwargs": {}, "negated": True}
    columns = to_ifeval(constraints)
    assert from_ifeval(columns["instruction_id_list"], columns["kwargs"]) == constraints
    with pytest.raises(UnknownConstraintError, match="typed inverses"):
        to_ifeval([constraints[0].negate().negate(), TypedConstraint("punctuation:no_comma").negate()])
    # IFEval files write absent kwargs as null; they are dropped
    assert TypedConstraint("punctuation:no_comma", {"keywords": None}).kwargs == {}
    assert len({TypedConstraint("punctuation:no_comma"), TypedConstraint("punctuation:no_comma")}) == 1


def test_unknown_ids_and_bad_kwargs_are_clear_errors():
    with pytest.raises(UnknownConstraintError, match="did you mean punctuation:no_comma"):
        TypedConstraint("punctuation:no_comas")
    with pytest.raises(UnknownConstraintError, match=r"missing \['relation'\]"):
        TypedConstraint("length_constraints:number_words", {"num_words": 5})
    with pytest.raises(UnknownConstraintError, match="not a valid relation"):
        TypedConstraint("length_constraints:number_words", {"num_words": 5, "relation": "at most"})
    with pytest.raises(UnknownConstraintError, match="unexpected"):
        TypedConstraint("detectable_format:title", {"num": 1})
    with pytest.raises(UnknownConstraintError, match="language"):
        TypedConstraint("language:response_language", {"language": "xx"})
    with pytest.raises(UnknownConstraintError, match="2 ids but kwargs has 1"):
        from_ifeval(["punctuation:no_comma", "detectable_format:title"], [{}])


@pytest.mark.skipif(not IFEVAL_INPUT.is_file(), reason=f"IFEval's input_data.jsonl is not at {IFEVAL_INPUT}")
def test_every_ifeval_row_parses_into_typed_constraints():
    rows = read_jsonl(IFEVAL_INPUT)
    parsed = [from_ifeval(r["instruction_id_list"], r["kwargs"]) for r in rows]
    assert len(parsed) == 541 and {c.id for cs in parsed for c in cs} == set(TYPE_IDS)


def test_compatibility_rules():
    def c(instruction_id, **kwargs):
        return TypedConstraint(instruction_id, kwargs)

    lower, upper = c("change_case:english_lowercase"), c("change_case:english_capital")
    assert conflict(lower, upper) and not compatible([lower, upper])
    assert conflict(c("keywords:forbidden_words", forbidden_words=["tide"]), c("keywords:existence", keywords=["tide"]))
    assert conflict(c("punctuation:no_comma"), c("startend:end_checker", end_phrase="Thanks, all."))
    assert conflict(lower, c("detectable_format:multiple_sections", section_spliter="SECTION", num_sections=2))
    assert conflict(c("language:response_language", language="de"), c("keywords:existence", keywords=["tide"]))
    assert conflict(c("detectable_format:json_format"), c("punctuation:no_comma"))
    assert not conflict(c("detectable_format:json_format"), c("keywords:existence", keywords=["tide"]))
    short = c("length_constraints:number_words", num_words=50, relation="less than")
    assert "words" in incompatibility([short, c("length_constraints:number_paragraphs", num_paragraphs=5)])
    few = c("length_constraints:number_sentences", num_sentences=3, relation="less than")
    assert incompatibility([few, c("detectable_format:number_bullet_lists", num_bullets=4)])
    assert compatible([lower, c("punctuation:no_comma"), c("detectable_format:title"),
                       c("length_constraints:number_words", num_words=120, relation="at least")])
