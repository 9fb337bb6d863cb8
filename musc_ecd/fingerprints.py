"""Every fingerprint and share key, in one place, with what each one leaves out.

A *fingerprint* keys an artifact inside a run directory: a rerun with a different one is refused (the
store) or retrains (the model), so an artifact never mixes settings. A *share key* names an artifact that
many runs of a sweep hold in common (``share_dir``). Both hash only what can change the artifact's content.
Left out everywhere, because they say *how much* or *where*, never *what*:

- ``run_dir``, ``share_dir`` — where things live;
- ``generation.batch_size`` and ``generation.vllm`` — how requests are batched and the engine's memory and
  parallelism: the same text either way (backends are tested for it);
- ``data.limit`` — how many items, in fingerprints only, so a run can be extended to more items without
  being redone (a share key keeps it: a shared artifact must hold exactly the pairs a run trained on).

The pairs' keys (``pairs_fingerprint``, ``generate_share_key``) also leave out the ``generation`` sampling keys the
method does not read (``methods.sampling``: MuSC and ECD read only ``top_p``), which ``generate`` refuses to take.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from musc_ecd.config import Config, DataConfig, ModelConfig, to_dict
from musc_ecd.methods.sampling import unread_keys
from musc_ecd.registry import get_method

ENGINE_ONLY = ("batch_size", "vllm")
"""``generation`` keys that change how text is produced, not which text."""
GENERATION_INPUTS = ("seed", "method", "model", "generation", "data")
"""What every method's pairs depend on, besides the method's own config sections."""


def digest(tree: Any) -> str:
    """A short, order-independent hash of a JSON-able tree."""
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:16]


def _generation(tree: dict, unread: Collection[str] = ()) -> dict:
    """``generation`` without the engine options and the ``unread`` sampling keys."""
    return {k: v for k, v in tree["generation"].items() if k not in ENGINE_ONLY and k not in unread}


def sections_fingerprint(cfg: Config, sections: tuple[str, ...], unread: Collection[str] = ()) -> str:
    """The named top-level sections, less the keys above (engine options, ``data.limit``, ``unread``)."""
    full = to_dict(cfg)
    chosen = {name: full[name] for name in sections}
    if "data" in chosen:
        chosen["data"] = {k: v for k, v in chosen["data"].items() if k != "limit"}
    if "generation" in chosen:
        chosen["generation"] = _generation(full, unread)
    return digest(chosen)


def generation_sections(cfg: Config) -> tuple[str, ...]:
    """The sections the configured method's pairs depend on (its declaration names its own)."""
    return (*GENERATION_INPUTS, *get_method(cfg.method).sections)


def pairs_fingerprint(cfg: Config) -> str:
    """The ``generate`` stage's pairs: the method's sections, so an ``ecd.*`` change leaves MuSC pairs valid, and of
    ``generation`` what the method reads."""
    return sections_fingerprint(cfg, generation_sections(cfg), unread_keys(cfg))


def weights_fingerprint(cfg: Config) -> str:
    """Token weights: the scheme and its options (``train``), the weighing model (``model``), the seed.

    The pairs themselves are not in it: weights are stored per pair *at its content*, so changed pairs
    are weighed again under the same key."""
    return sections_fingerprint(cfg, ("seed", "model", "train"))


def model_fingerprint(cfg: Config) -> str:
    """The trained model's settings; the pairs it learnt from are keyed by their sha256, beside this."""
    return sections_fingerprint(cfg, ("seed", "model", "train"))


def answers_fingerprint(cfg: Config, source: str) -> str:
    """What a model's answers depend on, and nothing else: the answering model (not the other roles), the
    decoding, the prompts; the run seed only when sampling. So runs that differ in, say, their teacher or
    seed share one base-model evaluation (``share_dir``) instead of refusing each other's."""
    sampled = cfg.generation.temperature > 0
    only_answers = dataclasses.replace(
        cfg, seed=cfg.seed if sampled else 0,
        model=ModelConfig(policy=cfg.model.policy, dtype=cfg.model.dtype,
                          trust_remote_code=cfg.model.trust_remote_code),
        data=DataConfig(prompts=source, prompt_field=cfg.data.prompt_field, id_field=cfg.data.id_field))
    return sections_fingerprint(only_answers, ("seed", "model", "generation", "data"))


def config_fingerprint(cfg: Config) -> str:
    """What a finished run was made with: every key but where it lives (``run_dir``, ``share_dir``)."""
    tree = to_dict(cfg)
    for key in ("run_dir", "share_dir"):
        tree.pop(key, None)
    return digest(tree)


def generate_share_key(cfg: Config) -> str:
    """The shared ``generate-<key>`` entry: the pairs fingerprint's sections, *with* ``data.limit``."""
    tree = to_dict(cfg)
    tree = {name: tree[name] for name in generation_sections(cfg)}
    tree["generation"] = _generation(tree, unread_keys(cfg))
    return digest(tree)


def base_eval_share_key(cfg: Config, set_name: str) -> str:
    """The shared ``eval-base-<key>`` entry: everything that can change the base model's answers and scores
    on one evaluation set (the seed only when sampling: greedy answers do not depend on it)."""
    tree = to_dict(cfg)
    options = cfg.eval
    source = str(Path(options.ifeval_path).resolve()) if set_name == "ifeval" else "own"
    return digest({
        "policy": cfg.model.policy, "dtype": cfg.model.dtype, "trust_remote_code": cfg.model.trust_remote_code,
        "generation": _generation(tree),
        "set": source, "limit": options.limit, "max_new_tokens": options.max_new_tokens,
        "temperature": options.temperature,
        "seed": cfg.seed if options.temperature > 0 else None,
    })
