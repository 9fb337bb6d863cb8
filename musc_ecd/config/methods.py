"""Schema of the pair builders' sections: ``musc`` (MuSC coarse), ``musc_fine``, ``ecd``, ``apc``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from musc_ecd.config.choices import ECD_COMPOSE, ECD_ROLES, EVOLUTION_CATEGORIES, UNPARSABLE_VERDICTS
from musc_ecd.config.validate import check


@dataclass
class MuscCoarseConfig:
    """MuSC coarse granularity (METHODS.md §1a). Every model call is the policy's."""

    drop_ratio: float = 0.3
    """Share of constraints to corrupt: k = max(1, round(drop_ratio · n))."""
    p_drop: float = 0.5
    p_substitute: float = 0.25
    p_negate: float = 0.25
    keep_first: bool = True
    """Never corrupt the first constraint (it usually carries the core task)."""
    min_constraints: int = 2
    """Decompositions with fewer constraints are rejected."""
    decompose_temperature: float = 0.1
    recombine_temperature: float = 0.1
    rewrite_temperature: float = 0.7
    """Substitute/negate calls (inferred: the papers do not say; some diversity helps)."""
    respond_temperature: float = 0.5
    decompose_max_tokens: int = 384
    recombine_max_tokens: int = 256
    rewrite_max_tokens: int = 64
    respond_max_tokens: int = 512
    self_judge_filter: bool = False
    """Keep a pair only if the judge (``model.judge``, the policy unless named) finds that `rejected` fails at
    least one corrupted constraint of the original instruction."""
    judge_temperature: float = 0.1
    judge_max_tokens: int = 128
    judge_stop: list[str] = field(default_factory=list)
    """Stop strings for the judge's ``Analysis: … Answer: Yes|No`` (the text ends before the first one)."""
    unparsable_verdict: Literal[UNPARSABLE_VERDICTS] = "drop"
    """The self-judge filter cannot decide a pair when no verdict says `rejected` fails a corrupted constraint and
    some are unparsable: ``drop`` it (a counted ``unparsable_verdict`` reject) or ``keep`` it (counted in the
    summary's ``unparsable_verdict``)."""
    judge_warning_share: float = 0.5
    """The summary warns when more than this share of the judge's verdicts are unparsable (``method=musc``: the
    lower of this and ``musc_fine.judge_warning_share``, over both builders)."""

    def __post_init__(self) -> None:
        check(0 < self.drop_ratio <= 1, "musc.drop_ratio", self.drop_ratio, "a number in (0, 1]")
        total = self.p_drop + self.p_substitute + self.p_negate
        probabilities = (self.p_drop, self.p_substitute, self.p_negate)
        check(min(probabilities) >= 0 and total > 0, "musc.p_drop/p_substitute/p_negate", probabilities,
              "non-negative numbers with a positive sum")
        check(self.min_constraints >= 2, "musc.min_constraints", self.min_constraints, "an integer >= 2")
        check(0 <= self.judge_warning_share <= 1, "musc.judge_warning_share", self.judge_warning_share,
              "a number in [0, 1]")


@dataclass
class MuscFineConfig:
    """MuSC fine granularity (METHODS.md §1b): self-judge and minimal self-correction, by the policy."""

    samples: int = 4
    """N answers sampled per instruction."""
    sample_temperature: float = 0.8
    judge_temperature: float = 0.1
    correct_temperature: float = 0.1
    unparsable_score: float = 0.9
    """Score of a judge verdict that cannot be parsed (0.9 as released)."""
    respond_max_tokens: int = 512
    judge_max_tokens: int = 128
    judge_stop: list[str] = field(default_factory=list)
    """Stop strings for the judge (the text ends before the first one)."""
    correct_max_tokens: int = 512
    min_revision_kept: float = 0.5
    """A revision must keep at least this share of the rejected answer's words (in order) to count as the
    minimal correction chosen is meant to be; less is a rewrite and a counted reject (0 = off)."""
    share: float = 0.5
    """``method=musc``: the share of seeds that go to the fine builder (the rest: coarse)."""
    verify_with_checkers: bool = True
    """With ``model.judge=checkers``: keep a revision only if code finds that it passes strictly more of the
    prompt's typed constraints than the rejected answer (else ``revision_not_verified``)."""
    best_sample_fallback: bool = True
    """With ``model.judge=checkers``, where no revision is kept: chosen = the sample that passes the most typed
    constraints, if strictly more than the rejected one (a best-vs-worst pair; ``meta.chosen_source``)."""
    judge_warning_share: float = 0.5
    """The summary warns when more than this share of the judge's verdicts are unparsable."""

    def __post_init__(self) -> None:
        check(0 <= self.share <= 1, "musc_fine.share", self.share, "a number in [0, 1]")
        check(self.samples >= 2, "musc_fine.samples", self.samples, "an integer >= 2")
        check(0 <= self.unparsable_score <= 1, "musc_fine.unparsable_score", self.unparsable_score,
              "a number in [0, 1]")
        check(0 <= self.min_revision_kept <= 1, "musc_fine.min_revision_kept", self.min_revision_kept,
              "a number in [0, 1]")
        check(0 <= self.judge_warning_share <= 1, "musc_fine.judge_warning_share", self.judge_warning_share,
              "a number in [0, 1]")


