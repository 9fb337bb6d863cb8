"""What this CPU is and what its fp32 matmuls allow: the denominator of every "share of the roofline" figure.

The roofline of a decode step is the time its matmuls take at the rate this machine's torch (MKL/oneDNN)
reaches for those exact shapes, measured here, not taken from a datasheet. Attention, norms, sampling and
framework overhead are left out, so no engine can exceed it; small batches are bounded by weight reads,
which the measured small-row rates include only in part (a repeated matmul finds its weights in cache), so
the roofline is optimistic there.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "avx_vnni")


def cpu_info() -> dict:
    """CPU model, the vector flags that decide kernels, torch's capability, cores and load when measured."""
    import torch

    model, flags = platform.processor() or "unknown", set()
    try:
        text = Path("/proc/cpuinfo").read_text()
        model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                     model)
        family = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("cpu family")),
                      None)
        number = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model\t")),
                      None)
        flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")),
                         []))
    except OSError:
        family = number = None
    return {
        "cpu_model": model,
        "cpu_family_model": f"{family}/{number}" if family else None,
        "cpu_flags": sorted(flag for flag in CPU_FLAGS if flag in flags),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def matmul_gflops(rows: int, inner: int, cols: int, seconds: float = 0.4) -> float:
    """fp32 GFLOP/s of a (rows x inner) @ (inner x cols) product, repeated for about ``seconds``."""
    import torch

    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    a @ b
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds or count < 3:
        a @ b
        count += 1
    return 2 * rows * inner * cols * count / elapsed / 1e9


def model_linear_shapes(config: dict) -> list[tuple[int, int, int]]:
    """(inner, cols, times) of every linear layer of a Llama/Qwen-style decoder and its output head, per token."""
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    kv = config.get("num_key_value_heads", heads) * head_dim
    layers = config["num_hidden_layers"]
    return [(hidden, heads * head_dim, layers), (hidden, kv, 2 * layers), (heads * head_dim, hidden, layers),
            (hidden, inter, 2 * layers), (inter, hidden, layers), (hidden, config["vocab_size"], 1)]


def decode_roofline(config: dict, batch: int) -> dict:
    """Tokens/s a decode step of ``batch`` rows reaches if every matmul ran at its measured fp32 rate."""
    seconds, flops = 0.0, 0.0
    for inner, cols, times in model_linear_shapes(config):
        rate = matmul_gflops(batch, inner, cols)
        seconds += times * 2 * batch * inner * cols / (rate * 1e9)
        flops += times * 2 * inner * cols
    return {"batch": batch, "tokens_per_s": round(batch / seconds, 1), "gflop_per_token": round(flops / 1e9, 3),
            "effective_gflops": round(flops * batch / seconds / 1e9, 1)}


def model_config(model_dir: Path) -> dict:
    return json.loads((Path(model_dir) / "config.json").read_text())
