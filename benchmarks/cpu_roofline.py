"""What this CPU is and what it allows in fp32: the denominator of every "share of the roofline" figure.

Two rates are measured here, not taken from a datasheet: the machine's fp32 **peak**, the best rate any
library installed here reaches on a large square matmul (torch's MKL/oneDNN, and OpenVINO's CPU plugin when
installed: on a 2-core Zen 3 OpenVINO's kernels beat torch's, so torch alone understated the machine), and
its **memory bandwidth**, streaming a buffer far larger than the caches. A decode step of B rows must do
B x (the model's linear FLOPs per token) at no more than the peak, and read every weight once at no more than
the bandwidth; the roofline is B tokens per the longer of the two times. Attention, the KV cache's reads,
norms, sampling and framework overhead are left out, so no engine can exceed it.
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


def openvino_matmul_gflops(size: int, seconds: float = 0.4) -> float | None:
    """OpenVINO's CPU plugin's fp32 GFLOP/s on a (size x size) @ (size x size) product; None if not installed."""
    try:
        import numpy as np
        import openvino as ov
        import openvino.opset13 as ops
    except ImportError:
        return None
    left = ops.parameter([size, size], np.float32)
    right = ops.constant(np.random.default_rng(0).standard_normal((size, size), dtype=np.float32))
    compiled = ov.Core().compile_model(ov.Model([ops.matmul(left, right, False, False)], [left]), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    request, data = compiled.create_infer_request(), np.random.default_rng(1).standard_normal((size, size),
                                                                                              dtype=np.float32)
    return _rate(lambda: request.infer([data]), 2 * size ** 3, seconds) / 1e9


def peak_gflops(size: int = 2048) -> dict:
    """The best fp32 rate measured on a large square matmul, and what each library reached."""
    measured = {"torch": round(matmul_gflops(size, size, size), 1)}
    openvino = openvino_matmul_gflops(size)
    if openvino is not None:
        measured["openvino"] = round(openvino, 1)
    return {"gflops": max(measured.values()), "by_library": measured, "matmul_size": size}


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
    """The two measured rates every roofline here divides by (measure once per benchmark run)."""
    return {"peak": peak_gflops(), "memory_gbs": round(memory_gbs(), 1)}


def decode_roofline(config: dict, batch: int, rates: dict) -> dict:
    """Tokens/s a decode step of ``batch`` rows cannot exceed: its linear FLOPs at the peak, or its fp32
    weights read once at the memory bandwidth, whichever takes longer."""
    flops_per_token = sum(times * 2 * inner * cols for inner, cols, times in model_linear_shapes(config))
    weight_bytes = 4 * sum(times * inner * cols for inner, cols, times in model_linear_shapes(config))
    compute_s = batch * flops_per_token / (rates["peak"]["gflops"] * 1e9)
    memory_s = weight_bytes / (rates["memory_gbs"] * 1e9)
    return {"batch": batch, "tokens_per_s": round(batch / max(compute_s, memory_s), 1),
            "bound": "compute" if compute_s >= memory_s else "memory",
            "gflop_per_token": round(flops_per_token / 1e9, 3), "weight_mb": round(weight_bytes / 1e6, 1)}


def training_roofline(config: dict, rates: dict) -> dict:
    """Tokens/s a LoRA preference step cannot exceed: about 6 x the linear parameters in FLOPs a token (the
    policy's forward 2P and backward 2P — activation gradients through frozen weights; LoRA's own are small —
    and the reference's forward 2P), at the measured fp32 peak."""
    flops_per_token = 3 * sum(times * 2 * inner * cols for inner, cols, times in model_linear_shapes(config))
    return {"tokens_per_s": round(rates["peak"]["gflops"] * 1e9 / flops_per_token, 1),
            "gflop_per_token": round(flops_per_token / 1e9, 3),
            "basis": f"6 x linear parameters FLOPs a token at the measured fp32 peak "
                     f"({rates['peak']['gflops']} GFLOP/s)"}


def model_config(model_dir: Path) -> dict:
    return json.loads((Path(model_dir) / "config.json").read_text())
