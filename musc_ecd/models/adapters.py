"""LoRA adapters merged into their base: one plain model directory that every backend (vLLM included)
and trainer loads as it loads any model."""

from __future__ import annotations

from pathlib import Path


def merge_adapter(adapter: Path, base: str, target: Path, dtype: str = "float32",
                  trust_remote_code: bool = False) -> Path:
    """Merge the adapter in ``adapter`` into the model ``base`` (a model spec); save it with its tokenizer
    to ``target``, in ``dtype`` (``auto``: bf16 only where native). Merged in fp32 on CPU: the LoRA delta is
    small next to the weights. Returns ``target``."""
    from peft import PeftModel

    from musc_ecd.models.loading import load_model, torch_dtype

    model, tokenizer = load_model(base, dtype="float32", trust_remote_code=trust_remote_code, device="cpu")
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.to(dtype=torch_dtype(dtype)).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
