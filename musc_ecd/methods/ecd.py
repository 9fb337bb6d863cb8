"""ECD, evolutionary contrastive distillation: harder instructions round by round, the previous round's
good answer as the hard negative.

Roles: the *evolver* rewrites instructions and the *responder* answers them; each is ``ecd.evolver`` /
``ecd.responder`` = ``teacher`` (``model.teacher``; the policy when unset) or ``policy``. Teacher-based
= a stronger model in both; self-based = ``model.teacher=null`` (or ``ecd.evolver=policy
ecd.responder=policy``). The judge filter uses ``model.judge`` (the policy when unset).

Steps (METHODS.md §2), each one batched ``generate`` call per chunk and round:
  0. ``respond``  R^0 for every seed (or the seed's own answer, column ``ecd.response_field``)
  for k = 1..K (``ecd.rounds``, default 3), over the chains still alive:
  1. ``evolve``   sample an operation (category, then operation; seeded per item and round, no repeats
                  while others are left); the evolver rewrites I^{k-1} into I^k adding one or two
                  requirements (``ecd.compose=append``: I^k = I^{k-1} + the new requirements).
                  Unparsable, unchanged, leaked template words, runaway growth (> ``ecd.max_growth_words``),
                  drift (< ``ecd.min_overlap`` of I^{k-1}'s content words kept), a rewrite that lacks its
                  own new requirement, a requirement already present, or a rewrite that no longer states a
                  typed constraint I^{k-1} stated (``typed_constraint_dropped``: the pair would still carry
                  it) end the chain; its earlier rounds' pairs stay.
  2. ``respond``  the responder answers I^k → R^k (an empty answer ends the chain).
  3. ``judge``    for every new requirement of I^k: does R^{k-1} already meet it? If the judge says Yes
                  to all, the hard pair of round k is dropped (R^{k-1} is no negative); the chain goes on.
                  If none says No and some verdict is unparsable, ``ecd.unparsable_verdict`` decides (default:
                  dropped too, a counted ``unparsable_verdict`` reject).
  4. ``pairs``    (I^k, R^k ≻ R^{k-1}) with difficulty 1.0; with ``ecd.older_negatives`` also
                  (I^k, R^k ≻ R^j), j < k-1, difficulty 1/(k-j): answers further back are easier negatives.
                  A pair whose two answers are identical is rejected; with ``model.judge=checkers``, so is one
                  where code does not find R^k passing more of the prompt's typed constraints than R^j.

Every pair carries the whole chain up to its round (instructions, operations, new requirements,
answers), the models per role, the sampling per step and ``meta.negative_instruction`` = I^j, the
instruction the rejected answer was written for (so ``train.weights=kl`` can weight ECD pairs too).

Departures, on purpose: the judge checks only the hard negative (older ones miss more requirements).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from musc_ecd.config import Config
from musc_ecd.constraints.evolve import (
    Evolution,
    Operation,
    all_operations,
    append_requirements,
    check_evolution,
    evolve_request,
    parse_evolution,
    sample_operation,
)
from musc_ecd.constraints.judge import (
    UNPARSABLE_VERDICT,
    add_counts,
    judge_health,
    judge_request,
    parse_verdict,
    undecided,
    verdict_counts,
)
from musc_ecd.constraints.seeded import CHECKERS, code_verdicts, seed_constraints, seed_typed
from musc_ecd.constraints.typed import TypedConstraint
from musc_ecd.constraints.typed.statement import states
from musc_ecd.constraints.typed_evolution import draw_requirement
from musc_ecd.degenerate import is_degenerate
from musc_ecd.errors import ConfigError
from musc_ecd.items import Item
from musc_ecd.methods.base import (
    RoleUse,
    item_seed,
    judge_uses,
    model_judge,
    pair_problem,
    seed_typed_constraints,
)
from musc_ecd.methods.sampling import keys_ending, step_params
from musc_ecd.models.generator import SamplingParams
from musc_ecd.models.roles import ModelRoles
from musc_ecd.prompts import load_template
from musc_ecd.records import (
    ChainRound,
    EcdProvenance,
    EcdRoles,
    JudgeVerdicts,
    Pair,
    Reject,
    make_pair,
    provenances,
)
from musc_ecd.registry import Method
from musc_ecd.store import item_id

METHOD = "ecd"
CODE_VERDICT = CHECKERS
"""``judge_raw`` of a verdict given by code (a typed requirement), not by the judge model."""


@dataclass
class Round:
    instruction: str
    response: str = ""
    finish_reason: str = ""
    operation: Operation | None = None
    new_requirements: tuple[str, ...] = ()
    evolve_raw: str = ""
    judge_verdicts: list[bool | None] = field(default_factory=list)
    judge_raw: list[str] = field(default_factory=list)
    hard_pair_dropped: bool = False
    """The judge filter found R^{k-1} already meets I^k (or could not tell, ``ecd.unparsable_verdict=drop``)."""
    typed: tuple[TypedConstraint, ...] = ()
    """``ecd.typed_format``: the round's new requirement as a typed constraint (judged by code)."""

    def verdicts(self) -> JudgeVerdicts:
        return JudgeVerdicts(tuple(self.judge_verdicts), tuple(self.judge_raw))

    def record(self, index: int) -> ChainRound:
        return ChainRound(index, self.instruction, str(self.operation or "seed"), tuple(self.new_requirements),
                          self.response, self.finish_reason, tuple(self.typed))


