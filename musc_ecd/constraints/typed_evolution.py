"""ECD's format operations as typed constraints (``ecd.typed_format=true``).

A format operation (METHODS.md §2: length limit, required structure, forbidden words, wrapper) adds a
requirement that code can check; drawn as a typed constraint, its text comes from ``describe`` and whether
an answer meets it from the checker IFEval scoring uses. So the round's "does R^{k-1} already satisfy
I^k?" filter runs by code, and every pair's prompt carries checkable constraints for the label audit. The
evolver is not called for such a round; in an instruction the requirement is appended, as in
``ecd.compose=append``. A kind is drawn only when it is compatible with the chain's typed constraints so far
(``compatibility``); when none is, the chain ends (``no_compatible_typed_requirement``).
"""

from __future__ import annotations

import random
import re

from musc_ecd.constraints.typed import TypedConstraint, compatible
from musc_ecd.constraints.typed.seeds import draw_kwargs

KINDS_BY_OPERATION: dict[str, tuple[str, ...]] = {
    "length": ("length_constraints:number_words", "length_constraints:number_sentences",
               "length_constraints:number_paragraphs"),
    "structure": ("detectable_format:number_bullet_lists", "detectable_format:multiple_sections",
                  "detectable_format:number_highlighted_sections", "detectable_format:title"),
    "forbidden": ("keywords:forbidden_words", "punctuation:no_comma", "keywords:letter_frequency"),
    "wrapper": ("startend:quotation", "startend:end_checker", "detectable_content:postscript"),
}
_WORD = re.compile(r"[a-z]{5,}")
_COMMON = frozenset("about write which their there would could should these those where while after before other "
                    "every using words sentence answer please given short least three".split())


def topic_words(instruction: str) -> list[str]:
    """Content words of the instruction (5+ letters), first occurrence order: what a forbidden word, a keyword
    or a first word is drawn from."""
    words = [w for w in _WORD.findall(instruction.lower()) if w not in _COMMON]
    return list(dict.fromkeys(words)) or ["answer"]


def draw_requirement(operation: str, instruction: str, existing: list[TypedConstraint],
                     rng: random.Random) -> tuple[TypedConstraint, str] | None:
    """A typed requirement for a format operation, compatible with ``existing``, and its sentence."""
    kinds = list(KINDS_BY_OPERATION[operation])
    rng.shuffle(kinds)
    keywords = topic_words(instruction)
    for kind in kinds:
        kwargs = draw_kwargs(kind, keywords, rng)
        if operation == "forbidden" and kind == "keywords:letter_frequency":
            kwargs = {**kwargs, "let_relation": "less than"}  # a *restriction* on a letter, as the operation says
            kwargs["let_frequency"] = min(kwargs["let_frequency"], 6)
        candidate = TypedConstraint(kind, kwargs)
        if candidate not in existing and compatible([*existing, candidate]):
            return candidate, candidate.describe(rng)
    return None
