"""MuSC, fine granularity: self-judge and minimal self-correction.

The policy samples several answers to an instruction, judges each against every constraint of the
instruction (Yes/No per constraint), takes the worst answer as ``rejected``, and revises it as
minimally as possible given the constraints it violates; the revision is ``chosen``. The pair differs
only where the violation was, which is what the token-level weights (``edit``) then emphasise.

Steps (METHODS.md §1b), one batched ``generate`` call each per chunk, all by the policy:
  1. ``decompose``  the instruction's constraints (shared with the coarse method: same prompt, parser,
                    spaCy fallback)
  2. ``sample``     N = 4 answers (temperature 0.8)
  3. ``judge``      every (answer, constraint): ``Analysis: … Answer: Yes|No`` at temperature 0.1;
                    Yes = 1, No = 0, unparsable = 0.9 (as released); answer score = the mean
  4. ``select``     skip instructions whose N answers are all perfect (``all_answers_perfect``; where no
                    constraint was judged at all, ``nothing_judged``); rejected = the lowest score
  5. ``correct``    the policy revises the rejected answer given the constraints it did not pass;
                    empty or unchanged revisions, copies of the correction template's demonstration and
                    revisions keeping less than ``musc_fine.min_revision_kept`` of the answer's words
                    (a rewrite, not a minimal correction) are dropped, each counted by reason

Departures, on purpose: "violated" means every constraint whose verdict was not Yes (an unparsable
verdict, scored 0.9, also asks for a fix); ties for the lowest score go to the earliest sample;
``difficulty`` = the rejected answer's score (a nearly-right rejected answer makes a hard pair).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from musc_ecd.config import Config
from musc_ecd.constraints.correct import correct_request, kept_share, parse_revision
from musc_ecd.constraints.decompose import Decomposition
from musc_ecd.constraints.judge import add_counts, judge_health, judge_request, parse_verdict, verdict_counts
from musc_ecd.constraints.seeded import CHECKERS, code_verdicts, seed_constraints
from musc_ecd.items import Item
from musc_ecd.methods.base import (
    ConstraintPairBuilder,
    RoleUse,
    judge_uses,
    model_judge,
    pair_problem,
    seed_typed_constraints,
)
from musc_ecd.methods.sampling import keys_ending, step_params
from musc_ecd.models.generator import Generator, SamplingParams
from musc_ecd.models.roles import ModelRoles
from musc_ecd.prompts import load_template
from musc_ecd.records import JudgedSample, MuscFineProvenance, Pair, Reject, make_pair, provenances
from musc_ecd.registry import Method

METHOD = "musc_fine"
TEMPLATES = ("decompose", "judge", "correct")
REVISION, BEST_SAMPLE = "revision", "best_sample"  # where chosen came from (``meta.chosen_source``)


@dataclass
class _Work:
    item: Item
    decomposition: Decomposition | None = None
    raw_decomposition: str = ""
    typed_at: dict = field(default_factory=dict)  # position in the constraint list -> TypedConstraint
    samples: list[str] = field(default_factory=list)
    verdicts: list[list[bool | None]] = field(default_factory=list)  # [sample][constraint]
    judge_raw: list[list[str]] = field(default_factory=list)
    judged_by: list[list[str]] = field(default_factory=list)  # [sample][constraint]: model | code | skipped
    scores: list[float] = field(default_factory=list)
    worst: int = -1
    violated: list[str] = field(default_factory=list)
    revision: str = ""
    correction_raw: str = ""
    chosen: str = ""
    chosen_source: str = REVISION  # or BEST_SAMPLE (checkers only: see ``verify``)
    typed_passed: list[int] = field(default_factory=list)  # [sample]: typed constraints passed, by code
    correction_failed: tuple[str, str] | None = None  # (reason, detail) of a revision ``verify`` may replace
    revision_rejected: str | None = None  # why a best-sample pair's revision was not used


def verdict_score(verdict: bool | None, unparsable: float) -> float:
    return unparsable if verdict is None else float(verdict)


def answer_score(verdicts: list[bool | None], unparsable: float) -> float:
    """Mean over constraints of Yes = 1, No = 0, unparsable = ``unparsable`` (1.0 when nothing was judged)."""
    if not verdicts:
        return 1.0
    return sum(verdict_score(v, unparsable) for v in verdicts) / len(verdicts)


JUDGED_BY_MODEL, JUDGED_BY_CODE, SKIPPED = "model", "code", "skipped"


class MuscFine(ConstraintPairBuilder):
    """Builds fine MuSC pairs for a chunk of seeds with one generator (the policy)."""

    def __init__(self, generator: Generator, cfg: Config, judge: Generator | None = None):
        super().__init__(generator, cfg, judge)
        self.opts = cfg.musc_fine

    def __call__(self, items: list[Item]) -> tuple[list[dict], list[dict]]:
        self.rejects = []
        work = [_Work(item) for item in items]
        work = self.decompose(work)
        work = self.sample(work)
        work = self.judge(work)
        work = self.select(work)
        work = self.correct(work)
        if self.code_judge:
            work = self.verify(work)
        return [self.pair(w).to_json() for w in work], [r.to_json() for r in self.rejects]

    def decompose(self, work: list[_Work]) -> list[_Work]:
        """As every builder decomposes (``ConstraintPairBuilder.decompose``), except where nobody would read the
        model's list: judged by code with ``model.judge_untyped=skip``, a verifiable seed's constraints are its
        typed ones, and the policy is not asked to decompose it (its untyped constraints would be judged by no
        one, and correction names only violated ones). ``musc.min_constraints`` gates the model's lists; a seed's
        own list is not checked against it: one typed constraint is enough for code to decide a label."""
        if not (self.code_judge and self.judge_generator is None):
            return super().decompose(work)
        asked = {id(w) for w in super().decompose([w for w in work if seed_constraints(w.item) is None])}
        kept = []
        for w in work:
            seed = seed_constraints(w.item)
            if seed is not None:
                w.decomposition = Decomposition(seed.texts, None, "seed")
                w.typed_at = dict(enumerate(seed.typed))
            if seed is not None or id(w) in asked:
                kept.append(w)
        return kept

    def sample(self, work: list[_Work]) -> list[_Work]:
        outputs = self.generator.generate([[{"role": "user", "content": w.item.prompt}] for w in work],
                                          self._params("sample"))
        for w, samples in zip(work, outputs, strict=True):
            w.samples = [s.text.strip() for s in samples]
        return work

    def judge(self, work: list[_Work]) -> list[_Work]:
        """Every (sample, constraint): by the judge model, or — with ``model.judge=checkers`` — typed
        constraints by code and untyped ones by the model (or skipped: ``model.judge_untyped=skip``)."""
        for w in work:
            w.verdicts = [[None] * len(w.decomposition.constraints) for _ in w.samples]
            w.judge_raw = [[""] * len(w.decomposition.constraints) for _ in w.samples]
            w.judged_by = [[JUDGED_BY_MODEL] * len(w.decomposition.constraints) for _ in w.samples]
        checks = []
        for w in work:
            for s, sample in enumerate(w.samples):
                for c in range(len(w.decomposition.constraints)):
                    if self.code_judge and c in w.typed_at:
                        w.verdicts[s][c], w.judged_by[s][c] = w.typed_at[c].check(sample), JUDGED_BY_CODE
                    elif self.judge_generator is None:
                        w.judged_by[s][c] = SKIPPED
                    else:
                        checks.append((w, s, c))
        outputs = self.judge_generator.generate(
            [judge_request(w.item.prompt, w.samples[s], w.decomposition.constraints[c]) for w, s, c in checks],
            self._params("judge")) if checks else []
        for (w, s, c), samples in zip(checks, outputs, strict=True):
            w.verdicts[s][c], w.judge_raw[s][c] = parse_verdict(samples[0].text), samples[0].text
        for w in work:
            w.scores = [answer_score([v for v, by in zip(verdicts, judged, strict=True) if by != SKIPPED],
                                     self.opts.unparsable_score)
                        for verdicts, judged in zip(w.verdicts, w.judged_by, strict=True)]
        return work

    def select(self, work: list[_Work]) -> list[_Work]:
        kept = []
        for w in work:
            if all(by == SKIPPED for judged in w.judged_by for by in judged):
                self._reject(w, "select", "nothing_judged", f"all {len(w.decomposition.constraints)} constraints "
                             "are untyped and model.judge_untyped=skip: no answer was judged")
                continue
            if all(score >= 1.0 for score in w.scores):
                self._reject(w, "select", "all_answers_perfect", f"{len(w.samples)} samples judged perfect",
                             judge=self._counts(w))
                continue
            w.worst = min(range(len(w.scores)), key=lambda i: (w.scores[i], i))
            if not w.samples[w.worst]:
                self._reject(w, "select", "empty_response", "the lowest-scoring sample is empty", judge=self._counts(w))
                continue
            w.violated = [c for c, v, by in zip(w.decomposition.constraints, w.verdicts[w.worst],
                                                w.judged_by[w.worst], strict=True) if v is not True and by != SKIPPED]
            kept.append(w)
        return kept

    def correct(self, work: list[_Work]) -> list[_Work]:
        outputs = self.generator.generate(
            [correct_request(w.item.prompt, w.samples[w.worst], w.violated) for w in work], self._params("correct"))
        kept = []
        for w, samples in zip(work, outputs, strict=True):
            w.correction_raw = samples[0].text
            revision, reason = parse_revision(samples[0].text, w.samples[w.worst], self.opts.min_revision_kept)
            problem = None if revision is None else pair_problem(revision, w.samples[w.worst])
            if problem is not None:  # parse_revision leaves only a looping revision (degenerate_chosen) to find
                revision, reason = None, {"degenerate_chosen": "degenerate_response"}.get(problem, problem)
            detail = f"kept {kept_share(w.samples[w.worst], samples[0].text):.2f} of the answer's words"
            if revision is not None:
                w.revision = w.chosen = revision
                kept.append(w)
            elif self.code_judge and self.opts.best_sample_fallback:
                w.correction_failed = (reason, detail)  # ``verify`` may still pair the best sample
                kept.append(w)
            else:
                self._reject(w, "correct", reason, detail, judge=self._counts(w))
        return kept

    def verify(self, work: list[_Work]) -> list[_Work]:
        """``model.judge=checkers``: code decides the label on the typed constraints. A revision is kept only if
        it passes strictly more of them than the rejected answer (``musc_fine.verify_with_checkers``); else,
        with ``musc_fine.best_sample_fallback``, chosen is the sample that passes the most (ties: the higher
        score, then the earlier sample), if that is strictly more than the rejected answer — a best-vs-worst
        pair rather than a minimal correction, marked ``meta.chosen_source``. A 135M policy's corrections
        rarely fix a typed constraint (measured: experiments/verifiable_labels), so this is where the
        checker-judged labels come from at that size."""
        kept = []
        for w in work:
            typed = list(w.typed_at.values())
            failed = w.correction_failed
            # ``judge`` already checked every sample on the typed constraints (by code): count its verdicts.
            passed = [sum(verdicts[c] is True for c in w.typed_at) for verdicts in w.verdicts]
            w.typed_passed = passed if typed else []
            rejected_passed = passed[w.worst]
            if failed is None and (not typed or not self.opts.verify_with_checkers  # untyped: nothing to decide
                                   or sum(code_verdicts(typed, w.revision)) > rejected_passed):
                kept.append(w)
                continue
            best = max(range(len(w.samples)), key=lambda i: (passed[i], w.scores[i], -i))
            if (self.opts.best_sample_fallback and passed[best] > rejected_passed  # never for an untyped seed
                    and pair_problem(w.samples[best], w.samples[w.worst]) is None):
                w.chosen, w.chosen_source = w.samples[best], BEST_SAMPLE
                w.revision_rejected = failed[0] if failed is not None else "revision_not_verified"
                kept.append(w)
            elif failed is not None:
                self._reject(w, "correct", *failed, judge=self._counts(w))
            else:
                self._reject(w, "verify", "revision_not_verified", f"the revision passes no more of the "
                             f"{len(typed)} typed constraints than the rejected answer ({rejected_passed})",
                             judge=self._counts(w))
        return kept

    @staticmethod
    def _counts(w: _Work) -> dict:
        """The judge *model's* verdicts (code verdicts are always decided; skipped ones are none)."""
        return verdict_counts(v for verdicts, judged in zip(w.verdicts, w.judged_by, strict=True)
                              for v, by in zip(verdicts, judged, strict=True) if by == JUDGED_BY_MODEL)

    def pair(self, w: _Work) -> Pair:
        """chosen = the minimal correction of the worst-judged sample (with checkers, possibly the best sample:
        ``verify``), rejected = that sample."""
        provenance = MuscFineProvenance(
            source_instruction=w.item.prompt,
            source_line=w.item.line,
            typed_constraints=seed_typed_constraints(w.item),
            decomposition=w.decomposition,
            samples=tuple(JudgedSample(text, tuple(verdicts), tuple(judged), round(score, 4), tuple(raw))
                          for text, verdicts, judged, score, raw in zip(w.samples, w.verdicts, w.judged_by, w.scores,
                                                                        w.judge_raw, strict=True)),
            typed_positions=tuple(sorted(w.typed_at)),
            rejected_sample=w.worst,
            violated_constraints=tuple(w.violated),
            correction_raw=w.correction_raw,
            revision_kept_share=round(kept_share(w.samples[w.worst], w.chosen), 4),
            chosen_source=w.chosen_source,
            typed_passed=tuple(w.typed_passed) if w.typed_passed else None,
            revision_rejected=w.revision_rejected,
            models={"policy": self.generator.name, "judge": CHECKERS if self.code_judge else self.judge_generator.name,
                    **({"judge_untyped": getattr(self.judge_generator, "name", "skipped")} if self.code_judge else {})},
            sampling={stage: self._params(stage).to_json() for stage in ("decompose", "sample", "judge", "correct")},
            seed=self.cfg.seed,
            templates={name: load_template(name).sha for name in TEMPLATES},
        )
        return make_pair(w.item.id, w.item.prompt, w.chosen, w.samples[w.worst], w.scores[w.worst], provenance)

    def _params(self, stage: str) -> SamplingParams:
        o = self.opts
        n, temperature, max_tokens, stop = {
            "decompose": (1, self.cfg.musc.decompose_temperature, self.cfg.musc.decompose_max_tokens,
                          ("\nInstruction:", "###")),
            "sample": (o.samples, o.sample_temperature, o.respond_max_tokens, ()),
            "judge": (1, o.judge_temperature, o.judge_max_tokens, tuple(o.judge_stop)),
            "correct": (1, o.correct_temperature, o.correct_max_tokens, ()),
        }[stage]
        return step_params(self.cfg, generation_unread(self.cfg), n=n, temperature=temperature,
                           max_new_tokens=max_tokens, stop=stop)