@dataclass
class Chain:
    item: Item
    rounds: list[Round]
    alive: bool = True


class Ecd:
    def __init__(self, models: ModelRoles, cfg: Config):
        self.models = models
        self.cfg = cfg
        self.opts = cfg.ecd
        self.rejects: list[Reject] = []

    @property
    def evolver(self):
        return self.models[self.opts.evolver]

    @property
    def responder(self):
        return self.models[self.opts.responder]

    def __call__(self, items: list[Item]) -> tuple[list[dict], list[dict]]:
        self.rejects = []
        chains = [Chain(item, [Round(item.prompt, response=self._seed_response(item))]) for item in items]
        self.respond([c for c in chains if not c.rounds[0].response], round_index=0)
        for k in range(1, self.opts.rounds + 1):
            live = [c for c in chains if c.alive]
            if not live:
                break
            grown = self.evolve(live, k)
            answered = self.respond(grown, round_index=k)
            if self.opts.judge_filter:
                self.judge(answered, k)
        pairs = [pair.to_json() for c in chains for pair in self.pairs(c)]
        return pairs, [r.to_json() for r in self.rejects]

    # -- the steps ---------------------------------------------------------------------------------

    def evolve(self, chains: list[Chain], k: int) -> list[Chain]:
        operations = [self._operation(c, k) for c in chains]
        typed = [self.opts.typed_format and op.category == "format" for op in operations]
        grown = [self._typed_round(c, op, k) for c, op, t in zip(chains, operations, typed, strict=True) if t]
        chains = [c for c, t in zip(chains, typed, strict=True) if not t]
        operations = [op for op, t in zip(operations, typed, strict=True) if not t]
        outputs = self._generate(self.evolver, [evolve_request(op, c.rounds[-1].instruction)
                                                for c, op in zip(chains, operations, strict=True)], "evolve")
        grown = [c for c in grown if c is not None]
        for chain, operation, (text, _) in zip(chains, operations, outputs, strict=True):
            previous = chain.rounds[-1].instruction
            evolution, reason = parse_evolution(text, previous if self.opts.compose == "append" else None)
            detail = f"{operation}: {text.strip()[:160]!r}"
            if evolution is not None:
                reason = check_evolution(previous, evolution, self.opts.max_growth_words, self.opts.min_overlap)
            if not reason and copies_demonstration(operation, evolution, self.opts.compose):
                reason = "copied_demonstration"
            if not reason and (dropped := dropped_typed(chain, previous, evolution.instruction)):
                reason, detail = "typed_constraint_dropped", f"{operation}: the rewrite no longer states {dropped}"
            if reason:
                self._end(chain, k, "evolve", reason, detail)
                continue
            chain.rounds.append(_evolved_round(evolution, operation, text))
            grown.append(chain)
        return grown

    def _typed_round(self, chain: Chain, operation: Operation, k: int) -> Chain | None:
        """A format operation drawn as a typed requirement (no evolver call), appended to I^{k-1}."""
        rng = random.Random(item_seed(self.cfg.seed, chain.item.id, f"typed-{k}"))
        previous = chain.rounds[-1].instruction
        drawn = draw_requirement(operation.name, previous, chain_typed(chain), rng)
        if drawn is None:
            self._end(chain, k, "evolve", "no_compatible_typed_requirement", str(operation))
            return None
        constraint, text = drawn
        chain.rounds.append(Round(append_requirements(previous, [text]), operation=operation,
                                  new_requirements=(text,), typed=(constraint,)))
        return chain

    def respond(self, chains: list[Chain], round_index: int) -> list[Chain]:
        outputs = self._generate(self.responder, [[{"role": "user", "content": c.rounds[round_index].instruction}]
                                                  for c in chains], "respond")
        answered = []
        for chain, (text, finish) in zip(chains, outputs, strict=True):
            current = chain.rounds[round_index]
            current.response, current.finish_reason = text.strip(), finish
            if current.response and is_degenerate(current.response):
                if round_index > 0:
                    chain.rounds.pop()
                self._end(chain, round_index, "respond", "degenerate_response", f"round {round_index}")
            elif not current.response:
                if round_index > 0:
                    chain.rounds.pop()  # a round without an answer is no round
                self._end(chain, round_index, "respond", "empty_response", f"round {round_index}")
            else:
                answered.append(chain)
        return answered

    def judge(self, chains: list[Chain], k: int) -> None:
        for chain in chains:  # a typed requirement is decided by code: does R^{k-1} already meet it?
            current = chain.rounds[k]
            if current.typed:
                current.judge_verdicts = code_verdicts(current.typed, chain.rounds[k - 1].response)
                current.judge_raw = [CODE_VERDICT] * len(current.typed)
        untyped = [c for c in chains if not c.rounds[k].typed]
        judge = model_judge(self.models, self.cfg)
        checks = [(c, requirement) for c in untyped for requirement in c.rounds[k].new_requirements]
        if judge is None:  # checkers with model.judge_untyped=skip: untyped requirements are not judged
            checks = []
        outputs = self._generate(judge, [
            judge_request(c.rounds[k].instruction, c.rounds[k - 1].response, requirement) for c, requirement in checks
        ], "judge")
        for (chain, _), (text, _) in zip(checks, outputs, strict=True):
            chain.rounds[k].judge_verdicts.append(parse_verdict(text))
            chain.rounds[k].judge_raw.append(text)
        for chain in chains:
            current = chain.rounds[k]
            requirements = "; ".join(current.new_requirements)
            if current.judge_verdicts and all(v is True for v in current.judge_verdicts):
                reason, detail = "previous_answer_satisfies", f"the judge found R^{k - 1} already meets: {requirements}"
            elif undecided(current.judge_verdicts) and self.opts.unparsable_verdict == "drop":
                reason, detail = UNPARSABLE_VERDICT, (f"the judge could not tell whether R^{k - 1} meets (unparsable "
                                                      f"verdicts, none No): {requirements}")
            else:
                continue
            current.hard_pair_dropped = True
            self.rejects.append(Reject(f"{chain.item.id}#r{k}", "judge", reason, detail, chain.item.line, chain.item.id,
                                       judge=verdict_counts(model_verdicts(current.verdicts())), round=k))

    def pairs(self, chain: Chain) -> list[Pair]:
        """For each round k: (I^k, R^k ≻ R^{k-1}) and, with ``ecd.older_negatives``, (I^k, R^k ≻ R^j), j < k-1."""
        out = []
        for k in range(1, len(chain.rounds)):
            negatives = [k - 1] if not chain.rounds[k].hard_pair_dropped else []
            if self.opts.older_negatives:
                negatives += range(k - 2, -1, -1)
            for j in negatives:
                # R^k is never empty or looping (respond ends the chain at one): identical is what is left to find
                problem = pair_problem(chain.rounds[k].response, chain.rounds[j].response)
                if problem is not None:  # no preference to learn
                    verdicts = verdict_counts(model_verdicts(chain.rounds[k].verdicts())) if j == k - 1 else None
                    detail = f"R^{k} equals R^{j}" if problem == "identical_responses" else f"R^{k} over R^{j}"
                    self.rejects.append(Reject(_pair_id(chain, k, j), "pairs", problem, detail, chain.item.line,
                                               chain.item.id, judge=verdicts, round=k))
                elif (unverified := self._unverified(chain, k, j)) is not None:
                    self.rejects.append(Reject(_pair_id(chain, k, j), "pairs", "chosen_not_verified", unverified,
                                               chain.item.line, chain.item.id, round=k))
                else:
                    out.append(self._pair(chain, k, j))
        return out

    def _unverified(self, chain: Chain, k: int, j: int) -> str | None:
        """With ``model.judge=checkers`` (``ecd.verify_with_checkers``): why code does not find R^k better than
        R^j on the prompt's typed constraints, or None. A 135M responder often misses the typed requirement
        it was asked for, or loses an older one (measured: experiments/verifiable_labels)."""
        typed = prompt_typed(chain, k)
        if self.cfg.model.judge != CHECKERS or not self.opts.verify_with_checkers or not typed:
            return None
        chosen, rejected = (sum(code_verdicts(typed, chain.rounds[i].response)) for i in (k, j))
        if chosen > rejected:
            return None
        return f"R^{k} passes {chosen} of the {len(typed)} typed constraints, R^{j} {rejected}"

    # -- records -----------------------------------------------------------------------------------

    def _pair(self, chain: Chain, k: int, j: int) -> Pair:
        """prompt I^k, chosen R^k, rejected R^j (j < k); difficulty 1/(k-j): the previous round's is the hardest."""
        current, negative = chain.rounds[k], chain.rounds[j]
        provenance = EcdProvenance(
            seed_id=chain.item.id,
            source_instruction=chain.item.prompt,
            source_line=chain.item.line,
            typed_constraints=prompt_typed(chain, k),
            round=k,
            negative_round=j,
            operation=str(current.operation),
            new_requirements=tuple(current.new_requirements),
            negative_instruction=negative.instruction,
            chain=tuple(r.record(i) for i, r in enumerate(chain.rounds[: k + 1])),
            evolve_raw=current.evolve_raw,
            judge=current.verdicts() if j == k - 1 else None,
            roles=EcdRoles(self.opts.evolver, self.opts.responder,
                           self.models.is_self(self.opts.evolver) and self.models.is_self(self.opts.responder)),
            models={"policy": self.models.spec("policy"), "evolver": self.models.spec(self.opts.evolver),
                    "responder": self.models.spec(self.opts.responder), "judge": self.models.spec("judge")},
            sampling={step: self._params(step).to_json() for step in ("evolve", "respond", "judge")},
            seed=self.cfg.seed,
            templates={name: load_template(name).sha for name in (current.operation.template, "judge")},
        )
        return make_pair(_pair_id(chain, k, j), current.instruction, current.response, negative.response,
                         1.0 / (k - j), provenance, item_id=chain.item.id)

    # -- helpers -----------------------------------------------------------------------------------

    def _seed_response(self, item: Item) -> str:
        field_name = self.opts.response_field
        value = item.fields.get(field_name) if field_name else None
        return value.strip() if isinstance(value, str) else ""

    def _operation(self, chain: Chain, k: int) -> Operation:
        rng = random.Random(item_seed(self.cfg.seed, chain.item.id, f"evolve-{k}"))
        used = [r.operation for r in chain.rounds if r.operation is not None]
        return sample_operation(rng, self.opts.categories, avoid=used)

    def _end(self, chain: Chain, k: int, stage: str, reason: str, detail: str) -> None:
        chain.alive = False
        self.rejects.append(Reject(f"{chain.item.id}#r{k}", stage, reason, detail, chain.item.line, chain.item.id,
                                   round=k))

    def _params(self, step: str) -> SamplingParams:
        o = self.opts
        # In append mode only the requirement lines are read: stop before the model's own rewrite.
        evolve_stop = ("\nInstruction:", "###", "\n\n\n") + (("\nEvolved",) if o.compose == "append" else ())
        temperature, max_tokens, stop = {
            "evolve": (o.evolve_temperature, o.evolve_max_tokens, evolve_stop),
            "respond": (o.respond_temperature, o.respond_max_tokens, ()),
            "judge": (o.judge_temperature, o.judge_max_tokens, tuple(o.judge_stop)),
        }[step]
        return step_params(self.cfg, generation_unread(self.cfg), n=1, temperature=temperature,
                           max_new_tokens=max_tokens, stop=stop)

    def _generate(self, generator, requests: list[list[dict]], step: str) -> list[tuple[str, str]]:
        if not requests:
            return []
        return [(samples[0].text, samples[0].finish_reason)
                for samples in generator.generate(requests, self._params(step))]


