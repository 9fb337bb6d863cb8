"""What this CPU is and what it allows in fp32: the denominator of every "share of the roofline" figure.

Measured here, not taken from a datasheet: for every linear layer's shape at the batch in question, the best
fp32 rate a library installed here reaches on that exact matmul (torch's MKL/oneDNN, and OpenVINO's CPU
plugin when installed — at 16 rows torch ran the output head at 29 GFLOP/s and OpenVINO at 103 on a 2-core
Zen 3, so torch alone understated the machine), and the memory bandwidth, streaming a buffer far larger than
the caches. A decode step of B rows must run every layer's matmul (no faster than its best measured rate) and
read every weight once (no faster than the bandwidth); the roofline is B tokens per the longer of the two.
Attention, the KV cache's reads, norms, sampling and framework overhead are left out, so an engine should not
exceed it; the rates of a repeated matmul find its weights in cache, so the compute part is optimistic. The
peak of a large square matmul is recorded beside, for reference.
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
    """torch's fp32 GFLOP/s on a (rows x inner) @ (inner x cols) product, repeated for about ``seconds``."""
    import torch

    a, b = torch.randn(rows, inner), torch.randn(inner, cols)
    return _rate(lambda: a @ b, 2 * rows * inner * cols, seconds) / 1e9


def openvino_matmul_gflops(rows: int, inner: int, cols: int, seconds: float = 0.4) -> float | None:
    """OpenVINO's CPU plugin's fp32 GFLOP/s on (rows x inner) @ a constant (inner x cols); None if not installed."""
    try:
        import numpy as np
        import openvino as ov
        import openvino.opset13 as ops
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    left = ops.parameter([rows, inner], np.float32)
    right = ops.constant(rng.standard_normal((inner, cols), dtype=np.float32))
    compiled = ov.Core().compile_model(ov.Model([ops.matmul(left, right, False, False)], [left]), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    request, data = compiled.create_infer_request(), rng.standard_normal((rows, inner), dtype=np.float32)
    return _rate(lambda: request.infer([data]), 2 * rows * inner * cols, seconds) / 1e9


def best_matmul_gflops(rows: int, inner: int, cols: int) -> dict:
    """Every installed library's fp32 rate on this matmul, and the best of them."""
    measured = {"torch": round(matmul_gflops(rows, inner, cols), 1)}
    openvino = openvino_matmul_gflops(rows, inner, cols)
    if openvino is not None:
        measured["openvino"] = round(openvino, 1)
    return {"gflops": max(measured.values()), "by_library": measured}


def memory_gbs(megabytes: int = 1024, seconds: float = 0.6) -> float:
    """GB/s read by summing a buffer of ``megabytes`` (far beyond the caches) with every torch thread."""
    import torch

    buffer = torch.ones(megabytes * 2 ** 20 // 4)
    return _rate(lambda: buffer.sum(), buffer.numel() * 4, seconds) / 1e9


def _rate(work, units: float, seconds: float) -> float:
    work()  # warm up: kernels chosen, pages touched
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds or count < 3:
        work()
        count += 1
    return units * count / elapsed


def model_linear_shapes(config: dict) -> list[tuple[int, int, int]]:
    """(inner, cols, times) of every linear layer of a Llama/Qwen-style decoder and its output head, per token."""
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    kv = config.get("num_key_value_heads", heads) * head_dim
    layers = config["num_hidden_layers"]
    return [(hidden, heads * head_dim, layers), (hidden, kv, 2 * layers), (heads * head_dim, hidden, layers),
            (hidden, inter, 2 * layers), (inter, hidden, layers), (hidden, config["vocab_size"], 1)]


def machine_rates() -> dict:
    """What the rooflines here share: the memory bandwidth, and (for reference) a large square matmul's peak."""
    return {"memory_gbs": round(memory_gbs(), 1), "peak_2048": best_matmul_gflops(2048, 2048, 2048)}


def compute_seconds_per_token(config: dict, rows: int) -> tuple[float, dict]:
    """Seconds a token's linear layers take with ``rows`` rows a matmul, each at its best measured rate."""
    seconds, rates = 0.0, {}
    for inner, cols, times in model_linear_shapes(config):
        rate = best_matmul_gflops(rows, inner, cols)
        rates[f"{inner}x{cols}"] = rate
        seconds += times * 2 * inner * cols / (rate["gflops"] * 1e9)
    return seconds, rates


def decode_roofline(config: dict, batch: int, rates: dict) -> dict:
    """Tokens/s a decode step of ``batch`` rows should not exceed: every linear layer at its best measured rate
    for that many rows, or the fp32 weights read once at the measured bandwidth, whichever takes longer."""
    compute_s, shape_rates = compute_seconds_per_token(config, batch)
    weight_bytes = 4 * sum(times * inner * cols for inner, cols, times in model_linear_shapes(config))
    memory_s = weight_bytes / (rates["memory_gbs"] * 1e9) / batch  # a step reads the weights once for its rows
    flops = sum(times * 2 * inner * cols for inner, cols, times in model_linear_shapes(config))
    return {"batch": batch, "tokens_per_s": round(1 / max(compute_s, memory_s), 1),
            "bound": "compute" if compute_s >= memory_s else "memory",
            "compute_bound_tokens_per_s": round(1 / compute_s, 1), "memory_bound_tokens_per_s": round(1 / memory_s, 1),
            "gflop_per_token": round(flops / 1e9, 3), "weight_mb": round(weight_bytes / 1e6, 1),
            "matmul_gflops": shape_rates}


def training_roofline(config: dict, rows: int = 512) -> dict:
    """Tokens/s a LoRA preference step should not exceed: about 3 forward passes of matmul work a token (the
    policy's forward and its backward through the frozen weights — activation gradients; LoRA's own are
    small — and the reference's forward: ~6 x parameters FLOPs), each at its best measured rate with ``rows``
    rows a matmul (a training batch's tokens)."""
    compute_s, shape_rates = compute_seconds_per_token(config, rows)
    return {"tokens_per_s": round(1 / (3 * compute_s), 1),
            "basis": f"3 forward passes of the linear layers a token, each matmul at its best measured fp32 rate "
                     f"with {rows} rows (torch or OpenVINO)", "matmul_gflops": shape_rates}


def model_config(model_dir: Path) -> dict:
    return json.loads((Path(model_dir) / "config.json").read_text())
