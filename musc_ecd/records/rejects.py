"""Rejects: an item (or an ECD round, an APC pair) that did not become a pair, with its stage and reason.

They go to ``rejects.jsonl``, one record each, and are counted by reason in the summary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


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
