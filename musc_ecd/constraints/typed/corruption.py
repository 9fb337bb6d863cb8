"""MuSC's corruption operators on typed kwargs: negate and substitute (METHODS.md 1a, step 3).

``negate`` gives an instruction a response cannot follow while following the original (except where
noted), so that an answer written to the negation is a true negative:

- a relation is flipped where the complement is a natural instruction (``at least N`` ↔ ``less than
  N`` for sentences, a keyword's or letter's count, all-capital words);
- "at least N words" → "fewer than N/2 words", "fewer than N words" → "at least 2N words" (a margin,
  so the rejected answer is clearly on the other side; the issue's own example);
- include keywords ↔ forbid them (the inclusion check matches inside longer words, the ban only whole
  words, so an answer saying "cats" meets both "include cat" and "forbid cat");
- all lowercase ↔ all capitals; exactly N paragraphs → one paragraph (one → three); exactly N bullets →
  none (none → three); a non-English language → English;
- every other kind becomes its *typed inverse* (``negated=True``): it passes exactly when the original's
  checker decides that the response fails it. That is the exact logical negation, and an undecided
  verdict (empty response, no detectable language) passes neither.

``substitute`` keeps the group and changes the kwargs, towards a constraint an answer can meet while
missing the original: another keyword, letter, language, phrase, marker or first word; a different exact
count; a looser bound (half an "at least" threshold, twice a "less than" one). A kwarg-free kind moves to
another kind of its group. ``punctuation:no_comma``, ``combination:two_responses`` and
``combination:repeat_prompt`` have no substitute (no kwargs, and no sibling that stands in for them):
``CorruptionUnavailable`` says so, and a method falls back to another operator.
"""

from __future__ import annotations

import random

from musc_ecd.constraints.typed import vocabulary as vocab

Triple = tuple[str, dict, bool]  # (id, kwargs, negated)


class CorruptionUnavailable(ValueError):
    """The operator cannot be applied to this constraint (e.g. no substitute exists for its kind)."""


def _flip(relation: str) -> str:
    return "at least" if relation == "less than" else "less than"


def _flip_key(key: str):
    return lambda k: (None, {**k, key: _flip(k[key])}, False)


