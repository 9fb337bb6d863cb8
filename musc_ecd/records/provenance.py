"""Provenance, one kind per method: what made a pair, as its ``meta`` records it.

Common to all: ``method``, ``source_instruction`` (the seed), ``typed_constraints`` (the typed constraints
*of the pair's prompt*, which the label audit scores chosen and rejected on; None when the seed has none)
and ``negative_instruction`` (the instruction the rejected answer was written for; None when it answered
the prompt itself). ``models`` maps each role to its model, ``sampling`` each step to its decoding
parameters, ``templates`` each prompt template to its hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from musc_ecd.constraints.corrupt import Corruption
from musc_ecd.constraints.decompose import Decomposition
from musc_ecd.constraints.typed import TypedConstraint
from musc_ecd.errors import DataError
from musc_ecd.records.fields import fields_from_json, fields_to_json, json_field, tuple_of, typed_list
from musc_ecd.records.parts import (
    BySide,
    ChainRound,
    CoarseJudgeFilter,
    EcdRoles,
    JudgedSample,
    JudgeVerdicts,
)


class _MethodProvenance:
    """``to_json`` / ``from_json`` of a method's provenance: ``method`` first, then the fields in order."""

    method: ClassVar[str]

    def to_json(self) -> dict:
        return {"method": self.method, **fields_to_json(self)}

    @classmethod
    def from_json(cls, meta: Mapping):
        try:
            return fields_from_json(cls, meta, "meta")
        except DataError as exc:
            raise DataError(f"{exc} (every {cls.method} pair has it)") from None


@dataclass(frozen=True)
class MuscCoarseProvenance(_MethodProvenance):
    """MuSC coarse (METHODS.md §1a): chosen answers the intact recombination, rejected the corrupted one."""

    method: ClassVar[str] = "musc_coarse"

    source_instruction: str = json_field()
    source_line: int | None = json_field(v1=None)
    typed_constraints: tuple[TypedConstraint, ...] | None = json_field(typed_list("typed_constraints"), v1=None)
    decomposition: Decomposition = json_field(Decomposition.from_json)
    corruptions: tuple[Corruption, ...] = json_field(tuple_of(Corruption.from_json))
    corrupted_typed_constraints: tuple[TypedConstraint, ...] | None = json_field(
        typed_list("corrupted_typed_constraints"), v1=None)
    """The typed constraints of the corrupted instruction (None for a seed without typed constraints)."""
    positive_instruction: str = json_field()
    negative_instruction: str = json_field()
    finish_reasons: BySide[str] = json_field(BySide.reader())
    judge_filter: CoarseJudgeFilter | None = json_field(CoarseJudgeFilter.from_json, v1=None)
    models: dict[str, str] = json_field(dict)
    sampling: dict[str, dict] = json_field(dict)
    seed: int = json_field()
    templates: dict[str, str] = json_field(dict)


@dataclass(frozen=True)
class MuscFineProvenance(_MethodProvenance):
    """MuSC fine (METHODS.md §1b): rejected is the worst-judged sample, chosen its minimal correction."""

    method: ClassVar[str] = "musc_fine"
    negative_instruction: ClassVar[None] = None

    source_instruction: str = json_field()
    source_line: int | None = json_field(v1=None)
    typed_constraints: tuple[TypedConstraint, ...] | None = json_field(typed_list("typed_constraints"), v1=None)
    decomposition: Decomposition = json_field(Decomposition.from_json)
    samples: tuple[JudgedSample, ...] = json_field(tuple_of(JudgedSample.from_json))
    typed_positions: tuple[int, ...] = json_field(tuple, v1=())
    """Positions in ``decomposition.constraints`` of the seed's typed constraints."""
    rejected_sample: int = json_field()
    """Index in ``samples`` of the rejected answer (the lowest score; ties go to the earliest)."""
    violated_constraints: tuple[str, ...] = json_field(tuple)
    correction_raw: str = json_field()
    revision_kept_share: float | None = json_field(v1=None)
    models: dict[str, str] = json_field(dict)
    sampling: dict[str, dict] = json_field(dict)
    seed: int = json_field()
    templates: dict[str, str] = json_field(dict)
    chosen_source: str = json_field(v1="revision", default="revision")
    """``revision`` (the minimal correction) or, with ``model.judge=checkers``, ``best_sample``."""
    typed_passed: tuple[int, ...] | None = json_field(tuple, v1=None, default=None)
    """With checkers: per sample, the typed constraints it passes (by code)."""
    revision_rejected: str | None = json_field(v1=None, default=None)
    """Why a ``best_sample`` pair's revision was not used (a correct-step reason or ``revision_not_verified``)."""


