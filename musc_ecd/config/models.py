"""Schema of the ``model`` and ``generation`` sections: models by role, and how text is generated."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from musc_ecd.config.choices import BACKENDS, CT2_COMPUTE_TYPES, DTYPES, JUDGE_UNTYPED, OPENVINO_WEIGHT_FORMATS
from musc_ecd.config.validate import check


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
    judge_untyped: Literal[JUDGE_UNTYPED] = "policy"
    """With ``judge=checkers``: untyped constraints are judged by the policy, or left out of the judgement."""
    dtype: Literal[DTYPES] = "auto"
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
    max_num_seqs: int | None = None
    """Sequences decoded together; None = vLLM's default."""
    enable_chunked_prefill: bool | None = None
    """None = off on CPU: the CPU build (0.32) crashes when a seeded request's prefill is chunked
    ("CPU Generator does not use offset"); vLLM's default on GPU."""


@dataclass
class CT2Config:
    """Options of the CTranslate2 backend (ignored by the others)."""

    compute_type: Literal[CT2_COMPUTE_TYPES] = "auto"
    """``auto`` = float32. ``int8`` quantizes the weights: faster, but a different model whose answers diverge
    from float32's (docs/backends.md), so it keys pairs and answers like a model change."""
    max_batch_size: int = 16
    """Rows decoded together; more rows than this are sorted by prompt length and cut into batches. 16 measured
    fastest on a 2-core AVX2 CPU (benchmarks/generation.py): CTranslate2 forwards a batch's prompts at once only
    up to the shortest one, so a wide batch of uneven prompts spends steps feeding the longer ones."""
    threads: int = 0
    """Threads per engine; 0 = the cores this process may use."""

    def __post_init__(self) -> None:
        check(self.max_batch_size >= 1, "generation.ct2.max_batch_size", self.max_batch_size, "an integer >= 1")
        check(self.threads >= 0, "generation.ct2.threads", self.threads, "an integer >= 0")


@dataclass
class OpenVINOConfig:
    """Options of the OpenVINO backend (ignored by the others)."""

    weight_format: Literal[OPENVINO_WEIGHT_FORMATS] = "auto"
    """``auto`` = the weights as computed (``model.dtype``). ``int8`` compresses them: another model whose answers
    can differ (docs/backends.md), so it keys pairs and answers like a model change."""
    max_num_seqs: int = 32
    """Sequences decoded together by the continuous batch (benchmarks/generation.py measured batch 16 to 64)."""
    kv_cache_gb: float = 2.0
    """Memory the engine reserves for the KV cache, in GB (whole numbers; more sequences than fit wait)."""
    threads: int = 0
    """Inference threads; 0 = the engine's default (the cores it may use)."""
    exporter: str | None = None
    """Path to optimum-intel's ``optimum-cli``; None = ``$MUSC_ECD_OPENVINO_EXPORTER``, else the
    ``.venv-openvino-export`` that ``scripts/env.sh`` builds beside the project's environment."""

    def __post_init__(self) -> None:
        check(self.max_num_seqs >= 1, "generation.openvino.max_num_seqs", self.max_num_seqs, "an integer >= 1")
        check(self.kv_cache_gb >= 1, "generation.openvino.kv_cache_gb", self.kv_cache_gb, "a number >= 1")
        check(self.threads >= 0, "generation.openvino.threads", self.threads, "an integer >= 0")


@dataclass
class GenerationConfig:
    """How text is generated. The same semantics in every backend.

    ``respond`` reads every key; ``evaluate`` reads top_p and stop (``eval.*`` sets the rest); a pair builder only
    those it declares (``methods.sampling``: top_p for MuSC and ECD, whose steps have their own keys; APC also
    stop, and temperature and max_new_tokens unless ``apc.*`` gives them per responder). ``generate`` and ``run``
    refuse a key set away from its default that nothing of theirs reads."""

    backend: Literal[BACKENDS] = "auto"
    """``hf`` (transformers), ``vllm`` (offline ``vllm.LLM``), ``ct2`` (CTranslate2, CPU), ``openvino`` (OpenVINO
    GenAI, CPU), or ``auto``: per machine, from the table in ``musc_ecd/models/backend_choice.py`` (GPU: vLLM if
    installed, else hf; CPU with native bf16: hf; CPU without: openvino, else ct2). The choice is logged and
    recorded in summaries."""
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
    ct2: CT2Config = field(default_factory=CT2Config)
    openvino: OpenVINOConfig = field(default_factory=OpenVINOConfig)

    def __post_init__(self) -> None:
        check(self.temperature >= 0, "generation.temperature", self.temperature, "a number >= 0")
        check(0 < self.top_p <= 1, "generation.top_p", self.top_p, "a number in (0, 1]")
        check(self.max_new_tokens >= 1, "generation.max_new_tokens", self.max_new_tokens, "an integer >= 1")
        check(self.n >= 1, "generation.n", self.n, "an integer >= 1")
        check(self.batch_size >= 1, "generation.batch_size", self.batch_size, "an integer >= 1")


