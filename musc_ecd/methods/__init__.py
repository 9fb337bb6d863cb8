"""Pair builders by name. Each module exposes ``build(models: ModelRoles, cfg) -> process(items)`` and
``summarize(pairs, rejects) -> dict`` (and may expose ``check(cfg)``, run before any model loads, and
``write_extras(stage_dir)``, run after the pairs artifact is final); it is imported only when chosen."""

from __future__ import annotations

import difflib
import importlib

from musc_ecd.errors import ConfigError

METHODS = {
    "musc_coarse": "musc_ecd.methods.musc_coarse",
    "musc_fine": "musc_ecd.methods.musc_fine",
    "musc": "musc_ecd.methods.musc",
    "ecd": "musc_ecd.methods.ecd",
    "apc": "musc_ecd.methods.apc",
}


def get_method(name: str):
    check_method_name(name)
    return importlib.import_module(METHODS[name])


def check_method_name(name: str) -> None:
    if name not in METHODS:
        hint = difflib.get_close_matches(name, list(METHODS), n=1)
        suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
        raise ConfigError(f"config error: method={name!r} is not a pair builder; allowed: "
                          f"{', '.join(METHODS)}{suggestion}")
