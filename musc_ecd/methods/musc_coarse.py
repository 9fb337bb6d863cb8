"""MuSC, coarse granularity: constraint-aware pairs by decomposition and recombination.

Multi-granularity Self-Contrastive training (MuSC): the policy splits a complex instruction into
constraints, corrupts some of them (drop / substitute / negate), recombines both the intact and the
corrupted list into instructions, and answers both. prompt = the original instruction, chosen = the
answer to the intact recombination, rejected = the answer to the corrupted one. Every model call is
the policy's own (``model.policy``); no stronger model is involved.

Steps (METHODS.md §1a), each a named function below, each one batched ``generate`` call per chunk:
  1. ``decompose``       few-shot, temperature 0.1, strict parse; spaCy fallback when unparsable
  2. ``corrupt``         k = max(1, round(0.3·n)) constraints, never the first; drop .5 / substitute .25 /
                          negate .25 (substitute and negate are policy calls)
  3. ``recombine``       intact and corrupted lists → two instructions (temperature 0.1), leaks rejected
  4. ``respond``         the policy answers both (temperature 0.5)
  5. ``filter_pairs``    empty or identical answers; optionally the policy's own judge must find that
                          ``rejected`` fails at least one corrupted constraint

Departures, on purpose:
- The authors' released code effectively only drops; here all three operators work. When a substitute
  or negate rewrite is unusable (empty, unchanged, over 40 words) or copies its template's demonstration,
  the constraint is dropped instead and the fallback is recorded (``corruptions[i].fallback_from`` and
  ``fallback_reason``) and counted in the summary.
- Every kept model output is checked against the demonstrations of the template that produced it: a
  decomposition or recombination that copies one is a counted reject (``copied_demonstration``).
- An unparsable decomposition falls back to splitting the instruction's own sentences and clauses
  (provenance ``decomposition.source = "spacy_fallback"``), rather than being discarded.
- ``difficulty`` = 1/k (k corrupted constraints): one corrupted constraint makes the closest, hardest
  pair (1.0); more corruption makes an easier one. (Inferred; the papers do not grade difficulty.)
- The self-judge filter is off by default. A pair it cannot decide (no verdict says the rejected answer fails a
  corrupted constraint, and some are unparsable) is dropped by default, a counted ``unparsable_verdict`` reject
  (``musc.unparsable_verdict=keep`` keeps it); the summary counts both.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace

from musc_ecd.config import Config
from musc_ecd.constraints.corrupt import (
    Corruption,
    apply_corruption,
    parse_rewritten_constraint,
    plan_corruption,
    rewrite_request,
    with_rewrite,
)
from musc_ecd.constraints.decompose import Decomposition
from musc_ecd.constraints.judge import (
    UNPARSABLE_VERDICT,
    add_counts,
    judge_health,
    judge_request,
    parse_verdict,
    undecided,
    verdict_counts,
)
from musc_ecd.constraints.recombine import parse_recombined, recombine_request
from musc_ecd.constraints.seeded import CHECKERS, code_verdicts, corrupt_typed
from musc_ecd.constraints.typed import TypedConstraint
from musc_ecd.items import Item
from musc_ecd.methods.base import (
    ConstraintPairBuilder,
    RoleUse,
    item_seed,
    judge_uses,
    model_judge,
    pair_problem,
    seed_typed_constraints,
)
from musc_ecd.methods.sampling import keys_ending, step_params
from musc_ecd.models.generator import Generator, SamplingParams
from musc_ecd.models.roles import ModelRoles
from musc_ecd.prompts import load_template
from musc_ecd.records import (
    BySide,
    CoarseJudgeFilter,
    MuscCoarseProvenance,
    Pair,
    Reject,
    make_pair,
    provenances,
)
from musc_ecd.registry import Method

METHOD = "musc_coarse"
TEMPLATES = ("decompose", "recombine", "substitute", "negate", "judge")


@dataclass
class _Work:
    """One seed on its way through the steps (mutable scratch state, never leaves this module)."""

    item: Item
    decomposition: Decomposition | None = None
    raw_decomposition: str = ""
    typed_at: dict = field(default_factory=dict)  # position in the constraint list -> TypedConstraint
    corruptions: list[Corruption] = field(default_factory=list)
    positive: str = ""
    negative: str = ""
    chosen: str = ""
    rejected: str = ""
    finish: dict = field(default_factory=dict)
    judge_verdicts: list[bool | None] = field(default_factory=list)  # per corrupted constraint (filter on)
    judge_raw: list[str] = field(default_factory=list)
    code_verdicts: dict | None = None  # checkers: typed verdicts of chosen and rejected on the corrupted ones
    decided_by_code: bool = False


class MuscCoarse(ConstraintPairBuilder):
    """Builds coarse MuSC pairs for a chunk of seeds with one generator (the policy)."""

    def __init__(self, generator: Generator, cfg: Config, judge: Generator | None = None):
        super().__init__(generator, cfg, judge)
        self.opts = cfg.musc

    def __call__(self, items: list[Item]) -> tuple[list[dict], list[dict]]:
        self.rejects = []
        work = [_Work(item) for item in items]
        work = self.decompose(work)
        work = self.corrupt(work)
        work = self.recombine(work)
        work = self.respond(work)
        work = self.filter_pairs(work)
        return [self.pair(w).to_json() for w in work], [r.to_json() for r in self.rejects]

    # -- the steps (decompose: ConstraintPairBuilder) -----------------------------------------

    def corrupt(self, work: list[_Work]) -> list[_Work]:
        probabilities = {"drop": self.opts.p_drop, "substitute": self.opts.p_substitute,
                         "negate": self.opts.p_negate}
        for w in work:
            rng = random.Random(item_seed(self.cfg.seed, w.item.id, "corrupt"))
            w.corruptions = plan_corruption(w.decomposition.constraints, rng, self.opts.drop_ratio, probabilities,
                                            self.opts.keep_first)
            w.corruptions = [self._corrupt_typed(w, c, rng) if c.index in w.typed_at else c for c in w.corruptions]
        to_write = [(w, i) for w in work for i, c in enumerate(w.corruptions)
                    if c.operator != "drop" and c.new is None]
        outputs = self._generate([rewrite_request(w.corruptions[i]) for w, i in to_write], "rewrite")
        for (w, i), text in zip(to_write, outputs, strict=True):
            rewritten = parse_rewritten_constraint(text, w.corruptions[i].original)
            w.corruptions[i] = with_rewrite(w.corruptions[i], rewritten)
        return work

    @staticmethod
    def _corrupt_typed(w: _Work, corruption: Corruption, rng: random.Random) -> Corruption:
        """A typed constraint is corrupted exactly, on its kwargs; its new sentence comes from ``describe``."""
        typed = w.typed_at[corruption.index]
        result = corrupt_typed(typed, corruption.operator, rng)
        fallback = corruption.operator if result.operator != corruption.operator else None
        return replace(corruption, operator=result.operator, new=result.text, fallback_from=fallback,
                       fallback_reason=result.fallback_reason, typed_original=typed.to_json(),
                       typed_new=result.new.to_json() if result.new else None)

    def recombine(self, work: list[_Work]) -> list[_Work]:
        requests = []
        for w in work:
            constraints = w.decomposition.constraints
            requests.append(recombine_request(constraints, w.decomposition.input))
            requests.append(recombine_request(apply_corruption(constraints, w.corruptions), w.decomposition.input))
        outputs = self._generate(requests, "recombine")
        kept = []
        for index, w in enumerate(work):
            positive, why_positive = parse_recombined(outputs[2 * index])
            negative, why_negative = parse_recombined(outputs[2 * index + 1])
            if positive is None:
                self._reject(w, "recombine", why_positive, "positive instruction")
            elif negative is None:
                self._reject(w, "recombine", why_negative, "corrupted instruction")
            elif positive.strip() == negative.strip():
                self._reject(w, "recombine", "recombine_identical", "corruption did not change the instruction")
            else:
                w.positive, w.negative = positive, negative
                kept.append(w)
        return kept

    def respond(self, work: list[_Work]) -> list[_Work]:
        requests = [[{"role": "user", "content": text}] for w in work for text in (w.positive, w.negative)]
        completions = self.generator.generate(requests, self._params("respond"))
        for index, w in enumerate(work):
            chosen, rejected = completions[2 * index][0], completions[2 * index + 1][0]
            w.chosen, w.rejected = chosen.text.strip(), rejected.text.strip()
            w.finish = {"chosen": chosen.finish_reason, "rejected": rejected.finish_reason}
        return work

    def filter_pairs(self, work: list[_Work]) -> list[_Work]:
        # this method's reject reason (and detail) for each pair problem
        reasons = {"empty_chosen": ("empty_response", "chosen"), "empty_rejected": ("empty_response", "rejected"),
                   "identical_responses": ("identical_responses", ""), "degenerate_chosen": ("degenerate_response",
                                                                                             "chosen")}
        kept = []
        for w in work:
            problem = pair_problem(w.chosen, w.rejected)
            if problem is None:
                kept.append(w)
            else:
                self._reject(w, "filter", *reasons[problem])
        if not self.opts.self_judge_filter or not kept:
            return kept
        if self.code_judge:
            kept = self.code_filter(kept)
        return self.model_filter(kept)

    def code_filter(self, kept: list[_Work]) -> list[_Work]:
        """``model.judge=checkers``: a pair with typed corruptions is kept only if, on some corrupted typed
        constraint (as it stood in the original instruction), chosen passes and rejected fails — by code."""
        survivors = []
        for w in kept:
            originals = [w.typed_at[c.index] for c in w.corruptions if c.typed_original]
            if not originals:
                survivors.append(w)  # untyped corruptions only: the model judge decides (or none is asked)
                continue
            chosen, rejected = code_verdicts(originals, w.chosen), code_verdicts(originals, w.rejected)
            w.code_verdicts = {"chosen": chosen, "rejected": rejected}
            if any(c and not r for c, r in zip(chosen, rejected, strict=True)):
                w.decided_by_code = True
                survivors.append(w)
            else:
                self._reject(w, "filter", "no_corrupted_typed_constraint_separates",
                             f"typed verdicts chosen {chosen}, rejected {rejected}")
        return survivors

    def model_filter(self, kept: list[_Work]) -> list[_Work]:
        """The judge model: a pair is kept if ``rejected`` fails at least one corrupted constraint; one it cannot
        decide (unparsable verdicts, none "No") as ``musc.unparsable_verdict`` says."""
        asked = [w for w in kept if not w.decided_by_code]
        if self.judge_generator is None:  # checkers with model.judge_untyped=skip: untyped ones are kept
            return kept
        # The judge sees the *original* instruction: the question is whether the rejected answer meets the
        # intact constraint; shown the corrupted instruction, a negated constraint would contradict it.
        checks = [(w, c.original) for w in asked for c in w.corruptions]
        outputs = self._generate([judge_request(w.item.prompt, w.rejected, original) for w, original in checks],
                                 "judge", self.judge_generator)
        for (w, _), text in zip(checks, outputs, strict=True):
            w.judge_verdicts.append(parse_verdict(text))
            w.judge_raw.append(text)
        survivors = []
        for w in kept:
            if w.decided_by_code or False in w.judge_verdicts:
                survivors.append(w)
            elif undecided(w.judge_verdicts):
                if self.opts.unparsable_verdict == "keep":
                    survivors.append(w)
                else:
                    self._reject(w, "filter", UNPARSABLE_VERDICT, "no verdict says the rejected answer fails a "
                                 "corrupted constraint and some are unparsable", judge=verdict_counts(w.judge_verdicts))
            else:
                self._reject(w, "filter", "rejected_satisfies_corrupted",
                             "the judge found that the rejected answer meets every corrupted constraint",
                             judge=verdict_counts(w.judge_verdicts))
        return survivors

    # -- records -------------------------------------------------------------------------------

    def pair(self, w: _Work) -> Pair:
        """prompt = the original instruction, chosen = the answer to the intact recombination (``positive``),
        rejected = the answer to the corrupted one (``negative``)."""
        judge_filter = None
        if self.opts.self_judge_filter:
            code = None if w.code_verdicts is None else BySide(tuple(w.code_verdicts["chosen"]),
                                                               tuple(w.code_verdicts["rejected"]))
            judge_filter = CoarseJudgeFilter(tuple(w.judge_verdicts), tuple(w.judge_raw), code,
                                             CHECKERS if w.decided_by_code else getattr(self.judge_generator, "name",
                                                                                        None))
        provenance = MuscCoarseProvenance(
            source_instruction=w.item.prompt,
            source_line=w.item.line,
            typed_constraints=seed_typed_constraints(w.item),
            decomposition=w.decomposition,
            corruptions=tuple(w.corruptions),
            corrupted_typed_constraints=corrupted_typed(w),
            positive_instruction=w.positive,
            negative_instruction=w.negative,
            finish_reasons=BySide(w.finish["chosen"], w.finish["rejected"]),
            judge_filter=judge_filter,
            models={"policy": self.generator.name},
            sampling={stage: self._params(stage).to_json() for stage in ("decompose", "rewrite", "recombine",
                                                                          "respond")},
            seed=self.cfg.seed,
            templates={name: load_template(name).sha for name in TEMPLATES},
        )
        return make_pair(w.item.id, w.item.prompt, w.chosen, w.rejected, 1.0 / len(w.corruptions), provenance)

    # -- helpers -------------------------------------------------------------------------------

    def _params(self, stage: str) -> SamplingParams:
        o = self.opts
        temperature, max_tokens, stop = {
            "decompose": (o.decompose_temperature, o.decompose_max_tokens, ("\nInstruction:", "###")),
            "rewrite": (o.rewrite_temperature, o.rewrite_max_tokens, ("\n\n", "\nConstraint:")),
            "recombine": (o.recombine_temperature, o.recombine_max_tokens, ("\nInstruction:", "###")),
            "respond": (o.respond_temperature, o.respond_max_tokens, ()),
            "judge": (o.judge_temperature, o.judge_max_tokens, tuple(o.judge_stop)),
        }[stage]
        return step_params(self.cfg, generation_unread(self.cfg), n=1, temperature=temperature,
                           max_new_tokens=max_tokens, stop=stop)

    def _generate(self, requests: list[list[dict]], stage: str, generator: Generator | None = None) -> list[str]:
        if not requests:
            return []
        generator = generator or self.generator
        return [samples[0].text for samples in generator.generate(requests, self._params(stage))]


def summarize(pairs: list[dict], rejects: list[dict], cfg: Config) -> dict:
    """Counts per stage and reason, operator use, fallback rates, mean constraints per instruction."""
    items = len(pairs) + len(rejects)
    rejected = [Reject.from_json(r) for r in rejects]
    lost = Counter(r.stage for r in rejected)
    decomposed = items - lost["load"] - lost["decompose"]
    recombined = decomposed - lost["recombine"]
    made = provenances(pairs, MuscCoarseProvenance)
    corruptions = [c for p in made for c in p.corruptions]
    sources = Counter(p.decomposition.source for p in made)
    sizes = [len(p.decomposition.constraints) for p in made]
    return {
        "method": METHOD,
        "yield_per_stage": {"seeds": items, "decomposed": decomposed, "recombined": recombined,
                            "responded_and_filtered": len(pairs)},
        "operators": dict(Counter(c.operator for c in corruptions)),
        "rewrite_fallbacks_to_drop": sum(1 for c in corruptions if c.fallback_from),
        "rewrites_copying_a_demonstration": sum(1 for c in corruptions if c.fallback_reason == "copied_demonstration"),
        "decomposition_fallback_rate": round(sources["spacy_fallback"] / len(pairs), 3) if pairs else 0.0,
        "mean_constraints_per_instruction": round(sum(sizes) / len(sizes), 2) if sizes else 0.0,
        "decompositions_with_repeats": sum(1 for p in made if p.decomposition.repeats_removed),
        "truncated_responses": sum(1 for p in made for f in (p.finish_reasons.chosen, p.finish_reasons.rejected)
                                   if f == "length"),
        "judge_filter": judge_health(filter_verdicts(pairs, rejects), METHOD,
                                     "a larger musc.judge_max_tokens, musc.judge_stop, or a stronger model.judge",
                                     cfg.musc.judge_warning_share),
        "unparsable_verdict": unparsable_verdicts(pairs, rejected),
    }


def unparsable_verdicts(pairs: list[dict], rejected: list[Reject]) -> dict:
    """How many pairs the self-judge filter could not decide were kept (``musc.unparsable_verdict=keep``) and how
    many dropped."""
    made = [Pair.from_json(p).provenance for p in pairs]
    kept = sum(1 for p in made if isinstance(p, MuscCoarseProvenance) and p.judge_filter is not None
               and undecided(p.judge_filter.verdicts))
    dropped = sum(1 for r in rejected if r.stage == "filter" and r.reason == UNPARSABLE_VERDICT)
    return {"kept": kept, "dropped": dropped}


def corrupted_typed(w: _Work) -> tuple[TypedConstraint, ...] | None:
    """The typed constraints of the corrupted instruction (None for a seed without typed constraints)."""
    if not w.typed_at:
        return None
    by_index = {c.index: c for c in w.corruptions}
    out = []
    for index, typed in sorted(w.typed_at.items()):
        corruption = by_index.get(index)
        if corruption is None:
            out.append(typed)
        elif corruption.typed_new is not None:
            out.append(TypedConstraint.from_json(corruption.typed_new))
    return tuple(out)


def filter_verdicts(pairs: list[dict], rejects: list[dict]) -> dict:
    """Every verdict of the self-judge filter: on kept pairs and on the items it rejected."""
    made = [Pair.from_json(p).provenance for p in pairs]  # the full method's fine pairs have no filter: skipped
    kept = [verdict_counts(p.judge_filter.verdicts) for p in made
            if isinstance(p, MuscCoarseProvenance) and p.judge_filter is not None]
    return add_counts(*kept, *(r.judge for r in map(Reject.from_json, rejects) if r.stage == "filter"))


def generation_unread(cfg: Config) -> dict[str, str]:
    """Every step decodes with its own ``musc.*`` keys; of ``generation`` only ``top_p`` acts."""
    return {"n": "every step makes one answer",
            "temperature": f"set {keys_ending(cfg.musc, 'musc', '_temperature')} instead",
            "max_new_tokens": f"set {keys_ending(cfg.musc, 'musc', '_max_tokens')} instead",
            "stop": "set musc.judge_stop instead (the other steps stop where their templates say)"}


def roles(cfg: Config) -> list[RoleUse]:
    """The policy makes every call; the filter's judge is ``model.judge`` (the policy unless named)."""
    uses = [RoleUse("policy", (cfg.model.policy,), ("decompose", "rewrite", "recombine", "respond"))]
    if cfg.musc.self_judge_filter:
        uses += judge_uses(cfg, ("filter",))
    return uses


def build(models: ModelRoles, cfg: Config) -> MuscCoarse:
    """The policy makes the data; ``model.judge`` judges when the filter is on (the policy unless named)."""
    return MuscCoarse(models["policy"], cfg, model_judge(models, cfg) if cfg.musc.self_judge_filter else None)


SPEC = Method(METHOD, build=build, sections=("musc",), roles=roles, summarize=summarize,
              generation_unread=generation_unread)
