"""The data model of the artifacts: preference pairs with their provenance, and rejects.

A builder makes every pair through ``make_pair`` (after ``pair_problem`` found nothing wrong with it) and
writes it with ``Pair.to_json``; every reader of a pairs artifact goes through ``Pair.from_json``. The JSON
shape is the one users' scripts see, unchanged:

    {"id", ["item_id"], "prompt": [user turn], "chosen": [assistant turn], "rejected": [assistant turn],
     "difficulty", "meta": {"schema", "method", ...provenance...}, ["chosen_weights", "rejected_weights"]}

TRL's conversational columns; ``difficulty`` uses the trainer's convention (larger = harder); ``meta`` is
this module's provenance of the method that made the pair (``MuscCoarseProvenance``,
``MuscFineProvenance``, ``EcdProvenance``, ``ApcProvenance``), which TRL never reads.

Schema versions (``meta.schema``, per row, so rows of different versions can share a file — a run extended
to more items keeps its earlier rows): ``SCHEMA_VERSION`` is the shape written now. A row without the
field is version 1, the shape written before the version was recorded; a version-1 row may lack fields that
were added over time (typed constraints, the judge-filter record, ...) and reads them as their defaults.
A row of a newer version is refused rather than half-read.

``from_json`` reads any TRL preference row, also one this project did not make: string or conversational
columns (the last user / assistant message is the text), no ``id``, no ``difficulty``, a ``meta`` of its
own (``ForeignProvenance`` keeps it as it is). ``to_json`` writes this project's shape, so the round trip is
exact for this project's rows; a foreign row's extra columns are not kept.

Rejects (``Reject``) go to ``rejects.jsonl``: one record per item (or per ECD round / APC pair) that did
not become a pair, with its stage and reason.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, ClassVar, Generic, TypeVar

from musc_ecd.constraints.corrupt import Corruption
from musc_ecd.constraints.decompose import Decomposition
from musc_ecd.constraints.typed import TypedConstraint
from musc_ecd.errors import DataError

SCHEMA_VERSION = 1
"""The pair shape written now (``meta.schema``). Rows without the field read as version 1."""

T = TypeVar("T")


# -- rejects ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reject:
    id: str
    stage: str
    reason: str
    detail: str = ""
    line: int | None = None
    item_id: str | None = None
    """Set when an item can have several records (e.g. one per ECD round): the item they belong to."""
    judge: dict | None = None
    """Counts of the judge verdicts given for this item before it was rejected (yes / no / unparsable), so a
    summary's judge health covers every verdict, not only those of kept pairs."""
    round: int | None = None
    """ECD: the round k of the chain the reject ends or drops (0 = the seed's own answer)."""

    def to_json(self) -> dict:
        record = {"id": self.id, "stage": self.stage, "reason": self.reason, "detail": self.detail}
        if self.line is not None:
            record["line"] = self.line
        if self.item_id is not None:
            record["item_id"] = self.item_id
        if self.round is not None:
            record["round"] = self.round
        if self.judge is not None:
            record["judge"] = self.judge
        return record

    @classmethod
    def from_json(cls, record: Mapping) -> Reject:
        round_ = record.get("round")
        if round_ is None and record.get("item_id") is not None:
            round_ = _legacy_round(str(record["id"]), str(record["item_id"]))
        return cls(record["id"], record["stage"], record["reason"], record.get("detail", ""), record.get("line"),
                   record.get("item_id"), record.get("judge"), round_)


def _legacy_round(reject_id: str, item: str) -> int | None:
    """An ECD reject written before ``round`` was a field: its round is in its id, ``ITEM#rK`` (``nJ`` after
    it for an older negative's pair). Only records without the field are read this way."""
    match = re.fullmatch(re.escape(item) + r"#r(\d+)(?:n\d+)?", reject_id)
    return int(match.group(1)) if match else None


# -- what makes a pair unusable --------------------------------------------------------------------

DEGENERATE_RATIO = 0.25
"""An answer of 80+ characters that zlib compresses below this share of its size is degenerate repetition
("Mmmmmm…", one line pasted five times); English prose compresses to about 0.45–0.6."""


