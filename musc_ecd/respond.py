"""The ``respond`` stage: answer a file of prompts with one model, resumably.

Writes ``RUN_DIR/responses.jsonl`` in IFEval's ``input_response_data`` format (``prompt``,
``response``) plus ``id``, ``finish_reason``, ``num_tokens`` and ``model``. Evaluation and APC build
on it. Items are generated in chunks of ``store.commit_every`` and committed durably after each, so a
killed run loses at most one chunk and a rerun generates only what is missing.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path

from tqdm.auto import tqdm

from musc_ecd.config import Config, fingerprint
from musc_ecd.errors import ConfigError
from musc_ecd.items import Item, Reject, load_items
from musc_ecd.models.generator import create_generator, params_from_config, resolve_backend
from musc_ecd.models.loading import resolve_model_path
from musc_ecd.store import StageStore

log = logging.getLogger(__name__)

ARTIFACT = "responses"


def respond(cfg: Config, run_dir: Path) -> dict:
    """Answer every prompt of ``data.prompts`` (else ``data.seeds``); return the stage summary."""
    source = cfg.data.prompts or cfg.data.seeds
    if source is None:
        raise ConfigError("config error: respond needs data.prompts (or data.seeds) to point at a prompt file")
    resolve_model_path(cfg.model.policy)  # a missing model fails now, before any work or output
    entries = load_items(source, cfg.data.prompt_field, cfg.data.id_field, cfg.data.limit)
    item_ids = [entry.id for entry in entries]
    with StageStore(run_dir, ARTIFACT, fingerprint(cfg, ("seed", "model", "generation", "data"))) as store:
        if store.is_complete(item_ids):
            log.info("responses for these %d items are complete in %s; nothing to do", len(item_ids), run_dir)
            return json.loads((run_dir / "summary.json").read_text())
        done = store.done_ids()
        store.commit(rejected=[e.to_json() for e in entries if isinstance(e, Reject) and e.id not in done])
        pending = [e for e in entries if isinstance(e, Item) and e.id not in done]
        log.info("%d items: %d already answered, %d to answer", len(item_ids), len(done & set(item_ids)), len(pending))
        if pending:
            _answer(cfg, store, pending)
        records = [store.accepted.records[i] for i in item_ids if i in store.accepted.records]
        summary = store.finalise(item_ids, _describe(cfg, records))
    log.info("wrote %s (%d answered, %d rejected)", store.artifact_path, summary["accepted"], summary["rejected"])
    return summary


def _answer(cfg: Config, store: StageStore, pending: list[Item]) -> None:
    generator = create_generator(cfg.model.policy, cfg)
    params = params_from_config(cfg)
    chunk = cfg.store.commit_every
    started = time.perf_counter()
    with tqdm(total=len(pending), desc="respond", unit="item") as progress:
        for start in range(0, len(pending), chunk):
            items = pending[start : start + chunk]
            outputs = generator.generate([[{"role": "user", "content": item.prompt}] for item in items], params)
            records = [_record(item, samples, generator.name) for item, samples in zip(items, outputs, strict=True)]
            store.commit(accepted=records)
            progress.update(len(items))
    log.info("answered %d items in %.1f s", len(pending), time.perf_counter() - started)


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
        "backend": resolve_backend(cfg.generation.backend),
        "sampling": params_from_config(cfg).to_json(),
        "finish_reasons": dict(Counter(r["finish_reason"] for r in records)),
        "empty_responses": sum(1 for r in records if not r["response"].strip()),
        "mean_response_tokens": round(sum(tokens) / len(tokens), 2) if tokens else 0.0,
    }
