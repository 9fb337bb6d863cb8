"""Every fingerprint and share key, in one place, and one table of which config key keys which artifact.

A *fingerprint* keys an artifact inside a run directory: a rerun with a different one is refused (the
store: generated pairs, token weights, answers) or retrains, the old model moved aside (the model). A
*share key* names an artifact that many runs of a sweep hold in common (``share_dir``). Each hashes only
what can change its artifact's content.

``KEYED_BY`` names, for every key of every config section (``section.*``: every key of it), the artifacts
it keys, or that it keys none and why (where things live, how often they are saved or logged, how work is
batched). The pairs, weights and model fingerprints and the generate share key are computed from it; the
answers fingerprint and the base-evaluation share key are written out below, and a test holds all six to
the table (changing a key changes exactly the artifacts the table names) and the table to the schema (a new
config key in no row fails it).

The *content* an artifact is made from is keyed beside these: a seed by ``ID@CONTENT`` (``musc_ecd.items``),
a weighted pair by ``PAIR_ID@CONTENT``, a trained model by the sha256 of the pairs it learnt from.

Run directories made before the keys followed the table (the pairs keyed by the data paths too, the weights
and the model by the whole ``seed``/``model``/``train`` sections) are recognised: ``legacy_fingerprints``
gives the key an older musc-ecd computed for this very config, and an artifact made under it is re-keyed
and kept, not redone. One made under an older key of another config cannot be told apart from the store's
refusal of a different config, and is refused (the pairs, the weights) or moved aside (the model) as before.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from musc_ecd.config import Config, DataConfig, ModelConfig, to_dict
from musc_ecd.config.choices import MODEL_WEIGHT_SCHEMES, PAIRWISE_WEIGHT_SCHEMES
from musc_ecd.registry import get_method

PAIRS = "pairs"
"""The ``generate`` stage's pairs (``pairs_fingerprint``)."""
GENERATE_SHARE = "generate-share"
"""The shared ``generate-<key>`` entry (``generate_share_key``)."""
WEIGHTS = "weights"
"""Token weights (``weights_fingerprint``)."""
MODEL = "model"
"""The trained model (``model_fingerprint``)."""
ANSWERS = "answers"
"""A model's answers to a prompt file, ``respond``'s and ``evaluate``'s (``answers_fingerprint``)."""
BASE_EVAL_SHARE = "base-eval-share"
"""The shared ``eval-base-<key>`` entry (``base_eval_share_key``)."""
ARTIFACTS = (PAIRS, GENERATE_SHARE, WEIGHTS, MODEL, ANSWERS, BASE_EVAL_SHARE)

Condition = Callable[[Config], bool]


@dataclass(frozen=True)
class Keys:
    """What one config key keys: ``artifacts`` (none: ``why`` says why not), some only ``only_if`` a condition
    on the config holds (e.g. an option of a weight scheme only when that scheme is used)."""

    artifacts: frozenset[str]
    why: str
    only_if: Mapping[str, Condition] = field(default_factory=dict)

    def applies(self, artifact: str, cfg: Config) -> bool:
        condition = self.only_if.get(artifact)
        return artifact in self.artifacts and (condition is None or condition(cfg))


def keys(*artifacts: str, why: str, only_if: Mapping[str, Condition] | None = None) -> Keys:
    return Keys(frozenset(artifacts), why, dict(only_if or {}))


def excluded(why: str) -> Keys:
    return Keys(frozenset(), why)


def _reads(section: str) -> Condition:
    """The configured method reads ``section`` (its declaration names it)."""
    return lambda cfg: section in get_method(cfg.method).sections


def _weight_schemes(cfg: Config) -> set[str]:
    """The schemes the weights stage applies: ``train.weights``, and its fallback for pairs a pairwise one
    cannot weight."""
    scheme = cfg.train.weights
    return {scheme, cfg.train.weights_fallback} if scheme in PAIRWISE_WEIGHT_SCHEMES else {scheme}


def _method_section(section: str) -> Keys:
    return keys(PAIRS, GENERATE_SHARE, why=f"{section}.*: read by the methods that declare the section",
                only_if={PAIRS: _reads(section), GENERATE_SHARE: _reads(section)})


def _warning_threshold(section: str) -> Keys:
    """A key that only sets when a summary warns: the pairs are the same at any value (generate summarises
    finished pairs again under the current one), so it keys no artifact's content."""
    return keys(GENERATE_SHARE, why="when the summary warns about the judge, not which pairs are made; a shared "
                                    "entry's name keeps it, so the entries made before stay found",
                only_if={GENERATE_SHARE: _reads(section)})


