"""Which typed constraints can be asked for in one instruction: no contradictory combinations.

Three layers, each returning the reason for a refusal (or None):

1. kinds that never go together — IFEval's own conflict table (its ``INSTRUCTION_CONFLICTS``: e.g. JSON
   output with almost anything, all-lowercase with all-capitals) plus two of this project's (an end
   phrase with a postscript or closing quotes: both claim the last characters); a kind twice;
2. kwargs that contradict — a banned word, a capped letter or keyword, or a comma that another constraint
   requires the answer to contain (its end phrase, first word, keywords, section markers, the request
   to repeat); a case rule against a case-sensitive marker; a language other than English against any
   constraint written in English words;
3. a budget — the words and sentences the constraints demand together must fit any upper bound.
The budget uses rough minimum sizes (a paragraph at least 12 words, a sentence 3), so it refuses some
feasible sets rather than admitting infeasible ones.
"""

from __future__ import annotations

import itertools
import re

from musc_ecd.constraints.typed.constraint import TypedConstraint

ALONE = "detectable_format:constrained_response"  # a fixed verdict sentence: nothing else makes sense with it
ONLY_WITH = {  # kinds that allow only these companions (IFEval's table)
    "detectable_format:json_format": {"keywords:existence", "keywords:forbidden_words"},
    "combination:two_responses": {"keywords:existence", "keywords:forbidden_words", "language:response_language",
                                  "detectable_format:title", "punctuation:no_comma"},
    "combination:repeat_prompt": {"keywords:existence", "detectable_format:title", "punctuation:no_comma"},
}
PAIRS = {frozenset(p) for p in (
    ("change_case:english_lowercase", "change_case:english_capital"),
    ("change_case:capital_word_frequency", "change_case:english_lowercase"),
    ("change_case:capital_word_frequency", "change_case:english_capital"),
    ("length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word"),
    ("length_constraints:number_paragraphs", "length_constraints:number_sentences"),
    ("detectable_format:multiple_sections", "detectable_format:number_highlighted_sections"),
    ("startend:quotation", "detectable_format:title"),
    ("startend:end_checker", "detectable_content:postscript"),
    ("startend:end_checker", "startend:quotation"),
)}
ENGLISH_WORDED = {"keywords:existence", "keywords:frequency", "keywords:forbidden_words", "keywords:letter_frequency",
                  "startend:end_checker", "change_case:english_capital", "change_case:english_lowercase",
                  "change_case:capital_word_frequency", "detectable_format:multiple_sections",
                  "length_constraints:nth_paragraph_first_word", "combination:repeat_prompt"}


def required_text(c: TypedConstraint) -> list[str]:
    """Text any answer meeting ``c`` must contain (each string as often as listed)."""
    k = c.kwargs
    if c.negated:
        return []
    if c.id == "keywords:existence":
        return list(k["keywords"])
    if c.id == "keywords:frequency" and k["relation"] == "at least":
        return [k["keyword"]] * k["frequency"]
    if c.id == "length_constraints:nth_paragraph_first_word":
        return [k["first_word"]]
    if c.id == "startend:end_checker":
        return [k["end_phrase"]]
    if c.id == "detectable_content:postscript":
        return [k["postscript_marker"]]
    if c.id == "detectable_format:multiple_sections":
        return [f"{k['section_spliter']} {i}" for i in range(1, k["num_sections"] + 1)]
    if c.id == "combination:repeat_prompt":
        return [k["prompt_to_repeat"]]
    return []


def _kinds_conflict(a: TypedConstraint, b: TypedConstraint) -> str | None:
    if a.id == b.id:
        return f"{a.id} twice"
    if ALONE in (a.id, b.id):
        return f"{ALONE} goes with nothing else"
    for x, y in ((a, b), (b, a)):
        if x.id in ONLY_WITH and y.id not in ONLY_WITH[x.id]:
            return f"{x.id} does not go with {y.id}"
        if x.id == "language:response_language" and x.kwargs["language"] != "en" and y.id in ENGLISH_WORDED:
            return f"{y.id} is written in English words, the answer in {x.kwargs['language']}"
    if frozenset((a.id, b.id)) in PAIRS:
        return f"{a.id} contradicts {b.id}"
    return None


