"""``TypedConstraint``: one verifiable requirement, as an IFEval instruction id plus its kwargs.

One definition does every job a constraint has (STYLE.md, point 6): ``describe`` writes its instruction
text, ``check`` decides whether a response follows it — through ``musc_ecd.checkers``, the very checkers
IFEval scoring calls — and ``negate``/``substitute`` corrupt it on its kwargs for MuSC
(see ``corruption``). ``negated=True`` marks a typed inverse: it passes exactly when the original's
checker decides the response fails.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from musc_ecd.checkers import instruction_verdict
from musc_ecd.constraints.typed import corruption, phrasing
from musc_ecd.constraints.typed.registry import UnknownConstraintError, kind, normalize_kwargs

OPERATORS = ("drop", "substitute", "negate")  # MuSC's three corruptions (METHODS.md 1a, step 3)


@dataclass(frozen=True)
class TypedConstraint:
    id: str
    kwargs: dict = field(default_factory=dict)
    negated: bool = False

    def __post_init__(self):
        # validated and copied once, so a constraint never changes after it is made
        object.__setattr__(self, "kwargs", normalize_kwargs(self.id, self.kwargs))

    def __hash__(self) -> int:  # kwargs is a dict; hash its canonical JSON so constraints can key sets
        return hash((self.id, json.dumps(self.kwargs, sort_keys=True), self.negated))

    @property
    def group(self) -> str:
        return kind(self.id).group

    # -- serialisation (IFEval's format: the id and its kwargs)
    def to_json(self) -> dict:
        record = {"id": self.id, "kwargs": dict(self.kwargs)}
        if self.negated:
            record["negated"] = True
        return record

    @classmethod
    def from_json(cls, record: dict) -> TypedConstraint:
        if not isinstance(record, dict) or "id" not in record:
            raise UnknownConstraintError(f"a typed constraint is an object with 'id' and 'kwargs', not {record!r}")
        return cls(record["id"], record.get("kwargs") or {}, bool(record.get("negated", False)))

    # -- the two jobs: text and verdict
    def describe(self, rng: random.Random) -> str:
        """The instruction sentence (one of a few phrasings, drawn from ``rng``)."""
        return phrasing.describe(self.id, self.kwargs, self.negated, rng)

    def verdict(self, response: str, prompt: str = "") -> bool | None:
        """True / False, or None where the checker cannot decide (empty response, no detectable language)."""
        decided = instruction_verdict(self.id, self.kwargs, response, prompt)
        if decided is None or not self.negated:
            return decided
        return not decided

    def check(self, response: str, prompt: str = "") -> bool:
        """Strict pass, as IFEval scores an instruction; an undecided verdict is not a pass."""
        return self.verdict(response, prompt) is True

    # -- corruption
    def negate(self) -> TypedConstraint:
        return TypedConstraint(*corruption.negate(self.id, self.kwargs, self.negated))

    def substitute(self, rng: random.Random) -> TypedConstraint:
        """Same group, different kwargs; ``CorruptionUnavailable`` for the kinds that have none."""
        return TypedConstraint(*corruption.substitute(self.id, self.kwargs, self.negated, rng))

    def operators(self) -> tuple[str, ...]:
        """The corruptions that apply to this constraint (substitute is missing for a few kinds)."""
        try:
            self.substitute(random.Random(0))
        except corruption.CorruptionUnavailable:
            return ("drop", "negate")
        return OPERATORS


def corrupt(constraint: TypedConstraint, operator: str, rng: random.Random) -> TypedConstraint | None:
    """Apply one of MuSC's operators: ``drop`` gives None, the others a new constraint."""
    if operator == "drop":
        return None
    if operator == "negate":
        return constraint.negate()
    if operator == "substitute":
        return constraint.substitute(rng)
    raise ValueError(f"unknown corruption operator '{operator}' (use one of {OPERATORS})")


def from_ifeval(instruction_id_list, kwargs_list) -> list[TypedConstraint]:
    """Typed constraints from IFEval's parallel ``instruction_id_list`` / ``kwargs`` columns."""
    if not isinstance(instruction_id_list, list) or not isinstance(kwargs_list, list):
        raise UnknownConstraintError("instruction_id_list and kwargs must be lists")
    if len(instruction_id_list) != len(kwargs_list):
        raise UnknownConstraintError(f"instruction_id_list has {len(instruction_id_list)} ids but kwargs has "
                                     f"{len(kwargs_list)} entries")
    return [TypedConstraint(i, k or {}) for i, k in zip(instruction_id_list, kwargs_list, strict=True)]


def to_ifeval(constraints) -> dict:
    """``{"instruction_id_list": [...], "kwargs": [...]}``; a typed inverse has no IFEval form."""
    inverses = [c.id for c in constraints if c.negated]
    if inverses:
        raise UnknownConstraintError(f"typed inverses of {inverses} cannot be written in IFEval's format")
    return {"instruction_id_list": [c.id for c in constraints], "kwargs": [dict(c.kwargs) for c in constraints]}
