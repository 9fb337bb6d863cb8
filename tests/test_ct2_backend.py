"""The CTranslate2 backend for real, on the tiny model: the same contract as hf (greedy equal token for token,
stop strings, token budgets) and its own seeding contract (a sampled call's samples depend on the seed and the
call's set of requests)."""

from __future__ import annotations

import pytest
from helpers import PROMPTS, chat

from musc_ecd.config import load_config
from musc_ecd.errors import BackendUnavailableError, ConfigError
from musc_ecd.models import SamplingParams, create_generator
from musc_ecd.models.generator import encode_chat

REQUESTS = [chat(p) for p in PROMPTS]


@pytest.fixture(scope="module")
def tiny_ct2():
    cfg = load_config(None, ["generation.backend=ct2", "generation.ct2.max_batch_size=2"])
    generator = create_generator("tiny", cfg)
    generator.show_progress = False
    return generator


def test_the_engine_sees_the_hf_backends_prompt_ids(tiny_ct2, tiny_hf):
    """Prompts reach the engine as token strings; its vocabulary maps each back to the id encode_chat made."""
    import json

    vocabulary = json.loads((tiny_ct2.model_dir / "vocabulary.json").read_text())
    index = {token: i for i, token in enumerate(vocabulary)}
    for request in REQUESTS:
        ids = encode_chat(tiny_hf.tokenizer, request)
        assert [index[t] for t in tiny_ct2.tokenizer.convert_ids_to_tokens(ids)] == ids


def test_a_vocabulary_that_is_not_the_tokenizers_is_refused(tiny_ct2, tmp_path):
    import json
    import shutil

    from musc_ecd.models.conversion import check_vocabulary

    tampered = tmp_path / "tampered"
    shutil.copytree(tiny_ct2.model_dir, tampered)
    vocabulary = json.loads((tampered / "vocabulary.json").read_text())
    vocabulary[5], vocabulary[6] = vocabulary[6], vocabulary[5]
    (tampered / "vocabulary.json").write_text(json.dumps(vocabulary))
    with pytest.raises(BackendUnavailableError, match="does not map one-to-one"):
        check_vocabulary(tampered, tiny_ct2.tokenizer)


def test_greedy_matches_hf_backend(tiny_ct2, tiny_hf):
    params = SamplingParams(max_new_tokens=24)
    assert tiny_ct2.generate(REQUESTS, params) == tiny_hf.generate(REQUESTS, params)


def test_stop_strings_and_token_budget_match_hf(tiny_ct2, tiny_hf):
    free = tiny_hf.generate(REQUESTS, SamplingParams(max_new_tokens=24))
    stop = next(c.text for (c,) in free if len(c.text.strip()) > 6)[3:5]
    params = SamplingParams(max_new_tokens=24, stop=(stop,))
    assert tiny_ct2.generate(REQUESTS, params) == tiny_hf.generate(REQUESTS, params)
    short = tiny_ct2.generate(REQUESTS, SamplingParams(max_new_tokens=3))
    assert short == tiny_hf.generate(REQUESTS, SamplingParams(max_new_tokens=3))
    assert all(len(c.token_ids) <= 3 for (c,) in short) and any(c.finish_reason == "length" for (c,) in short)


def test_generate_many_gives_each_call_its_own_params(tiny_ct2):
    calls = [(REQUESTS[:3], SamplingParams(max_new_tokens=4)), (REQUESTS[2:], SamplingParams(max_new_tokens=9)),
             (REQUESTS[:2], SamplingParams(n=2, temperature=1.0, max_new_tokens=6, seed=3))]
    together = tiny_ct2.generate_many(calls)
    assert together == [tiny_ct2.generate(requests, params) for requests, params in calls]
    assert all(len(c.token_ids) <= 4 for (c,) in together[0])


def test_seeded_sampling_is_reproducible_per_call_whatever_its_order(tiny_ct2):
    params = SamplingParams(n=3, temperature=1.0, top_p=0.9, max_new_tokens=10, seed=11)
    first = tiny_ct2.generate(REQUESTS, params)
    assert [len(s) for s in first] == [3] * len(REQUESTS)
    assert len({s.token_ids for s in first[0]}) > 1
    tiny_ct2.generate(REQUESTS[1:3], params)  # other work between two runs of the call changes nothing
    assert tiny_ct2.generate(REQUESTS[::-1], params)[::-1] == first  # nor does the order of its requests
    assert tiny_ct2.generate(REQUESTS, SamplingParams(n=3, temperature=1.0, top_p=0.9, max_new_tokens=10,
                                                      seed=12)) != first


def test_conversion_is_cached_by_content_not_path(tmp_path, tiny_path, monkeypatch):
    import shutil

    import ctranslate2
    from transformers import AutoTokenizer

    from musc_ecd.models.conversion import ct2_model

    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    first = ct2_model(tiny_path, "float32", tokenizer)
    copy = tmp_path / "the-same-model-elsewhere"
    shutil.copytree(tiny_path, copy)
    real_converter = ctranslate2.converters.TransformersConverter
    monkeypatch.setattr(ctranslate2.converters, "TransformersConverter",
                        lambda *a, **k: pytest.fail("the same content was converted again"))
    assert ct2_model(copy, "float32", tokenizer) == first
    monkeypatch.setattr(ctranslate2.converters, "TransformersConverter", real_converter)
    (copy / "generation_config.json").write_text('{"eos_token_id": 2}\n')  # same path, new content
    changed = ct2_model(copy, "float32", tokenizer)
    assert changed != first and (changed / "model.bin").is_file()
    assert ct2_model(tiny_path, "int8", tokenizer) not in (first, changed)  # the quantization keys it too


def test_explicit_bf16_is_refused_for_ct2():
    with pytest.raises(ConfigError, match="ct2 runs in float32 or int8"):
        create_generator("tiny", load_config(None, ["generation.backend=ct2", "model.dtype=bfloat16"]))


def test_missing_ctranslate2_is_a_clear_error(monkeypatch):
    from musc_ecd.models import backend_choice

    monkeypatch.setattr(backend_choice, "ct2_installed", lambda: False)
    with pytest.raises(BackendUnavailableError, match="ctranslate2 is not installed.*generation.backend=hf"):
        create_generator("tiny", load_config(None, ["generation.backend=ct2"]))