def is_degenerate(text: str) -> bool:
    """Repetition that makes an answer worthless as ``chosen`` (small models loop): the whole answer compresses
    like a loop, or it *ends* in one (``loops_at_end``: a sound start followed by "haha haha haha ..." passes the
    whole-text test). A looping ``rejected`` answer is kept: the label is still right. ECD ends a chain at one,
    since R^k is next round's negative *and* this round's chosen."""
    data = text.encode()
    return (len(data) >= 80 and len(zlib.compress(data, 9)) / len(data) < DEGENERATE_RATIO) or loops_at_end(text)


_LOOPING_TAIL = (re.compile(r"(.{1,40}?)\1{7,}$", re.DOTALL), re.compile(r"(.{41,300}?)\1{2,}$", re.DOTALL))
"""A unit of up to 40 characters said 8 or more times in a row at the end, or one of up to 300 said 3 or more."""


def loops_at_end(text: str) -> bool:
    """Whether ``text`` ends by repeating one unit (spacing ignored), covering at least 40 characters."""
    flat = re.sub(r"\s+", " ", text[-2400:]).strip()[-1200:] + " "  # a loop at the end fills the end: look there
    for pattern in _LOOPING_TAIL:
        found = pattern.search(flat)
        if found and len(flat) - found.start() >= 40:
            return True
    return False


PAIR_PROBLEMS = ("empty_chosen", "empty_rejected", "identical_responses", "degenerate_chosen")


def pair_problem(chosen: str, rejected: str) -> str | None:
    """What makes two answers no preference pair, checked in this order — one of ``PAIR_PROBLEMS`` — or None.

    An empty side teaches nothing, identical sides have no preference, and a looping chosen answer is no
    target (a looping rejected one is a true negative). Every builder asks this before ``make_pair``; each
    names the problem in its own reject reasons."""
    if not chosen:
        return "empty_chosen"
    if not rejected:
        return "empty_rejected"
    if chosen == rejected:
        return "identical_responses"
    if is_degenerate(chosen):
        return "degenerate_chosen"
    return None


# -- how a record's fields become JSON and back ------------------------------------------------------
#
# A record below declares its fields in the order they appear in JSON; ``_field(read=…)`` says how a field's
# JSON becomes its typed value (``null`` stays None), ``_field(v1=…)`` what a version-1 row that lacks the
# field (written before the field existed) reads as. A field without ``v1`` is required.

_REQUIRED = object()


def _field(read: Callable[[Any], Any] | None = None, v1: Any = _REQUIRED, default: Any = MISSING):
    return field(default=default, metadata={"read": read, "v1": v1})


def _json(value):
    """A typed value as JSON: records by their ``to_json``, tuples as lists."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def _fields_to_json(record) -> dict:
    return {f.name: _json(getattr(record, f.name)) for f in fields(record)}


def _fields_from_json(cls: type[T], data: Mapping, where: str) -> T:
    values = {}
    for f in fields(cls):
        if f.name not in data:
            if f.metadata.get("v1", _REQUIRED) is _REQUIRED:
                raise DataError(f"{where}.{f.name} is missing")
            values[f.name] = f.metadata["v1"]
            continue
        value, read = data[f.name], f.metadata.get("read")
        values[f.name] = read(value) if read is not None and value is not None else value
    return cls(**values)


def _tuple_of(read: Callable[[Any], T]) -> Callable[[Sequence], tuple[T, ...]]:
    return lambda values: tuple(read(v) for v in values)


def _typed(key: str) -> Callable[[Any], tuple[TypedConstraint, ...]]:
    """The reader of ``meta.<key>``: a list of typed constraints as ``{"id", "kwargs"}`` objects."""
    def read(listed) -> tuple[TypedConstraint, ...]:
        if not isinstance(listed, list):
            raise ValueError(f"meta.{key} must be a list of {{id, kwargs}} objects")
        return tuple(TypedConstraint.from_json(c) for c in listed)
    return read


# -- the pieces of provenance ------------------------------------------------------------------------


@dataclass(frozen=True)
class BySide(Generic[T]):
    """A value for each side of a pair, e.g. finish reasons: ``{"chosen": …, "rejected": …}``."""

    chosen: T
    rejected: T

    def to_json(self) -> dict:
        return {"chosen": _json(self.chosen), "rejected": _json(self.rejected)}

    @classmethod
    def reader(cls, each: Callable[[Any], T] = lambda value: value) -> Callable[[Mapping], BySide[T]]:
        return lambda record: cls(each(record["chosen"]), each(record["rejected"]))


@dataclass(frozen=True)
class CoarseJudgeFilter:
    """MuSC coarse's self-judge filter (``musc.self_judge_filter``): did ``rejected`` fail a corrupted constraint?"""

    verdicts: tuple[bool | None, ...] = _field(tuple)
    """The judge model's verdict per corrupted constraint (None = unparsable); empty when code decided."""
    raw: tuple[str, ...] = _field(tuple)
    code: BySide[tuple[bool, ...]] | None = _field(BySide.reader(tuple), v1=None)
    """``model.judge=checkers``: code verdicts of chosen and rejected on the corrupted typed constraints."""
    model: str | None = _field(v1=None)
    """Who decided: ``checkers`` or the judge model's name."""

    def to_json(self) -> dict:
        return _fields_to_json(self)

    @classmethod
    def from_json(cls, record: Mapping) -> CoarseJudgeFilter:
        return _fields_from_json(cls, record, "meta.judge_filter")


