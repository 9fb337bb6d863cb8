"""APC, automatic pair construction: answers from responders of different strength become preference
pairs, graded by how close the two responders are.

Steps (METHODS.md §3):
  1. ``respond``  every responder (``model.responders``, strongest first; per-responder decoding from
                  ``apc.temperatures`` / ``apc.max_new_tokens``) answers every prompt of the chunk, one
                  batched call per responder
  2. ``pairs``    every (stronger i, weaker j) answer pair → chosen = i, rejected = j, difficulty
                  = 1 - (s_i - s_j) / (s_first - s_last) with strengths s (``apc.strengths``, default
                  ranks): the largest gap is the easiest pair (0.0), adjacent responders the hardest.
                  A pair whose answers are empty or identical is rejected (counted, with its reason).
  3. ``sft``      the strongest responder's non-empty answer is the SFT target: in every pair's
                  ``meta.sft_target`` (with ``sft_rank``) and, after the stage, in ``sft.jsonl`` (TRL's
                  conversational ``messages`` format, one row per prompt) beside ``pairs.jsonl``, which
                  ``train.loss=[sft]`` trains on.

With R responders there are R-1 difficulty levels (one per rank gap), which ``train.curriculum=staged``
trains on in order, easiest first; losses DPO (``sigmoid``), SLiC (``[hinge, sft]``), SFT (``sft``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from musc_ecd.config import Config
from musc_ecd.errors import ConfigError
from musc_ecd.items import Item
from musc_ecd.methods.base import RoleUse, pair_problem, seed_typed_constraints
from musc_ecd.methods.sampling import step_params
from musc_ecd.models.generator import SamplingParams
from musc_ecd.models.roles import ModelRoles
from musc_ecd.records import ApcProvenance, BySide, Pair, Reject, make_pair, provenances
from musc_ecd.registry import Extra, Method
from musc_ecd.store import item_id, read_jsonl, write_jsonl_atomic

METHOD = "apc"


def check(cfg: Config) -> None:
    """Cross-section checks, before any model loads."""
    count = len(cfg.model.responders)
    if count < 2:
        raise ConfigError(f"config error: method=apc needs model.responders to list at least two models, strongest "
                          f"first (got {count}); a model may appear twice with different apc.temperatures")
    for key in ("temperatures", "max_new_tokens", "strengths"):
        values = getattr(cfg.apc, key)
        if values and len(values) != count:
            raise ConfigError(f"config error: apc.{key} has {len(values)} value(s) but model.responders has "
                              f"{count}; give one per responder or none")


def strengths(cfg: Config) -> list[float]:
    count = len(cfg.model.responders)
    return list(cfg.apc.strengths) or [float(count - 1 - rank) for rank in range(count)]


def difficulty(strength_values: list[float], stronger: int, weaker: int) -> float:
    span = strength_values[0] - strength_values[-1]
    return round(1.0 - (strength_values[stronger] - strength_values[weaker]) / span, 4)


class Apc:
    def __init__(self, models: ModelRoles, cfg: Config):
        check(cfg)
        self.models = models
        self.cfg = cfg
        self.strengths = strengths(cfg)

    def __call__(self, items: list[Item]) -> tuple[list[dict], list[dict]]:
        answers = self.respond(items)  # [responder][item] → (text, finish reason)
        pairs, rejects = [], []
        for index, item in enumerate(items):
            texts = [answers[r][index] for r in range(len(answers))]
            for i in range(len(texts)):
                for j in range(i + 1, len(texts)):
                    reason = _pair_problem(texts[i][0], texts[j][0])
                    pair_id = f"{item.id}#{i}>{j}"
                    if reason:
                        rejects.append(Reject(pair_id, "pairs", reason, f"responders {i} and {j}", item.line,
                                              item.id).to_json())
                    else:
                        pairs.append(self._pair(item, pair_id, texts, i, j).to_json())
        return pairs, rejects

    def respond(self, items: list[Item]) -> list[list[tuple[str, str]]]:
        requests = [[{"role": "user", "content": item.prompt}] for item in items]
        out = []
        for rank in range(len(self.models.responder_specs)):
            samples = self.models.responder(rank).generate(requests, self._params(rank))
            out.append([(s[0].text.strip(), s[0].finish_reason) for s in samples])
        return out

    def _pair(self, item: Item, pair_id: str, texts: list[tuple[str, str]], i: int, j: int) -> Pair:
        """The stronger responder's answer (rank i < j) is chosen."""
        specs = self.models.responder_specs
        provenance = ApcProvenance(
            seed_id=item.id,
            source_instruction=item.prompt,
            source_line=item.line,
            typed_constraints=seed_typed_constraints(item),
            chosen_rank=i,
            rejected_rank=j,
            strengths=BySide(self.strengths[i], self.strengths[j]),
            models={"policy": self.models.spec("policy"), "chosen": specs[i], "rejected": specs[j]},
            finish_reasons=BySide(texts[i][1], texts[j][1]),
            **sft_target(texts, specs),
            sampling=BySide(self._params(i).to_json(), self._params(j).to_json()),
            seed=self.cfg.seed,
        )
        return make_pair(pair_id, item.prompt, texts[i][0], texts[j][0], difficulty(self.strengths, i, j), provenance,
                         item_id=item.id)

    def _params(self, rank: int) -> SamplingParams:
        """``generation.*`` (stop strings, top_p, defaults), with this responder's temperature and budget."""
        apc, per_responder = self.cfg.apc, {}
        if apc.temperatures:
            per_responder["temperature"] = apc.temperatures[rank]
        if apc.max_new_tokens:
            per_responder["max_new_tokens"] = apc.max_new_tokens[rank]
        return step_params(self.cfg, generation_unread(self.cfg), n=1, **per_responder)


