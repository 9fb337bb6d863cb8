"""Which floating-point precision a model runs in: ``auto`` resolved by what the hardware computes natively.

One function, ``resolve_dtype``, used by every model load (hf and vLLM backends, token weights, the
evaluation's adapter merge, training). ``auto`` means bfloat16 only where bf16 arithmetic is native:

- a CUDA GPU that supports bf16 (Ampere and later);
- a CPU with AVX-512-BF16 or AMX-BF16 (Intel Sapphire Rapids and later, AMD Zen 4 and later);

and float32 everywhere else. Why it matters: on a CPU without native bf16 (e.g. AMD Zen 3, AVX2 only) a
bf16 matmul is emulated and runs about 30 times slower than fp32 (ENVIRONMENT.md), so ``auto`` = bf16
would make generation unusable there. An explicit dtype is always honoured.

The resolved choice is logged once per process (per distinct answer) and recorded by the stages in
their provenance (``precision_record``).
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

EXPLICIT = ("bfloat16", "float32", "float16")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


NO_NATIVE_BF16_ENV = "MUSC_ECD_CPU_BF16"
"""Set to 0 to make ``auto`` choose as on a CPU without native bf16 (to reproduce such a machine's choices)."""


@cache
def cpu_bf16_flags() -> tuple[str, ...]:
    """The CPU flags that make bf16 native here (empty when none); read from /proc/cpuinfo, else torch."""
    if os.environ.get(NO_NATIVE_BF16_ENV) == "0":
        return ()
    try:
        words = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        words = set()
    found = tuple(flag for flag in BF16_CPU_FLAGS if flag in words)
    if found or words:
        return found
    try:  # no /proc (macOS, some containers): torch's own probes, private but long-standing
        import torch

        probes = (("avx512_bf16", "_is_avx512_bf16_supported"), ("amx_bf16", "_is_amx_tile_supported"))
        return tuple(flag for flag, name in probes if getattr(torch.cpu, name, lambda: False)())
    except Exception:  # no probe: assume no native bf16, the safe (fast) answer is fp32
        return ()


def cpu_capability() -> str:
    """torch's name for the CPU's vector ISA (``AVX2``, ``AVX512``, ...), for provenance and benchmarks."""
    import torch

    return torch.backends.cpu.get_cpu_capability()


def native_bf16(device: str) -> bool:
    """Whether ``device`` ("cuda…" or "cpu") computes bf16 natively."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(cpu_bf16_flags())


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(requested: str, device: str | None = None) -> str:
    """``requested`` (``auto`` or an explicit dtype name) → the dtype name a model is loaded in."""
    if requested in EXPLICIT:
        return requested
    if requested != "auto":
        raise ValueError(f"unknown dtype {requested!r}; allowed: auto, {', '.join(EXPLICIT)}")
    device = device or default_device()
    resolved = "bfloat16" if native_bf16(device) else "float32"
    _log_once(device, resolved)
    return resolved


def resolve_train_precision(requested: str, device: str | None = None) -> str:
    """``train.precision`` → ``bf16`` or ``fp32``; ``auto``: bf16 autocast (over fp32 master weights) where the
    device computes bf16 natively, by the same test as ``model.dtype=auto``."""
    if requested != "auto":
        return requested
    return "bf16" if resolve_dtype("auto", device) == "bfloat16" else "fp32"


@cache
def _log_once(device: str, resolved: str) -> None:
    reason = "native bf16" if resolved == "bfloat16" else "no native bf16 (bf16 would be emulated, far slower)"
    flags = list(cpu_bf16_flags()) or "none"
    detail = f"CPU capability {cpu_capability()}, bf16 flags {flags}" if device == "cpu" else device
    log.info("model.dtype=auto -> %s on %s: %s (%s)", resolved, device, reason, detail)


def precision_record(requested: str, device: str | None = None) -> dict:
    """What a stage writes into its provenance: what was asked, what it resolved to, and why."""
    device = device or default_device()
    record = {"requested": requested, "dtype": resolve_dtype(requested, device), "device": device}
    if device == "cpu":
        record.update(cpu_capability=cpu_capability(), cpu_bf16_flags=list(cpu_bf16_flags()))
    return record
