"""MuSC, both granularities: coarse (decompose/corrupt/recombine) and fine (judge/correct) pairs in one
artifact, as the full method trains on them.

Each seed goes to exactly one builder, drawn per item from (run seed, item id) with probability
``musc_fine.share`` for the fine one, so the split does not depend on chunking or resume and each pair
keeps the provenance of the builder that made it (``meta.method``). The two builders run side by side, their
calls to the policy gathered into one backend call per round (``models/rendezvous.py``): same results,
about half the sequential rounds. Token weights then apply per pair:
``kl``/``bi_kl`` to coarse pairs (they carry the corrupted instruction) and, with
``train.weights_fallback=edit``, ``edit`` to fine ones.
"""

from __future__ import annotations

from collections import Counter

from musc_ecd.config import Config
from musc_ecd.constraints.judge import add_counts, judge_health
from musc_ecd.items import Item
from musc_ecd.methods import musc_coarse, musc_fine
from musc_ecd.methods.base import RoleUse, item_seed, judge_uses, model_judge
from musc_ecd.models.generator import Generator
from musc_ecd.models.rendezvous import Rendezvous
from musc_ecd.models.roles import ModelRoles
from musc_ecd.records import Pair, Reject
from musc_ecd.registry import Method
from musc_ecd.store import item_id

METHOD = "musc"


def goes_to_fine(seed: int, item_id: str, share: float) -> bool:
    return item_seed(seed, item_id, "musc-split") / 2**64 < share


class Musc:
    def __init__(self, generator: Generator, cfg: Config, judge: Generator | None = None):
        self.cfg = cfg
        # The two builders run side by side and their calls to the policy go out together (see rendezvous).
        self.policy = Rendezvous(generator)
        shared_judge = self.policy if judge is generator else judge
        self.coarse = musc_coarse.MuscCoarse(self.policy, cfg, shared_judge)
        self.fine = musc_fine.MuscFine(self.policy, cfg, shared_judge)

    def __call__(self, items: list[Item]) -> tuple[list[dict], list[dict]]:
        share = self.cfg.musc_fine.share
        fine = [i for i in items if goes_to_fine(self.cfg.seed, i.id, share)]
        coarse = [i for i in items if not goes_to_fine(self.cfg.seed, i.id, share)]
        jobs = [job for job, part in ((lambda: self.coarse(coarse), coarse), (lambda: self.fine(fine), fine)) if part]
        pairs, rejects = [], []
        for part_pairs, part_rejects in self.policy.run(jobs):
            pairs, rejects = pairs + part_pairs, rejects + part_rejects
        return pairs, rejects


def roles(cfg: Config) -> list[RoleUse]:
    """Both builders' calls: the policy makes the data, ``model.judge`` (the policy unless named) judges."""
    return [RoleUse("policy", (cfg.model.policy,), ("decompose", "rewrite", "recombine", "respond", "sample",
                                                   "correct")),
            *judge_uses(cfg, ("judge",) + (("filter",) if cfg.musc.self_judge_filter else ()))]


def build(models: ModelRoles, cfg: Config) -> Musc:
    """The policy makes the data; ``model.judge`` judges (the policy unless named: self-judging)."""
    return Musc(models["policy"], cfg, model_judge(models, cfg))


def summarize(pairs: list[dict], rejects: list[dict], cfg: Config) -> dict:
    methods = [Pair.from_json(p).method for p in pairs]
    by_method = Counter(methods)
    coarse_pairs = [p for p, method in zip(pairs, methods, strict=True) if method == musc_coarse.METHOD]
    fine_pairs = [p for p, method in zip(pairs, methods, strict=True) if method == musc_fine.METHOD]
    rejected = [Reject.from_json(r) for r in rejects]
    lost = Counter(r.stage for r in rejected)
    seeds = len({item_id(record) for record in (*pairs, *rejects)})
    decomposed = seeds - lost["load"] - lost["decompose"]
    # Each builder's yields over its own seeds, rejected ones included (an item's builder follows from its id).
    to_fine = [goes_to_fine(cfg.seed, item_id(r), cfg.musc_fine.share) for r in rejects]
    coarse = musc_coarse.summarize(coarse_pairs, [r for r, fine in zip(rejects, to_fine, strict=True) if not fine], cfg)
    fine = musc_fine.summarize(fine_pairs, [r for r, fine in zip(rejects, to_fine, strict=True) if fine], cfg)
    # One judge account over both builders, kept pairs and rejected items alike (the parts see only pairs).
    coarse.pop("judge_filter"), fine.pop("judge")
    every_verdict = add_counts(musc_fine.every_verdict(fine_pairs, rejected),
                               musc_coarse.filter_verdicts(pairs, rejects))
    return {
        "method": METHOD,
        # One funnel over both builders: coarse items are lost at recombine/filter, fine ones at select/correct.
        "yield_per_stage": {"seeds": seeds, "decomposed": decomposed,
                            "built": decomposed - lost["recombine"] - lost["select"], "pairs": len(pairs)},
        "pairs_by_granularity": {"coarse": by_method[musc_coarse.METHOD], "fine": by_method[musc_fine.METHOD]},
        "coarse": coarse,
        "fine": fine,
        "judge": judge_health(every_verdict, METHOD, "larger musc_fine.judge_max_tokens / musc.judge_max_tokens, "
                              "their judge_stop, or a stronger model.judge",
                              min(cfg.musc.judge_warning_share, cfg.musc_fine.judge_warning_share)),
        "rejected_by_stage": dict(Counter(r.stage for r in rejected)),
        "rejected_by_reason": dict(Counter(f"{r.stage}:{r.reason}" for r in rejected)),
    }


def generation_unread(cfg: Config) -> dict[str, str]:
    """What each builder reads instead of a ``generation`` key (both read ``top_p`` alone)."""
    coarse, fine = musc_coarse.generation_unread(cfg), musc_fine.generation_unread(cfg)
    return {key: f"coarse: {coarse[key]}; fine: {fine[key]}" for key in coarse}


SPEC = Method(METHOD, build=build, sections=("musc", "musc_fine"), roles=roles, summarize=summarize,
              generation_unread=generation_unread,
              negative_instructions=lambda cfg: cfg.musc_fine.share == 0)  # fine pairs carry none
