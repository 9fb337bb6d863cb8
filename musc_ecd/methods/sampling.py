"""Every method step's sampling parameters, and which ``generation.*`` keys a method reads.

A step decodes with its method's own keys (``musc.respond_temperature``, ``ecd.judge_max_tokens`` …); of the
``generation`` section's sampling keys a method reads only those it declares (``Method.generation_unread`` names
the others, each with what sets it instead): every method reads ``top_p``; APC also reads ``stop`` and, unless
given per responder, ``temperature`` and ``max_new_tokens``. ``step_params`` is the one builder of a step's
``SamplingParams``: it takes a key from ``generation`` exactly when the method reads it, so what a step uses,
what keys the pairs (``fingerprints``) and what ``check_generation_keys`` refuses cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from musc_ecd.config import Config, GenerationConfig
from musc_ecd.errors import ConfigError
from musc_ecd.models.generator import SamplingParams
from musc_ecd.registry import get_method

SAMPLING_KEYS = ("n", "temperature", "top_p", "max_new_tokens", "stop")
"""The ``generation`` keys that decide which text is sampled (the others choose the engine)."""
PAIR_COMMANDS = {"generate": (), "run": ("top_p", "stop")}
"""The commands that build pairs, each with the ``generation`` keys its other stages read: ``run`` also evaluates,
which takes top_p and stop from ``generation`` (``eval.*`` sets its n, temperature and max_new_tokens)."""


def unread_keys(cfg: Config) -> dict[str, str]:
    """The sampling keys the configured method does not read from ``generation``, each with what sets it instead
    (a method that declares nothing reads them all)."""
    declared = get_method(cfg.method).generation_unread
    return {} if declared is None else declared(cfg)


def read_keys(cfg: Config) -> tuple[str, ...]:
    """The ``generation`` sampling keys the configured method's pairs depend on."""
    unread = unread_keys(cfg)
    return tuple(key for key in SAMPLING_KEYS if key not in unread)


def step_params(cfg: Config, unread: Mapping[str, str], **step: Any) -> SamplingParams:
    """One step's ``SamplingParams``: ``step`` gives exactly the keys the method does not read (``unread``, its
    declaration), ``generation`` the rest, the run seed the seed.

    A step that passed a key the method declares read (it would key the pairs and do nothing), or left out one it
    declares unread (it would come from ``generation`` unkeyed), is a programming error, raised at once."""
    if set(step) != set(unread):
        raise ValueError(f"step values {sorted(step)} must be exactly the generation keys the method does not read, "
                         f"{sorted(unread)}")
    generation = cfg.generation
    values = {key: getattr(generation, key) for key in SAMPLING_KEYS if key not in unread} | step
    if "stop" in values:
        values["stop"] = tuple(values["stop"])
    return SamplingParams(**values, seed=cfg.seed)


def check_generation_keys(cfg: Config, command: str) -> None:
    """Refuse a ``generation`` sampling key set away from its default that does nothing in ``command`` (one of
    ``PAIR_COMMANDS``): not read by the method, nor by the command's other stages. Called where ``generate`` and
    ``run`` load their config."""
    defaults = GenerationConfig()
    for key, instead in unread_keys(cfg).items():
        value, default = getattr(cfg.generation, key), getattr(defaults, key)
        if value == default or key in PAIR_COMMANDS[command]:
            continue
        raise ConfigError(f"config error: generation.{key}={value!r} does nothing for method={cfg.method}: "
                          f"{instead}; leave generation.{key} at its default {default!r}")


def keys_ending(section: Any, name: str, suffix: str) -> str:
    """``musc.decompose_temperature, musc.recombine_temperature, …``: a section's keys with ``suffix``, for the
    "set … instead" of a refused ``generation`` key."""
    return ", ".join(f"{name}.{f.name}" for f in fields(section) if f.name.endswith(suffix))
