"""The registry of typed constraint kinds: IFEval's 25 instruction ids and the kwargs each one takes.

Keyed by the dataset's own ids (``group:name``), as lm-evaluation-harness keys its IFEval task. A kind's
kwargs are all required: the library's checkers draw a missing value from the global ``random`` state,
which would make a verdict depend on what ran before it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from musc_ecd.errors import DataError

RELATIONS = ("less than", "at least")  # the two comparisons IFEval's counting checkers know


class UnknownConstraintError(DataError):
    """An instruction id the registry does not know, or kwargs that do not fit its kind."""


@dataclass(frozen=True)
class Kind:
    id: str
    params: tuple[tuple[str, type], ...] = ()
    """(kwarg, type) pairs; ``list`` means a non-empty list of strings."""

    @property
    def group(self) -> str:
        return self.id.split(":", 1)[0]


_KINDS = (
    Kind("keywords:existence", (("keywords", list),)),
    Kind("keywords:frequency", (("keyword", str), ("frequency", int), ("relation", str))),
    Kind("keywords:forbidden_words", (("forbidden_words", list),)),
    Kind("keywords:letter_frequency", (("letter", str), ("let_frequency", int), ("let_relation", str))),
    Kind("language:response_language", (("language", str),)),
    Kind("length_constraints:number_sentences", (("num_sentences", int), ("relation", str))),
    Kind("length_constraints:number_paragraphs", (("num_paragraphs", int),)),
    Kind("length_constraints:number_words", (("num_words", int), ("relation", str))),
    Kind("length_constraints:nth_paragraph_first_word",
         (("num_paragraphs", int), ("nth_paragraph", int), ("first_word", str))),
    Kind("detectable_content:number_placeholders", (("num_placeholders", int),)),
    Kind("detectable_content:postscript", (("postscript_marker", str),)),
    Kind("detectable_format:number_bullet_lists", (("num_bullets", int),)),
    Kind("detectable_format:constrained_response"),
    Kind("detectable_format:number_highlighted_sections", (("num_highlights", int),)),
    Kind("detectable_format:multiple_sections", (("section_spliter", str), ("num_sections", int))),
    Kind("detectable_format:json_format"),
    Kind("detectable_format:title"),
    Kind("combination:two_responses"),
    Kind("combination:repeat_prompt", (("prompt_to_repeat", str),)),
    Kind("startend:end_checker", (("end_phrase", str),)),
    Kind("change_case:capital_word_frequency", (("capital_frequency", int), ("capital_relation", str))),
    Kind("change_case:english_capital"),
    Kind("change_case:english_lowercase"),
    Kind("punctuation:no_comma"),
    Kind("startend:quotation"),
)

KINDS: dict[str, Kind] = {kind.id: kind for kind in _KINDS}
TYPE_IDS: tuple[str, ...] = tuple(KINDS)


def kind(instruction_id: str) -> Kind:
    """The registered kind, or an error that names the closest ids."""
    try:
        return KINDS[instruction_id]
    except KeyError:
        close = difflib.get_close_matches(str(instruction_id), TYPE_IDS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known ids: {', '.join(TYPE_IDS)}"
        raise UnknownConstraintError(f"unknown constraint id '{instruction_id}'{hint}") from None


def group_of(instruction_id: str) -> str:
    return kind(instruction_id).group


def ids_in_group(group: str) -> tuple[str, ...]:
    return tuple(i for i in TYPE_IDS if KINDS[i].group == group)


def normalize_kwargs(instruction_id: str, kwargs: dict | None) -> dict:
    """Exactly the kind's kwargs, type-checked; IFEval files' ``None`` placeholders are dropped."""
    spec = kind(instruction_id)
    given = {k: v for k, v in (kwargs or {}).items() if v is not None}
    names = [name for name, _ in spec.params]
    extra = sorted(set(given) - set(names))
    missing = [name for name in names if name not in given]
    if extra or missing:
        parts = ([f"unexpected {extra}"] if extra else []) + ([f"missing {missing}"] if missing else [])
        raise UnknownConstraintError(f"{instruction_id}: kwargs {'; '.join(parts)} (it takes {names or 'none'})")
    normalized = {}
    for name, expected in spec.params:
        value = given[name]
        if expected is list:
            ok = isinstance(value, list | tuple) and value and all(isinstance(v, str) and v.strip() for v in value)
            value = list(value) if ok else value
        elif expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        else:
            ok = isinstance(value, str) and bool(value.strip())
        if ok and name.endswith("relation"):
            ok = value in RELATIONS
        if ok and name == "language":
            ok = value in language_names()
        if not ok:
            what = ("relation " + str(RELATIONS) if name.endswith("relation") else
                    "language code the checker knows" if name == "language" else expected.__name__)
            raise UnknownConstraintError(f"{instruction_id}: kwarg {name}={value!r} is not a valid {what}")
        normalized[name] = value
    return normalized


def language_names() -> dict[str, str]:
    """ISO 639-1 code -> English name, the table the language checker formats its own text with."""
    from if_verifiable.ifeval.instructions_util import LANGUAGE_CODES

    return dict(LANGUAGE_CODES)
