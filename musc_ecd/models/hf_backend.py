"""The transformers backend: batched, left-padded, length-bucketed generation on CPU or GPU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from musc_ecd.models.generator import (
    Chat,
    Completion,
    SamplingParams,
    encode_requests,
    eos_ids,
    make_completion,
    sample_seed,
)


@dataclass
class _Row:
    request: int
    sample: int
    prompt_ids: list[int]
    seed: int


class HFGenerator:
    """``Generator`` over a transformers causal LM.

    Rows (request × sample) are sorted by prompt length and cut into batches of ``batch_size``, so
    padding stays small; results come back in request order. Greedy requests with ``n > 1`` are
    generated once and copied: the samples would be identical anyway.
    """

    def __init__(self, model, tokenizer, name: str, batch_size: int = 16, show_progress: bool = True):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_ids = eos_ids(getattr(model.generation_config, "eos_token_id", None), tokenizer)
        self.context = getattr(model.config, "max_position_embeddings", None)

    @classmethod
    def from_config(cls, model_spec: str, cfg) -> HFGenerator:
        from musc_ecd.models.loading import load_model

        model, tokenizer = load_model(model_spec, dtype=cfg.model.dtype, trust_remote_code=cfg.model.trust_remote_code)
        return cls(model, tokenizer, name=model_spec, batch_size=cfg.generation.batch_size)

    def generate(self, requests: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]:
        encoded = encode_requests(self.tokenizer, requests, self.context)
        samples_to_run = 1 if params.greedy else params.n
        rows = [
            _Row(i, s, ids, sample_seed(params.seed, chat, s))
            for i, (chat, ids) in enumerate(zip(requests, encoded, strict=True))
            for s in range(samples_to_run)
        ]
        rows.sort(key=lambda row: len(row.prompt_ids), reverse=True)  # longest first: OOM shows early
        results: list[list[Completion | None]] = [[None] * params.n for _ in requests]
        progress = tqdm(total=len(rows), desc=f"generate [{self.name}]", unit="seq",
                        disable=not self.show_progress, leave=False)
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            for row, completion in zip(batch, self._generate_batch(batch, params), strict=True):
                if params.greedy:
                    results[row.request] = [completion] * params.n
                else:
                    results[row.request][row.sample] = completion
            progress.update(len(batch))
        progress.close()
        return results  # type: ignore[return-value]

    def _generate_batch(self, batch: list[_Row], params: SamplingParams) -> list[Completion]:
        import torch
        from transformers import GenerationConfig

        from musc_ecd.models.sampling import PerRowSampler

        device = self.model.device
        width = max(len(row.prompt_ids) for row in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, row in enumerate(batch):  # left padding: every prompt ends where generation starts
            input_ids[i, width - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids)
            attention_mask[i, width - len(row.prompt_ids) :] = 1
        # A fresh GenerationConfig: the model's own defaults (sampling, repetition penalty, ...) must
        # not leak in, or the hf and vllm backends would not share semantics.
        generation_config = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=False,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
            stop_strings=list(params.stop) or None,
        )
        processors = None
        if not params.greedy:
            from transformers import LogitsProcessorList

            sampler = PerRowSampler([row.seed for row in batch], params.temperature, params.top_p, device=device)
            processors = LogitsProcessorList([sampler])
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                generation_config=generation_config,
                logits_processor=processors,
                tokenizer=self.tokenizer if params.stop else None,
            )
        generated = output[:, width:].tolist()
        return [self._finish(ids, params) for ids in generated]

    def _finish(self, ids: list[int], params: SamplingParams) -> Completion:
        for position, token in enumerate(ids):  # the rest of the row is padding
            if token in self.eos_ids:
                return make_completion(self.tokenizer, ids[:position], True, params)
        return make_completion(self.tokenizer, ids, False, params)

