"""The ``generate`` stage: seeds in, the pairs artifact out, with the configured pair builder.

Writes ``RUN_DIR/pairs.jsonl`` (TRL's conversational ``prompt``/``chosen``/``rejected`` plus
``difficulty`` and ``meta`` provenance), ``rejects.jsonl``, ``summary.json`` and ``manifest.json``.
"""

from __future__ import annotations

from pathlib import Path

from musc_ecd.config import Config, fingerprint
from musc_ecd.errors import ConfigError
from musc_ecd.items import load_items
from musc_ecd.methods import get_method
from musc_ecd.models.generator import create_generator
from musc_ecd.models.loading import resolve_model_path
from musc_ecd.stage import run_item_stage

ARTIFACT = "pairs"


def generate(cfg: Config, run_dir: Path) -> dict:
    method = get_method(cfg.method)
    if cfg.data.seeds is None:
        raise ConfigError("config error: generate needs data.seeds to point at a seed file "
                          "(JSONL, CSV or a datasets directory)")
    resolve_model_path(cfg.model.policy)  # fail on a missing model before any work
    entries = load_items(cfg.data.seeds, cfg.data.prompt_field, cfg.data.id_field, cfg.data.limit)
    key = fingerprint(cfg, ("seed", "method", "model", "generation", "data", "musc", "musc_fine"))

    def make_process():
        return method.build(create_generator(cfg.model.policy, cfg), cfg)

    return run_item_stage(run_dir, ARTIFACT, key, entries, make_process, method.summarize,
                          cfg.store.commit_every, label=f"generate [{cfg.method}]")