@dataclass(frozen=True)
class EcdProvenance(_MethodProvenance):
    """ECD (METHODS.md §2): prompt I^k, chosen R^k, rejected R^j (j = k-1 the hard negative, older j easier)."""

    method: ClassVar[str] = "ecd"

    seed_id: str = json_field()
    source_instruction: str = json_field()
    source_line: int | None = json_field(v1=None)
    typed_constraints: tuple[TypedConstraint, ...] | None = json_field(typed_list("typed_constraints"), v1=None)
    round: int = json_field()
    """k: the round whose instruction is the prompt and whose answer is chosen."""
    negative_round: int = json_field()
    """j < k: the round whose answer is rejected."""
    operation: str = json_field()
    new_requirements: tuple[str, ...] = json_field(tuple)
    negative_instruction: str = json_field()
    """I^j, the instruction the rejected answer was written for."""
    chain: tuple[ChainRound, ...] = json_field(tuple_of(ChainRound.from_json))
    """Rounds 0..k."""
    evolve_raw: str = json_field()
    judge: JudgeVerdicts | None = json_field(JudgeVerdicts.from_json)
    """The judge filter's verdicts, on the hard negative's pair only."""
    roles: EcdRoles = json_field(EcdRoles.from_json)
    models: dict[str, str] = json_field(dict)
    sampling: dict[str, dict] = json_field(dict)
    seed: int = json_field()
    templates: dict[str, str] = json_field(dict)

    @property
    def hard_negative(self) -> bool:
        """The previous round's answer is the rejected one (not an older, easier negative)."""
        return self.negative_round == self.round - 1


@dataclass(frozen=True)
class ApcProvenance(_MethodProvenance):
    """APC (METHODS.md §3): the stronger responder's answer (lower rank) is chosen."""

    method: ClassVar[str] = "apc"
    negative_instruction: ClassVar[None] = None

    seed_id: str = json_field()
    source_instruction: str = json_field()
    source_line: int | None = json_field(v1=None)
    typed_constraints: tuple[TypedConstraint, ...] | None = json_field(typed_list("typed_constraints"), v1=None)
    chosen_rank: int = json_field()
    rejected_rank: int = json_field()
    """Ranks in ``model.responders`` (0 = the strongest): chosen_rank < rejected_rank."""
    strengths: BySide[float] = json_field(BySide.reader())
    models: dict[str, str] = json_field(dict)
    finish_reasons: BySide[str] = json_field(BySide.reader())
    sft_target: str | None = json_field(v1=None)
    """The strongest responder's non-empty answer to the prompt (APC's SFT target); None when all were empty."""
    sft_model: str | None = json_field(v1=None)
    sft_rank: int | None = json_field(v1=None)
    sampling: BySide[dict] = json_field(BySide.reader(dict))
    seed: int = json_field()

    @property
    def rank_gap(self) -> int:
        return self.rejected_rank - self.chosen_rank


@dataclass(frozen=True)
class ForeignProvenance:
    """The ``meta`` of a pair this project did not make, kept as it is (None: the row has no ``meta``).

    Of it, code reads only what any artifact may carry: ``typed_constraints`` (``{"id", "kwargs"}`` objects)
    and ``negative_instruction``; a ``meta`` that is no object carries neither."""

    meta: Any = None
    typed_constraints: tuple[TypedConstraint, ...] | None = None

    @property
    def method(self) -> str | None:
        return self.meta.get("method") if isinstance(self.meta, Mapping) else None

    @property
    def negative_instruction(self) -> str | None:
        value = self.meta.get("negative_instruction") if isinstance(self.meta, Mapping) else None
        return value if isinstance(value, str) and value else None

    def to_json(self):
        return dict(self.meta) if isinstance(self.meta, Mapping) else self.meta

    @classmethod
    def from_json(cls, meta) -> ForeignProvenance:
        if not isinstance(meta, Mapping):
            return cls(meta)
        listed = meta.get("typed_constraints")
        return cls(dict(meta), None if listed is None else typed_list("typed_constraints")(listed))


Provenance = MuscCoarseProvenance | MuscFineProvenance | EcdProvenance | ApcProvenance | ForeignProvenance
PROVENANCES = {kind.method: kind for kind in (MuscCoarseProvenance, MuscFineProvenance, EcdProvenance,
                                               ApcProvenance)}
"""The provenance kind of each method that builds pairs (``meta.method``)."""


def provenance_from_json(meta) -> Provenance:
    """A pair's ``meta`` (without ``schema`` and ``weights``) as its method's provenance; any other ``meta``
    (another method's, none, not an object) as ``ForeignProvenance``."""
    kind = PROVENANCES.get(meta.get("method")) if isinstance(meta, Mapping) else None
    return ForeignProvenance.from_json(meta) if kind is None else kind.from_json(meta)