def copies_demonstration(operation: Operation, evolution: Evolution, compose: str) -> bool:
    """A new requirement (or, in rewrite mode, the evolved instruction) taken from the template's example."""
    template = load_template(operation.template)
    texts = [*evolution.new_requirements] + ([evolution.instruction] if compose == "rewrite" else [])
    return any(template.copies_demonstration(text) for text in texts)


def model_verdicts(judge: JudgeVerdicts | None) -> list[bool | None]:
    """The judge *model's* verdicts of a round (a typed requirement's verdict is code's: always decided, so
    counting it would hide how often the model's are unparsable)."""
    if judge is None:
        return []
    return [v for v, raw in zip(judge.verdicts, judge.raw, strict=True) if raw != CODE_VERDICT]


def chain_typed(chain: Chain) -> list[TypedConstraint]:
    """The seed's typed constraints and every typed requirement the chain has added so far."""
    return (seed_typed(chain.item) or []) + [c for r in chain.rounds for c in r.typed]


def typed_statements(chain: Chain) -> list[tuple[TypedConstraint, str | None]]:
    """``chain_typed`` with the sentence each was written as (None for a seed's without ``typed_texts``)."""
    seed = seed_constraints(chain.item)
    if seed is not None:
        stated = list(zip(seed.typed, seed.texts, strict=True))
    else:
        stated = [(c, None) for c in seed_typed(chain.item) or []]
    # a typed round adds exactly one requirement, written by ``describe``
    return stated + [(c, text) for r in chain.rounds if r.typed for c, text in zip(r.typed, r.new_requirements,
                                                                                    strict=True)]