WARNING_THRESHOLDS = tuple(f"{section}.judge_warning_share" for section in ("musc", "musc_fine", "ecd"))
"""Keys that only set a summary's warning threshold. They keyed the pairs when they were added; pairs made
under that key are recognised (``legacy_fingerprints``)."""


_ALL_MODELS = (PAIRS, GENERATE_SHARE, WEIGHTS, MODEL, ANSWERS, BASE_EVAL_SHARE)
_BUILDING = (PAIRS, GENERATE_SHARE)
_DECODING = (PAIRS, GENERATE_SHARE, ANSWERS, BASE_EVAL_SHARE)
_FROM_PAIRS = "the model learns from the pairs, keyed by their sha256"
_TRAINING = "how the model is trained"
_SAMPLING = ("how text is decoded; the pairs only where the method reads it (methods.sampling; generate refuses "
             "it away from its default otherwise, so a shared entry's name may keep it)")


def _read_by_method(key: str) -> Condition:
    def reads(cfg: Config) -> bool:
        from musc_ecd.methods.sampling import unread_keys

        return key not in unread_keys(cfg)

    return reads


def _ct2_quantized(cfg: Config) -> bool:
    return cfg.generation.ct2.compute_type != "auto"


def _openvino_compressed(cfg: Config) -> bool:
    return cfg.generation.openvino.weight_format != "auto"


_COMPUTED = "how training computes: the same loss, but not bit for bit, so the trained weights differ"

