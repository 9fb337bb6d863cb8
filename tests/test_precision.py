"""``auto`` precision follows the hardware: bf16 only where it is native, fp32 elsewhere, in every model load."""

from __future__ import annotations

import pytest
import torch

from musc_ecd.config import load_config
from musc_ecd.models import precision
from musc_ecd.models.loading import load_model


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    """A CPU like AMD Zen 3: AVX2, no AVX-512-BF16, no AMX."""
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ())


@pytest.fixture
def cpu_with_amx(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_flags", lambda: ("amx_bf16",))


def test_auto_is_fp32_on_a_cpu_without_native_bf16(cpu_without_bf16):
    assert precision.resolve_dtype("auto", "cpu") == "float32"
    assert precision.resolve_dtype("bfloat16", "cpu") == "bfloat16"  # an explicit choice is honoured


def test_auto_is_bf16_on_a_cpu_with_amx(cpu_with_amx):
    assert precision.resolve_dtype("auto", "cpu") == "bfloat16"


def test_auto_on_cuda_follows_bf16_support(monkeypatch, cpu_without_bf16):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert precision.resolve_dtype("auto", "cuda") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision.resolve_dtype("auto", "cuda") == "float32"


def test_unknown_dtype_is_refused():
    with pytest.raises(ValueError, match="unknown dtype"):
        precision.resolve_dtype("fp8", "cpu")


def test_hf_load_of_auto_is_fp32_without_native_bf16(cpu_without_bf16):
    model, _ = load_model("tiny", dtype="auto", device="cpu")
    assert model.dtype == torch.float32


def test_hf_load_of_auto_is_bf16_with_native_bf16(cpu_with_amx):
    model, _ = load_model("tiny", dtype="auto", device="cpu")
    assert model.dtype == torch.bfloat16


def test_training_autocast_follows_the_same_test(cpu_without_bf16, tmp_path):
    from musc_ecd.training.run import _trainer_args

    cfg = load_config(None, ["model.policy=tiny"])
    assert _trainer_args(cfg, tmp_path).bf16 is False


def test_training_autocast_on_where_native(cpu_with_amx, tmp_path):
    from musc_ecd.training.run import _trainer_args

    cfg = load_config(None, ["model.policy=tiny"])
    assert _trainer_args(cfg, tmp_path).bf16 is True


def test_vllm_backend_is_given_the_resolved_dtype(cpu_without_bf16, monkeypatch):
    """The engine receives float32 for ``auto`` on such a CPU (captured instead of starting an engine)."""
    import sys
    import types

    from musc_ecd.models import vllm_backend

    seen = {}

    class FakeLLM:
        def __init__(self, **kwargs):
            seen.update(kwargs)
            self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=64))

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM))
    from musc_ecd.models import backend_choice

    monkeypatch.setattr(backend_choice, "vllm_installed", lambda: True)
    cfg = load_config(None, ["model.policy=tiny", "generation.backend=vllm"])
    vllm_backend.VLLMGenerator.from_config("tiny", cfg)
    assert seen["dtype"] == "float32"


def test_precision_record_names_the_reason(cpu_without_bf16):
    record = precision.precision_record("auto", "cpu")
    assert record["dtype"] == "float32" and record["cpu_bf16_flags"] == [] and record["cpu_capability"]


def test_the_environment_can_pretend_there_is_no_native_bf16(monkeypatch):
    monkeypatch.setenv(precision.NO_NATIVE_BF16_ENV, "0")
    precision.cpu_bf16_flags.cache_clear()
    try:
        assert precision.cpu_bf16_flags() == () and precision.resolve_dtype("auto", "cpu") == "float32"
    finally:
        monkeypatch.delenv(precision.NO_NATIVE_BF16_ENV)
        precision.cpu_bf16_flags.cache_clear()