JUDGED_BY_MODEL = "model"


@dataclass(frozen=True)
class JudgedSample:
    """MuSC fine: one sampled answer with its verdict per constraint of the decomposition."""

    text: str = _field()
    verdicts: tuple[bool | None, ...] = _field(tuple)
    judged_by: tuple[str, ...] = _field(tuple, v1=None)
    """Per constraint: ``model``, ``code`` (a typed constraint under ``model.judge=checkers``) or ``skipped``;
    a version-1 row without it was judged by the model throughout."""
    score: float = _field()
    judge_raw: tuple[str, ...] = _field(tuple)

    def to_json(self) -> dict:
        return _fields_to_json(self)

    @classmethod
    def from_json(cls, record: Mapping) -> JudgedSample:
        sample = _fields_from_json(cls, record, "meta.samples[]")
        if sample.judged_by is None:
            sample = replace(sample, judged_by=(JUDGED_BY_MODEL,) * len(sample.verdicts))
        return sample


@dataclass(frozen=True)
class ChainRound:
    """ECD: one round of an evolution chain (round 0 is the seed)."""

    round: int = _field()
    instruction: str = _field()
    operation: str = _field()
    """``category/name``, or ``seed`` for round 0."""
    new_requirements: tuple[str, ...] = _field(tuple)
    response: str = _field()
    finish_reason: str = _field()
    typed: tuple[TypedConstraint, ...] = _field(_tuple_of(TypedConstraint.from_json), v1=(), default=())
    """``ecd.typed_format``: the round's new requirement as a typed constraint."""

    def to_json(self) -> dict:
        return _fields_to_json(self)

    @classmethod
    def from_json(cls, record: Mapping) -> ChainRound:
        return _fields_from_json(cls, record, "meta.chain[]")


@dataclass(frozen=True)
class JudgeVerdicts:
    """ECD's judge filter on the hard negative: per new requirement, does R^{k-1} already meet it?"""

    verdicts: tuple[bool | None, ...] = _field(tuple)
    raw: tuple[str, ...] = _field(tuple)

    def to_json(self) -> dict:
        return _fields_to_json(self)

    @classmethod
    def from_json(cls, record: Mapping) -> JudgeVerdicts:
        return _fields_from_json(cls, record, "meta.judge")


@dataclass(frozen=True)
class EcdRoles:
    """Which role evolved and which answered (``teacher`` or ``policy``), and whether both were the policy."""

    evolver: str = _field()
    responder: str = _field()
    self_based: bool = _field()

    def to_json(self) -> dict:
        return _fields_to_json(self)

    @classmethod
    def from_json(cls, record: Mapping) -> EcdRoles:
        return _fields_from_json(cls, record, "meta.roles")


@dataclass(frozen=True)
class TokenWeights:
    """``meta.weights``, added by the weights stage: the scheme that made the weight columns and its cap."""

    scheme: str = _field()
    w_max: float = _field()

    def to_json(self) -> dict:
        return _fields_to_json(self)

    @classmethod
    def from_json(cls, record: Mapping) -> TokenWeights:
        return _fields_from_json(cls, record, "meta.weights")


# -- provenance, one kind per method ---------------------------------------------------------------
#
# Common to all: ``method``, ``source_instruction`` (the seed), ``typed_constraints`` (the typed constraints
# *of the pair's prompt*, which the label audit scores chosen and rejected on; None when the seed has none)
# and ``negative_instruction`` (the instruction the rejected answer was written for; None when it answered
# the prompt itself). ``models`` maps each role to its model, ``sampling`` each step to its decoding
# parameters, ``templates`` each prompt template to its hash.


