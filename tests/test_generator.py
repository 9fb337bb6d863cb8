"""The Generator contract's pure parts: seeds, stop handling, backend choice, the scripted fake."""

from __future__ import annotations

import pytest
from helpers import chat

from musc_ecd.config import load_config
from musc_ecd.errors import BackendUnavailableError
from musc_ecd.models import SamplingParams, create_generator
from musc_ecd.models.generator import cut_at_stop, make_completion, params_from_config, sample_seed
from musc_ecd.models.scripted import ScriptedGenerator


def test_sample_seed_depends_on_seed_request_and_index_only():
    a = sample_seed(0, chat("x"), 0)
    assert a == sample_seed(0, chat("x"), 0)
    assert len({a, sample_seed(1, chat("x"), 0), sample_seed(0, chat("y"), 0), sample_seed(0, chat("x"), 1)}) == 4


@pytest.mark.parametrize(
    ("text", "stop", "expected"),
    [
        ("abc STOP def", ["STOP"], ("abc ", True)),
        ("abc END x STOP", ["STOP", "END"], ("abc ", True)),  # the earliest stop wins
        ("abc", ["zzz"], ("abc", False)),
        ("abc", [""], ("abc", False)),  # an empty stop string never matches
        ("STOP", ["STOP"], ("", True)),
    ],
)
def test_cut_at_stop(text, stop, expected):
    assert cut_at_stop(text, stop) == expected


class _CharTokenizer:
    """One token per character: enough to check make_completion's bookkeeping by hand."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids)


def test_make_completion_by_hand():
    ids = [ord(c) for c in "hello world"]
    tok = _CharTokenizer()
    assert make_completion(tok, ids, False, SamplingParams()).finish_reason == "length"
    done = make_completion(tok, ids, True, SamplingParams())
    assert (done.text, done.finish_reason) == ("hello world", "stop")
    cut = make_completion(tok, ids, False, SamplingParams(stop=("o w",)))
    # text ends before the stop; ids end before the token completing it ("w", index 6)
    assert (cut.text, cut.token_ids, cut.finish_reason) == ("hell", tuple(ids[:6]), "stop")


@pytest.mark.parametrize(
    ("cuda", "bf16", "have", "expected"),
    [
        (True, True, {"vllm", "ctranslate2"}, "vllm"),
        (True, True, {"ctranslate2"}, "hf"),
        (False, True, {"vllm", "ctranslate2"}, "hf"),
        (False, False, {"vllm", "ctranslate2"}, "ct2"),
        (False, False, {"vllm"}, "vllm"),
        (False, False, set(), "hf"),
    ],
)
def test_auto_backend_follows_the_documented_table(monkeypatch, cuda, bf16, have, expected):
    import torch

    from musc_ecd.models import backend_choice, precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(precision, "native_bf16", lambda device: bf16)
    monkeypatch.setattr(backend_choice, "installed", lambda module: module in have)
    assert backend_choice.resolve_backend("auto") == expected
    assert backend_choice.resolve_backend("hf") == "hf"  # an explicit backend is always honoured


def test_engine_record_names_backend_reason_and_precision(monkeypatch):
    import torch

    from musc_ecd.models import backend_choice, precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    monkeypatch.setattr(backend_choice, "openvino_usable", lambda: True)
    record = backend_choice.engine_record(load_config(None, []))
    assert record == {"requested": "auto", "backend": "openvino", "reason": "CPU without native bf16",
                      "weight_format": "fp32", "dtype": "float32"}
    monkeypatch.setattr(backend_choice, "openvino_usable", lambda: False)
    monkeypatch.setattr(backend_choice, "installed", lambda module: module == "ctranslate2")
    record = backend_choice.engine_record(load_config(None, []))
    assert record == {"requested": "auto", "backend": "ct2", "reason": "CPU without native bf16, OpenVINO not usable",
                      "compute_type": "float32"}
    record = backend_choice.engine_record(load_config(None, ["generation.backend=hf", "model.dtype=float32"]))
    assert record == {"requested": "hf", "backend": "hf", "reason": "asked for", "dtype": "float32"}


def test_missing_vllm_is_a_clear_error(monkeypatch):
    from musc_ecd.models import backend_choice

    monkeypatch.setattr(backend_choice, "vllm_installed", lambda: False)
    with pytest.raises(BackendUnavailableError, match="vLLM is not installed.*generation.backend=hf"):
        create_generator("tiny", load_config(None, ["generation.backend=vllm"]))


def test_params_from_config_with_stage_overrides():
    cfg = load_config(None, ["seed=5", "generation.temperature=0.7", "generation.stop=[x]"])
    params = params_from_config(cfg, temperature=0.1, n=4)
    assert params == SamplingParams(n=4, temperature=0.1, top_p=1.0, max_new_tokens=256, stop=("x",), seed=5)


def test_scripted_generator_records_calls_and_honours_params():
    fake = ScriptedGenerator(lambda request, i, params: f"{request[-1]['content']} #{i} STOP tail")
    out = fake.generate([chat("a"), chat("b")], SamplingParams(n=2, stop=("STOP",)))
    assert [[c.text for c in s] for s in out] == [["a #0 ", "a #1 "], ["b #0 ", "b #1 "]]
    assert all(c.finish_reason == "stop" for s in out for c in s)
    assert len(fake.calls) == 1
    (long,) = fake.generate([chat("a")], SamplingParams(max_new_tokens=2))[0]
    assert (long.text, long.finish_reason) == ("a #0", "length")
