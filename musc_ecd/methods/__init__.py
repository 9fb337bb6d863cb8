"""Pair builders by name. Each module exposes ``build(models: ModelRoles, cfg) -> process(items)``,
``summarize(pairs, rejects) -> dict`` and ``roles(cfg) -> list[RoleUse]`` (the models it calls, by role),
and may expose ``check(cfg)``, run before any model loads, and ``write_extras(stage_dir)``, run after the
pairs artifact is final; it is imported only when chosen."""

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
