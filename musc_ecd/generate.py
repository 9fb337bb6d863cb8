"""The ``generate`` stage: seeds in, the pairs artifact out, with the configured pair builder.

Writes ``RUN_DIR/generate/pairs.jsonl`` (TRL's conversational ``prompt``/``chosen``/``rejected`` plus
``difficulty`` and ``meta`` provenance), ``rejects.jsonl``, ``summary.json``, ``manifest.json`` and the
method's extra artifacts (``musc_ecd.layout``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from musc_ecd.config import Config
from musc_ecd.config.across import check_across_sections
from musc_ecd.constraints.seeded import CHECKERS
from musc_ecd.errors import ConfigError
from musc_ecd.fingerprints import PAIRS, legacy_fingerprints, pairs_fingerprint
from musc_ecd.items import load_items
from musc_ecd.label_audit import label_accuracy
from musc_ecd.layout import RunLayout
from musc_ecd.models.backend_choice import engine_record
from musc_ecd.models.loading import resolve_model_path
from musc_ecd.models.precision import precision_record
from musc_ecd.models.roles import ModelRoles
from musc_ecd.registry import get_method
from musc_ecd.stage import run_item_stage

log = logging.getLogger(__name__)

ARTIFACT = "pairs"


def generate(cfg: Config, run_dir: Path) -> dict:
    """Build the run's pairs into ``RUN_DIR/generate``; return the summary."""
    return generate_into(cfg, RunLayout(run_dir).generate)


def generate_into(cfg: Config, stage_dir: Path) -> dict:
    """Build the pairs into ``stage_dir`` (a run's ``generate`` directory, or a shared entry)."""
    method = get_method(cfg.method)
    if cfg.data.seeds is None:
        raise ConfigError("config error: generate needs data.seeds to point at a seed file "
                          "(JSONL, CSV or a datasets directory)")
    check_across_sections(cfg)  # as at load: generate may be handed a config built in code
    for spec in dict.fromkeys(m for use in method.roles(cfg) for m in use.models if m != CHECKERS):
        resolve_model_path(spec)  # fail on a missing model (any role) before any work
    entries = load_items(cfg.data.seeds, cfg.data.prompt_field, cfg.data.id_field, cfg.data.limit)

    def make_process():
        return method.build(ModelRoles.from_config(cfg), cfg)

    def describe(pairs, rejects):
        summary = {**method.summarize(pairs, rejects, cfg), "precision": precision_record(cfg.model.dtype),
                   "engine": engine_record(cfg)}
        accuracy = label_accuracy(pairs)  # measured on the seeds' typed constraints, where the pairs carry them
        if accuracy["with_constraints"]:
            summary["label_accuracy"] = accuracy
        return _with_warnings(summary)

    def resummarise(summary, pairs, rejects):
        # Finished pairs, summarised again: the judge's warning thresholds key no artifact (fingerprints.KEYED_BY).
        # The precision and engine stay as recorded: they say how the pairs were made.
        return _with_warnings({**summary, **method.summarize(pairs, rejects, cfg)})

    summary = run_item_stage(stage_dir, ARTIFACT, pairs_fingerprint(cfg), entries, make_process, describe,
                             cfg.store.commit_every, label=f"generate [{cfg.method}]",
                             legacy_fingerprints=legacy_fingerprints(cfg, PAIRS), resummarise=resummarise)
    for extra in method.extras:
        extra.write(stage_dir)
    return summary


def _with_warnings(summary: dict) -> dict:
    """The summary with every warning it raises listed under ``warnings``, each logged."""
    warnings = list(_warnings(summary))
    for warning in warnings:
        log.warning("%s", warning)
    return {**summary, "warnings": warnings}


def _warnings(tree) -> list[str]:
    """Every ``warning`` a method's summary raises (e.g. a judge whose verdicts are mostly unparsable)."""
    if isinstance(tree, dict):
        if isinstance(tree.get("warning"), str):
            yield tree["warning"]
        for value in tree.values():
            yield from _warnings(value)
