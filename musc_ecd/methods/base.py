"""What the pair builders share: per-item seeds; for MuSC, the policy, the run config, a chunk's rejects and step 1."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from musc_ecd import records
from musc_ecd.config import Config
from musc_ecd.constraints.decompose import decompose_all
from musc_ecd.constraints.seeded import CHECKERS, seed_constraints, seed_typed
from musc_ecd.constraints.typed import TypedConstraint
from musc_ecd.degenerate import is_degenerate
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
    ``_params(stage)`` with a ``"decompose"`` stage, and ``typed_at`` (position → typed constraint). ``judge``
    is the generator behind ``model.judge`` (the policy unless a judge is named; with ``checkers``, the
    generator that judges the untyped constraints, or None when they are left out).
    """

    def __init__(self, generator: Generator, cfg: Config, judge: Generator | None = None):
        self.generator = generator
        self.cfg = cfg
        # None = the policy judges; with checkers, None = nothing judges the untyped constraints.
        self.judge_generator = judge if judge is not None or self.code_judge else generator
        self.rejects: list[Reject] = []

    def _params(self, stage: str) -> SamplingParams:
        raise NotImplementedError

    def decompose(self, work: list) -> list:
        """The policy splits each instruction (one batched call); fewer than ``musc.min_constraints`` → reject
        (``repeated_constraints`` when there were enough before a constraint listed again was left out).

        A verifiable seed's typed constraints are not left to the policy: it decomposes the seed's base
        instruction, and the typed constraints are appended with their own sentences (``w.typed_at`` maps
        their positions in the list to the typed constraint)."""
        seeds = [seed_constraints(w.item) for w in work]
        texts = [seed.base_instruction if seed else w.item.prompt for w, seed in zip(work, seeds, strict=True)]
        results = decompose_all(self.generator, texts, self._params("decompose"))
        kept = []
        for w, seed, (decomposition, raw) in zip(work, seeds, results, strict=True):
            if seed is not None:
                untyped = len(decomposition.constraints)
                decomposition = replace(decomposition, constraints=decomposition.constraints + seed.texts)
                w.typed_at = {untyped + j: typed for j, typed in enumerate(seed.typed)}
            w.decomposition, w.raw_decomposition = decomposition, raw
            count, repeats = len(decomposition.constraints), decomposition.repeats_removed
            if decomposition.source == "parsed" and load_template("decompose").copies_demonstration(raw):
                self._reject(w, "decompose", "copied_demonstration", "the decomposition is the template's example")
            elif count < self.cfg.musc.min_constraints and repeats:
                self._reject(w, "decompose", "repeated_constraints", f"{count} distinct constraint(s) of "
                             f"{count + repeats} listed via {decomposition.source}")
            elif count < self.cfg.musc.min_constraints:
                self._reject(w, "decompose", "too_few_constraints", f"{count} constraint(s) via {decomposition.source}")
            else:
                kept.append(w)
        return kept

    @property
    def code_judge(self) -> bool:
        """``model.judge=checkers``: typed constraints are judged by code, untyped by ``model.judge_untyped``."""
        return self.cfg.model.judge == CHECKERS

    def _reject(self, w, stage: str, reason: str, detail: str = "", judge: dict | None = None) -> None:
        self.rejects.append(Reject(w.item.id, stage, reason, detail, w.item.line, judge=judge))


def seed_typed_constraints(item) -> tuple[TypedConstraint, ...] | None:
    """The seed's typed constraints, for the pairs' provenance (``typed_constraints``): they are constraints of
    every prompt built from the seed, so the label audit can score chosen and rejected on them."""
    typed = seed_typed(item)
    return None if typed is None else tuple(typed)


def pair_problem(chosen: str, rejected: str) -> str | None:
    """``records.pair_problem`` with its looping check (the whole answer, per byte) replaced by
    ``degenerate.is_degenerate`` (the whole answer and its tail, per character). Every builder asks this one."""
    problem = records.pair_problem(chosen, rejected)
    if problem not in (None, "degenerate_chosen"):
        return problem  # empty or identical: found before a loop is looked for
    return "degenerate_chosen" if is_degenerate(chosen) else None


def item_seed(seed: int, item_id: str, stage: str) -> int:
    """A per-item random seed from (run seed, item id, stage): independent of chunking and resume."""
    return int.from_bytes(hashlib.sha256(f"{seed}|{item_id}|{stage}".encode()).digest()[:8], "little")


def judge_uses(cfg: Config, steps: tuple[str, ...]) -> list[RoleUse]:
    """The judge role's declaration: a model, or ``checkers`` (code) plus the model for untyped constraints."""
    if cfg.model.judge != CHECKERS:
        return [RoleUse("judge", (cfg.model.role("judge"),), steps)]
    uses = [RoleUse("judge", (CHECKERS,), steps)]
    if cfg.model.judge_untyped == "policy":
        uses.append(RoleUse("policy", (cfg.model.policy,), tuple(f"{step} (untyped)" for step in steps)))
    return uses


def model_judge(models, cfg: Config):
    """The generator that judges with a model: ``model.judge``, or with ``checkers`` the one for untyped
    constraints (the policy, or None when ``model.judge_untyped=skip``)."""
    if cfg.model.judge != CHECKERS:
        return models["judge"]
    return models["policy"] if cfg.model.judge_untyped == "policy" else None
