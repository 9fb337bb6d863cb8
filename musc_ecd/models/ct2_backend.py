"""The CTranslate2 backend: a CPU inference engine behind the same ``Generator`` contract as hf and vLLM.

Why it exists: on a CPU without native bf16 (AVX2 only) transformers' ``generate`` runs far below what the
machine's matmul rate allows, and CTranslate2's fused decoder gets much closer to it (benchmarks/README.md has
the figures and the CPU). Its greedy answers in float32 equal the hf backend's token for token on the
prompts the benchmark checks; int8 is a different model (answers diverge early) and is used only when asked.

How the contract is kept:

- Prompts are ``encode_chat``'s token ids, turned into the engine's token strings through a vocabulary that is
  checked, once per model, to be the tokenizer's own in id order; so the engine sees exactly the ids hf sees.
- Greedy calls (one or many, with different ``max_new_tokens`` and ``stop``) run as one batch: a per-token
  callback ends each row at its own token budget or at the first completed stop string.
- Sampling: CTranslate2 draws from one random stream per worker thread, seeded when the thread first samples,
  with no per-request seed. So each sampled call runs on an engine made for it, seeded from the call's own
  sample seeds (``sample_seed(seed, request, index)`` of every row), with its rows in the order of those seeds:
  the same call gives the same samples, whatever the order of its requests and whatever else the run did.
  Unlike hf and vLLM, a sample can change when its call's *other* requests change (a different
  ``data.limit`` or ``store.commit_every``, or a resume that regroups items): use generation.backend=hf or
  vllm where each request's samples must not depend on its call. One engine per sampled call costs a model
  load (~0.1-0.3 s on 2 cores), small next to the decoding it runs.
- Any checkpoint (the base model, a merged adapter) is converted once and cached under a key of its files'
  content and the quantization, never of its path (``models/conversion.py``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from musc_ecd.errors import BackendUnavailableError
from musc_ecd.models.generator import (
    Chat,
    Completion,
    SamplingParams,
    cut_at_stop,
    encode_requests,
    engine_completion,
    progress_bar,
    sample_seed,
)

log = logging.getLogger(__name__)

STOP_WINDOW_TOKENS = 16
"""How many trailing tokens the stop-string callback decodes, beyond the longest stop string's characters."""


