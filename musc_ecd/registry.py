"""The method registry: every pair builder by name, and what each one declares about itself.

A method module ends with ``SPEC = Method(...)``: its builder, the config sections it reads, the models it
calls (by role), its summary and any extra artifacts. ``generate``, the share key of ``run`` and the report
read that declaration; nothing else lists methods. A module is imported only when its method is chosen
(MuSC loads spaCy, APC does not). Adding a method = its module + one line in ``METHODS`` (ARCHITECTURE.md).

A leaf of the import graph: it names modules as strings, so the config loader can check ``method=`` without
importing the methods (which import the config).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musc_ecd.errors import ConfigError

METHODS = {
    "musc_coarse": "musc_ecd.methods.musc_coarse",
    "musc_fine": "musc_ecd.methods.musc_fine",
    "musc": "musc_ecd.methods.musc",
    "ecd": "musc_ecd.methods.ecd",
    "apc": "musc_ecd.methods.apc",
}


@dataclass(frozen=True)
class Extra:
    """An artifact a method writes beside ``pairs.jsonl`` once the pairs are final (APC's ``sft.jsonl``)."""

    name: str
    write: Callable[[Path], Path]
    """``write(stage_dir)`` → the file written, read from ``stage_dir/pairs.jsonl``."""


@dataclass(frozen=True)
class Method:
    """One pair builder's declaration."""

    name: str
    build: Callable[[Any, Any], Callable]
    """``build(models: ModelRoles, cfg) -> process(items) -> (pairs, rejects)``, one call per chunk of items."""
    sections: tuple[str, ...]
    """The config sections it reads besides seed/method/model/generation/data: only these key its pairs, so
    an option of another method (``ecd.*`` in a MuSC run) neither invalidates nor splits its artifact."""
    roles: Callable[[Any], list]
    """``roles(cfg) -> [RoleUse]``: the models it calls, by role, for this config."""
    summarize: Callable[[list[dict], list[dict], Any], dict]
    """``summarize(pairs, rejects, cfg)``: the method's part of ``summary.json`` (yield per stage, judge health…),
    for the config that built them."""
    check: Callable[[Any], None] | None = None
    """Refuses a config the method cannot run; run at config load (``config.across``), before any model loads."""
    extras: tuple[Extra, ...] = ()
    negative_instructions: Callable[[Any], bool] = lambda cfg: True
    """``negative_instructions(cfg)``: whether every pair it makes with this config carries the instruction its
    rejected answer was written for (``meta.negative_instruction``), which the pairwise weight schemes need."""
    generation_unread: Callable[[Any], dict[str, str]] | None = None
    """``generation_unread(cfg) -> {key: what sets it instead}``: the ``generation`` sampling keys (n, temperature,
    top_p, max_new_tokens, stop) its steps do not read; they stay out of its pairs' key, and ``generate``/``run``
    refuse one set away from its default (``methods.sampling``). None = it reads them all."""


def get_method(name: str) -> Method:
    """The declaration of method ``name`` (its module imported now)."""
    check_method_name(name)
    spec = importlib.import_module(METHODS[name]).SPEC
    if spec.name != name:
        raise ConfigError(f"method registry: {METHODS[name]}.SPEC is named {spec.name!r}, registered as {name!r}")
    return spec


def check_method_name(name: str) -> None:
    if name not in METHODS:
        hint = difflib.get_close_matches(name, list(METHODS), n=1)
        suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
        raise ConfigError(f"config error: method={name!r} is not a pair builder; allowed: "
                          f"{', '.join(METHODS)}{suggestion}")


NAMED_ROLES = ("teacher", "judge", "responders")


def roles_called(cfg) -> list:
    """The method's declaration of the models it calls (``RoleUse`` s), for this config."""
    return get_method(cfg.method).roles(cfg)


def check_roles(cfg) -> None:
    """A role the config names (other than the policy itself) must be one the method calls."""
    called = {use.role for use in roles_called(cfg)}
    policy = cfg.model.policy
    named = {"teacher": cfg.model.teacher not in (None, policy), "judge": cfg.model.judge not in (None, policy),
             "responders": bool(cfg.model.responders)}
    for role in NAMED_ROLES:
        if named[role] and role not in called:
            raise ConfigError(f"config error: model.{role} is set but method={cfg.method} never calls a {role} with "
                              f"this config (it calls: {', '.join(sorted(called))}); unset model.{role} or use a "
                              "method (or method option) that calls it, so no result claims a model that never ran")