def generation_unread(cfg: Config) -> dict[str, str]:
    """Every step decodes with its own ``musc_fine.*`` keys (decompose: ``musc.*``); of ``generation`` only
    ``top_p`` acts."""
    return {"n": "set musc_fine.samples instead (the other steps make one answer)",
            "temperature": f"set {keys_ending(cfg.musc_fine, 'musc_fine', '_temperature')} or "
                           "musc.decompose_temperature instead",
            "max_new_tokens": f"set {keys_ending(cfg.musc_fine, 'musc_fine', '_max_tokens')} or "
                              "musc.decompose_max_tokens instead",
            "stop": "set musc_fine.judge_stop instead (the other steps stop where their templates say)"}


def roles(cfg: Config) -> list[RoleUse]:
    """The policy samples and corrects; ``model.judge`` (the policy unless named) judges."""
    return [RoleUse("policy", (cfg.model.policy,), ("decompose", "sample", "correct")), *judge_uses(cfg, ("judge",))]


def model_verdicts(pairs: list[dict]) -> list[bool | None]:
    """The judge model's verdicts on the kept pairs (not the code's, not the skipped)."""
    return [v for p in provenances(pairs, MuscFineProvenance) for s in p.samples
            for v, by in zip(s.verdicts, s.judged_by, strict=True) if by == JUDGED_BY_MODEL]