class _MethodProvenance:
    """``to_json`` / ``from_json`` of a method's provenance: ``method`` first, then the fields in order."""

    method: ClassVar[str]

    def to_json(self) -> dict:
        return {"method": self.method, **_fields_to_json(self)}

    @classmethod
    def from_json(cls, meta: Mapping):
        try:
            return _fields_from_json(cls, meta, "meta")
        except DataError as exc:
            raise DataError(f"{exc} (every {cls.method} pair has it)") from None


@dataclass(frozen=True)
class MuscCoarseProvenance(_MethodProvenance):
    """MuSC coarse (METHODS.md §1a): chosen answers the intact recombination, rejected the corrupted one."""

    method: ClassVar[str] = "musc_coarse"

    source_instruction: str = _field()
    source_line: int | None = _field(v1=None)
    typed_constraints: tuple[TypedConstraint, ...] | None = _field(_typed("typed_constraints"), v1=None)
    decomposition: Decomposition = _field(Decomposition.from_json)
    corruptions: tuple[Corruption, ...] = _field(_tuple_of(Corruption.from_json))
    corrupted_typed_constraints: tuple[TypedConstraint, ...] | None = _field(_typed("corrupted_typed_constraints"),
                                                                             v1=None)
    """The typed constraints of the corrupted instruction (None for a seed without typed constraints)."""
    positive_instruction: str = _field()
    negative_instruction: str = _field()
    finish_reasons: BySide[str] = _field(BySide.reader())
    judge_filter: CoarseJudgeFilter | None = _field(CoarseJudgeFilter.from_json, v1=None)
    models: dict[str, str] = _field(dict)
    sampling: dict[str, dict] = _field(dict)
    seed: int = _field()
    templates: dict[str, str] = _field(dict)


@dataclass(frozen=True)
class MuscFineProvenance(_MethodProvenance):
    """MuSC fine (METHODS.md §1b): rejected is the worst-judged sample, chosen its minimal correction."""

    method: ClassVar[str] = "musc_fine"
    negative_instruction: ClassVar[None] = None

    source_instruction: str = _field()
    source_line: int | None = _field(v1=None)
    typed_constraints: tuple[TypedConstraint, ...] | None = _field(_typed("typed_constraints"), v1=None)
    decomposition: Decomposition = _field(Decomposition.from_json)
    samples: tuple[JudgedSample, ...] = _field(_tuple_of(JudgedSample.from_json))
    typed_positions: tuple[int, ...] = _field(tuple, v1=())
    """Positions in ``decomposition.constraints`` of the seed's typed constraints."""
    rejected_sample: int = _field()
    """Index in ``samples`` of the rejected answer (the lowest score; ties go to the earliest)."""
    violated_constraints: tuple[str, ...] = _field(tuple)
    correction_raw: str = _field()
    revision_kept_share: float | None = _field(v1=None)
    models: dict[str, str] = _field(dict)
    sampling: dict[str, dict] = _field(dict)
    seed: int = _field()
    templates: dict[str, str] = _field(dict)
    chosen_source: str = _field(v1="revision", default="revision")
    """``revision`` (the minimal correction) or, with ``model.judge=checkers``, ``best_sample``."""
    typed_passed: tuple[int, ...] | None = _field(tuple, v1=None, default=None)
    """With checkers: per sample, the typed constraints it passes (by code)."""
    revision_rejected: str | None = _field(v1=None, default=None)
    """Why a ``best_sample`` pair's revision was not used (a correct-step reason or ``revision_not_verified``)."""


