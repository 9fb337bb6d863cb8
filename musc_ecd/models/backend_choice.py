"""Which backend ``generation.backend=auto`` runs, and in which precision: one table, decided per machine.

| machine                                   | backend                                          | precision    |
|-------------------------------------------|--------------------------------------------------|--------------|
| CUDA GPU                                  | vllm if installed, else hf                       | bf16 if any  |
| CPU with native bf16 (AVX-512-BF16 / AMX) | hf                                               | bf16         |
| CPU without native bf16 (e.g. AVX2 only)  | openvino if usable, else ct2, else vllm, else hf | fp32         |

"usable": openvino-genai installed and its exporter found (``exporter.openvino_exporter``).

Why: on a 2-core AMD Zen 3 (AVX2, no AVX-512) OpenVINO GenAI's continuous batching in float32 (KV cache too)
decoded fastest of every engine measured, CTranslate2 second, both with greedy answers equal to transformers'
(benchmarks/README.md, ``benchmarks/results/generation.json``). On a Sapphire Rapids with native bf16,
transformers in bf16 decoded 206 tokens/s at batch 16 and the vLLM CPU build 1.33x that, after a ~21 s engine
start that every stage pays again, so hf stays the choice there; OpenVINO and CTranslate2 have not been
measured on such a CPU. int8 weights are never chosen by ``auto``: they change the model's answers
(docs/backends.md has the IFEval comparison); ask for them with ``generation.openvino.weight_format=int8`` or
``generation.ct2.compute_type=int8``.

The choice is logged once per process and recorded by the stages beside the dtype (``engine_record``).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from functools import cache

from musc_ecd.errors import ConfigError

log = logging.getLogger(__name__)

BACKEND_MODULES = {
    "hf": "musc_ecd.models.hf_backend:HFGenerator",
    "vllm": "musc_ecd.models.vllm_backend:VLLMGenerator",
    "ct2": "musc_ecd.models.ct2_backend:CT2Generator",
    "openvino": "musc_ecd.models.openvino_backend:OpenVINOGenerator",
}
"""Import paths, so that importing musc_ecd never imports an engine."""


@dataclass(frozen=True)
class BackendChoice:
    backend: str
    reason: str


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def vllm_installed() -> bool:
    return installed("vllm")


def ct2_installed() -> bool:
    return installed("ctranslate2")


def openvino_installed() -> bool:
    return installed("openvino_genai")


def openvino_usable() -> bool:
    """openvino-genai importable and an exporter found: what ``auto`` needs to pick the OpenVINO backend."""
    from musc_ecd.errors import BackendUnavailableError
    from musc_ecd.models.exporter import openvino_exporter

    if not openvino_installed():
        return False
    try:
        openvino_exporter(None)
    except BackendUnavailableError:
        return False
    return True


def choose_backend(requested: str) -> BackendChoice:
    """The backend ``requested`` means on this machine (the table in the module docstring)."""
    if requested != "auto":
        if requested not in BACKEND_MODULES:
            raise ConfigError(f"config error: generation.backend={requested!r}; allowed: auto, "
                              f"{', '.join(BACKEND_MODULES)}")
        return BackendChoice(requested, "asked for")
    import torch

    from musc_ecd.models.precision import native_bf16

    if torch.cuda.is_available():
        return _first(("vllm", "CUDA GPU"), ("hf", "CUDA GPU, vLLM not installed"))
    if native_bf16("cpu"):
        return BackendChoice("hf", "CPU with native bf16")
    return _first(("openvino", "CPU without native bf16"),
                  ("ct2", "CPU without native bf16, OpenVINO not usable"),
                  ("vllm", "CPU without native bf16, neither OpenVINO nor ctranslate2 usable"),
                  ("hf", "CPU without native bf16, none of OpenVINO, ctranslate2, vLLM usable"))


def _first(*options: tuple[str, str]) -> BackendChoice:
    usable = {"hf": lambda: True, "vllm": vllm_installed, "ct2": ct2_installed, "openvino": openvino_usable}
    for backend, reason in options:
        if usable[backend]():
            return BackendChoice(backend, reason)
    raise AssertionError("hf is always available")


def resolve_backend(requested: str) -> str:
    choice = choose_backend(requested)
    if requested == "auto":
        _log_once(choice)
    return choice.backend


@cache
def _log_once(choice: BackendChoice) -> None:
    log.info("generation.backend=auto -> %s (%s)", choice.backend, choice.reason)


def ct2_compute_type(cfg) -> str:
    """CTranslate2's compute type: ``generation.ct2.compute_type``, ``auto`` resolved by the table above.

    CTranslate2 computes in float32 or int8 on CPU; an explicit bf16/fp16 ``model.dtype`` cannot be honoured,
    so it is refused rather than silently run in another precision."""
    if cfg.model.dtype in ("bfloat16", "float16"):
        raise ConfigError(
            f"config error: generation.backend=ct2 runs in float32 or int8 on CPU, but model.dtype="
            f"{cfg.model.dtype}; set model.dtype=auto (or float32), or use generation.backend=hf"
        )
    chosen = cfg.generation.ct2.compute_type  # auto: float32; int8 only when asked (see the module docstring)
    return "float32" if chosen == "auto" else chosen


def openvino_weight_format(cfg) -> str:
    """OpenVINO's weight format: ``generation.openvino.weight_format``, ``auto`` = the weights as computed."""
    chosen = cfg.generation.openvino.weight_format  # int8 only when asked (see the module docstring)
    return "fp32" if chosen == "auto" else chosen


def engine_record(cfg) -> dict:
    """What a stage records beside the dtype: the backend that ran, why, and the precision it ran in."""
    from musc_ecd.models.precision import resolve_dtype

    choice = choose_backend(cfg.generation.backend)
    record = {"requested": cfg.generation.backend, "backend": choice.backend, "reason": choice.reason}
    if choice.backend == "ct2":
        record["compute_type"] = ct2_compute_type(cfg)
    else:
        if choice.backend == "openvino":
            record["weight_format"] = openvino_weight_format(cfg)
        record["dtype"] = resolve_dtype(cfg.model.dtype)
    return record