def dropped_typed(chain: Chain, previous: str, evolved: str) -> str:
    """The typed constraints I^{k-1} states that the evolved instruction no longer does ("" = none): a rewrite
    must keep them, since the pair's typed list (audit, checker verification) still names them."""
    lost = [f"{c.id} ({sentence!r})" if sentence else c.id for c, sentence in typed_statements(chain)
            if states(previous, c, sentence) and not states(evolved, c, sentence)]
    return "; ".join(lost)


def prompt_typed(chain: Chain, k: int) -> tuple[TypedConstraint, ...] | None:
    """The typed constraints of I^k (the pair's prompt): the seed's and those added in rounds 1..k."""
    seed = seed_typed_constraints(chain.item) or ()
    added = tuple(c for r in chain.rounds[1 : k + 1] for c in r.typed)
    return (seed + added) or None


def _pair_id(chain: Chain, k: int, j: int) -> str:
    return f"{chain.item.id}#r{k}" + ("" if j == k - 1 else f"n{j}")


def _evolved_round(evolution: Evolution, operation: Operation, raw: str) -> Round:
    return Round(evolution.instruction, operation=operation, new_requirements=evolution.new_requirements,
                 evolve_raw=raw)


def generation_unread(cfg: Config) -> dict[str, str]:
    """Every step decodes with its own ``ecd.*`` keys; of ``generation`` only ``top_p`` acts."""
    return {"n": "every step makes one answer",
            "temperature": f"set {keys_ending(cfg.ecd, 'ecd', '_temperature')} instead",
            "max_new_tokens": f"set {keys_ending(cfg.ecd, 'ecd', '_max_tokens')} instead",
            "stop": "set ecd.judge_stop instead (the evolver stops where its template says, the responder at the end)"}


