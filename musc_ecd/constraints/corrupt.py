"""Corrupt a constraint list (MuSC §1a step 3): drop, substitute or negate some constraints.

``plan_corruption`` is pure: with a per-item random generator it picks ``k = max(1, round(drop_ratio·n))``
constraints (never the first when ``keep_first``: it carries the core task) and an operator for each.
Substitute and negate need the policy to write the new constraint; ``parse_rewritten_constraint`` reads
its one-line answer strictly. ``apply_corruption`` builds the corrupted list.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from musc_ecd.prompts import load_template

Operator = Literal["drop", "substitute", "negate"]
OPERATORS: tuple[Operator, ...] = ("drop", "substitute", "negate")
MAX_CONSTRAINT_WORDS = 40


@dataclass(frozen=True)
class Corruption:
    index: int
    operator: Operator
    original: str
    new: str | None = None
    """The substituted or negated text; None for drop."""
    fallback_from: Operator | None = None
    """Set when a substitute/negate rewrite was unusable and the constraint was dropped instead."""
    fallback_reason: str | None = None
    """Why the rewrite was unusable (``unusable_rewrite``, ``copied_demonstration``, ``no_typed_substitute``)."""
    typed_original: dict | None = None
    """For a typed constraint (a verifiable seed's): it, and what the corruption made of it (None = dropped);
    typed corruptions are exact, on kwargs, with no policy call."""
    typed_new: dict | None = None

    def to_json(self) -> dict:
        record = {"index": self.index, "operator": self.operator, "original": self.original, "new": self.new,
                  "fallback_from": self.fallback_from, "fallback_reason": self.fallback_reason}
        if self.typed_original is not None:
            record.update(typed_original=self.typed_original, typed_new=self.typed_new)
        return record

    @classmethod
    def from_json(cls, record: dict) -> Corruption:
        """The inverse of ``to_json``; fields added over time (``fallback_reason``, the typed ones) may be absent."""
        return cls(record["index"], record["operator"], record["original"], record.get("new"),
                   record.get("fallback_from"), record.get("fallback_reason"), record.get("typed_original"),
                   record.get("typed_new"))


def corruption_count(n: int, drop_ratio: float, keep_first: bool) -> int:
    """k = max(1, round(drop_ratio · n)), capped by how many constraints may be touched."""
    available = n - 1 if keep_first else n
    return min(max(1, round(drop_ratio * n)), available)


def plan_corruption(constraints: Sequence[str], rng: random.Random, drop_ratio: float,
                    probabilities: dict[str, float], keep_first: bool = True) -> list[Corruption]:
    """Which constraints to corrupt and how, in index order (texts for substitute/negate still to write)."""
    first = 1 if keep_first else 0
    k = corruption_count(len(constraints), drop_ratio, keep_first)
    indices = sorted(rng.sample(range(first, len(constraints)), k))
    names = list(OPERATORS)
    weights = [probabilities[name] for name in names]
    return [Corruption(i, rng.choices(names, weights)[0], constraints[i]) for i in indices]


def rewrite_request(corruption: Corruption) -> list[dict]:
    """The policy call that writes a substitute or a negation of ``corruption.original``."""
    return load_template(_template(corruption)).chat(constraint=corruption.original)


_LABEL = re.compile(r"^\s*(?:new constraint|rewritten|constraint)\s*:\s*", re.IGNORECASE)


def parse_rewritten_constraint(text: str, original: str) -> str | None:
    """The first non-empty line, without labels, numbering or quotes; None if empty, unchanged or too long."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    line = _LABEL.sub("", line)
    line = re.sub(r"^\s*(?:\d{1,2}[.)]|[-*•])\s*", "", line).strip().strip('"').strip()
    if not line or line.lower().rstrip(".") == original.lower().rstrip("."):
        return None
    if len(line.split()) > MAX_CONSTRAINT_WORDS:
        return None
    return line


def rewrite_copies_demonstration(corruption: Corruption, new_text: str) -> bool:
    """The rewrite is one of its template's demonstration answers, not a rewrite of this constraint."""
    return load_template(_template(corruption)).copies_demonstration(new_text)


def with_rewrite(corruption: Corruption, new_text: str | None) -> Corruption:
    """Fill in the rewritten text; an unusable rewrite, or a copy of the template's demonstration, falls back
    to dropping (recorded in ``fallback_from``/``fallback_reason`` and counted in the summary)."""
    if corruption.operator == "drop":
        return corruption
    if new_text is None:
        return replace(corruption, operator="drop", new=None, fallback_from=corruption.operator,
                       fallback_reason="unusable_rewrite")
    if rewrite_copies_demonstration(corruption, new_text):
        return replace(corruption, operator="drop", new=None, fallback_from=corruption.operator,
                       fallback_reason="copied_demonstration")
    return replace(corruption, new=new_text)


def _template(corruption: Corruption) -> str:
    return "substitute" if corruption.operator == "substitute" else "negate"


def apply_corruption(constraints: Sequence[str], corruptions: Sequence[Corruption]) -> list[str]:
    by_index = {c.index: c for c in corruptions}
    result = []
    for index, text in enumerate(constraints):
        corruption = by_index.get(index)
        if corruption is None:
            result.append(text)
        elif corruption.operator != "drop":
            result.append(corruption.new)
    return result
