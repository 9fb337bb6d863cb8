"""What the pair builders share: per-item seeds; for MuSC, the policy, the run config, a chunk's rejects and step 1."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from musc_ecd.config import Config
from musc_ecd.constraints.decompose import decompose_all
from musc_ecd.items import Reject
from musc_ecd.models.generator import Generator, SamplingParams
from musc_ecd.prompts import load_template


@dataclass(frozen=True)
class RoleUse:
    """One role a method calls: its models (APC's responders are several) and the steps that call it.

    Each method module declares ``roles(cfg) -> list[RoleUse]``; ``generate`` refuses a config that names a
    role the method never calls, and the report's roles column is made from this declaration alone."""

    role: str
    models: tuple[str, ...]
    steps: tuple[str, ...]


class ConstraintPairBuilder:
    """Base of builders that start from an instruction's constraints (MuSC coarse and fine).

    A subclass's work items have ``item``, ``decomposition`` and ``raw_decomposition``; it provides
    ``_params(stage)`` with a ``"decompose"`` stage. ``judge`` is the generator behind ``model.judge`` (the
    policy unless a judge is named).
    """

    def __init__(self, generator: Generator, cfg: Config, judge: Generator | None = None):
        self.generator = generator
        self.judge_generator = judge or generator
        self.cfg = cfg
        self.rejects: list[Reject] = []

    def _params(self, stage: str) -> SamplingParams:
        raise NotImplementedError

    def decompose(self, work: list) -> list:
        """The policy splits each instruction (one batched call); fewer than ``musc.min_constraints`` → reject."""
        results = decompose_all(self.generator, [w.item.prompt for w in work], self._params("decompose"))
        kept = []
        for w, (decomposition, raw) in zip(work, results, strict=True):
            w.decomposition, w.raw_decomposition = decomposition, raw
            count = len(decomposition.constraints)
            if decomposition.source == "parsed" and load_template("decompose").copies_demonstration(raw):
                self._reject(w, "decompose", "copied_demonstration", "the decomposition is the template's example")
            elif count < self.cfg.musc.min_constraints:
                self._reject(w, "decompose", "too_few_constraints", f"{count} constraint(s) via {decomposition.source}")
            else:
                kept.append(w)
        return kept

    def _reject(self, w, stage: str, reason: str, detail: str = "", judge: dict | None = None) -> None:
        self.rejects.append(Reject(w.item.id, stage, reason, detail, w.item.line, judge=judge))


def seed_typed_constraints(item) -> list[dict] | None:
    """The seed's verifiable constraints (IFEval's ``instruction_id_list``/``kwargs`` columns), as the pairs'
    ``meta.typed_constraints``: they are constraints of every prompt built from the seed, so the label audit
    can score chosen and rejected on them. None when the seed has none; a malformed list is an error naming
    the seed, not a silent omission."""
    from musc_ecd.constraints.typed import from_ifeval
    from musc_ecd.errors import DataError

    ids, kwargs = item.fields.get("instruction_id_list"), item.fields.get("kwargs")
    if ids is None:
        return None
    try:
        return [c.to_json() for c in from_ifeval(ids, kwargs if kwargs is not None else [{}] * len(ids))]
    except DataError as exc:
        raise DataError(f"seed {item.id} (line {item.line}): {exc}") from None


def item_seed(seed: int, item_id: str, stage: str) -> int:
    """A per-item random seed from (run seed, item id, stage): independent of chunking and resume."""
    return int.from_bytes(hashlib.sha256(f"{seed}|{item_id}|{stage}".encode()).digest()[:8], "little")
