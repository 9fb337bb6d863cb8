"""The ``weights`` stage: add per-token ``chosen_weights``/``rejected_weights`` to a pairs artifact.

Weights are computed over exactly the tokens the trainer scores (``pair_completion_token_ids``), by batched
forward passes of the policy over the fixed responses — no generation — with the signals of
``musc_ecd.weights`` and its per-sequence normalisation:

- ``kl`` / ``bi_kl``: each response scored after the pair's prompt (x_pos) and after its corrupted
  instruction (x_neg, ``meta.negative_instruction``, which MuSC coarse pairs carry);
- ``pmi``: after the prompt and after an empty user turn (∅);
- ``entropy``: after the prompt;
- ``edit``: no model call: the token diff between rejected and chosen;
- ``uniform``: all ones.

Reads ``RUN_DIR/pairs.jsonl`` (or ``train.pairs``); writes ``RUN_DIR/weights/pairs.jsonl`` (the same
pairs plus the two columns, ``meta.weights`` and ``item_id`` = ``PAIR_ID@CONTENT_HASH``), resumably, through
the run store. Items are keyed by each pair's content, so a changed or added pair is (re)weighed and the
others are reused: the stage can never serve weights of pairs that no longer exist.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from musc_ecd.config import Config
from musc_ecd.config.choices import MODEL_WEIGHT_SCHEMES, PAIRWISE_WEIGHT_SCHEMES
from musc_ecd.errors import ConfigError, DataError
from musc_ecd.fingerprints import weights_fingerprint
from musc_ecd.items import Item
from musc_ecd.layout import RunLayout
from musc_ecd.models.precision import precision_record
from musc_ecd.records import Pair
from musc_ecd.stage import run_item_stage
from musc_ecd.store import read_jsonl
from musc_ecd.weights import bi_kl_per_token, edit_signal, entropy_per_token, kl_per_token, normalise, pmi_per_token

NEEDS_NEGATIVE = PAIRWISE_WEIGHT_SCHEMES


def weights_stage(cfg: Config, run_dir: Path) -> dict:
    scheme = cfg.train.weights
    if scheme == "none":
        raise ConfigError("config error: train.weights=none; choose a scheme: uniform, edit, kl, bi_kl, pmi, entropy")
    layout = RunLayout(run_dir)
    source = layout.pairs_source(cfg)
    if not source.is_file():
        raise DataError(f"no pairs artifact at {source}; run `musc-ecd generate` first or set train.pairs")
    pairs = {pair["id"]: pair for pair in read_jsonl(source)}
    if scheme in NEEDS_NEGATIVE:
        lacking = [pid for pid, pair in pairs.items() if not Pair.from_json(pair).negative_instruction]
        if lacking and cfg.train.weights_fallback == "none":
            raise ConfigError(f"config error: train.weights={scheme} compares each response under the full and the "
                              f"corrupted instruction, but {len(lacking)} pair(s) (e.g. {lacking[0]}) carry no "
                              "corrupted instruction (only MuSC coarse pairs do); use train.weights=edit for them, "
                              "or train.weights_fallback=edit")
    by_key = items_of(pairs)
    entries = [Item(key, "", index + 1) for index, key in enumerate(by_key)]
    key = weights_fingerprint(cfg)

    def make_process():
        from musc_ecd.models.loading import load_model

        model, tokenizer = load_model(cfg.model.policy, dtype=cfg.model.dtype,
                                      trust_remote_code=cfg.model.trust_remote_code)

        def process(items):
            weighted = weigh_pairs([by_key[i.id] for i in items], scheme, model, tokenizer, cfg)
            return [{**pair, "item_id": item.id} for item, pair in zip(items, weighted, strict=True)], []

        return process

    return run_item_stage(layout.weights, "pairs", key, entries, make_process,
                          lambda accepted, _: {"scheme": scheme, "w_max": cfg.train.w_max, "source": str(source),
                                               "precision": precision_record(cfg.model.dtype)},
                          cfg.store.commit_every, label=f"weights [{scheme}]")


def items_of(pairs: dict[str, dict]) -> dict[str, dict]:
    """The stage's items: the pairs (by id) keyed by ``content_key``, in order.

    An item is a pair *at its content*: a pair that changed (regenerated, edited) is weighed again, one that
    did not is reused, and new pairs (a larger data.limit) are added, all under one config key."""
    return {content_key(pair): pair for pair in pairs.values()}


def content_key(pair: dict) -> str:
    """``id@hash``: the weights stage's item, a pair id together with a hash of the pair's content."""
    blob = json.dumps(pair, sort_keys=True, ensure_ascii=False)
    return f"{pair['id']}@{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def weigh_pairs(pairs: list[dict], scheme: str, model, tokenizer, cfg: Config, batch_size: int = 8) -> list[dict]:
    """The pairs with ``chosen_weights``/``rejected_weights``; model signals in batched forward passes."""
    from musc_ecd.tokens import pair_completion_token_ids

    plans = []
    for pair in pairs:
        chosen_scheme = scheme
        if scheme in NEEDS_NEGATIVE and not Pair.from_json(pair).negative_instruction:
            chosen_scheme = cfg.train.weights_fallback
        ids = dict(zip(("chosen", "rejected"), pair_completion_token_ids(tokenizer, pair["prompt"], pair["chosen"],
                                                                         pair["rejected"]), strict=True))
        plans.append((pair, chosen_scheme, ids))
    jobs = [(_conditions(pair, s), ids[side], s) for pair, s, ids in plans if s in MODEL_SCHEMES
            for side in ("chosen", "rejected")]
    signals = iter(model_signals(jobs, model, tokenizer, batch_size))
    out = []
    for pair, chosen_scheme, ids in plans:
        if chosen_scheme == "uniform":
            raw = {side: torch.ones(len(ids[side])) for side in ids}
        elif chosen_scheme == "edit":
            rejected, chosen = edit_signal(ids["rejected"], ids["chosen"], low=cfg.train.edit_low)
            raw = {"chosen": torch.tensor(chosen), "rejected": torch.tensor(rejected)}
        else:
            raw = {"chosen": next(signals), "rejected": next(signals)}
        # Each pair is its own item in the weights stage: drop the generator's grouping key (``item_id``,
        # e.g. an ECD seed with one pair per round); the stage sets its own (``content_key``).
        weighted = {key: value for key, value in pair.items() if key != "item_id"}
        for side in ("chosen", "rejected"):
            weighted[f"{side}_weights"] = [round(float(w), 5) for w in normalise(raw[side], cfg.train.w_max)]
        weighted["meta"] = {**pair.get("meta", {}), "weights": {"scheme": chosen_scheme, "w_max": cfg.train.w_max}}
        out.append(weighted)
    return out


MODEL_SCHEMES = MODEL_WEIGHT_SCHEMES


def _conditions(pair: dict, scheme: str) -> list[list[dict]]:
    """The prompts each response is scored after: x_pos first, then x_neg or ∅ where the scheme needs one."""
    prompt = pair["prompt"] if isinstance(pair["prompt"], list) else [{"role": "user", "content": pair["prompt"]}]
    if scheme in NEEDS_NEGATIVE:
        return [prompt, [{"role": "user", "content": Pair.from_json(pair).negative_instruction}]]
    if scheme == "pmi":
        return [prompt, [{"role": "user", "content": ""}]]
    return [prompt]


def model_signals(jobs: list[tuple[list[list[dict]], list[int], str]], model, tokenizer,
                  batch_size: int = 8) -> list[torch.Tensor]:
    """Raw per-token signals, one (T,) tensor per job (conditions, response ids, scheme), in order.

    Every sequence (a condition followed by the fixed response) of up to ``batch_size`` jobs goes through
    one right-padded forward pass; each job's (T, V) log-probabilities live only until its signal is
    computed, so memory stays at one batch of logits.
    """
    from musc_ecd.models.generator import encode_chat

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    results = []
    for start in range(0, len(jobs), batch_size):
        batch = jobs[start : start + batch_size]
        sequences = [(encode_chat(tokenizer, condition), response) for conditions, response, _ in batch
                     for condition in conditions]
        width = max(len(p) + len(r) for p, r in sequences)
        input_ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        attention = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, (prompt_ids, response) in enumerate(sequences):
            input_ids[row, : len(prompt_ids) + len(response)] = torch.tensor(prompt_ids + response)
            attention[row, : len(prompt_ids) + len(response)] = 1
        with torch.inference_mode():
            logits = model(input_ids=input_ids.to(model.device), attention_mask=attention.to(model.device)).logits
        row = 0
        for conditions, response, scheme in batch:
            logps = []
            for _ in conditions:  # the logits at position i predict token i + 1
                first = len(sequences[row][0]) - 1
                logps.append(torch.log_softmax(logits[row, first : first + len(response)].float(), dim=-1).cpu())
                row += 1
            results.append(_signal(scheme, logps, torch.tensor(response)))
    return results


def _signal(scheme: str, logps: list[torch.Tensor], response: torch.Tensor) -> torch.Tensor:
    if scheme == "entropy":
        return entropy_per_token(logps[0])
    if scheme == "pmi":
        return pmi_per_token(logps[0], logps[1], response)
    if scheme == "kl":
        return kl_per_token(logps[1], logps[0])  # KL(p(·|x_neg) ‖ p(·|x_pos))
    return bi_kl_per_token(logps[1], logps[0])