KEYED_BY: dict[str, Keys] = {
    "run_dir": excluded("where the run lives"),
    "share_dir": excluded("where shared artifacts live"),
    "seed": keys(PAIRS, GENERATE_SHARE, MODEL, ANSWERS, BASE_EVAL_SHARE,
                 why="per-item seeds, the training order, the pair budget's subset; answers only when sampled. "
                     "Not the weights: forward passes over fixed answers draw nothing"),
    "method": keys(*_BUILDING, why="the pair builder"),
    "model.policy": keys(*_ALL_MODELS, why="the model every stage runs; the weights: its tokenizer cuts the answers "
                                           "into the tokens weighed, its distributions feed model-based schemes"),
    "model.teacher": keys(*_BUILDING, why=f"a role in building pairs; {_FROM_PAIRS}"),
    "model.responders": keys(*_BUILDING, why=f"a role in building pairs; {_FROM_PAIRS}"),
    "model.judge": keys(*_BUILDING, why=f"a role in building pairs; {_FROM_PAIRS}"),
    "model.judge_untyped": keys(*_BUILDING, why=f"who judges in building pairs; {_FROM_PAIRS}"),
    "model.dtype": keys(*_ALL_MODELS, why="the models' precision; the weights only with a scheme that reads the "
                                          "model's distributions (not uniform, edit)",
                        only_if={WEIGHTS: lambda cfg: bool(_weight_schemes(cfg) & set(MODEL_WEIGHT_SCHEMES))}),
    "model.trust_remote_code": keys(*_ALL_MODELS, why="which code loads the models"),
    "generation.backend": keys(*_DECODING, why="how text is decoded"),
    "generation.temperature": keys(*_DECODING, why=_SAMPLING, only_if={PAIRS: _read_by_method("temperature")}),
    "generation.top_p": keys(*_DECODING, why=_SAMPLING, only_if={PAIRS: _read_by_method("top_p")}),
    "generation.max_new_tokens": keys(*_DECODING, why=_SAMPLING, only_if={PAIRS: _read_by_method("max_new_tokens")}),
    "generation.n": keys(*_DECODING, why=_SAMPLING, only_if={PAIRS: _read_by_method("n")}),
    "generation.stop": keys(*_DECODING, why=_SAMPLING, only_if={PAIRS: _read_by_method("stop")}),
    "generation.batch_size": excluded("how requests are batched: the same text either way (backends are tested "
                                      "for it)"),
    "generation.vllm.*": excluded("the engine's memory and parallelism: the same text either way"),
    "generation.ct2.compute_type": keys(*_DECODING, why="int8 weights are another model (answers diverge); left "
                                                        "out at auto (float32), so keys made before ct2 still hold",
                                        only_if={a: _ct2_quantized for a in _DECODING}),
    "generation.ct2.max_batch_size": excluded("how rows are batched: the same greedy text either way"),
    "generation.ct2.threads": excluded("the engine's parallelism"),
    "generation.openvino.weight_format": keys(*_DECODING, why="int8 weights are another model (answers can differ); "
                                                              "left out at auto, so keys made before OpenVINO hold",
                                              only_if={a: _openvino_compressed for a in _DECODING}),
    "generation.openvino.max_num_seqs": excluded("how rows are batched: the same greedy text either way"),
    "generation.openvino.kv_cache_gb": excluded("the engine's memory"),
    "generation.openvino.threads": excluded("the engine's parallelism"),
    "generation.openvino.exporter": excluded("which program exports the model; its versions key the export itself"),
    "data.seeds": keys(GENERATE_SHARE, ANSWERS,
                       why="where the seeds are: the pairs key each seed by its content (ID@CONTENT) instead; a "
                           "shared entry's name keeps it; respond answers the seeds when data.prompts is unset"),
    "data.prompts": keys(GENERATE_SHARE, ANSWERS,
                         why="respond's prompts; generate never reads it (a shared entry's name keeps it, so the "
                             "entries made before stay found)"),
    "data.prompt_field": keys(PAIRS, GENERATE_SHARE, ANSWERS, why="which column is the instruction"),
    "data.id_field": keys(PAIRS, GENERATE_SHARE, ANSWERS, why="which column names the items, and so the pairs"),
    "data.limit": keys(GENERATE_SHARE, why="how many items: a run extends to more without redoing what it has; a "
                                           "shared entry must hold exactly the pairs a run trained on"),
    "store.commit_every": excluded("how often results are made durable"),
    "musc.*": _method_section("musc"),
    "musc_fine.*": _method_section("musc_fine"),
    "ecd.*": _method_section("ecd"),
    **{key: _warning_threshold(key.partition(".")[0]) for key in WARNING_THRESHOLDS},
    "apc.*": _method_section("apc"),
    "train.pairs": excluded("where the pairs are read from: the weights key each pair by its content, the model "
                            "the pairs' sha256"),
    "train.finetuning": keys(MODEL, why=_TRAINING),
    "train.loss": keys(MODEL, why=_TRAINING),
    "train.loss_weights": keys(MODEL, why=_TRAINING),
    "train.beta": keys(MODEL, why=_TRAINING),
    "train.learning_rate": keys(MODEL, why=_TRAINING),
    "train.epochs": keys(MODEL, why=_TRAINING),
    "train.max_steps": keys(MODEL, why=_TRAINING),
    "train.lr_scheduler": keys(MODEL, why=_TRAINING),
    "train.warmup_ratio": keys(MODEL, why=_TRAINING),
    "train.batch_size": keys(MODEL, why=_TRAINING),
    "train.gradient_accumulation_steps": keys(MODEL, why=_TRAINING),
    "train.max_length": keys(MODEL, why=_TRAINING),
    "train.max_pairs": keys(MODEL, why=_TRAINING),
    "train.swap_labels": keys(MODEL, why="which side the model learns to prefer (the pairs and their weights are "
                                         "the same files, flipped when training reads them); left out when off, so "
                                         "models trained before the key existed keep their key",
                              only_if={MODEL: lambda cfg: cfg.train.swap_labels}),
    "train.curriculum": keys(MODEL, why=_TRAINING),
    "train.sft_first": keys(MODEL, why=_TRAINING),
    "train.sft_epochs": keys(MODEL, why=_TRAINING),
    "train.lora.*": keys(MODEL, why=_TRAINING),
    "train.precision": keys(MODEL, why=_COMPUTED),
    "train.precompute_ref_log_probs": keys(MODEL, why=_COMPUTED),
    "train.gradient_checkpointing": keys(MODEL, why=_COMPUTED),
    "train.prefix_sharing": keys(MODEL, why=_COMPUTED),
    "train.save_steps": excluded("how often checkpoints are saved (a resume restores the RNG state)"),
    "train.save_total_limit": excluded("how many checkpoints are kept"),
    "train.logging_steps": excluded("how often metrics are logged"),
    "train.report_to": excluded("where metrics are also reported"),
    "train.weights": keys(WEIGHTS, why=f"the weight scheme; {_FROM_PAIRS} (the weighted ones)"),
    "train.w_max": keys(WEIGHTS, why="the weights' cap"),
    "train.edit_low": keys(WEIGHTS, why="the edit scheme's weight of shared tokens, when edit is used",
                           only_if={WEIGHTS: lambda cfg: "edit" in _weight_schemes(cfg)}),
    "train.weights_fallback": keys(WEIGHTS, why="the scheme for pairs a pairwise one cannot weight, when kl/bi_kl",
                                   only_if={WEIGHTS: lambda cfg: cfg.train.weights in PAIRWISE_WEIGHT_SCHEMES}),
    "eval.ifeval_path": keys(BASE_EVAL_SHARE, why="the IFEval set (by its absolute path); evaluate's answers key "
                                                  "their prompts by content"),
    "eval.ifbench_path": keys(BASE_EVAL_SHARE, why="the IFBench set (by its absolute path); evaluate's answers "
                                                    "key their prompts by content"),
    "eval.limit": keys(BASE_EVAL_SHARE, why="how many prompts; evaluate's answers key their prompts by content"),
    "eval.max_new_tokens": keys(BASE_EVAL_SHARE, why="decoding; evaluate passes it to respond, which keys it"),
    "eval.temperature": keys(BASE_EVAL_SHARE, why="decoding; evaluate passes it to respond, which keys it"),
    "eval.adapter": excluded("which model evaluate answers with: it becomes the answering model.policy, and the "
                             "answers are stamped with the model that wrote them"),
    "eval.name": excluded("where evaluate writes"),
    "eval.sets": excluded("which sets run evaluates: each set's answers are keyed on their own"),
    "eval.base_only": excluded("which stages run evaluates: each artifact it makes is keyed on its own"),
}