def _kwargs_conflict(x: TypedConstraint, y: TypedConstraint) -> str | None:
    """Does ``x`` forbid or cap something ``y`` requires?"""
    needed = required_text(y)
    text = "\n".join(needed).lower()
    k = x.kwargs
    if x.negated or not needed:
        return None
    if x.id == "keywords:forbidden_words":
        banned = [w for w in k["forbidden_words"] if re.search(r"\b" + re.escape(w.lower()) + r"\b", text)]
        if banned:
            return f"{y.id} requires {banned}, which {x.id} bans"
    if x.id == "keywords:frequency" and k["relation"] == "less than":
        if text.count(k["keyword"].lower()) >= k["frequency"]:
            return f"{y.id} requires '{k['keyword']}' at least {k['frequency']} times"
    if x.id == "keywords:letter_frequency" and k["let_relation"] == "less than":
        if text.count(k["letter"].lower()) >= k["let_frequency"]:
            return f"{y.id} requires the letter '{k['letter']}' too often"
    if x.id == "punctuation:no_comma" and "," in text:
        return f"{y.id} requires a comma"
    markers = "\n".join(needed) if y.id == "detectable_format:multiple_sections" else ""
    if x.id == "change_case:english_lowercase" and markers != markers.lower():
        return f"{y.id}'s case-sensitive marker has capitals"
    if x.id == "change_case:english_capital" and markers != markers.upper():
        return f"{y.id}'s case-sensitive marker has lowercase letters"
    return None


def conflict(a: TypedConstraint, b: TypedConstraint) -> str | None:
    """Why ``a`` and ``b`` cannot be asked for together, or None."""
    return _kinds_conflict(a, b) or _kwargs_conflict(a, b) or _kwargs_conflict(b, a)


MIN_WORDS_PER = {"length_constraints:number_paragraphs": ("num_paragraphs", 12),
                 "length_constraints:nth_paragraph_first_word": ("num_paragraphs", 12),
                 "detectable_format:multiple_sections": ("num_sections", 12),
                 "detectable_format:number_bullet_lists": ("num_bullets", 3),
                 "detectable_format:number_highlighted_sections": ("num_highlights", 2),
                 "detectable_content:number_placeholders": ("num_placeholders", 1)}
PARTS = {"length_constraints:number_paragraphs": "num_paragraphs",
         "length_constraints:nth_paragraph_first_word": "num_paragraphs",
         "detectable_format:multiple_sections": "num_sections", "detectable_format:number_bullet_lists": "num_bullets"}


def _min_words(c: TypedConstraint) -> int:
    k = c.kwargs
    if c.negated:
        return 0
    if c.id in MIN_WORDS_PER:
        key, per = MIN_WORDS_PER[c.id]
        return per * k[key]
    if c.id == "length_constraints:number_sentences" and k["relation"] == "at least":
        return 3 * k["num_sentences"]
    if c.id == "length_constraints:number_words" and k["relation"] == "at least":
        return k["num_words"]
    if c.id == "change_case:capital_word_frequency" and k["capital_relation"] == "at least":
        return k["capital_frequency"]
    if c.id == "combination:two_responses":
        return 20
    return sum(len(t.split()) for t in required_text(c))


def _budget(constraints: list[TypedConstraint]) -> str | None:
    by_id = {c.id: c for c in constraints if not c.negated}
    words = by_id.get("length_constraints:number_words")
    demand = sum(_min_words(c) for c in constraints if c is not words)
    if words is not None and words.kwargs["relation"] == "less than" and demand >= words.kwargs["num_words"]:
        return f"the other constraints need about {demand} words, more than the bound of {words.kwargs['num_words']}"
    sentences = by_id.get("length_constraints:number_sentences")
    if sentences is not None and sentences.kwargs["relation"] == "less than":
        bound = sentences.kwargs["num_sentences"]
        parts = max([c.kwargs[PARTS[c.id]] for c in constraints if c.id in PARTS and not c.negated] +
                    [2 if "combination:two_responses" in by_id else 1])
        if parts >= bound:
            return f"{parts} paragraphs, sections or bullets need at least {parts} sentences, the bound is {bound}"
        long_answer = words is not None and words.kwargs["relation"] == "at least"
        if long_answer and words.kwargs["num_words"] > 40 * (bound - 1):
            return f"{words.kwargs['num_words']} words in fewer than {bound} sentences"
    return None


def incompatibility(constraints: list[TypedConstraint]) -> str | None:
    """Why these constraints cannot be asked for together, or None."""
    for a, b in itertools.combinations(constraints, 2):
        reason = conflict(a, b)
        if reason:
            return reason
    return _budget(constraints)


def compatible(constraints: list[TypedConstraint]) -> bool:
    return incompatibility(list(constraints)) is None
