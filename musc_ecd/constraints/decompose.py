"""Decompose an instruction into atomic constraints (MuSC §1a step 1): prompt, strict parser, fallback.

The model is asked for a numbered list after ``Constraints:`` and an ``Input:`` line. ``parse_decomposition``
accepts the usual numbering styles (``1.``, ``1)``, ``(1)``, ``-``, ``*``, ``Constraint 1:``) and ignores
chatter around the list, but returns ``None`` rather than guess when no list is there. Then
``fallback_decomposition`` splits the instruction itself with spaCy (blank English + sentencizer, then
clause splitting on ``;`` and on ``and``/``but`` before an imperative), and provenance records which
path produced the constraints. Either way a constraint listed again (the same words but for case, spacing,
punctuation and numbering: a small model may list the same four constraints nine times) is kept once, and
``repeats_removed`` counts the copies left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Literal

from musc_ecd.prompts import load_template

Source = Literal["parsed", "spacy_fallback", "seed"]
"""How the list was made: the model's answer parsed, spaCy's sentences when it could not be, or a verifiable seed's
typed constraints alone (MuSC fine judged by code with ``model.judge_untyped=skip``: nobody asks the model)."""

_ITEM = re.compile(r"^\s*(?:\(?\d{1,2}[.):]|\d{1,2}\s*[-–]|[-*•]|constraint\s*\d{1,2}\s*[:.)-])\s*(?P<text>\S.*)$",
                   re.IGNORECASE)
_INPUT = re.compile(r"^\s*input\s*:\s*(?P<text>.*)$", re.IGNORECASE)
_STOP = re.compile(r"^\s*(?:instruction|###)\b", re.IGNORECASE)  # the model started a new few-shot block
_NONE = {"", "none", "n/a", "na", "no input", "(none)", "-"}
_IMPERATIVES = ("do not", "don't", "use", "make", "include", "write", "keep", "end", "start", "begin", "avoid",
                "add", "answer", "respond", "limit", "mention", "format", "wrap", "give", "list", "explain",
                "highlight", "put", "separate", "finish", "provide", "ensure", "never", "always", "exclude")
# numbering left inside an item's text ("1. 1) Write"), never a number of the constraint ("100-word", "2.5 hours")
_NUMBERING = re.compile(r"^\s*(?:\(?\d{1,3}[.):]|constraint\s*\d{1,3}\s*[:.)-])(?=\s|$)\s*", re.IGNORECASE)
_WORDS = re.compile(r"[^\W_]+")
_CLAUSE_SPLIT = re.compile(r"\s*;\s*|,?\s+(?:and|but|then)\s+(?=(?:" + "|".join(map(re.escape, _IMPERATIVES)) + r")\b)",
                           re.IGNORECASE)


@dataclass(frozen=True)
class Decomposition:
    constraints: tuple[str, ...]
    input: str | None
    source: Source
    repeats_removed: int = 0
    """Constraints listed again and left out (see ``distinct_constraints``); 0 in pairs written before."""

    def to_json(self) -> dict:
        return {"constraints": list(self.constraints), "input": self.input, "source": self.source,
                "repeats_removed": self.repeats_removed}

    @classmethod
    def from_json(cls, record: dict) -> Decomposition:
        return cls(tuple(record["constraints"]), record.get("input"), record["source"],
                   record.get("repeats_removed", 0))


def constraint_key(text: str) -> str:
    """What two listings of one constraint share: its words, lowercased, without numbering or punctuation."""
    previous = None
    while previous != text:  # "1. 1) Write" — numbering the model repeated
        previous, text = text, _NUMBERING.sub("", text, count=1)
    return " ".join(_WORDS.findall(text.lower()))


def distinct_constraints(constraints) -> tuple[tuple[str, ...], int]:
    """Each constraint once, in first-listed order, and how many repeats were left out."""
    seen: set[str] = set()
    kept = []
    for constraint in constraints:
        key = constraint_key(constraint)
        if key not in seen:
            seen.add(key)
            kept.append(constraint)
    return tuple(kept), len(constraints) - len(kept)


def decompose_request(instruction: str) -> list[dict]:
    return load_template("decompose").chat(instruction=instruction.strip())


def parse_decomposition(text: str) -> Decomposition | None:
    """Constraints and input from the model's answer, or None when there is no numbered list.

    Lines before the list (chatter, a ``Constraints:`` header) are skipped; a new few-shot block
    (``Instruction:`` / ``###``) ends the answer; the input runs from ``Input:`` to the end.
    """
    constraints: list[str] = []
    input_lines: list[str] | None = None
    for line in text.splitlines():
        if _STOP.match(line) and (constraints or input_lines is not None):
            break
        if input_lines is not None:
            input_lines.append(line)
            continue
        input_match = _INPUT.match(line)
        item = _ITEM.match(line)
        if input_match:
            input_lines = [input_match.group("text")]
        elif item and _clean(item.group("text")):
            constraints.append(_clean(item.group("text")))
    if not constraints:
        return None
    raw_input = "\n".join(input_lines).strip() if input_lines is not None else ""
    kept, repeats = distinct_constraints(constraints)
    return Decomposition(kept, None if raw_input.lower() in _NONE else raw_input, "parsed", repeats)


def fallback_decomposition(instruction: str) -> Decomposition:
    """Constraints from the instruction's own sentences and clauses (spaCy sentencizer, then regex)."""
    constraints: list[str] = []
    for sentence in _sentencizer()(instruction.strip()).sents:
        for clause in _CLAUSE_SPLIT.split(sentence.text):
            clause = _clean(clause)
            if clause:
                constraints.append(clause)
    kept, repeats = distinct_constraints(constraints)
    return Decomposition(kept, None, "spacy_fallback", repeats)


def _clean(text: str) -> str:
    """Collapse whitespace, drop quotes around the whole item and one trailing period (not a quoted one)."""
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"' and text.count('"') == 2:
        text = text[1:-1].strip()
    return text[:-1].rstrip() if text.endswith(".") else text


@cache
def _sentencizer():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def decompose_all(generator, instructions: list[str], params) -> list[tuple[Decomposition, str]]:
    """One batched policy call: (decomposition, raw model output) per instruction, fallback included."""
    if not instructions:
        return []
    outputs = generator.generate([decompose_request(text) for text in instructions], params)
    return [(parse_decomposition(samples[0].text) or fallback_decomposition(text), samples[0].text)
            for text, samples in zip(instructions, outputs, strict=True)]