@dataclass
class EcdConfig:
    """ECD, evolutionary contrastive distillation (METHODS.md §2). Evolver and responder are roles:
    ``teacher`` (= ``model.teacher``, the policy when unset) or ``policy``; self-based = both the policy."""

    rounds: int = 3
    """K evolution rounds per seed; round k's pair is (I^k, R^k ≻ R^{k-1})."""
    categories: list[str] = field(default_factory=lambda: list(EVOLUTION_CATEGORIES))
    """Top-level evolution categories to sample from (uniformly), then an operation within (uniformly)."""
    compose: Literal[ECD_COMPOSE] = "rewrite"
    """``rewrite``: the evolver's rewritten instruction is I^k (Evol-Instruct, the paper). ``append``: I^k =
    I^{k-1} followed by the evolver's new requirement(s), for evolvers too weak to rewrite without
    losing requirements (SmolLM2-135M; see the ECD configs)."""
    evolver: Literal[ECD_ROLES] = "teacher"
    responder: Literal[ECD_ROLES] = "teacher"
    response_field: str | None = "response"
    """Seed column holding R^0, a known-good answer to I^0; absent or empty = the responder writes it."""
    older_negatives: bool = False
    """Also pair R^k with answers R^j, j < k-1, as easier negatives (difficulty 1/(k-j))."""
    judge_filter: bool = True
    """Drop a round's pair when the judge (``model.judge``) finds that R^{k-1} already meets every new
    requirement of I^k."""
    typed_format: bool = False
    """Format operations (length, structure, forbidden, wrapper) add a *typed* requirement drawn by code
    (IFEval's kinds; text from ``describe``), checked by code in the judge filter and carried in the pairs'
    ``meta.typed_constraints``; the evolver writes the other operations' requirements."""
    verify_with_checkers: bool = True
    """With ``model.judge=checkers``: keep a pair whose prompt carries typed constraints only if code finds that
    the chosen answer R^k passes strictly more of them than the rejected R^j (else ``chosen_not_verified``;
    the chain goes on)."""
    max_growth_words: int = 60
    """An evolution adding more words than this is a runaway and ends the chain."""
    min_overlap: float = 0.5
    """Share of I^{k-1}'s content words I^k must keep; less = drifted from the task, ends the chain."""
    evolve_temperature: float = 0.7
    evolve_max_tokens: int = 192
    respond_temperature: float = 0.7
    respond_max_tokens: int = 384
    judge_temperature: float = 0.1
    judge_max_tokens: int = 128
    judge_stop: list[str] = field(default_factory=list)
    """Stop strings for the judge (the text ends before the first one)."""
    unparsable_verdict: Literal[UNPARSABLE_VERDICTS] = "drop"
    """The judge filter cannot decide a round's hard pair when no verdict says R^{k-1} misses a new requirement and
    some are unparsable: ``drop`` the pair (a counted ``unparsable_verdict`` reject; the chain goes on) or ``keep``
    it (counted in the summary's ``unparsable_verdict``)."""
    judge_warning_share: float = 0.5
    """The summary warns when more than this share of the judge's verdicts are unparsable."""

    def __post_init__(self) -> None:
        check(self.rounds >= 1, "ecd.rounds", self.rounds, "an integer >= 1")
        unknown = [c for c in self.categories if c not in EVOLUTION_CATEGORIES]
        check(bool(self.categories) and not unknown, "ecd.categories", self.categories,
              f"a non-empty list of {', '.join(EVOLUTION_CATEGORIES)}")
        check(0 <= self.min_overlap <= 1, "ecd.min_overlap", self.min_overlap, "a number in [0, 1]")
        check(self.max_growth_words >= 1, "ecd.max_growth_words", self.max_growth_words, "an integer >= 1")
        check(0 <= self.judge_warning_share <= 1, "ecd.judge_warning_share", self.judge_warning_share,
              "a number in [0, 1]")


@dataclass
class ApcConfig:
    """APC, automatic pair construction from responders of different strength (METHODS.md §3).

    Responders are ``model.responders`` (strongest first). Per-responder decoding lets one model play
    several strengths (e.g. greedy with a large budget vs. sampled hot with a small one); say so when
    you report it."""

    temperatures: list[float] = field(default_factory=list)
    """One per responder; empty = ``generation.temperature`` for all."""
    max_new_tokens: list[int] = field(default_factory=list)
    """One per responder; empty = ``generation.max_new_tokens`` for all."""
    strengths: list[float] = field(default_factory=list)
    """One per responder, decreasing (e.g. measured IFEval scores); empty = ranks. A pair's difficulty is
    1 - gap/span: the largest strength gap is the easiest pair (0), adjacent responders the hardest."""

    def __post_init__(self) -> None:
        check(all(t >= 0 for t in self.temperatures), "apc.temperatures", self.temperatures, "numbers >= 0")
        check(all(m >= 1 for m in self.max_new_tokens), "apc.max_new_tokens", self.max_new_tokens,
              "integers >= 1")
        decreasing = all(a > b for a, b in zip(self.strengths, self.strengths[1:], strict=False))
        check(decreasing, "apc.strengths", self.strengths, "strictly decreasing numbers (strongest responder first)")