def build(models: ModelRoles, cfg: Config) -> MuscFine:
    """The policy makes the data; ``model.judge`` judges (the policy unless named: self-judging)."""
    return MuscFine(models["policy"], cfg, model_judge(models, cfg))


JUDGED_STAGES = ("select", "correct", "verify")
"""The stages whose rejects carry the judge model's verdicts on their item."""


def every_verdict(pairs: list[dict], rejected: list[Reject]) -> dict:
    """Counts of the judge model's verdicts over kept pairs and rejected items alike."""
    return add_counts(verdict_counts(model_verdicts(pairs)), *(r.judge for r in rejected if r.stage in JUDGED_STAGES))


def summarize(pairs: list[dict], rejects: list[dict], cfg: Config) -> dict:
    rejected = [Reject.from_json(r) for r in rejects]
    lost = Counter(r.stage for r in rejected)
    items = len(pairs) + len(rejects)
    decomposed = items - lost["load"] - lost["decompose"]
    verdicts = model_verdicts(pairs)
    kept = provenances(pairs, MuscFineProvenance)
    rescued = sum(1 for p in kept if p.revision_rejected not in (None, "revision_not_verified"))
    return {
        "method": METHOD,
        "yield_per_stage": {"seeds": items, "decomposed": decomposed, "selected": decomposed - lost["select"],
                            "corrected": decomposed - lost["select"] - lost["correct"] - rescued, "kept": len(pairs)},
        "chosen_source": dict(Counter(p.chosen_source for p in kept)),
        "judge_verdicts": verdict_counts(verdicts),  # on the kept pairs
        "judge": judge_health(every_verdict(pairs, rejected), METHOD, "a larger musc_fine.judge_max_tokens, "
                              "musc_fine.judge_stop, or a stronger model.judge", cfg.musc_fine.judge_warning_share),
        "decompositions_with_repeats": sum(1 for p in kept if p.decomposition.repeats_removed),
        "mean_rejected_score": round(sum(p["difficulty"] for p in pairs) / len(pairs), 4) if pairs else 0.0,
    }


SPEC = Method(METHOD, build=build, sections=("musc", "musc_fine"), roles=roles, summarize=summarize,
              generation_unread=generation_unread,
              negative_instructions=lambda cfg: False)  # a fine pair answers one instruction
