"""A model directory converted for an inference engine, once, and cached under a key of its content.

The key is the sha256 of the files that define the model (weights, config, tokenizer, chat template), the
engine's version and the quantization; never the directory's path. So a retrained adapter merged into the
same path gets a new conversion, and the same model reached by two paths is converted once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from musc_ecd.errors import BackendUnavailableError

log = logging.getLogger(__name__)

MODEL_FILE_PATTERNS = ("config.json", "generation_config.json", "tokenizer*.json", "special_tokens_map.json",
                       "vocab.json", "merges.txt", "*.model", "chat_template.jinja", "*.safetensors", "*.bin")
"""The files whose bytes define a model; stamps and notes written beside it (e.g. merged_from.json) are not."""


def content_digest(model_dir: Path) -> str:
    """sha256 over the names and bytes of ``model_dir``'s defining files, in name order."""
    files = sorted({f for pattern in MODEL_FILE_PATTERNS for f in model_dir.glob(pattern) if f.is_file()})
    if not files:
        raise BackendUnavailableError(f"model directory '{model_dir}' holds no model files to convert")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def ct2_model(model_dir: Path, quantization: str, tokenizer, trust_remote_code: bool = False) -> Path:
    """CTranslate2's copy of ``model_dir`` at ``quantization`` (``float32``, ``int8``, ...), converted once."""
    import ctranslate2

    from musc_ecd.models.loading import cached_build

    key = hashlib.sha256(f"{content_digest(model_dir)}|ctranslate2-{ctranslate2.__version__}|{quantization}"
                         .encode()).hexdigest()[:16]

    def convert(out: Path) -> None:
        log.info("converting %s for CTranslate2 (%s), once", model_dir, quantization)
        converter = ctranslate2.converters.TransformersConverter(str(model_dir), low_cpu_mem_usage=True,
                                                                 trust_remote_code=trust_remote_code)
        try:
            converter.convert(str(out), quantization=quantization)
        except (ValueError, NotImplementedError) as exc:  # an architecture the converter does not know
            raise BackendUnavailableError(f"CTranslate2 cannot convert '{model_dir}': {exc}; use "
                                          "generation.backend=hf") from None
        (out / "converted_from.json").write_text(json.dumps({"source": str(model_dir), "key": key}) + "\n")

    converted = cached_build(f"{quantization}-{key}", convert, kind="ct2")
    check_vocabulary(converted, tokenizer)
    return converted


def check_vocabulary(converted: Path, tokenizer) -> None:
    """The engine's vocabulary must be the tokenizer's, id for id: prompts go to it as token strings, so this
    is what makes the engine see exactly the ids ``encode_chat`` made."""
    vocabulary = json.loads((converted / "vocabulary.json").read_text())
    own = tokenizer.convert_ids_to_tokens(list(range(len(vocabulary))))
    if own != vocabulary or len(set(vocabulary)) != len(vocabulary):
        raise BackendUnavailableError(
            f"the CTranslate2 vocabulary in '{converted}' does not map one-to-one onto the tokenizer's ids; "
            "use generation.backend=hf for this model"
        )


@dataclass(frozen=True)
class SourceModel:
    """What an engine that converts a model needs of its spec: the directory, tokenizer, end ids and context."""

    path: Path
    tokenizer: object
    eos_ids: list[int]
    context: int | None


def source_model(model_spec: str, cfg) -> SourceModel:
    """``model_spec`` resolved to a directory, with its tokenizer (``model.trust_remote_code`` honoured)."""
    from transformers import AutoTokenizer

    from musc_ecd.models.loading import resolve_model_path

    path = resolve_model_path(model_spec)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.model.trust_remote_code)
    return SourceModel(path, tokenizer, eos_ids_of(path, tokenizer), model_context(path))


def eos_ids_of(model_dir: Path, tokenizer) -> list[int]:
    """``generator.eos_ids`` for a model directory, from its generation_config.json (as hf reads it)."""
    from musc_ecd.models.generator import eos_ids

    config_file = model_dir / "generation_config.json"
    configured = json.loads(config_file.read_text()).get("eos_token_id") if config_file.is_file() else None
    return eos_ids(configured, tokenizer)


def model_context(model_dir: Path) -> int | None:
    """The model's context length (``max_position_embeddings``), or None when its config does not say."""
    try:
        own = json.loads((model_dir / "config.json").read_text()).get("max_position_embeddings")
    except (OSError, ValueError):
        return None
    return int(own) if isinstance(own, int | float) and own > 0 else None


def openvino_model(model_dir: Path, weight_format: str, exporter: Path, trust_remote_code: bool = False) -> Path:
    """OpenVINO's copy of ``model_dir`` with ``weight_format`` (``fp32``, ``int8``, ...) weights, exported once."""
    import subprocess

    import openvino_genai

    from musc_ecd.models.exporter import exporter_versions
    from musc_ecd.models.loading import cached_build

    key = hashlib.sha256(f"{content_digest(model_dir)}|openvino-genai-{openvino_genai.__version__}|"
                         f"{exporter_versions(exporter)}|{weight_format}".encode()).hexdigest()[:16]

    def export(out: Path) -> None:
        log.info("exporting %s for OpenVINO (%s weights), once", model_dir, weight_format)
        command = [str(exporter), "export", "openvino", "--model", str(model_dir), "--task",
                   "text-generation-with-past", "--weight-format", weight_format, str(out)]
        if trust_remote_code:
            command.insert(-1, "--trust-remote-code")
        done = subprocess.run(command, capture_output=True, text=True, errors="replace")
        if done.returncode != 0 or not (out / "openvino_model.xml").is_file():
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise BackendUnavailableError(f"exporting '{model_dir}' for OpenVINO failed (exit {done.returncode}):\n"
                                          f"{tail}\nuse generation.backend=ct2 or hf for this model")
        (out / "converted_from.json").write_text(json.dumps({"source": str(model_dir), "key": key}) + "\n")

    return cached_build(f"{weight_format}-{key}", export, kind="openvino")
