"""The ``respond`` stage: answer a file of prompts with one model, resumably.

Writes ``RUN_DIR/responses.jsonl`` in IFEval's ``input_response_data`` format (``prompt``,
``response``) plus ``id``, ``finish_reason``, ``num_tokens`` and ``model``. Evaluation and APC build
on it. An answer is stored under its prompt's id and text (``prompt_key``): a prompt edited under the same
id is answered again.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from musc_ecd.config import Config
from musc_ecd.errors import ConfigError
from musc_ecd.fingerprints import answers_fingerprint
from musc_ecd.items import Item, load_items, prompt_key
from musc_ecd.models.backend_choice import engine_record
from musc_ecd.models.generator import create_generator, params_from_config
from musc_ecd.models.loading import resolve_model_path
from musc_ecd.stage import run_item_stage

ARTIFACT = "responses"


def respond(cfg: Config, run_dir: Path) -> dict:
    """Answer every prompt of ``data.prompts`` (else ``data.seeds``); return the stage summary."""
    source = cfg.data.prompts or cfg.data.seeds
    if source is None:
        raise ConfigError("config error: respond needs data.prompts (or data.seeds) to point at a prompt file")
    resolve_model_path(cfg.model.policy)  # a missing model fails now, before any work or output
    entries = load_items(source, cfg.data.prompt_field, cfg.data.id_field, cfg.data.limit)

    def make_process():
        generator = create_generator(cfg.model.policy, cfg)
        params = params_from_config(cfg)

        def process(items: list[Item]):
            outputs = generator.generate([[{"role": "user", "content": item.prompt}] for item in items], params)
            return [_record(item, samples, generator.name) for item, samples in zip(items, outputs, strict=True)], []

        return process

    return run_item_stage(run_dir, ARTIFACT, answers_fingerprint(cfg, source), entries,
                          make_process, lambda accepted, _: _describe(cfg, accepted), cfg.store.commit_every,
                          label="respond", key=prompt_key, verify=_answers_this_prompt)


def _answers_this_prompt(item: Item, accepted: list[dict], rejected: list[dict]) -> bool:
    """An answer an older store kept under the bare id is still valid when it answers this very prompt."""
    return not rejected and [record.get("prompt") for record in accepted] == [item.prompt]


def _record(item: Item, samples, model_name: str) -> dict:
    first = samples[0]
    record = {
        "id": item.id,
        "prompt": item.prompt,
        "response": first.text,
        "finish_reason": first.finish_reason,
        "num_tokens": len(first.token_ids),
        "model": model_name,
    }
    if len(samples) > 1:
        record["responses"] = [s.text for s in samples]
    return record


def _describe(cfg: Config, records: list[dict]) -> dict:
    tokens = [r["num_tokens"] for r in records]
    return {
        "model": cfg.model.policy,
        "engine": engine_record(cfg),
        "sampling": params_from_config(cfg).to_json(),
        "finish_reasons": dict(Counter(r["finish_reason"] for r in records)),
        "empty_responses": sum(1 for r in records if not r["response"].strip()),
        "mean_response_tokens": round(sum(tokens) / len(tokens), 2) if tokens else 0.0,
    }