def schema_keys(schema: type = Config, prefix: str = "") -> Iterator[str]:
    """Every leaf key of the config schema, dotted (``train.lora.r``), in declaration order."""
    for item in fields(schema):
        default = item.default_factory() if item.default_factory is not dataclasses.MISSING else item.default
        if is_dataclass(default):
            yield from schema_keys(type(default), f"{prefix}{item.name}.")
        else:
            yield f"{prefix}{item.name}"


def keyed_by(key: str) -> Keys:
    """The table's row for a dotted config key: its own, else its section's (``section.*``)."""
    if key in KEYED_BY:
        return KEYED_BY[key]
    section = key.rpartition(".")[0]
    while section:
        if f"{section}.*" in KEYED_BY:
            return KEYED_BY[f"{section}.*"]
        section = section.rpartition(".")[0]
    raise KeyError(f"config key {key!r} is in no row of musc_ecd.fingerprints.KEYED_BY: say what it keys, or why "
                   "it keys nothing")


def digest(tree: Any) -> str:
    """A short, order-independent hash of a JSON-able tree."""
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:16]


def as_resolved(cfg: Config) -> Config:
    """``cfg`` with each ``auto`` that the machine decides replaced by what this machine decides: the models'
    dtype, the generation backend, the training precision (``musc_ecd.models.backend_choice``). Keys are made
    from it, so what ``auto`` made on a CPU with native bf16 (transformers in bf16) is never taken for what it
    made on an AVX2 CPU (OpenVINO in fp32) — by a run resumed on another machine, or a sweep's shared entries
    reused there. Artifacts keyed before this, under ``auto`` itself, say nothing of their machine: they are
    redone once (an explicit setting keys as it always did)."""
    from musc_ecd.models.backend_choice import choose_backend
    from musc_ecd.models.precision import resolve_dtype, resolve_train_precision

    dtype = resolve_dtype(cfg.model.dtype)
    backend = choose_backend(cfg.generation.backend).backend
    precision = resolve_train_precision(cfg.train.precision)
    resolved = copy.copy(cfg)  # copies, not dataclasses.replace: a key is read, the config is not validated again
    for section, name, value in (("model", "dtype", dtype), ("generation", "backend", backend),
                                 ("train", "precision", precision)):
        setattr(resolved, section, copy.copy(getattr(cfg, section)))
        setattr(getattr(resolved, section), name, value)
    return resolved


def keyed_tree(cfg: Config, artifact: str, rows: Mapping[str, Keys] | None = None) -> dict:
    """The config as a tree of only the keys that key ``artifact`` for this config (``KEYED_BY``; ``rows``
    replace some of its rows, as an older table had them), ``auto`` resolved (``as_resolved``)."""
    rows = rows or {}
    cfg = as_resolved(cfg)

    def select(tree: dict, prefix: str) -> dict:
        chosen = {}
        for name, value in tree.items():
            key = f"{prefix}{name}"
            if isinstance(value, dict):
                inner = select(value, f"{key}.")
                if inner:
                    chosen[name] = inner
            elif (rows[key] if key in rows else keyed_by(key)).applies(artifact, cfg):
                chosen[name] = value
        return chosen

    return select(to_dict(cfg), "")


def pairs_fingerprint(cfg: Config) -> str:
    """The ``generate`` stage's pairs: the method's own sections only, so an ``ecd.*`` change leaves MuSC pairs
    valid; the seeds themselves are keyed per item by their content."""
    return digest(keyed_tree(cfg, PAIRS))


