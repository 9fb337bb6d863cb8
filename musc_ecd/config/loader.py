"""Loading: the YAML file and ``key=value`` overrides merged onto the schema by OmegaConf, every problem one line."""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

from musc_ecd.config.across import check_across_sections
from musc_ecd.config.schema import Config
from musc_ecd.errors import ConfigError


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Merge ``path`` (YAML) and ``key=value`` overrides onto the schema; return a typed ``Config``.

    Raises ``ConfigError`` (one line: key, source, what is allowed) on any problem: the schema's types and
    values, each section's rules, and the rules across sections (``musc_ecd.config.across``).
    """
    from omegaconf import OmegaConf

    merged = OmegaConf.structured(Config)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config error: config file '{path}' does not exist")
        try:
            layer = OmegaConf.load(path)
        except Exception as exc:  # yaml.YAMLError and friends: report, don't trace
            raise ConfigError(f"config error: cannot parse '{path}' as YAML: {_first_line(exc)}") from None
        if not isinstance(layer, type(merged)) and layer is not None:
            raise ConfigError(f"config error: '{path}' must hold a mapping of keys, not a list")
        merged = _merge(merged, layer, source=f"file '{path}'")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"config error: override '{item}' (command line) is not of the form key=value")
        try:
            layer = OmegaConf.from_dotlist([item])
        except Exception as exc:
            raise ConfigError(f"config error: cannot parse override '{item}': {_first_line(exc)}") from None
        merged = _merge(merged, layer, source=f"command line '{item}'")
    try:
        cfg = OmegaConf.to_object(merged)  # runs the dataclasses' __post_init__ checks
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"config error: {_first_line(exc)}") from None
    check_across_sections(cfg)  # rules between sections fail here too, before any model loads
    return cfg


def from_dict(tree: dict, source: str = "a saved config") -> Config:
    """A typed ``Config`` from a (possibly partial) mapping, e.g. a run's ``config.yaml`` read as data."""
    from omegaconf import OmegaConf

    merged = _merge(OmegaConf.structured(Config), OmegaConf.create(tree or {}), source)
    try:
        return OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"config error: {_first_line(exc)}") from None


def _merge(base, layer, source: str):
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, ValidationError

    try:
        return OmegaConf.merge(base, layer)
    except ConfigKeyError as exc:
        key = exc.full_key or "?"
        raise ConfigError(f"config error: unknown key '{key}' (from {source}); {_allowed_keys(key)}") from None
    except ValidationError as exc:
        key = exc.full_key or _guess_key(layer)
        detail = _first_line(exc)
        if "expected" not in detail:
            detail = f"{detail}; expected {_expected(key)}"
        raise ConfigError(f"config error: bad value for '{key}' (from {source}): {detail}") from None


def _guess_key(layer) -> str:
    from omegaconf import OmegaConf

    flat = _flatten(OmegaConf.to_container(layer))
    return next(iter(flat), "?")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _field_at(key: str):
    """(dataclass owning the last part of ``key``, the field or None) following the schema."""
    owner: Any = Config
    parts = key.split(".")
    for depth, part in enumerate(parts):
        by_name = {f.name: f for f in fields(owner)}
        found = by_name.get(part)
        if found is None or depth == len(parts) - 1:
            return owner, found
        sub = found.default_factory() if callable(found.default_factory) else None  # type: ignore[misc]
        if not is_dataclass(sub):
            return owner, None
        owner = type(sub)
    return owner, None


def _allowed_keys(key: str) -> str:
    owner, _ = _field_at(key)
    names = [f.name for f in fields(owner)]
    section = key.rsplit(".", 1)[0] if "." in key else ""
    where = f"'{section}'" if section else "the top level"
    hint = difflib.get_close_matches(key.rsplit(".", 1)[-1], names, n=1)
    did_you_mean = f"; did you mean '{section + '.' if section else ''}{hint[0]}'?" if hint else ""
    return f"allowed keys at {where}: {', '.join(names)}{did_you_mean}"


def _expected(key: str) -> str:
    owner, found = _field_at(key)
    if found is None:
        return "a value of the schema's type"
    return _describe_type(typing.get_type_hints(owner)[found.name])


def _describe_type(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        options = [_describe_type(a) for a in args if a is not type(None)]
        return " or ".join(options) + (" or null" if type(None) in args else "")
    if origin is list:
        return f"a list of {_describe_type(args[0])}" if args else "a list"
    return getattr(tp, "__name__", str(tp))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


