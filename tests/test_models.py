"""Model resolution: tiny (built offline, deterministic), local directories, clear not-found errors."""

from __future__ import annotations

import hashlib

import pytest

from musc_ecd.errors import ModelNotFoundError
from musc_ecd.models import load_model, resolve_model_path


def _weights_digest(path):
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_tiny_is_deterministic_and_cached(tiny_path, tmp_path, monkeypatch):
    monkeypatch.setenv("MUSC_ECD_CACHE", str(tmp_path))
    fresh = resolve_model_path("tiny")
    assert fresh != tiny_path and fresh.is_relative_to(tmp_path)
    assert _weights_digest(fresh) == _weights_digest(tiny_path)
    assert (fresh / "tokenizer.json").read_text() == (tiny_path / "tokenizer.json").read_text()
    assert resolve_model_path("tiny") == fresh  # second call: from the cache
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]  # no staging left


def test_tiny_shape_and_chat_template(tiny_path):
    model, tokenizer = load_model(str(tiny_path), dtype="float32", device="cpu")  # as a local directory
    config = model.config
    assert (config.head_dim, config.num_hidden_layers, config.tie_word_embeddings) == (32, 2, True)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.decode(tokenizer("Bytes: é ✓")["input_ids"]) == "Bytes: é ✓"  # byte-level: no <unk>


def test_missing_local_dir_and_unknown_hub_id(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model_path(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model_path(str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError, match="pass a local path, e.g. model.policy=/path/to/model"):
        resolve_model_path("no/such-model")


def test_trust_remote_code_is_off_by_default(monkeypatch, tiny_path):
    seen = {}
    import transformers

    original = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*args, **kwargs):
        seen["trust_remote_code"] = kwargs.get("trust_remote_code")
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    load_model("tiny", device="cpu")
    assert seen["trust_remote_code"] is False


@pytest.mark.integration
def test_smollm2_loads_offline_and_answers():
    from musc_ecd.models import SamplingParams
    from musc_ecd.models.hf_backend import HFGenerator

    model, tokenizer = load_model("smollm2-135m-instruct", device="cpu")
    assert model.config.model_type == "llama" and model.num_parameters() > 100_000_000
    generator = HFGenerator(model, tokenizer, name="smollm2", show_progress=False)
    (answer,) = generator.generate([[{"role": "user", "content": "What is the capital of France?"}]],
                                   SamplingParams(max_new_tokens=24))[0]
    assert "Paris" in answer.text
