"""Whether an instruction states a typed constraint: a rewrite must not drop one that its pair still carries.

An instruction states a typed constraint when it holds the sentence the constraint was written as (case,
spacing, quote style and final punctuation aside), or — for a rewrite that rephrased it — when every value the
constraint's checker tests appears in it: its numbers (as digits or words), keywords, forbidden words, phrases,
markers, letter and language. Relations ("less than" / "at least") are not looked for: they have too many
phrasings to match, so a rephrasing that keeps the values but turns the comparison around passes. A kind without
values (no commas, JSON, a title…) is stated only by its sentence.
"""

from __future__ import annotations

import re

from musc_ecd.constraints.typed.constraint import TypedConstraint
from musc_ecd.constraints.typed.phrasing import ORDINALS
from musc_ecd.constraints.typed.registry import language_names

CARDINALS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
             "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
UNSTATED_KWARGS = ("relation", "let_relation", "capital_relation", "prompt_to_repeat")
"""Kwargs whose value is not looked for (see the module docstring; the prompt to repeat is the instruction)."""
_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


def states(instruction: str, constraint: TypedConstraint, sentence: str | None = None) -> bool:
    """Does ``instruction`` state ``constraint`` (written as ``sentence``, when known)?"""
    text = _normal(instruction)
    if sentence and _normal(sentence).rstrip(".!?") in text:
        return True
    values = anchors(constraint)
    return bool(values) and all(any(_mentions(text, form) for form in forms) for forms in values)


def anchors(constraint: TypedConstraint) -> list[tuple[str, ...]]:
    """The values a statement of ``constraint`` must name, each as the forms it may take."""
    out = []
    for key, value in constraint.kwargs.items():
        if key in UNSTATED_KWARGS:
            continue
        if key == "language":
            out.append((language_names()[value].lower(),))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            out.append(_number_forms(value))
        elif isinstance(value, list):
            out += [(_normal(str(v)),) for v in value]
        elif isinstance(value, str) and value.strip():
            out.append((_normal(value),))
    return out


def _number_forms(n: int) -> tuple[str, ...]:
    forms = [str(n)]
    if 0 <= n < len(CARDINALS):
        forms.append(CARDINALS[n])
    if 1 <= n <= len(ORDINALS):
        forms.append(ORDINALS[n - 1])
    return tuple(forms)


def _mentions(text: str, form: str) -> bool:
    """``form`` in ``text`` as a whole word or phrase (not inside a longer word or number)."""
    return re.search(rf"(?<![a-z0-9]){re.escape(form)}(?![a-z0-9])", text) is not None


def _normal(text: str) -> str:
    return " ".join(text.translate(_QUOTES).lower().split())