def _words(k: dict) -> Triple:
    n = k["num_words"]
    if k["relation"] == "at least":
        return None, {"num_words": max(1, n // 2), "relation": "less than"}, False
    return None, {"num_words": 2 * n, "relation": "at least"}, False


NEGATIONS = {
    "keywords:existence": lambda k: ("keywords:forbidden_words", {"forbidden_words": list(k["keywords"])}, False),
    "keywords:forbidden_words": lambda k: ("keywords:existence", {"keywords": list(k["forbidden_words"])}, False),
    "keywords:frequency": _flip_key("relation"),
    "keywords:letter_frequency": _flip_key("let_relation"),
    "length_constraints:number_sentences": _flip_key("relation"),
    "length_constraints:number_words": _words,
    "change_case:capital_word_frequency": _flip_key("capital_relation"),
    "length_constraints:number_paragraphs": lambda k: (None, {"num_paragraphs": 1 if k["num_paragraphs"] > 1
                                                              else 3}, False),
    "detectable_format:number_bullet_lists": lambda k: (None, {"num_bullets": 0 if k["num_bullets"] > 0 else 3},
                                                        False),
    "change_case:english_capital": lambda k: ("change_case:english_lowercase", {}, False),
    "change_case:english_lowercase": lambda k: ("change_case:english_capital", {}, False),
    "language:response_language": lambda k: (None, {"language": "en"}, False) if k["language"] != "en"
    else (None, k, True),
}


def negate(instruction_id: str, kwargs: dict, negated: bool) -> Triple:
    if negated:  # the inverse of an inverse is the constraint itself
        return instruction_id, kwargs, False
    rule = NEGATIONS.get(instruction_id)
    if rule is None:
        return instruction_id, kwargs, True
    new_id, new_kwargs, new_negated = rule(kwargs)
    return new_id or instruction_id, new_kwargs, new_negated


def _other(pool, current, rng: random.Random):
    choices = [v for v in pool if v not in current]
    if not choices:
        raise CorruptionUnavailable(f"no value left in the pool besides {current}")
    return rng.choice(choices)


def _other_words(current: list[str], rng: random.Random) -> list[str]:
    choices = [w for w in vocab.GENERIC_WORDS if w not in {c.lower() for c in current}]
    return sorted(rng.sample(choices, len(current)))


def _looser(n: int, relation: str) -> int:
    looser = n // 2 if relation == "at least" else 2 * n
    if looser < 1 or looser == n:
        raise CorruptionUnavailable(f"'{relation} {n}' has no looser bound")
    return looser


def _other_count(n: int, low: int, high: int, rng: random.Random) -> int:
    return rng.choice([v for v in range(low, high + 1) if v != n])


def _first_word(k: dict, rng: random.Random) -> dict:
    return {**k, "first_word": _other(vocab.GENERIC_WORDS, {k["first_word"]}, rng)}


SUBSTITUTES = {
    "keywords:existence": lambda k, rng: ("keywords:existence", {"keywords": _other_words(k["keywords"], rng)}),
    "keywords:forbidden_words": lambda k, rng: ("keywords:forbidden_words",
                                                {"forbidden_words": _other_words(k["forbidden_words"], rng)}),
    "keywords:frequency": lambda k, rng: ("keywords:frequency",
                                          {**k, "keyword": _other(vocab.GENERIC_WORDS, {k["keyword"]}, rng)}),
    "keywords:letter_frequency": lambda k, rng: (
        "keywords:letter_frequency",
        {**k, "letter": _other(vocab.COMMON_LETTERS if k["let_relation"] == "at least" else vocab.RARE_LETTERS,
                               {k["letter"]}, rng)}),
    "language:response_language": lambda k, rng: ("language:response_language",
                                                  {"language": _other(vocab.LANGUAGES, {k["language"], "en"}, rng)}),
    "length_constraints:number_sentences": lambda k, rng: (
        "length_constraints:number_sentences", {**k, "num_sentences": _looser(k["num_sentences"], k["relation"])}),
    "length_constraints:number_words": lambda k, rng: (
        "length_constraints:number_words", {**k, "num_words": _looser(k["num_words"], k["relation"])}),
    "length_constraints:number_paragraphs": lambda k, rng: (
        "length_constraints:number_paragraphs", {"num_paragraphs": _other_count(k["num_paragraphs"], 1, 6, rng)}),
    "length_constraints:nth_paragraph_first_word": lambda k, rng: (
        "length_constraints:nth_paragraph_first_word", _first_word(k, rng)),
    "detectable_content:number_placeholders": lambda k, rng: (
        ("detectable_content:number_placeholders", {"num_placeholders": k["num_placeholders"] // 2})
        if k["num_placeholders"] >= 2 else
        ("detectable_content:postscript", {"postscript_marker": rng.choice(vocab.POSTSCRIPT_MARKERS)})),
    "detectable_content:postscript": lambda k, rng: (
        # "P.P.S" contains "P.S.", so an answer to a P.P.S substitute would still meet a P.S. original
        ("detectable_content:postscript", {"postscript_marker": "P.P.S" if k["postscript_marker"] != "P.P.S"
                                           else "P.S."})
        if k["postscript_marker"] != "P.S." else
        ("detectable_content:number_placeholders", {"num_placeholders": rng.randint(1, 3)})),
    "detectable_format:number_bullet_lists": lambda k, rng: (
        "detectable_format:number_bullet_lists", {"num_bullets": _other_count(k["num_bullets"], 1, 7, rng)}),
    "detectable_format:number_highlighted_sections": lambda k, rng: (
        ("detectable_format:number_highlighted_sections", {"num_highlights": k["num_highlights"] // 2})
        if k["num_highlights"] >= 2 else ("detectable_format:title", {})),
    "detectable_format:multiple_sections": lambda k, rng: (
        "detectable_format:multiple_sections",
        # the marker is matched case-sensitively, so "SECTION 1" headings do not count as "Section" ones
        {"section_spliter": _other(vocab.SECTION_SPLITTERS, {k["section_spliter"]}, rng),
         "num_sections": k["num_sections"]}),
    "detectable_format:constrained_response": lambda k, rng: ("detectable_format:title", {}),
    "detectable_format:json_format": lambda k, rng: ("detectable_format:title", {}),
    "detectable_format:title": lambda k, rng: ("detectable_format:json_format", {}),
    "startend:end_checker": lambda k, rng: (
        "startend:end_checker",
        {"end_phrase": _other([p for p in vocab.END_PHRASES if not p.lower().endswith(k["end_phrase"].lower())
                               and not k["end_phrase"].lower().endswith(p.lower())], set(), rng)}),
    "startend:quotation": lambda k, rng: ("startend:end_checker", {"end_phrase": rng.choice(vocab.END_PHRASES)}),
    "change_case:capital_word_frequency": lambda k, rng: (
        "change_case:capital_word_frequency",
        {**k, "capital_frequency": _looser(k["capital_frequency"], k["capital_relation"])}),
    "change_case:english_capital": lambda k, rng: ("change_case:capital_word_frequency",
                                                   {"capital_frequency": 5, "capital_relation": "at least"}),
    "change_case:english_lowercase": lambda k, rng: ("change_case:capital_word_frequency",
                                                     {"capital_frequency": 3, "capital_relation": "less than"}),
}
NO_SUBSTITUTE = ("punctuation:no_comma", "combination:two_responses", "combination:repeat_prompt")


def substitute(instruction_id: str, kwargs: dict, negated: bool, rng: random.Random) -> tuple[str, dict]:
    if negated:
        raise CorruptionUnavailable(f"{instruction_id}: a typed inverse is itself a corruption; substitute the "
                                    "original")
    rule = SUBSTITUTES.get(instruction_id)
    if rule is None:
        raise CorruptionUnavailable(f"{instruction_id} has no substitute (no kwargs, and no sibling in its group "
                                    "that stands in for it); use drop or negate")
    return rule(kwargs, rng)
