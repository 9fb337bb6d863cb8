"""Structured configs: dataclasses with help text, merged with OmegaConf from one YAML plus overrides.

Every command takes ``CONFIG.yaml`` and ``key=value`` overrides (an OmegaConf dotlist). The schema is
the dataclasses below, merged in OmegaConf's structured mode, so a misspelled key, a wrong type or a
value outside a ``Literal`` fails *before* any model loads, with one line that names the key, where it
came from (the YAML file or the command line) and what is allowed.

The resolved config is written to ``RUN_DIR/config.yaml``; loading that file alone repeats the run.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

from musc_ecd.errors import ConfigError

Backend = Literal["auto", "hf", "vllm"]
DType = Literal["auto", "bfloat16", "float32", "float16"]


@dataclass
class ModelConfig:
    """Models by role. Any role may point at the policy: "self-based" is one override away."""

    policy: str = "smollm2-135m-instruct"
    """The model being trained and, in self-based methods, the one writing the data. A registered name
    (``tiny``, ``smollm2-135m-instruct``), a local directory, or a hub id (only when online)."""
    teacher: str | None = None
    """Optional stronger model (ECD's evolver/responder in teacher-based runs). None = the policy."""
    responders: list[str] = field(default_factory=list)
    """APC's responders, strongest first. Empty = [policy]."""
    judge: str | None = None
    """Model that judges constraint satisfaction. None = the policy. ``checkers``: typed constraints (from
    verifiable seeds) are judged by code, with IFEval's checkers; untyped ones per ``judge_untyped``."""
    judge_untyped: Literal["policy", "skip"] = "policy"
    """With ``judge=checkers``: untyped constraints are judged by the policy, or left out of the judgement."""
    dtype: DType = "auto"
    """Weights dtype for generation, token weights and evaluation. ``auto`` = bfloat16 only where the hardware
    computes it natively (a CUDA GPU with bf16; a CPU with AVX-512-BF16 or AMX), else float32: emulated bf16
    is ~30x slower than fp32 on CPUs without it. The resolved choice is logged and recorded in summaries."""
    trust_remote_code: bool = False
    """Run Python code shipped with a model repository. Off unless you trust the repository."""

    def role(self, name: str) -> str:
        """The model spec a role resolves to; unset roles fall back to the policy."""
        value = getattr(self, name)
        return self.policy if value is None else value


@dataclass
class VLLMConfig:
    """Options passed to ``vllm.LLM`` (ignored by the hf backend)."""

    gpu_memory_utilization: float = 0.85
    tensor_parallel_size: int = 1
    max_model_len: int = 4096
    enforce_eager: bool | None = None
    """None = eager on CPU (the CPU build needs it), CUDA graphs on GPU."""
    cpu_kvcache_space_gib: int = 1
    """KV-cache size for the CPU build (``VLLM_CPU_KVCACHE_SPACE``)."""
    enable_chunked_prefill: bool | None = None
    """None = off on CPU: the CPU build (0.32) crashes when a seeded request's prefill is chunked
    ("CPU Generator does not use offset"); vLLM's default on GPU."""


@dataclass
class GenerationConfig:
    """How text is generated. The same semantics in every backend."""

    backend: Backend = "auto"
    """``hf`` (transformers), ``vllm`` (offline ``vllm.LLM``), ``auto`` = vllm when installed and a
    CUDA GPU is present, else hf."""
    temperature: float = 0.0
    """Sampling temperature; 0 = greedy."""
    top_p: float = 1.0
    """Nucleus sampling mass, in (0, 1]."""
    max_new_tokens: int = 256
    n: int = 1
    """Samples per request."""
    stop: list[str] = field(default_factory=list)
    """Stop strings; the text ends before the first one."""
    batch_size: int = 16
    """hf backend: rows per forward batch (requests are sorted by length and bucketed)."""
    vllm: VLLMConfig = field(default_factory=VLLMConfig)

    def __post_init__(self) -> None:
        _check(self.temperature >= 0, "generation.temperature", self.temperature, "a number >= 0")
        _check(0 < self.top_p <= 1, "generation.top_p", self.top_p, "a number in (0, 1]")
        _check(self.max_new_tokens >= 1, "generation.max_new_tokens", self.max_new_tokens, "an integer >= 1")
        _check(self.n >= 1, "generation.n", self.n, "an integer >= 1")
        _check(self.batch_size >= 1, "generation.batch_size", self.batch_size, "an integer >= 1")


@dataclass
class DataConfig:
    """Input items. Field names map a file's columns onto what musc-ecd reads."""

    seeds: str | None = None
    """Seed instructions for pair builders (JSONL, CSV or a local ``datasets`` directory)."""
    prompts: str | None = None
    """Prompts for ``respond``; unset = ``seeds``."""
    prompt_field: str = "prompt"
    """Column holding the instruction / prompt text."""
    id_field: str | None = None
    """Column holding a stable item id; None = a hash of the prompt text."""
    limit: int | None = None
    """Use only the first N items (after malformed lines are set aside)."""

    def __post_init__(self) -> None:
        _check(self.limit is None or self.limit >= 0, "data.limit", self.limit, "an integer >= 0 or null")


@dataclass
class StoreConfig:
    commit_every: int = 32
    """Items generated between durable commits (write + fsync); a kill loses at most this many."""

    def __post_init__(self) -> None:
        _check(self.commit_every >= 1, "store.commit_every", self.commit_every, "an integer >= 1")


@dataclass
class MuscCoarseConfig:
    """MuSC coarse granularity (METHODS.md §1a). Every model call is the policy's."""

    drop_ratio: float = 0.3
    """Share of constraints to corrupt: k = max(1, round(drop_ratio · n))."""
    p_drop: float = 0.5
    p_substitute: float = 0.25
    p_negate: float = 0.25
    keep_first: bool = True
    """Never corrupt the first constraint (it usually carries the core task)."""
    min_constraints: int = 2
    """Decompositions with fewer constraints are rejected."""
    decompose_temperature: float = 0.1
    recombine_temperature: float = 0.1
    rewrite_temperature: float = 0.7
    """Substitute/negate calls (inferred: the papers do not say; some diversity helps)."""
    respond_temperature: float = 0.5
    decompose_max_tokens: int = 384
    recombine_max_tokens: int = 256
    rewrite_max_tokens: int = 64
    respond_max_tokens: int = 512
    self_judge_filter: bool = False
    """Keep a pair only if the judge (``model.judge``, the policy unless named) finds that `rejected` fails at
    least one corrupted constraint of the original instruction."""
    judge_temperature: float = 0.1
    judge_max_tokens: int = 128
    judge_stop: list[str] = field(default_factory=list)
    """Stop strings for the judge's ``Analysis: … Answer: Yes|No`` (the text ends before the first one)."""

    def __post_init__(self) -> None:
        _check(0 < self.drop_ratio <= 1, "musc.drop_ratio", self.drop_ratio, "a number in (0, 1]")
        total = self.p_drop + self.p_substitute + self.p_negate
        probabilities = (self.p_drop, self.p_substitute, self.p_negate)
        _check(min(probabilities) >= 0 and total > 0, "musc.p_drop/p_substitute/p_negate", probabilities,
               "non-negative numbers with a positive sum")
        _check(self.min_constraints >= 2, "musc.min_constraints", self.min_constraints, "an integer >= 2")


@dataclass
class MuscFineConfig:
    """MuSC fine granularity (METHODS.md §1b): self-judge and minimal self-correction, by the policy."""

    samples: int = 4
    """N answers sampled per instruction."""
    sample_temperature: float = 0.8
    judge_temperature: float = 0.1
    correct_temperature: float = 0.1
    unparsable_score: float = 0.9
    """Score of a judge verdict that cannot be parsed (0.9 as released)."""
    respond_max_tokens: int = 512
    judge_max_tokens: int = 128
    judge_stop: list[str] = field(default_factory=list)
    """Stop strings for the judge (the text ends before the first one)."""
    correct_max_tokens: int = 512
    min_revision_kept: float = 0.5
    """A revision must keep at least this share of the rejected answer's words (in order) to count as the
    minimal correction chosen is meant to be; less is a rewrite and a counted reject (0 = off)."""
    share: float = 0.5
    """``method=musc``: the share of seeds that go to the fine builder (the rest: coarse)."""

    def __post_init__(self) -> None:
        _check(0 <= self.share <= 1, "musc_fine.share", self.share, "a number in [0, 1]")
        _check(self.samples >= 2, "musc_fine.samples", self.samples, "an integer >= 2")
        _check(0 <= self.unparsable_score <= 1, "musc_fine.unparsable_score", self.unparsable_score,
               "a number in [0, 1]")
        _check(0 <= self.min_revision_kept <= 1, "musc_fine.min_revision_kept", self.min_revision_kept,
               "a number in [0, 1]")


EVOLUTION_CATEGORIES = ("content", "style", "format", "reasoning", "breadth")


@dataclass
class EcdConfig:
    """ECD, evolutionary contrastive distillation (METHODS.md §2). Evolver and responder are roles:
    ``teacher`` (= ``model.teacher``, the policy when unset) or ``policy``; self-based = both the policy."""

    rounds: int = 3
    """K evolution rounds per seed; round k's pair is (I^k, R^k ≻ R^{k-1})."""
    categories: list[str] = field(default_factory=lambda: list(EVOLUTION_CATEGORIES))
    """Top-level evolution categories to sample from (uniformly), then an operation within (uniformly)."""
    compose: Literal["rewrite", "append"] = "rewrite"
    """``rewrite``: the evolver's rewritten instruction is I^k (Evol-Instruct, the paper). ``append``: I^k =
    I^{k-1} followed by the evolver's new requirement(s), for evolvers too weak to rewrite without
    losing requirements (SmolLM2-135M; see the ECD configs)."""
    evolver: Literal["teacher", "policy"] = "teacher"
    responder: Literal["teacher", "policy"] = "teacher"
    response_field: str | None = "response"
    """Seed column holding R^0, a known-good answer to I^0; absent or empty = the responder writes it."""
    older_negatives: bool = False
    """Also pair R^k with answers R^j, j < k-1, as easier negatives (difficulty 1/(k-j))."""
    judge_filter: bool = True
    """Drop a round's pair when the judge (``model.judge``) finds that R^{k-1} already meets every new
    requirement of I^k."""
    typed_format: bool = False
    """Format operations (length, structure, forbidden, wrapper) add a *typed* requirement drawn by code
    (IFEval's kinds; text from ``describe``), checked by code in the judge filter and carried in the pairs'
    ``meta.typed_constraints``; the evolver writes the other operations' requirements."""
    max_growth_words: int = 60
    """An evolution adding more words than this is a runaway and ends the chain."""
    min_overlap: float = 0.5
    """Share of I^{k-1}'s content words I^k must keep; less = drifted from the task, ends the chain."""
    evolve_temperature: float = 0.7
    evolve_max_tokens: int = 192
    respond_temperature: float = 0.7
    respond_max_tokens: int = 384
    judge_temperature: float = 0.1
    judge_max_tokens: int = 128
    judge_stop: list[str] = field(default_factory=list)
    """Stop strings for the judge (the text ends before the first one)."""

    def __post_init__(self) -> None:
        _check(self.rounds >= 1, "ecd.rounds", self.rounds, "an integer >= 1")
        unknown = [c for c in self.categories if c not in EVOLUTION_CATEGORIES]
        _check(bool(self.categories) and not unknown, "ecd.categories", self.categories,
               f"a non-empty list of {', '.join(EVOLUTION_CATEGORIES)}")
        _check(0 <= self.min_overlap <= 1, "ecd.min_overlap", self.min_overlap, "a number in [0, 1]")
        _check(self.max_growth_words >= 1, "ecd.max_growth_words", self.max_growth_words, "an integer >= 1")


@dataclass
class ApcConfig:
    """APC, automatic pair construction from responders of different strength (METHODS.md §3).

    Responders are ``model.responders`` (strongest first). Per-responder decoding lets one model play
    several strengths (e.g. greedy with a large budget vs. sampled hot with a small one); say so when
    you report it."""

    temperatures: list[float] = field(default_factory=list)
    """One per responder; empty = ``generation.temperature`` for all."""
    max_new_tokens: list[int] = field(default_factory=list)
    """One per responder; empty = ``generation.max_new_tokens`` for all."""
    strengths: list[float] = field(default_factory=list)
    """One per responder, decreasing (e.g. measured IFEval scores); empty = ranks. A pair's difficulty is
    1 - gap/span: the largest strength gap is the easiest pair (0), adjacent responders the hardest."""

    def __post_init__(self) -> None:
        _check(all(t >= 0 for t in self.temperatures), "apc.temperatures", self.temperatures, "numbers >= 0")
        _check(all(m >= 1 for m in self.max_new_tokens), "apc.max_new_tokens", self.max_new_tokens,
               "integers >= 1")
        decreasing = all(a > b for a, b in zip(self.strengths, self.strengths[1:], strict=False))
        _check(decreasing, "apc.strengths", self.strengths, "strictly decreasing numbers (strongest responder first)")


@dataclass
class EvalConfig:
    """``musc-ecd evaluate``: answer an IFEval-format set with a model and score it."""

    ifeval_path: str | None = None
    """IFEval's ``input_data.jsonl`` (e.g. ../shared/data/ifeval/input_data.jsonl); None = the project's own
    complex-instruction set shipped with the package (same format, same scorer)."""
    adapter: str | None = None
    """A trained adapter or full model directory (e.g. RUN_DIR/model); None = the base ``model.policy``."""
    name: str | None = None
    """Results go to RUN_DIR/eval/NAME; None = "trained" with an adapter, else "base"."""
    limit: int | None = None
    """Only the first N prompts (a quick look; full sets for reported numbers)."""
    max_new_tokens: int = 512
    temperature: float = 0.0
    sets: list[str] | None = None
    """Sets ``run`` evaluates base and trained on, each compared with a paired bootstrap: ``own`` (the shipped
    set), ``ifeval`` (``eval.ifeval_path``). None = the one set ``evaluate`` uses (IFEval if ifeval_path is
    set, else own)."""

    def __post_init__(self) -> None:
        sets = self.sets or []
        _check(all(s in EVAL_SETS for s in sets) and len(set(sets)) == len(sets), "eval.sets", self.sets,
               f"null or a list of distinct names from {', '.join(EVAL_SETS)}")
        _check("ifeval" not in sets or self.ifeval_path is not None, "eval.sets", self.sets,
               "'ifeval' only together with eval.ifeval_path (IFEval's input_data.jsonl)")

    def set_names(self) -> list[str]:
        """The evaluation sets ``run`` uses (see ``sets``)."""
        return list(self.sets) if self.sets else ["ifeval" if self.ifeval_path else "own"]


EVAL_SETS = ("own", "ifeval")
LOSSES = ("sigmoid", "hinge", "ipo", "sft")
REPORT_TO = ("tensorboard", "wandb")


@dataclass
class LoraSettings:
    r: int = 16
    """LoRA rank."""
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str = "all-linear"
    """Which linear layers get adapters; ``all-linear`` as in the MuSC release."""


@dataclass
class TrainConfig:
    """Preference training on a pairs artifact (TokenWeightedDPOTrainer on TRL). Defaults: MuSC's release."""

    pairs: str | None = None
    """Pairs artifact (JSONL); None = RUN_DIR/pairs.jsonl."""
    finetuning: Literal["lora", "full"] = "lora"
    """``lora``: the reference is the base model with the adapter disabled; ``full``: a frozen copy."""
    loss: list[str] = field(default_factory=lambda: ["sigmoid"])
    """TRL loss types, combined: sigmoid (DPO), hinge (SLiC), ipo, sft. SLiC with its SFT term: [hinge, sft]."""
    loss_weights: list[float] | None = None
    """One weight per loss (e.g. SLiC's λ for sft); None = all 1."""
    beta: float = 0.1
    """β, the DPO temperature (for ipo: τ)."""
    learning_rate: float = 5e-6
    epochs: float = 3.0
    max_steps: int = -1
    """> 0 overrides epochs."""
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.1
    batch_size: int = 2
    """Pairs per device per step."""
    gradient_accumulation_steps: int = 4
    """Effective batch = batch_size × this × devices (8 in the MuSC release)."""
    max_length: int = 2048
    precompute_ref_log_probs: bool = False
    max_pairs: int | None = None
    """Pair budget: train on at most N pairs, a random subset drawn with the run seed (order kept), so
    methods with different yields can be compared at the same budget. None = all."""
    curriculum: Literal["random", "easy_to_hard", "staged"] = "random"
    """Order by the pairs' ``difficulty`` (larger = harder)."""
    sft_first: bool = False
    """Supervised fine-tuning on the best answers (the method's ``sft.jsonl``, else each pair's chosen) before
    the preference phase, which then starts from the SFT model and uses it as the reference (METHODS.md §2
    step 6). Resumable like the rest of ``train``. ``loss=[sft]`` alone trains only this phase."""
    sft_epochs: float = 1.0
    """Epochs of the ``sft_first`` phase (``loss=[sft]`` alone uses ``epochs``)."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """``auto``: bf16 autocast over fp32 master weights where the hardware computes bf16 natively (the same
    test as ``model.dtype=auto``), else fp32."""
    gradient_checkpointing: bool = False
    prefix_sharing: Literal["auto", "on", "off"] | bool = "auto"
    """Score each pair as one sequence prompt + chosen + rejected (the prompt computed once, pairs packed per
    row, no padding to the longest row): same loss and gradients as TRL's two rows per pair, fewer tokens
    computed. ``auto``: on where supported and measured faster (CPU; sdpa/eager attention, keep_start
    truncation), else TRL's layout with the reason logged; ``on``: an error where unsupported. YAML reads a
    bare on/off as true/false; those mean "on"/"off"."""
    save_steps: int = 50
    """Checkpoint every N optimizer steps; a rerun resumes from the last one."""
    save_total_limit: int = 2
    logging_steps: int = 1
    report_to: list[str] = field(default_factory=list)
    """Where the trainer also reports its metrics (``RUN_DIR/train/metrics.jsonl`` always has them):
    ``tensorboard`` (event files under RUN_DIR/train/runs/), ``wandb`` (offline unless WANDB_MODE is set;
    files under RUN_DIR/train/wandb/). Empty = nowhere else. Not part of the trained model's fingerprint."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    weights: Literal["none", "uniform", "edit", "kl", "bi_kl", "pmi", "entropy"] = "none"
    """Token-weight scheme (MuSC §1c), computed by ``musc-ecd weights`` into RUN_DIR/weights/pairs.jsonl,
    which ``train`` then reads. ``none``: train on the pairs as they are (weight columns, if any, apply)."""
    w_max: float = 2.0
    """Per-sequence weights are scaled to mean 1, then clipped to [0, w_max]."""
    edit_low: float = 0.1
    """``edit`` scheme: raw weight of tokens shared by rejected and chosen (diff tokens get 1)."""
    weights_fallback: Literal["none", "uniform", "edit", "pmi", "entropy"] = "none"
    """Scheme for pairs the chosen one cannot weight (kl/bi_kl need a corrupted instruction, which fine pairs
    lack); ``none`` = such pairs are an error."""

    def __post_init__(self) -> None:
        if isinstance(self.prefix_sharing, bool):
            self.prefix_sharing = "on" if self.prefix_sharing else "off"
        unknown = [name for name in self.loss if name not in LOSSES]
        _check(not unknown and bool(self.loss), "train.loss", self.loss, f"a non-empty list of {', '.join(LOSSES)}")
        _check(self.loss_weights is None or len(self.loss_weights) == len(self.loss), "train.loss_weights",
               self.loss_weights, "null or one weight per entry of train.loss")
        _check(self.beta > 0, "train.beta", self.beta, "a number > 0")
        _check(self.learning_rate > 0, "train.learning_rate", self.learning_rate, "a number > 0")
        _check(0 <= self.warmup_ratio < 1, "train.warmup_ratio", self.warmup_ratio, "a number in [0, 1)")
        _check(self.batch_size >= 1, "train.batch_size", self.batch_size, "an integer >= 1")
        _check(self.max_pairs is None or self.max_pairs >= 1, "train.max_pairs", self.max_pairs,
               "an integer >= 1 or null")
        _check(all(name in REPORT_TO for name in self.report_to) and len(set(self.report_to)) == len(self.report_to),
               "train.report_to", self.report_to, f"a list of distinct {', '.join(REPORT_TO)} (empty = none)")
        _check(self.sft_epochs > 0, "train.sft_epochs", self.sft_epochs, "a number > 0")
        _check(not (self.sft_first and self.loss == ["sft"]), "train.sft_first", self.sft_first,
               "false when train.loss=[sft] (that run is already all SFT)")


@dataclass
class Config:
    """The whole configuration; every command reads the sections it needs."""

    run_dir: str = "runs/default"
    """Where artifacts, logs and the resolved config go. Rerunning with the same run_dir resumes."""
    share_dir: str | None = None
    """Where runs put the artifacts they can share, keyed by the config that determines them: the generated
    pairs (``generate-<hash>``) and the base model's evaluations (``eval-base-<hash>``); the run directory
    links to them. None = everything inside run_dir. ``musc-ecd sweep`` sets RUNS_DIR/_shared."""
    seed: int = 0
    """Run seed; per-item seeds are derived from it, the item id and the stage."""
    method: str = "musc_coarse"
    """Pair builder for ``generate``: musc_coarse, musc_fine, musc (both, in one artifact), ecd, apc."""
    model: ModelConfig = field(default_factory=ModelConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    data: DataConfig = field(default_factory=DataConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    musc: MuscCoarseConfig = field(default_factory=MuscCoarseConfig)
    musc_fine: MuscFineConfig = field(default_factory=MuscFineConfig)
    ecd: EcdConfig = field(default_factory=EcdConfig)
    apc: ApcConfig = field(default_factory=ApcConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"config error: {key}={value!r} is not allowed; expected {allowed}")


# ----------------------------------------------------------------------------------------------
# Loading


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Merge ``path`` (YAML) and ``key=value`` overrides onto the schema; return a typed ``Config``.

    Raises ``ConfigError`` (one line: key, source, what is allowed) on any problem.
    """
    from omegaconf import OmegaConf

    merged = OmegaConf.structured(Config)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config error: config file '{path}' does not exist")
        try:
            layer = OmegaConf.load(path)
        except Exception as exc:  # yaml.YAMLError and friends: report, don't trace
            raise ConfigError(f"config error: cannot parse '{path}' as YAML: {_first_line(exc)}") from None
        if not isinstance(layer, type(merged)) and layer is not None:
            raise ConfigError(f"config error: '{path}' must hold a mapping of keys, not a list")
        merged = _merge(merged, layer, source=f"file '{path}'")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"config error: override '{item}' (command line) is not of the form key=value")
        try:
            layer = OmegaConf.from_dotlist([item])
        except Exception as exc:
            raise ConfigError(f"config error: cannot parse override '{item}': {_first_line(exc)}") from None
        merged = _merge(merged, layer, source=f"command line '{item}'")
    try:
        cfg = OmegaConf.to_object(merged)  # runs the dataclasses' __post_init__ checks
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"config error: {_first_line(exc)}") from None
    from musc_ecd.methods import check_method_name

    check_method_name(cfg.method)  # an unknown method fails here, before any model loads
    return cfg


def from_dict(tree: dict, source: str = "a saved config") -> Config:
    """A typed ``Config`` from a (possibly partial) mapping, e.g. a run's ``config.yaml`` read as data."""
    from omegaconf import OmegaConf

    merged = _merge(OmegaConf.structured(Config), OmegaConf.create(tree or {}), source)
    try:
        return OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"config error: {_first_line(exc)}") from None


def _merge(base, layer, source: str):
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, ValidationError

    try:
        return OmegaConf.merge(base, layer)
    except ConfigKeyError as exc:
        key = exc.full_key or "?"
        raise ConfigError(f"config error: unknown key '{key}' (from {source}); {_allowed_keys(key)}") from None
    except ValidationError as exc:
        key = exc.full_key or _guess_key(layer)
        detail = _first_line(exc)
        if "expected" not in detail:
            detail = f"{detail}; expected {_expected(key)}"
        raise ConfigError(f"config error: bad value for '{key}' (from {source}): {detail}") from None


def _guess_key(layer) -> str:
    from omegaconf import OmegaConf

    flat = _flatten(OmegaConf.to_container(layer))
    return next(iter(flat), "?")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _field_at(key: str):
    """(dataclass owning the last part of ``key``, the field or None) following the schema."""
    owner: Any = Config
    parts = key.split(".")
    for depth, part in enumerate(parts):
        by_name = {f.name: f for f in fields(owner)}
        found = by_name.get(part)
        if found is None or depth == len(parts) - 1:
            return owner, found
        sub = found.default_factory() if callable(found.default_factory) else None  # type: ignore[misc]
        if not is_dataclass(sub):
            return owner, None
        owner = type(sub)
    return owner, None


def _allowed_keys(key: str) -> str:
    owner, _ = _field_at(key)
    names = [f.name for f in fields(owner)]
    section = key.rsplit(".", 1)[0] if "." in key else ""
    where = f"'{section}'" if section else "the top level"
    hint = difflib.get_close_matches(key.rsplit(".", 1)[-1], names, n=1)
    did_you_mean = f"; did you mean '{section + '.' if section else ''}{hint[0]}'?" if hint else ""
    return f"allowed keys at {where}: {', '.join(names)}{did_you_mean}"


def _expected(key: str) -> str:
    owner, found = _field_at(key)
    if found is None:
        return "a value of the schema's type"
    return _describe_type(typing.get_type_hints(owner)[found.name])


def _describe_type(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        options = [_describe_type(a) for a in args if a is not type(None)]
        return " or ".join(options) + (" or null" if type(None) in args else "")
    if origin is list:
        return f"a list of {_describe_type(args[0])}" if args else "a list"
    return getattr(tp, "__name__", str(tp))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ----------------------------------------------------------------------------------------------
# Saving and fingerprints


def to_yaml(cfg: Config) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: Config) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(cfg))  # type: ignore[return-value]


def save_config(cfg: Config, run_dir: Path) -> Path:
    """Write the resolved config to ``run_dir/config.yaml`` (atomically)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / "config.yaml"
    tmp = target.with_suffix(".yaml.tmp")
    tmp.write_text(to_yaml(cfg))
    tmp.replace(target)
    return target


def fingerprint(cfg: Config, sections: tuple[str, ...]) -> str:
    """A short hash of the config sections that determine an artifact's content.

    Keys that only say *how much* or *where* (``run_dir``, ``data.limit``, batch sizes, where training
    metrics are reported) are left out, so a run can be extended to more items or moved without being redone.
    """
    full = to_dict(cfg)
    chosen = {name: full[name] for name in sections}
    if "data" in chosen:
        chosen["data"] = {k: v for k, v in chosen["data"].items() if k != "limit"}
    if "generation" in chosen:
        chosen["generation"] = {k: v for k, v in chosen["generation"].items() if k not in ("batch_size", "vllm")}
    if "train" in chosen:
        chosen["train"] = {k: v for k, v in chosen["train"].items() if k != "report_to"}
    blob = json.dumps(chosen, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