def available_threads() -> int:
    """The cores this process may run on (its affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity API (macOS)
        return os.cpu_count() or 1


@dataclass
class _Row:
    """One sequence to generate: a request's prompt, for one call, with that call's limits."""

    call: int
    request: int
    sample: int
    prompt_ids: list[int]
    params: SamplingParams
    ids: list[int] = field(default_factory=list)


class CT2Generator:
    def __init__(self, model_dir: Path, tokenizer, name: str, compute_type: str, threads: int,
                 max_batch_size: int, eos_ids: Sequence[int], context: int | None, show_progress: bool = True):
        import ctranslate2

        self.model_dir = model_dir
        self.tokenizer = tokenizer
        self.name = name
        self.compute_type = compute_type
        self.threads = threads
        self.max_batch_size = max_batch_size
        self.eos_ids = sorted(set(eos_ids))
        self.context = context
        self.show_progress = show_progress
        self._engine = ctranslate2.Generator(str(model_dir), device="cpu", compute_type=compute_type,
                                             intra_threads=threads)

    @classmethod
    def from_config(cls, model_spec: str, cfg) -> CT2Generator:
        from musc_ecd.models.backend_choice import ct2_compute_type, ct2_installed

        if not ct2_installed():
            raise BackendUnavailableError(
                "generation.backend=ct2 but ctranslate2 is not installed: pip install ctranslate2==4.8.5 "
                "(requirements/base.txt), or use generation.backend=hf"
            )
        from musc_ecd.models.conversion import ct2_model, source_model

        options = cfg.generation.ct2
        compute_type = ct2_compute_type(cfg)
        source = source_model(model_spec, cfg)
        converted = ct2_model(source.path, compute_type, source.tokenizer,
                              trust_remote_code=cfg.model.trust_remote_code)
        threads = options.threads or available_threads()
        return cls(converted, source.tokenizer, name=model_spec, compute_type=compute_type, threads=threads,
                   max_batch_size=options.max_batch_size, eos_ids=source.eos_ids, context=source.context)

    # -- the Generator interface -----------------------------------------------------------------------------

    def generate(self, requests: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]:
        return self.generate_many([(requests, params)])[0]

    def generate_many(self, calls: Sequence[tuple[Sequence[Chat], SamplingParams]]) -> list[list[list[Completion]]]:
        """Several calls at once: every greedy row in one engine batch; each sampled call on its own seeded engine."""
        greedy: list[_Row] = []
        sampled: list[tuple[int, list[_Row]]] = []  # (the call's engine seed, its rows)
        for call, (requests, params) in enumerate(calls):
            encoded = encode_requests(self.tokenizer, requests, self.context)
            if params.greedy:
                greedy += [_Row(call, i, 0, ids, params) for i, ids in enumerate(encoded)]
                continue
            seeded = sorted(((sample_seed(params.seed, chat, s), _Row(call, i, s, ids, params))
                             for i, (chat, ids) in enumerate(zip(requests, encoded, strict=True))
                             for s in range(params.n)), key=lambda pair: pair[0])  # the set decides, not the order
            engine_seed = sample_seed(params.seed, [{"role": "seeds", "content": str([s for s, _ in seeded])}], 0)
            sampled.append((engine_seed, [row for _, row in seeded]))
        progress = self._progress(len(greedy) + sum(len(rows) for _, rows in sampled))
        if greedy:
            self._decode(self._engine, greedy, progress, sampling=None)
        for engine_seed, rows in sampled:
            self._decode(self._seeded_engine(engine_seed), rows, progress, sampling=rows[0].params)
        if progress is not None:
            progress.close()

        results: list[list[list[Completion | None]]] = [[[None] * params.n for _ in requests]
                                                        for requests, params in calls]
        for row in greedy:
            results[row.call][row.request] = [self._completion(row)] * row.params.n
        for row in (row for _, rows in sampled for row in rows):
            results[row.call][row.request][row.sample] = self._completion(row)
        return results  # type: ignore[return-value]

    # -- decoding ------------------------------------------------------------------------------------------------

    def _seeded_engine(self, seed: int):
        """A fresh engine whose worker thread draws from ``seed``'s stream (see the module docstring)."""
        import ctranslate2

        ctranslate2.set_random_seed(seed % 2**32)
        return ctranslate2.Generator(str(self.model_dir), device="cpu", compute_type=self.compute_type,
                                     intra_threads=self.threads)

    def _decode(self, engine, rows: list[_Row], progress, sampling: SamplingParams | None) -> None:
        """Fill ``row.ids`` for every row: generated ids, the end-of-sequence token kept when it ended the row."""
        tokens = [self.tokenizer.convert_ids_to_tokens(row.prompt_ids) for row in rows]
        longest_stop = max((len(s) for row in rows for s in row.params.stop), default=0)

        def on_token(step) -> bool:
            row = rows[step.batch_id]
            row.ids.append(step.token_id)
            finished = step.is_last or step.token_id in self.eos_ids
            if not finished and len(row.ids) >= row.params.max_new_tokens:
                finished = True
            if not finished and row.params.stop:
                window = row.ids[-(longest_stop + STOP_WINDOW_TOKENS):]
                finished = cut_at_stop(self.tokenizer.decode(window, skip_special_tokens=True),
                                                     row.params.stop)[1]
            if finished and progress is not None:
                progress.update(1)
            return finished

        options = dict(
            max_batch_size=self.max_batch_size,
            max_length=max(row.params.max_new_tokens for row in rows),
            end_token=self.eos_ids,
            return_end_token=True,
            include_prompt_in_result=False,
            callback=on_token,
        )
        if sampling is None:
            options.update(sampling_topk=1)
        else:
            options.update(sampling_topk=0, sampling_topp=sampling.top_p, sampling_temperature=sampling.temperature)
        results = engine.generate_batch(tokens, **options)
        for row, result in zip(rows, results, strict=True):
            row.ids = list(result.sequences_ids[0])  # the engine's record of what the callback saw

    def _completion(self, row: _Row) -> Completion:
        return engine_completion(self.tokenizer, row.ids, self.eos_ids, row.params)

    def _progress(self, total: int):
        return progress_bar(self.show_progress, total, f"generate [{self.name}, ct2 {self.compute_type}]")

    def close(self) -> None:
        self._engine = None
