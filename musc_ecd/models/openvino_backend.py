"""The OpenVINO backend: OpenVINO GenAI's continuous-batching pipeline behind the same ``Generator`` contract.

Why it exists: on a CPU without native bf16 (AVX2 only) it decoded fastest of every engine measured, several
times transformers' rate, with greedy answers equal to transformers' in float32 (benchmarks/README.md has the
figures and the CPU). ``generation.backend=auto`` picks it there (``models/backend_choice.py``).

How the contract is kept:

- Prompts are ``encode_chat``'s token ids, handed to the engine as ids: it never tokenizes, so it sees exactly
  what hf sees. Text is decoded from the returned ids by the same ``make_completion`` as every backend.
- Precision: the inference precision *and* the KV cache's follow ``model.dtype`` (float32 on such a CPU). The
  engine's default on CPU stores the KV cache in u8, which changed greedy answers on 2 of 64 IFEval prompts;
  in float32 throughout they equal hf's.
- Every sample is its own request, seeded with ``sample_seed(seed, request, index)``: the engine keeps one random
  stream per request, so a sample does not depend on its batch mates or on ``n`` (the hf contract; tested).
- ``max_new_tokens``, the end-of-sequence ids and stop strings are per request; the engine stops on a stop
  string and keeps it in the ids, and ``make_completion`` cuts the text before it, as for the other backends.
- Any checkpoint (the base model, a merged adapter) is exported once and cached under a key of its files'
  content, the engine's and the exporter's versions and the weight format, never its path (``conversion``).
  The exporter (optimum-intel) needs an older transformers than the project's, so it runs from its own
  environment (``scripts/env.sh`` builds it; ``openvino_exporter`` finds it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from musc_ecd.errors import BackendUnavailableError
from musc_ecd.models.generator import (
    Chat,
    Completion,
    SamplingParams,
    encode_requests,
    engine_completion,
    progress_bar,
    sample_seed,
)

log = logging.getLogger(__name__)

ENGINE_PRECISION = {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}
"""``model.dtype`` (resolved) -> the engine's name for it, used for compute and the KV cache alike."""


@dataclass
class _Row:
    """One sequence to generate: sample ``sample`` of request ``request`` of call ``call``."""

    call: int
    request: int
    sample: int
    prompt_ids: list[int]
    params: SamplingParams
    seed: int


class OpenVINOGenerator:
    def __init__(self, model_dir: Path, tokenizer, name: str, precision: str, threads: int, max_num_seqs: int,
                 kv_cache_gb: float, eos_ids: Sequence[int], context: int | None, show_progress: bool = True):
        import openvino_genai

        self.model_dir = model_dir
        self.tokenizer = tokenizer
        self.name = name
        self.precision = precision
        self.eos_ids = sorted(set(eos_ids))
        self.context = context
        self.show_progress = show_progress
        scheduler = openvino_genai.SchedulerConfig()
        scheduler.max_num_seqs = max_num_seqs
        scheduler.cache_size = max(1, round(kv_cache_gb))  # whole GB: the engine's unit
        properties = {"INFERENCE_PRECISION_HINT": ENGINE_PRECISION[precision],
                      "KV_CACHE_PRECISION": ENGINE_PRECISION[precision]}
        if threads:
            properties["INFERENCE_NUM_THREADS"] = threads
        self._pipeline = openvino_genai.ContinuousBatchingPipeline(str(model_dir), scheduler, "CPU", properties)

    @classmethod
    def from_config(cls, model_spec: str, cfg) -> OpenVINOGenerator:
        from musc_ecd.models.backend_choice import openvino_installed, openvino_weight_format

        if not openvino_installed():
            raise BackendUnavailableError(
                "generation.backend=openvino but openvino-genai is not installed: pip install "
                "openvino-genai==2026.4.1.0 (requirements/base.txt), or use generation.backend=ct2 or hf"
            )
        from musc_ecd.models.conversion import openvino_model, source_model
        from musc_ecd.models.exporter import openvino_exporter
        from musc_ecd.models.precision import resolve_dtype

        options = cfg.generation.openvino
        source = source_model(model_spec, cfg)
        exported = openvino_model(source.path, openvino_weight_format(cfg), openvino_exporter(options.exporter),
                                  trust_remote_code=cfg.model.trust_remote_code)
        return cls(exported, source.tokenizer, name=model_spec, precision=resolve_dtype(cfg.model.dtype),
                   threads=options.threads, max_num_seqs=options.max_num_seqs, kv_cache_gb=options.kv_cache_gb,
                   eos_ids=source.eos_ids, context=source.context)

    # -- the Generator interface -----------------------------------------------------------------------------

    def generate(self, requests: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]:
        return self.generate_many([(requests, params)])[0]

    def generate_many(self, calls: Sequence[tuple[Sequence[Chat], SamplingParams]]) -> list[list[list[Completion]]]:
        """Several calls in one continuous batch, each row with its own limits, stop strings and seed."""
        rows: list[_Row] = []
        for call, (requests, params) in enumerate(calls):
            encoded = encode_requests(self.tokenizer, requests, self.context)
            samples = 1 if params.greedy else params.n  # greedy samples are one answer, repeated
            rows += [_Row(call, i, s, ids, params, sample_seed(params.seed, chat, s))
                     for i, (chat, ids) in enumerate(zip(requests, encoded, strict=True)) for s in range(samples)]
        generated = self._run(rows)

        results: list[list[list[Completion | None]]] = [[[None] * params.n for _ in requests]
                                                        for requests, params in calls]
        for row, ids in zip(rows, generated, strict=True):
            completion = engine_completion(self.tokenizer, ids, self.eos_ids, row.params)
            if row.params.greedy:
                results[row.call][row.request] = [completion] * row.params.n
            else:
                results[row.call][row.request][row.sample] = completion
        return results  # type: ignore[return-value]

    # -- decoding ------------------------------------------------------------------------------------------------

    def _run(self, rows: list[_Row]) -> list[list[int]]:
        """The generated ids of every row (the end token kept when it ended the row), in the rows' order."""
        import numpy as np
        import openvino
        import openvino_genai

        handles = [self._pipeline.add_request(index, openvino.Tensor(np.array([row.prompt_ids], dtype=np.int64)),
                                              self._engine_config(row))
                   for index, row in enumerate(rows)]
        progress = self._progress(len(rows))
        pending = handles  # polled only for the progress bar, and only those not yet seen finished
        while self._pipeline.has_non_finished_requests():
            self._pipeline.step()
            if progress is not None:
                finished = openvino_genai.GenerationStatus.FINISHED
                still = [handle for handle in pending if handle.get_status() != finished]
                progress.update(len(pending) - len(still))
                pending = still
        if progress is not None:
            progress.close()
        return [list(handle.read_all()[0].generated_ids) for handle in handles]

    def _engine_config(self, row: _Row):
        import openvino_genai

        params = row.params
        config = openvino_genai.GenerationConfig()
        config.max_new_tokens = params.max_new_tokens
        config.stop_token_ids = set(self.eos_ids)
        if params.stop:
            config.stop_strings = set(params.stop)
            config.include_stop_str_in_output = True  # make_completion cuts, as for every backend
        if params.greedy:
            config.do_sample = False
        else:
            config.do_sample = True
            config.temperature = params.temperature
            config.top_p = params.top_p
            config.rng_seed = row.seed
        return config

    def _progress(self, total: int):
        return progress_bar(self.show_progress, total, f"generate [{self.name}, openvino {self.precision}]")

    def close(self) -> None:
        self._pipeline = None
