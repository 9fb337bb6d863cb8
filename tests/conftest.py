"""Shared fixtures: the tiny model (built offline, cached) and generators over it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# Tests never reach a hub; scripts/test.sh sets these too, this covers a bare `pytest`.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MUSC_ECD_CACHE", str(REPO / ".cache"))


@pytest.fixture(scope="session")
def tiny_path() -> Path:
    from musc_ecd.models import resolve_model_path

    return resolve_model_path("tiny")


@pytest.fixture(scope="session")
def tiny_hf():
    """An hf generator over the tiny model in float32 (exact comparisons need no bf16 rounding)."""
    from musc_ecd.models import load_model
    from musc_ecd.models.hf_backend import HFGenerator

    model, tokenizer = load_model("tiny", dtype="float32", device="cpu")
    return HFGenerator(model, tokenizer, name="tiny", batch_size=4, show_progress=False)
