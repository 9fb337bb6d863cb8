"""A seed's typed constraints beside the ones the policy decomposes (issue: verifiable constraints, point 3).

A verifiable seed (``configs/data/verifiable_seeds.jsonl``, made by ``scripts/make_verifiable_seeds.py``)
carries its base instruction (the task and its untyped requirements), its typed constraints in IFEval's
columns and the sentence each typed constraint was rendered as (``typed_texts``). MuSC then decomposes only
the base instruction with the policy and appends the typed constraints as they are: their text is exact,
and so is their corruption — on kwargs (``TypedConstraint.negate`` / ``substitute``), the new text written
by ``describe`` — where a policy rewrite of a free-text constraint can miss. Recombination stays the
policy's. The judge ``checkers`` (``model.judge=checkers``) decides typed constraints by code, with the
checker IFEval scoring uses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from musc_ecd.constraints.typed import CorruptionUnavailable, TypedConstraint, from_ifeval
from musc_ecd.errors import DataError

CHECKERS = "checkers"
"""``model.judge`` value: typed constraints are judged by code; untyped ones per ``model.judge_untyped``."""


@dataclass(frozen=True)
class SeedConstraints:
    base_instruction: str
    typed: tuple[TypedConstraint, ...]
    texts: tuple[str, ...]


def seed_typed(item) -> list[TypedConstraint] | None:
    """A seed's typed constraints (IFEval's ``instruction_id_list``/``kwargs`` columns), or None without any;
    a malformed list is an error naming the seed, not a silent omission."""
    ids, kwargs = item.fields.get("instruction_id_list"), item.fields.get("kwargs")
    if ids is None:
        return None
    try:
        return from_ifeval(ids, kwargs if kwargs is not None else [{}] * len(ids))
    except DataError as exc:
        raise DataError(f"seed {item.id} (line {item.line}): {exc}") from None


def seed_constraints(item) -> SeedConstraints | None:
    """The typed part of a verifiable seed, or None for a seed without one (plain free-text instructions)."""
    fields = item.fields
    if not fields.get("instruction_id_list") or not fields.get("typed_texts") or not fields.get("base_instruction"):
        return None
    typed = seed_typed(item)
    texts = fields["typed_texts"]
    if len(texts) != len(typed) or not all(isinstance(t, str) and t.strip() for t in texts):
        raise DataError(f"seed {item.id} (line {item.line}): typed_texts must give one sentence per typed constraint")
    return SeedConstraints(fields["base_instruction"], tuple(typed), tuple(texts))


@dataclass(frozen=True)
class TypedCorruption:
    operator: str
    """What was applied: drop, negate or substitute."""
    new: TypedConstraint | None
    text: str | None
    fallback_reason: str | None = None


def corrupt_typed(constraint: TypedConstraint, operator: str, rng: random.Random) -> TypedCorruption:
    """MuSC's operator on kwargs; a kind without a substitute is negated instead (recorded)."""
    if operator == "drop":
        return TypedCorruption("drop", None, None)
    if operator == "substitute":
        try:
            new = constraint.substitute(rng)
            return TypedCorruption("substitute", new, new.describe(rng))
        except CorruptionUnavailable:
            new = constraint.negate()
            return TypedCorruption("negate", new, new.describe(rng), fallback_reason="no_typed_substitute")
    new = constraint.negate()
    return TypedCorruption("negate", new, new.describe(rng))


def code_verdicts(constraints, response: str) -> list[bool]:
    """Strict verdicts of typed constraints on a response (an undecidable check is not a pass)."""
    return [c.check(response) for c in constraints]
