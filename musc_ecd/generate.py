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
from musc_ecd.models.loading import resolve_model_path
from musc_ecd.models.precision import precision_record
from musc_ecd.models.roles import ModelRoles
from musc_ecd.stage import run_item_stage

ARTIFACT = "pairs"


def generate(cfg: Config, run_dir: Path) -> dict:
    method = get_method(cfg.method)
    if cfg.data.seeds is None:
        raise ConfigError("config error: generate needs data.seeds to point at a seed file "
                          "(JSONL, CSV or a datasets directory)")
    if hasattr(method, "check"):
        method.check(cfg)
    for spec in _model_specs(cfg):
        resolve_model_path(spec)  # fail on a missing model (any role) before any work
    entries = load_items(cfg.data.seeds, cfg.data.prompt_field, cfg.data.id_field, cfg.data.limit)
    key = fingerprint(cfg, ("seed", "method", "model", "generation", "data", *METHOD_SECTIONS[cfg.method]))

    def make_process():
        return method.build(ModelRoles.from_config(cfg), cfg)

    def describe(pairs, rejects):
        return {**method.summarize(pairs, rejects), "precision": precision_record(cfg.model.dtype)}

    summary = run_item_stage(run_dir, ARTIFACT, key, entries, make_process, describe,
                             cfg.store.commit_every, label=f"generate [{cfg.method}]")
    if hasattr(method, "write_extras"):
        method.write_extras(run_dir)
    return summary


# The config sections each method reads: only these key its artifact, so e.g. an ECD option change
# does not invalidate a MuSC run directory.
METHOD_SECTIONS = {
    "musc_coarse": ("musc",),
    "musc_fine": ("musc", "musc_fine"),
    "musc": ("musc", "musc_fine"),
    "ecd": ("ecd",),
    "apc": ("apc",),
}


def _model_specs(cfg: Config) -> list[str]:
    """Every model the method may load: the policy and whichever roles it uses."""
    uses = {"ecd": ["teacher", "judge"], "apc": []}.get(cfg.method, [])
    specs = [cfg.model.policy, *(cfg.model.role(role) for role in uses)]
    if cfg.method == "apc":
        specs += cfg.model.responders
    return list(dict.fromkeys(specs))
