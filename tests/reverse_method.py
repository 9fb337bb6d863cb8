"""``reverse``: MuSC coarse's pairs with chosen and rejected swapped — a label-flip control (training on it
should move a model *away* from following instructions), and the smallest real method, kept as the worked
example of ARCHITECTURE.md: this module plus one line in ``musc_ecd.registry.METHODS``."""

from __future__ import annotations

from musc_ecd.methods import musc_coarse
from musc_ecd.registry import Method

METHOD = "reverse"


def build(models, cfg):
    coarse = musc_coarse.build(models, cfg)

    def process(items):
        pairs, rejects = coarse(items)
        return [reverse(pair) for pair in pairs], rejects

    return process


def reverse(pair: dict) -> dict:
    meta = {**pair["meta"], "method": METHOD, "reversed_from": pair["meta"]["method"]}
    return {**pair, "chosen": pair["rejected"], "rejected": pair["chosen"], "meta": meta}


def summarize(pairs: list[dict], rejects: list[dict], cfg) -> dict:
    """Its pairs are not MuSC coarse ones any more (their provenance is foreign to the records): count them."""
    return {"method": METHOD, "yield_per_stage": {"seeds": len(pairs) + len(rejects), "pairs": len(pairs)}}


SPEC = Method(METHOD, build=build, sections=musc_coarse.SPEC.sections, roles=musc_coarse.roles, summarize=summarize,
              generation_unread=musc_coarse.generation_unread)
