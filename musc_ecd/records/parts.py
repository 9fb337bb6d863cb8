"""The pieces of provenance the methods' records are made of (judge verdicts, chain rounds, roles, ...)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from musc_ecd.constraints.typed import TypedConstraint
from musc_ecd.records.fields import as_json, fields_from_json, fields_to_json, json_field, tuple_of

T = TypeVar("T")


@dataclass(frozen=True)
class BySide(Generic[T]):
    """A value for each side of a pair, e.g. finish reasons: ``{"chosen": …, "rejected": …}``."""

    chosen: T
    rejected: T

    def to_json(self) -> dict:
        return {"chosen": as_json(self.chosen), "rejected": as_json(self.rejected)}

    @classmethod
    def reader(cls, each: Callable[[Any], T] = lambda value: value) -> Callable[[Mapping], BySide[T]]:
        return lambda record: cls(each(record["chosen"]), each(record["rejected"]))


@dataclass(frozen=True)
class CoarseJudgeFilter:
    """MuSC coarse's self-judge filter (``musc.self_judge_filter``): did ``rejected`` fail a corrupted constraint?"""

    verdicts: tuple[bool | None, ...] = json_field(tuple)
    """The judge model's verdict per corrupted constraint (None = unparsable); empty when code decided."""
    raw: tuple[str, ...] = json_field(tuple)
    code: BySide[tuple[bool, ...]] | None = json_field(BySide.reader(tuple), v1=None)
    """``model.judge=checkers``: code verdicts of chosen and rejected on the corrupted typed constraints."""
    model: str | None = json_field(v1=None)
    """Who decided: ``checkers`` or the judge model's name."""

    def to_json(self) -> dict:
        return fields_to_json(self)

    @classmethod
    def from_json(cls, record: Mapping) -> CoarseJudgeFilter:
        return fields_from_json(cls, record, "meta.judge_filter")


JUDGED_BY_MODEL = "model"


@dataclass(frozen=True)
class JudgedSample:
    """MuSC fine: one sampled answer with its verdict per constraint of the decomposition."""

    text: str = json_field()
    verdicts: tuple[bool | None, ...] = json_field(tuple)
    judged_by: tuple[str, ...] = json_field(tuple, v1=None)
    """Per constraint: ``model``, ``code`` (a typed constraint under ``model.judge=checkers``) or ``skipped``;
    a version-1 row without it was judged by the model throughout."""
    score: float = json_field()
    judge_raw: tuple[str, ...] = json_field(tuple)

    def to_json(self) -> dict:
        return fields_to_json(self)

    @classmethod
    def from_json(cls, record: Mapping) -> JudgedSample:
        sample = fields_from_json(cls, record, "meta.samples[]")
        if sample.judged_by is None:
            sample = replace(sample, judged_by=(JUDGED_BY_MODEL,) * len(sample.verdicts))
        return sample


@dataclass(frozen=True)
class ChainRound:
    """ECD: one round of an evolution chain (round 0 is the seed)."""

    round: int = json_field()
    instruction: str = json_field()
    operation: str = json_field()
    """``category/name``, or ``seed`` for round 0."""
    new_requirements: tuple[str, ...] = json_field(tuple)
    response: str = json_field()
    finish_reason: str = json_field()
    typed: tuple[TypedConstraint, ...] = json_field(tuple_of(TypedConstraint.from_json), v1=(), default=())
    """``ecd.typed_format``: the round's new requirement as a typed constraint."""

    def to_json(self) -> dict:
        return fields_to_json(self)

    @classmethod
    def from_json(cls, record: Mapping) -> ChainRound:
        return fields_from_json(cls, record, "meta.chain[]")


@dataclass(frozen=True)
class JudgeVerdicts:
    """ECD's judge filter on the hard negative: per new requirement, does R^{k-1} already meet it?"""

    verdicts: tuple[bool | None, ...] = json_field(tuple)
    raw: tuple[str, ...] = json_field(tuple)

    def to_json(self) -> dict:
        return fields_to_json(self)

    @classmethod
    def from_json(cls, record: Mapping) -> JudgeVerdicts:
        return fields_from_json(cls, record, "meta.judge")


@dataclass(frozen=True)
class EcdRoles:
    """Which role evolved and which answered (``teacher`` or ``policy``), and whether both were the policy."""

    evolver: str = json_field()
    responder: str = json_field()
    self_based: bool = json_field()

    def to_json(self) -> dict:
        return fields_to_json(self)

    @classmethod
    def from_json(cls, record: Mapping) -> EcdRoles:
        return fields_from_json(cls, record, "meta.roles")


@dataclass(frozen=True)
class TokenWeights:
    """``meta.weights``, added by the weights stage: the scheme that made the weight columns and its cap."""

    scheme: str = json_field()
    w_max: float = json_field()

    def to_json(self) -> dict:
        return fields_to_json(self)

    @classmethod
    def from_json(cls, record: Mapping) -> TokenWeights:
        return fields_from_json(cls, record, "meta.weights")