@dataclass(frozen=True)
class EcdProvenance(_MethodProvenance):
    """ECD (METHODS.md §2): prompt I^k, chosen R^k, rejected R^j (j = k-1 the hard negative, older j easier)."""

    method: ClassVar[str] = "ecd"

    seed_id: str = _field()
    source_instruction: str = _field()
    source_line: int | None = _field(v1=None)
    typed_constraints: tuple[TypedConstraint, ...] | None = _field(_typed("typed_constraints"), v1=None)
    round: int = _field()
    """k: the round whose instruction is the prompt and whose answer is chosen."""
    negative_round: int = _field()
    """j < k: the round whose answer is rejected."""
    operation: str = _field()
    new_requirements: tuple[str, ...] = _field(tuple)
    negative_instruction: str = _field()
    """I^j, the instruction the rejected answer was written for."""
    chain: tuple[ChainRound, ...] = _field(_tuple_of(ChainRound.from_json))
    """Rounds 0..k."""
    evolve_raw: str = _field()
    judge: JudgeVerdicts | None = _field(JudgeVerdicts.from_json)
    """The judge filter's verdicts, on the hard negative's pair only."""
    roles: EcdRoles = _field(EcdRoles.from_json)
    models: dict[str, str] = _field(dict)
    sampling: dict[str, dict] = _field(dict)
    seed: int = _field()
    templates: dict[str, str] = _field(dict)

    @property
    def hard_negative(self) -> bool:
        """The previous round's answer is the rejected one (not an older, easier negative)."""
        return self.negative_round == self.round - 1


@dataclass(frozen=True)
class ApcProvenance(_MethodProvenance):
    """APC (METHODS.md §3): the stronger responder's answer (lower rank) is chosen."""

    method: ClassVar[str] = "apc"
    negative_instruction: ClassVar[None] = None

    seed_id: str = _field()
    source_instruction: str = _field()
    source_line: int | None = _field(v1=None)
    typed_constraints: tuple[TypedConstraint, ...] | None = _field(_typed("typed_constraints"), v1=None)
    chosen_rank: int = _field()
    rejected_rank: int = _field()
    """Ranks in ``model.responders`` (0 = the strongest): chosen_rank < rejected_rank."""
    strengths: BySide[float] = _field(BySide.reader())
    models: dict[str, str] = _field(dict)
    finish_reasons: BySide[str] = _field(BySide.reader())
    sft_target: str | None = _field(v1=None)
    """The strongest responder's non-empty answer to the prompt (APC's SFT target); None when all were empty."""
    sft_model: str | None = _field(v1=None)
    sft_rank: int | None = _field(v1=None)
    sampling: BySide[dict] = _field(BySide.reader(dict))
    seed: int = _field()

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
        return cls(dict(meta), None if listed is None else _typed("typed_constraints")(listed))


Provenance = MuscCoarseProvenance | MuscFineProvenance | EcdProvenance | ApcProvenance | ForeignProvenance
PROVENANCES = {kind.method: kind for kind in (MuscCoarseProvenance, MuscFineProvenance, EcdProvenance,
                                               ApcProvenance)}
"""The provenance kind of each method that builds pairs (``meta.method``)."""


def provenance_from_json(meta) -> Provenance:
    """A pair's ``meta`` (without ``schema`` and ``weights``) as its method's provenance; any other ``meta``
    (another method's, none, not an object) as ``ForeignProvenance``."""
    kind = PROVENANCES.get(meta.get("method")) if isinstance(meta, Mapping) else None
    return ForeignProvenance.from_json(meta) if kind is None else kind.from_json(meta)


P = TypeVar("P")


def provenances(rows: Sequence[Mapping], kind: type[P]) -> list[P]:
    """The provenance of each pair row, all of one ``kind`` (a method's summary reads its own pairs)."""
    out = []
    for row in rows:
        provenance = Pair.from_json(row).provenance
        if not isinstance(provenance, kind):
            raise DataError(f"pair {row.get('id')} is a {provenance.method} pair, not a {kind.method} one")
        out.append(provenance)
    return out


