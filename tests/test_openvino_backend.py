"""The OpenVINO backend for real, on the tiny model: the hf contract (greedy equal token for token, stop strings,
token budgets, per-sample seeds independent of batch mates and of n), the export cache keyed by content."""

from __future__ import annotations

import shutil

import pytest
from helpers import PROMPTS, chat

from musc_ecd.config import load_config
from musc_ecd.errors import BackendUnavailableError
from musc_ecd.models import SamplingParams, create_generator
from musc_ecd.models.backend_choice import openvino_usable
from musc_ecd.models.generator import encode_chat

pytestmark = pytest.mark.skipif(not openvino_usable(), reason="openvino-genai or its exporter (scripts/env.sh) missing")

REQUESTS = [chat(p) for p in PROMPTS]
SAMPLED = SamplingParams(n=3, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=5)


@pytest.fixture(scope="module")
def tiny_openvino():
    generator = create_generator("tiny", load_config(None, ["generation.backend=openvino", "model.dtype=float32",
                                                            "generation.openvino.max_num_seqs=2"]))
    generator.show_progress = False
    return generator


def test_the_engine_gets_the_hf_backends_prompt_ids(tiny_openvino, tiny_hf):
    class Recording:  # the pipeline, with every prompt it is handed written down
        def __init__(self, pipeline):
            self.pipeline, self.prompts = pipeline, []

        def add_request(self, request_id, ids, config):
            self.prompts.append(ids.data.tolist()[0])
            return self.pipeline.add_request(request_id, ids, config)

        def __getattr__(self, name):
            return getattr(self.pipeline, name)

    real = tiny_openvino._pipeline
    tiny_openvino._pipeline = recording = Recording(real)
    try:
        tiny_openvino.generate(REQUESTS, SamplingParams(max_new_tokens=2))
    finally:
        tiny_openvino._pipeline = real
    assert recording.prompts == [encode_chat(tiny_hf.tokenizer, chat) for chat in REQUESTS]


def test_greedy_matches_hf_backend(tiny_openvino, tiny_hf):
    params = SamplingParams(max_new_tokens=24)
    assert tiny_openvino.generate(REQUESTS, params) == tiny_hf.generate(REQUESTS, params)


def test_stop_strings_and_token_budget_match_hf(tiny_openvino, tiny_hf):
    text = tiny_hf.generate(REQUESTS[:1], SamplingParams(max_new_tokens=24))[0][0].text
    params = SamplingParams(max_new_tokens=24, stop=(text[5:8], "."))
    stopped = tiny_openvino.generate(REQUESTS, params)
    assert stopped == tiny_hf.generate(REQUESTS, params)
    assert stopped[0][0].finish_reason == "stop" and stopped[0][0].text == text[: text.find(text[5:8])]
    short = tiny_openvino.generate(REQUESTS, SamplingParams(max_new_tokens=3))
    assert all(len(c[0].token_ids) <= 3 for c in short)


def test_generate_many_gives_each_call_its_own_params(tiny_openvino):
    calls = [(REQUESTS[:2], SamplingParams(max_new_tokens=5)), (REQUESTS[1:], SamplingParams(max_new_tokens=9)),
             (REQUESTS[:3], SAMPLED)]
    assert tiny_openvino.generate_many(calls) == [tiny_openvino.generate(r, p) for r, p in calls]


def test_a_sample_depends_on_its_seed_alone(tiny_openvino):
    first = tiny_openvino.generate(REQUESTS, SAMPLED)
    assert len({c.token_ids for c in first[0]}) > 1  # the n samples are different draws
    assert tiny_openvino.generate(REQUESTS[::-1], SAMPLED)[::-1] == first  # not the order of the batch
    assert tiny_openvino.generate(REQUESTS[:1], SAMPLED)[0] == first[0]  # nor its batch mates
    fewer = SamplingParams(n=1, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=5)
    assert tiny_openvino.generate(REQUESTS[:1], fewer)[0][0] == first[0][0]  # nor n
    other = SamplingParams(n=3, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=6)
    assert tiny_openvino.generate(REQUESTS, other) != first


def test_an_export_is_keyed_by_content_not_path(tmp_path):
    from transformers import AutoTokenizer  # noqa: F401  (the export needs only the directory)

    from musc_ecd.models.conversion import openvino_model
    from musc_ecd.models.exporter import openvino_exporter
    from musc_ecd.models.loading import resolve_model_path

    exporter = openvino_exporter(None)
    tiny_path = resolve_model_path("tiny")
    first = openvino_model(tiny_path, "fp32", exporter)
    copy = tmp_path / "same-bytes-elsewhere"
    shutil.copytree(tiny_path, copy)
    assert openvino_model(copy, "fp32", exporter) == first  # same content, another path: no new export
    config = copy / "generation_config.json"
    config.write_text(config.read_text().replace("}", ', "note": 1}', 1))
    assert openvino_model(copy, "fp32", exporter) != first  # same path, new content: a new export


def test_a_missing_exporter_is_a_clear_error(tmp_path):
    cfg = load_config(None, ["generation.backend=openvino", f"generation.openvino.exporter={tmp_path}/optimum-cli"])
    with pytest.raises(BackendUnavailableError, match="needs optimum-intel's exporter.*scripts/env.sh"):
        create_generator("tiny", cfg)
