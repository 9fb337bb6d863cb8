"""What the pair builders share: per-item seeds; for MuSC, the policy, the run config, a chunk's rejects and step 1."""

from __future__ import annotations

import hashlib

from musc_ecd.config import Config
from musc_ecd.constraints.decompose import decompose_all
from musc_ecd.items import Reject
from musc_ecd.models.generator import Generator, SamplingParams


class ConstraintPairBuilder:
    """Base of builders that start from an instruction's constraints (MuSC coarse and fine).

    A subclass's work items have ``item``, ``decomposition`` and ``raw_decomposition``; it provides
    ``_params(stage)`` with a ``"decompose"`` stage.
    """

    def __init__(self, generator: Generator, cfg: Config):
        self.generator = generator
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
            if count < self.cfg.musc.min_constraints:
                self._reject(w, "decompose", "too_few_constraints", f"{count} constraint(s) via {decomposition.source}")
            else:
                kept.append(w)
        return kept

    def _reject(self, w, stage: str, reason: str, detail: str = "") -> None:
        self.rejects.append(Reject(w.item.id, stage, reason, detail, w.item.line))


def item_seed(seed: int, item_id: str, stage: str) -> int:
    """A per-item random seed from (run seed, item id, stage): independent of chunking and resume."""
    return int.from_bytes(hashlib.sha256(f"{seed}|{item_id}|{stage}".encode()).digest()[:8], "little")
