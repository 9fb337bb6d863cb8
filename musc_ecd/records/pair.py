"""The preference pair: one row of a pairs artifact, read and written in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from musc_ecd.constraints.typed import TypedConstraint
from musc_ecd.errors import DataError
from musc_ecd.records.parts import TokenWeights
from musc_ecd.records.problems import pair_problem
from musc_ecd.records.provenance import ForeignProvenance, Provenance, provenance_from_json

SCHEMA_VERSION = 1
"""The pair shape written now (``meta.schema``). Rows without the field read as version 1."""


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