def generate_share_key(cfg: Config) -> str:
    """The shared ``generate-<key>`` entry: the pairs' keys, *with* ``data.limit`` and the data paths."""
    return digest(keyed_tree(cfg, GENERATE_SHARE))


def weights_fingerprint(cfg: Config) -> str:
    """Token weights: the scheme, its fallback and options, the policy (its tokenizer; its distributions and
    dtype for model-based schemes). The pairs are keyed per pair by content, beside this."""
    return digest(keyed_tree(cfg, WEIGHTS))


def model_fingerprint(cfg: Config) -> str:
    """The trained model's settings, not where or how often it is logged or saved; the pairs it learnt from
    are keyed by their sha256, beside this."""
    return digest(keyed_tree(cfg, MODEL))


ENGINE_ONLY = ("batch_size", "vllm")
"""``generation`` keys that change how text is produced, not which text."""
ENGINE_TEXT_KEYS = {"ct2": "compute_type", "openvino": "weight_format"}
"""The one key of each converting engine's options that changes the text (int8 weights); the others (batch,
threads, memory, exporter) change only how it is produced."""


def _generation(tree: dict) -> dict:
    kept = {k: v for k, v in tree["generation"].items() if k not in ENGINE_ONLY}
    for engine, key in ENGINE_TEXT_KEYS.items():
        value = kept.pop(engine)[key]
        if value != "auto":  # left out at its default, so keys made before the engine existed still hold
            kept[engine] = {key: value}
    return kept


def sections_fingerprint(cfg: Config, sections: tuple[str, ...]) -> str:
    """The named top-level sections whole, less the engine options and ``data.limit``: how the keys were made
    before ``KEYED_BY`` (the answers keep it; ``legacy_fingerprints``), ``auto`` resolved (``as_resolved``)."""
    full = to_dict(as_resolved(cfg))
    chosen = {name: full[name] for name in sections}
    if "data" in chosen:
        chosen["data"] = {k: v for k, v in chosen["data"].items() if k != "limit"}
    if "generation" in chosen:
        chosen["generation"] = _generation(full)
    return digest(chosen)


def legacy_fingerprints(cfg: Config, artifact: str) -> tuple[str, ...]:
    """The keys older musc-ecds gave ``artifact`` for this config, where they differ: what they made under
    such a key was made with these very settings (and more: the old keys covered more), so it is kept. The
    pairs: whole sections before the table; the table's key while the warning thresholds still keyed them."""
    if artifact == PAIRS:
        older = (sections_fingerprint(cfg, ("seed", "method", "model", "generation", "data",
                                            *get_method(cfg.method).sections)),
                 digest(keyed_tree(cfg, PAIRS, {key: _method_section(key.partition(".")[0])
                                                for key in WARNING_THRESHOLDS})))
    elif artifact in (WEIGHTS, MODEL):
        older = (sections_fingerprint(cfg, ("seed", "model", "train")),)
    else:
        return ()
    current = FINGERPRINTS[artifact](cfg)
    return tuple(key for key in dict.fromkeys(older) if key != current)


def fingerprint_matches(stored: str | None, cfg: Config, artifact: str) -> bool:
    """Whether an artifact made under the key ``stored`` was made with this config's settings for it."""
    return stored == FINGERPRINTS[artifact](cfg) or stored in legacy_fingerprints(cfg, artifact)


FINGERPRINTS: dict[str, Callable[[Config], str]] = {PAIRS: pairs_fingerprint, WEIGHTS: weights_fingerprint,
                                                    MODEL: model_fingerprint}


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


def base_eval_share_key(cfg: Config, set_name: str) -> str:
    """The shared ``eval-base-<key>`` entry: everything that can change the base model's answers and scores
    on one evaluation set (the seed only when sampling: greedy answers do not depend on it), ``auto`` resolved
    (``as_resolved``)."""
    cfg = as_resolved(cfg)
    tree = to_dict(cfg)
    options = cfg.eval
    path = options.set_path(set_name)
    source = str(Path(path).resolve()) if path is not None else "own"
    return digest({
        "policy": cfg.model.policy, "dtype": cfg.model.dtype, "trust_remote_code": cfg.model.trust_remote_code,
        "generation": _generation(tree),
        "set": source, "limit": options.limit, "max_new_tokens": options.max_new_tokens,
        "temperature": options.temperature,
        "seed": cfg.seed if options.temperature > 0 else None,
    })