def check(cfg: Config) -> None:
    if cfg.model.judge == CHECKERS and not cfg.ecd.typed_format:
        raise ConfigError("config error: method=ecd with model.judge=checkers needs ecd.typed_format=true: only "
                          "typed requirements (the format operations') can be checked by code")


def roles(cfg: Config) -> list[RoleUse]:
    """Evolver and responder are the teacher (when ``model.teacher`` is named) or the policy; the judge filter
    calls ``model.judge`` (the policy unless named)."""
    steps: dict[str, list[str]] = {"teacher": [], "policy": []}
    for step, who in (("evolver", cfg.ecd.evolver), ("responder", cfg.ecd.responder)):
        steps["teacher" if who == "teacher" and cfg.model.teacher is not None else "policy"].append(step)
    uses = [RoleUse(role, (cfg.model.role(role),), tuple(names)) for role, names in steps.items() if names]
    if cfg.ecd.judge_filter:
        uses += judge_uses(cfg, ("judge_filter",))
    return uses


def build(models: ModelRoles, cfg: Config) -> Ecd:
    return Ecd(models, cfg)


def summarize(pairs: list[dict], rejects: list[dict], cfg: Config) -> dict:
    """Chains reaching each round, reject reasons per step, operations used, pairs per round."""
    seeds = {item_id(record) for record in (*pairs, *rejects)}
    made = provenances(pairs, EcdProvenance)
    rejected = [Reject.from_json(r) for r in rejects]
    deepest: dict[str, int] = {}
    for p in made:
        deepest[p.seed_id] = max(deepest.get(p.seed_id, 0), p.round)
    for r in rejected:
        if r.stage in ("judge", "pairs") and r.round is not None:  # the round succeeded; only a pair was dropped
            deepest[r.item_id] = max(deepest.get(r.item_id, 0), r.round)
    rounds = max([0, *deepest.values()])
    hard = [p for p in made if p.hard_negative]
    return {
        "method": METHOD,
        "yield_per_stage": {"seeds": len(seeds), **{f"round_{k}": sum(1 for d in deepest.values() if d >= k)
                                                   for k in range(1, rounds + 1)}, "pairs": len(pairs)},
        "pairs_per_round": dict(sorted(Counter(p.round for p in made).items())),
        "hard_negative_pairs": len(hard),
        "operations": dict(Counter(p.operation for p in hard)),
        "rejects_by_step": dict(Counter(f"{r.stage}:{r.reason}" for r in rejected)),
        "operations_available": len(all_operations()),
        "judge": judge_health(add_counts(*(verdict_counts(model_verdicts(p.judge)) for p in hard),
                                         *(r.judge for r in rejected)),
                              METHOD, "a larger ecd.judge_max_tokens, ecd.judge_stop, a stronger model.judge, or "
                              "ecd.judge_filter=false", cfg.ecd.judge_warning_share),
        # hard pairs the judge filter could not decide: kept (ecd.unparsable_verdict=keep) or dropped
        "unparsable_verdict": {"kept": sum(1 for p in hard if undecided(model_verdicts(p.judge))),
                               "dropped": sum(1 for r in rejected if r.reason == UNPARSABLE_VERDICT)},
    }


SPEC = Method(METHOD, build=build, sections=("ecd",), roles=roles, summarize=summarize, check=check,
              generation_unread=generation_unread)
