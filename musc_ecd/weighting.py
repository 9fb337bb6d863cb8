"""The ``weights`` stage: add per-token ``chosen_weights``/``rejected_weights`` to a pairs artifact.

Weights are computed over exactly the tokens the trainer scores (``completion_token_ids``), by batched
forward passes of the policy over the fixed responses — no generation — with the signals of
``musc_ecd.weights`` and its per-sequence normalisation:

- ``kl`` / ``bi_kl``: each response scored after the pair's prompt (x_pos) and after its corrupted
  instruction (x_neg, ``meta.negative_instruction``, which MuSC coarse pairs carry);
- ``pmi``: after the prompt and after an empty user turn (∅);
- ``entropy``: after the prompt;
- ``edit``: no model call: the token diff between rejected and chosen;
- ``uniform``: all ones.

Reads ``RUN_DIR/pairs.jsonl`` (or ``train.pairs``); writes ``RUN_DIR/weights/pairs.jsonl`` (the same
pairs plus the two columns and ``meta.weights``), resumably, through the run store.
"""

from __future__ import annotations

from pathlib import Path

import torch

from musc_ecd.config import Config, fingerprint
from musc_ecd.errors import ConfigError, DataError
from musc_ecd.items import Item
from musc_ecd.stage import run_item_stage
from musc_ecd.store import read_jsonl
from musc_ecd.weights import bi_kl_per_token, edit_signal, entropy_per_token, kl_per_token, normalise, pmi_per_token

NEEDS_NEGATIVE = ("kl", "bi_kl")


def weights_stage(cfg: Config, run_dir: Path) -> dict:
    scheme = cfg.train.weights
    if scheme == "none":
        raise ConfigError("config error: train.weights=none; choose a scheme: uniform, edit, kl, bi_kl, pmi, entropy")
    source = Path(cfg.train.pairs) if cfg.train.pairs else run_dir / "pairs.jsonl"
    if not source.is_file():
        raise DataError(f"no pairs artifact at {source}; run `musc-ecd generate` first or set train.pairs")
    pairs = {pair["id"]: pair for pair in read_jsonl(source)}
    if scheme in NEEDS_NEGATIVE:
        lacking = [pid for pid, pair in pairs.items() if not pair.get("meta", {}).get("negative_instruction")]
        if lacking and cfg.train.weights_fallback == "none":
            raise ConfigError(f"config error: train.weights={scheme} compares each response under the full and the "
                              f"corrupted instruction, but {len(lacking)} pair(s) (e.g. {lacking[0]}) carry no "
                              "corrupted instruction (only MuSC coarse pairs do); use train.weights=edit for them, "
                              "or train.weights_fallback=edit")
    entries = [Item(pid, "", index + 1) for index, pid in enumerate(pairs)]
    key = fingerprint(cfg, ("seed", "model", "train"))

    def make_process():
        from musc_ecd.models.loading import load_model

        model, tokenizer = load_model(cfg.model.policy, dtype="float32",
                                      trust_remote_code=cfg.model.trust_remote_code)
        return lambda items: ([_weighted(pairs[i.id], scheme, model, tokenizer, cfg) for i in items], [])

    return run_item_stage(run_dir / "weights", "pairs", key, entries, make_process,
                          lambda accepted, _: {"scheme": scheme, "w_max": cfg.train.w_max, "source": str(source)},
                          cfg.store.commit_every, label=f"weights [{scheme}]")


def _weighted(pair: dict, scheme: str, model, tokenizer, cfg: Config) -> dict:
    from musc_ecd.training.tokens import completion_token_ids

    if scheme in NEEDS_NEGATIVE and not pair.get("meta", {}).get("negative_instruction"):
        scheme = cfg.train.weights_fallback

    ids = {side: completion_token_ids(tokenizer, pair["prompt"], pair[side]) for side in ("chosen", "rejected")}
    if scheme == "uniform":
        raw = {side: torch.ones(len(ids[side])) for side in ids}
    elif scheme == "edit":
        rejected, chosen = edit_signal(ids["rejected"], ids["chosen"], low=cfg.train.edit_low)
        raw = {"chosen": torch.tensor(chosen), "rejected": torch.tensor(rejected)}
    else:
        raw = {side: _model_signal(scheme, pair, ids[side], model, tokenizer) for side in ids}
    weights = {side: normalise(raw[side], cfg.train.w_max) for side in raw}
    out = dict(pair)
    out["chosen_weights"] = [round(float(w), 5) for w in weights["chosen"]]
    out["rejected_weights"] = [round(float(w), 5) for w in weights["rejected"]]
    out["meta"] = {**pair.get("meta", {}), "weights": {"scheme": scheme, "w_max": cfg.train.w_max}}
    return out


def _model_signal(scheme: str, pair: dict, completion: list[int], model, tokenizer) -> torch.Tensor:
    prompt = pair["prompt"]
    logp = _response_log_probs(model, tokenizer, prompt, completion)
    if scheme == "entropy":
        return entropy_per_token(logp)
    if scheme == "pmi":
        empty = [{"role": "user", "content": ""}]
        return pmi_per_token(logp, _response_log_probs(model, tokenizer, empty, completion),
                             torch.tensor(completion))
    negative = [{"role": "user", "content": pair["meta"]["negative_instruction"]}]
    logp_negative = _response_log_probs(model, tokenizer, negative, completion)
    return kl_per_token(logp_negative, logp) if scheme == "kl" else bi_kl_per_token(logp_negative, logp)


def _response_log_probs(model, tokenizer, prompt: list[dict], completion: list[int]) -> torch.Tensor:
    """log p(· | prompt, y_<t) at each response position t: (T, V). The response tokens are fixed."""
    from musc_ecd.models.generator import encode_chat

    prompt_ids = encode_chat(tokenizer, prompt)
    input_ids = torch.tensor([prompt_ids + completion], device=model.device)
    with torch.inference_mode():
        logits = model(input_ids=input_ids).logits[0].float()
    start = len(prompt_ids) - 1  # the logits at position i predict token i + 1
    return torch.log_softmax(logits[start : start + len(completion)], dim=-1).cpu()
