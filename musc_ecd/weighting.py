"""The ``weights`` stage: add per-token ``chosen_weights``/``rejected_weights`` to a pairs artifact.

Weights are computed over exactly the tokens the trainer scores (``pair_completion_token_ids``), by batched
forward passes of the policy over the fixed responses — no generation — with the signals of
``musc_ecd.weights`` and its per-sequence normalisation; the policy is loaded only for the schemes that read
its distributions (text-only ``edit`` and ``uniform`` load its tokenizer alone), and its logits are computed
a chunk of positions at a time (``model_signals``):

- ``kl`` / ``bi_kl``: each response scored after the pair's prompt (x_pos) and after its corrupted
  instruction (x_neg, ``meta.negative_instruction``, which MuSC coarse pairs carry);
- ``pmi``: after the prompt and after an empty user turn (∅);
- ``entropy``: after the prompt;
- ``edit``: no model call: the token diff between rejected and chosen;
- ``uniform``: all ones.

Reads ``RUN_DIR/generate/pairs.jsonl`` (or ``train.pairs``); writes ``RUN_DIR/weights/pairs.jsonl`` (the same
pairs plus the two columns, ``meta.weights`` and ``item_id`` = ``PAIR_ID@CONTENT_HASH``), resumably, through
the run store. Items are keyed by each pair's content, so a changed or added pair is (re)weighed and the
others are reused: the stage can never serve weights of pairs that no longer exist.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from musc_ecd.config import Config
from musc_ecd.config.choices import MODEL_WEIGHT_SCHEMES, PAIRWISE_WEIGHT_SCHEMES
from musc_ecd.errors import ConfigError, DataError
from musc_ecd.fingerprints import WEIGHTS, legacy_fingerprints, weights_fingerprint
from musc_ecd.items import Item, content_hash
from musc_ecd.layout import RunLayout
from musc_ecd.models.precision import precision_record
from musc_ecd.records import Pair
from musc_ecd.stage import run_item_stage
from musc_ecd.store import read_jsonl
from musc_ecd.weights import bi_kl_per_token, edit_signal, entropy_per_token, kl_per_token, normalise, pmi_per_token

NEEDS_NEGATIVE = PAIRWISE_WEIGHT_SCHEMES

log = logging.getLogger(__name__)


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
        if scheme in MODEL_SCHEMES:
            from musc_ecd.models.loading import load_model

            model, tokenizer = load_model(cfg.model.policy, dtype=cfg.model.dtype,
                                          trust_remote_code=cfg.model.trust_remote_code)
        else:  # text-only schemes (edit, uniform) need the trainer's tokens, not the model
            model, tokenizer = None, load_tokenizer(cfg.model.policy, cfg.model.trust_remote_code)

        def process(items):
            weighted = weigh_pairs([by_key[i.id] for i in items], scheme, model, tokenizer, cfg)
            return [{**pair, "item_id": item.id} for item, pair in zip(items, weighted, strict=True)], []

        return process

    return run_item_stage(layout.weights, "pairs", key, entries, make_process,
                          lambda accepted, _: {"scheme": scheme, "w_max": cfg.train.w_max, "source": str(source),
                                               "precision": precision_record(cfg.model.dtype)},
                          cfg.store.commit_every, label=f"weights [{scheme}]",
                          key=lambda entry: entry.id,  # its items' ids are content keys already
                          legacy_fingerprints=legacy_fingerprints(cfg, WEIGHTS))


def load_tokenizer(spec: str, trust_remote_code: bool = False):
    """The tokenizer of ``spec`` alone, as ``load_model`` loads it (same directory, same options)."""
    from transformers import AutoTokenizer

    from musc_ecd.models.loading import resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path(spec), trust_remote_code=trust_remote_code)


def items_of(pairs: dict[str, dict]) -> dict[str, dict]:
    """The stage's items: the pairs (by id) keyed by ``content_key``, in order.

    An item is a pair *at its content*: a pair that changed (regenerated, edited) is weighed again, one that
    did not is reused, and new pairs (a larger data.limit) are added, all under one config key."""
    return {content_key(pair): pair for pair in pairs.values()}


def content_key(pair: dict) -> str:
    """``id@hash``: the weights stage's item, a pair id together with a hash of the pair's content."""
    return f"{pair['id']}@{content_hash(pair)}"


def weigh_pairs(pairs: list[dict], scheme: str, model, tokenizer, cfg: Config, batch_size: int = 8) -> list[dict]:
    """The pairs with ``chosen_weights``/``rejected_weights``; model signals in batched forward passes."""
    from musc_ecd.tokens import pair_completion_token_ids

    plans = []
    for pair in pairs:
        pair_scheme = scheme
        if scheme in NEEDS_NEGATIVE and not Pair.from_json(pair).negative_instruction:
            pair_scheme = cfg.train.weights_fallback
        ids = dict(zip(("chosen", "rejected"), pair_completion_token_ids(tokenizer, pair["prompt"], pair["chosen"],
                                                                         pair["rejected"]), strict=True))
        plans.append((pair, pair_scheme, ids))
    jobs = [(_conditions(pair, s), ids[side], s) for pair, s, ids in plans if s in MODEL_SCHEMES
            for side in ("chosen", "rejected")]
    signals = iter(model_signals(jobs, model, tokenizer, batch_size))
    out = []
    for pair, pair_scheme, ids in plans:
        if pair_scheme == "uniform":
            raw = {side: torch.ones(len(ids[side])) for side in ids}
        elif pair_scheme == "edit":
            rejected, chosen = edit_signal(ids["rejected"], ids["chosen"], low=cfg.train.edit_low)
            raw = {"chosen": torch.tensor(chosen), "rejected": torch.tensor(rejected)}
        else:
            raw = {"chosen": next(signals), "rejected": next(signals)}
        # Each pair is its own item in the weights stage: drop the generator's grouping key (``item_id``,
        # e.g. an ECD seed with one pair per round); the stage sets its own (``content_key``).
        weighted = {key: value for key, value in pair.items() if key != "item_id"}
        for side in ("chosen", "rejected"):
            weighted[f"{side}_weights"] = [round(float(w), 5) for w in normalise(raw[side], cfg.train.w_max)]
        weighted["meta"] = {**pair.get("meta", {}), "weights": {"scheme": pair_scheme, "w_max": cfg.train.w_max}}
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


LOGITS_PER_CHUNK = 1 << 22
"""The most logits (positions × vocabulary) the weights stage holds at once per condition: 16 MiB in float32,
e.g. 27 positions of a 150k vocabulary."""


def model_signals(jobs: list[tuple[list[list[dict]], list[int], str]], model, tokenizer, batch_size: int = 8,
                  logits_per_chunk: int = LOGITS_PER_CHUNK) -> list[torch.Tensor]:
    """Raw per-token signals, one (T,) tensor per job (conditions, response ids, scheme), in order.

    Every sequence (a condition followed by the fixed response) of up to ``batch_size`` jobs goes through one
    right-padded forward pass of the model's body; its LM head then runs on each response's positions a chunk
    at a time (``logits_per_chunk`` logits per condition), and each chunk's log-softmax and signal are computed
    before the next, so memory never holds (rows × length × vocabulary) logits: with a 150k vocabulary a
    batch of 8 did not fit. The signals are per position, so chunking does not change them.
    """
    from musc_ecd.models.generator import encode_chat

    if not jobs:
        return []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    vocabulary = model.get_output_embeddings().weight.size(0)
    step = max(1, logits_per_chunk // vocabulary)
    results, head_alone = [], None
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
            input_ids, attention = input_ids.to(model.device), attention.to(model.device)
            if head_alone is None:
                head_alone = _head_gives_the_logits(model, input_ids[:1], attention[:1])
            logits_at = _position_logits(model, input_ids, attention, head_alone)
            row = 0
            for conditions, response, scheme in batch:
                # the logits at position i predict token i + 1
                firsts = [(row + k, len(sequences[row + k][0]) - 1) for k in range(len(conditions))]
                row += len(conditions)
                pieces = [torch.zeros(0)]
                for a in range(0, len(response), step):
                    b = min(a + step, len(response))
                    logps = [torch.log_softmax(logits_at(r, first + a, first + b).float(), dim=-1).cpu()
                             for r, first in firsts]
                    pieces.append(_signal(scheme, logps, torch.tensor(response[a:b])))
                results.append(torch.cat(pieces))
    return results


def _head_gives_the_logits(model, input_ids: torch.Tensor, attention: torch.Tensor) -> bool:
    """Whether the LM head applied to the body's last hidden states gives the model's own logits (one row, last
    position); a model that transforms them further (e.g. Gemma-2's soft-capping) does not."""
    own = model(input_ids=input_ids, attention_mask=attention, logits_to_keep=1).logits[0, -1]
    hidden = model.get_decoder()(input_ids=input_ids, attention_mask=attention).last_hidden_state
    if torch.allclose(own.float(), model.get_output_embeddings()(hidden[0, -1]).float(), rtol=1e-4, atol=1e-4):
        return True
    log.warning("the LM head of %s is not the last step of its logits; the weights stage computes full logits",
                type(model).__name__)
    return False


def _position_logits(model, input_ids: torch.Tensor, attention: torch.Tensor, head_alone: bool):
    """``logits_at(row, start, stop)``: the model's logits at positions [start, stop) of one row, (stop − start, V).

    With ``head_alone`` the body runs once and the LM head on the positions asked for; otherwise the full
    logits are computed once (a model that post-processes its head's output)."""
    if not head_alone:
        logits = model(input_ids=input_ids, attention_mask=attention).logits
        return lambda row, start, stop: logits[row, start:stop]
    head = model.get_output_embeddings()
    hidden = model.get_decoder()(input_ids=input_ids, attention_mask=attention).last_hidden_state
    return lambda row, start, stop: head(hidden[row, start:stop])


def _signal(scheme: str, logps: list[torch.Tensor], response: torch.Tensor) -> torch.Tensor:
    if scheme == "entropy":
        return entropy_per_token(logps[0])
    if scheme == "pmi":
        return pmi_per_token(logps[0], logps[1], response)
    if scheme == "kl":
        return kl_per_token(logps[1], logps[0])  # KL(p(·|x_neg) ‖ p(·|x_pos))
    return bi_kl_per_token(logps[1], logps[0])