# -- the pair ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """One preference pair: ``chosen`` is the better answer to ``prompt`` (the user's instruction)."""

    id: str | None
    """Stable id (``None`` only for a foreign row without one)."""
    prompt: str
    chosen: str
    rejected: str
    difficulty: float | None
    """Larger = harder (the trainer's convention); None only for a foreign row without one."""
    provenance: Provenance
    item_id: str | None = None
    """The item a pair belongs to when an item yields several pairs (an ECD seed, an APC prompt); the weights
    stage sets its own (``PAIR_ID@CONTENT_HASH``)."""
    chosen_weights: tuple[float, ...] | None = None
    rejected_weights: tuple[float, ...] | None = None
    weights: TokenWeights | None = None
    """How the weight columns were made (``meta.weights``)."""

    @property
    def method(self) -> str | None:
        return self.provenance.method

    @property
    def typed_constraints(self) -> tuple[TypedConstraint, ...] | None:
        return self.provenance.typed_constraints

    @property
    def negative_instruction(self) -> str | None:
        """The corrupted or easier instruction the rejected answer was written for, when there is one."""
        return self.provenance.negative_instruction

    def to_json(self) -> dict:
        record: dict = {}
        if self.id is not None:
            record["id"] = self.id
        if self.item_id is not None:
            record["item_id"] = self.item_id
        record["prompt"] = [{"role": "user", "content": self.prompt}]
        record["chosen"] = [{"role": "assistant", "content": self.chosen}]
        record["rejected"] = [{"role": "assistant", "content": self.rejected}]
        if self.difficulty is not None:
            record["difficulty"] = self.difficulty
        meta = self.provenance.to_json()
        if not isinstance(self.provenance, ForeignProvenance):
            meta = {"schema": SCHEMA_VERSION, **meta}
        if self.weights is not None:
            meta = {**(meta if isinstance(meta, dict) else {}), "weights": self.weights.to_json()}
        if meta is not None:
            record["meta"] = meta
        if self.chosen_weights is not None:
            record["chosen_weights"] = list(self.chosen_weights)
        if self.rejected_weights is not None:
            record["rejected_weights"] = list(self.rejected_weights)
        return record

    @classmethod
    def from_json(cls, record: Mapping) -> Pair:
        """A pair from an artifact row (see the module docstring for what is accepted); a malformed row is a
        ``DataError`` (``ValueError`` for a column that is no text or conversation)."""
        if not isinstance(record, Mapping):
            raise DataError(f"a pair is a JSON object, not a {type(record).__name__}")
        for key in ("prompt", "chosen", "rejected"):
            if key not in record:
                raise DataError(f"no '{key}' field (a pair needs prompt, chosen and rejected)")
        # the columns are read first, so a malformed pair is an error whatever its meta
        prompt = message_text(record["prompt"], "user")
        chosen, rejected = message_text(record["chosen"], "assistant"), message_text(record["rejected"], "assistant")
        meta, weights = record.get("meta"), None
        if isinstance(meta, Mapping):
            version = schema_version(record)
            if version > SCHEMA_VERSION:
                raise DataError(f"pair {record.get('id')}: meta.schema {version} was written by a newer musc-ecd "
                                f"(this one reads up to {SCHEMA_VERSION})")
            weights = TokenWeights.from_json(meta["weights"]) if meta.get("weights") else None
            meta = {k: v for k, v in meta.items() if k not in ("schema", "weights")}
        return cls(record.get("id"), prompt, chosen, rejected, record.get("difficulty"), provenance_from_json(meta),
                   record.get("item_id"), _floats(record.get("chosen_weights")),
                   _floats(record.get("rejected_weights")), weights)


def schema_version(record: Mapping) -> int:
    """The schema version of a pair row: ``meta.schema``, or 1 for a row written before it was recorded."""
    meta = record.get("meta")
    version = meta.get("schema", 1) if isinstance(meta, Mapping) else 1
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DataError(f"pair {record.get('id')}: meta.schema must be a positive integer, not {version!r}")
    return version


def make_pair(id: str, prompt: str, chosen: str, rejected: str, difficulty: float, provenance: Provenance,
              item_id: str | None = None) -> Pair:
    """The one way a builder makes a pair. ``difficulty`` is kept to 4 decimals. A pair ``pair_problem``
    objects to is a bug in its builder, which must reject it with a reason instead: refused here, so none
    reaches an artifact unnoticed."""
    problem = pair_problem(chosen, rejected)
    if problem is not None:
        raise ValueError(f"pair {id}: {problem}; a builder rejects such a pair instead of making it")
    return Pair(id, prompt, chosen, rejected, round(difficulty, 4), provenance, item_id)


def message_text(value, role: str) -> str:
    """A TRL column's text: the string itself, or the content of the last message with ``role``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        messages = [m for m in value if isinstance(m, dict) and m.get("role") == role]
        if messages and isinstance(messages[-1].get("content"), str):
            return messages[-1]["content"]
        raise ValueError(f"a conversation with no {role} message")
    raise ValueError(f"expected a string or a list of messages, not {type(value).__name__}")


def _floats(values) -> tuple[float, ...] | None:
    return None if values is None else tuple(values)