def generation_unread(cfg: Config) -> dict[str, str]:
    """``generation`` sets the responders' decoding, but for one answer each and what ``apc.*`` sets per responder."""
    unread = {"n": "each responder gives one answer per prompt"}
    if cfg.apc.temperatures:
        unread["temperature"] = "apc.temperatures sets every responder's; change it there"
    if cfg.apc.max_new_tokens:
        unread["max_new_tokens"] = "apc.max_new_tokens sets every responder's; change it there"
    return unread


def sft_target(texts: list[tuple[str, str]], specs: list[str]) -> dict:
    """The strongest responder's *non-empty* answer: APC's SFT target (none when every answer is empty)."""
    rank = next((r for r, (text, _) in enumerate(texts) if text), None)
    if rank is None:
        return {"sft_target": None, "sft_model": None, "sft_rank": None}
    return {"sft_target": texts[rank][0], "sft_model": specs[rank], "sft_rank": rank}


def _pair_problem(chosen: str, rejected: str) -> str:
    """APC's reject reason for two answers ("" = none): ``records.pair_problem``'s names, as they are."""
    return pair_problem(chosen, rejected) or ""


def roles(cfg: Config) -> list[RoleUse]:
    """Only the responders, strongest first (the policy is trained, and answers only if it is one of them)."""
    return [RoleUse("responders", tuple(cfg.model.responders) or (cfg.model.policy,), ("respond",))]


def build(models: ModelRoles, cfg: Config) -> Apc:
    return Apc(models, cfg)


def write_extras(stage_dir: Path) -> Path:
    """``sft.jsonl``: one conversation per seed with the strongest responder's answer (from the pairs)."""
    target = stage_dir / "sft.jsonl"
    seen: dict[str, dict] = {}
    for row in read_jsonl(stage_dir / "pairs.jsonl"):
        pair = Pair.from_json(row)
        provenance = pair.provenance
        if not isinstance(provenance, ApcProvenance) or not provenance.sft_target:
            continue
        seen.setdefault(provenance.seed_id, {"id": provenance.seed_id, "messages": [
            {"role": "user", "content": pair.prompt}, {"role": "assistant", "content": provenance.sft_target}],
            "model": provenance.sft_model})
    write_jsonl_atomic(target, list(seen.values()))
    return target


def summarize(pairs: list[dict], rejects: list[dict], cfg: Config) -> dict:
    seeds = {item_id(record) for record in (*pairs, *rejects)}
    levels = Counter(p["difficulty"] for p in pairs)
    made = provenances(pairs, ApcProvenance)
    return {
        "method": METHOD,
        "yield_per_stage": {"seeds": len(seeds), "seeds_with_pairs": len({p.seed_id for p in made}),
                            "pairs": len(pairs)},
        "pairs_per_difficulty": {str(level): levels[level] for level in sorted(levels)},
        "pairs_per_rank_gap": dict(sorted(Counter(str(p.rank_gap) for p in made).items())),
        "rejects_by_reason": dict(Counter(Reject.from_json(r).reason for r in rejects)),
        "truncated_responses": sum(1 for p in made for f in (p.finish_reasons.chosen, p.finish_reasons.rejected)
                                   if f == "length"),
    }


SPEC = Method(METHOD, build=build, sections=("apc",), roles=roles, summarize=summarize, check=check,
              extras=(Extra("sft.jsonl", write_extras),), generation_unread=generation_unread,
              negative_instructions=lambda cfg: False)  # both answers answer the one prompt
