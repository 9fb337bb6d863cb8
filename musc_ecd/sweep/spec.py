"""Sweep files: parse, validate, expand into runs and name them (pure but for reading the files).

See ``musc_ecd.sweep`` for the file format and the naming rule.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Any

from musc_ecd.config import Config, load_config
from musc_ecd.errors import ConfigError
from musc_ecd.methods.sampling import check_generation_keys

TOP_KEYS = ("base", "overrides", "grid", "zip", "runs_dir", "share_dir", "executor", "slurm")
SLURM_KEYS = ("cluster", "partition", "timeout_min", "gpus_per_node", "cpus_per_task", "mem_gb", "nodes",
              "array_parallelism", "additional_parameters", "wait")
SLURM_DEFAULTS = {"timeout_min": 240, "gpus_per_node": 1, "cpus_per_task": 8, "wait": True}
MANAGED = ("run_dir", "share_dir")  # set by the sweep for each run
NAME_LIMIT = 80


@dataclasses.dataclass(frozen=True)
class Variant:
    """One point of the sweep: (key, value) settings in axis order, and its name parts."""

    settings: tuple[tuple[str, Any], ...]
    labels: tuple[str | None, ...]  # per axis: a zip group's human name, or None


@dataclasses.dataclass(frozen=True, eq=False)
class SweepRun:
    name: str
    overrides: tuple[str, ...]  # the axis settings as a dotlist (the sweep-wide overrides not included)
    run_dir: Path
    cfg: Config


@dataclasses.dataclass(frozen=True, eq=False)
class Sweep:
    path: Path
    base: Path
    overrides: tuple[str, ...]
    runs_dir: Path
    share_dir: Path | None
    executor: str
    slurm: dict[str, Any]
    runs: tuple[SweepRun, ...]

    def command_overrides(self, run: SweepRun) -> list[str]:
        """Everything ``musc-ecd run BASE`` needs after the base config to make exactly this run."""
        managed = [f"run_dir={run.run_dir}", f"share_dir={'null' if self.share_dir is None else self.share_dir}"]
        return [*self.overrides, *run.overrides, *managed]


# ----------------------------------------------------------------------------------------------
# Expansion and naming (pure)


def _fail(path: Path, message: str) -> ConfigError:
    return ConfigError(f"sweep error: {path}: {message}")


def expand(grid: dict[str, list], zips: list[dict[str, list]]) -> list[Variant]:
    """The product of the grid axes and the zip groups (each group varies its keys together), in order."""
    axes: list[list[tuple[tuple[tuple[str, Any], ...], str | None]]] = []
    for key, values in grid.items():
        axes.append([(((key, value),), None) for value in values])
    for group in zips:
        names = group.get("name")
        keys = [k for k in group if k != "name"]
        length = len(next(iter(group.values())))
        axes.append([(tuple((k, group[k][i]) for k in keys), None if names is None else str(names[i]))
                     for i in range(length)])
    variants = []
    for combination in itertools.product(*axes):
        settings = tuple(pair for part, _ in combination for pair in part)
        variants.append(Variant(settings, tuple(label for _, label in combination)))
    return variants


def dotlist_value(value: Any) -> str:
    """``value`` written so that OmegaConf's dotlist parser reads it back unchanged."""
    import yaml

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(dotlist_value(v) for v in value) + "]"
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9_./@+-]+", value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)  # a double-quoted YAML scalar, or a flow mapping


def _name_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "+".join(_name_value(v) for v in value) or "empty"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value).rstrip("/")
    return text.rsplit("/", 1)[-1] if "/" in text else text  # a model path or hub id: its last part


def _safe(text: str) -> str:
    text = re.sub(r"[^A-Za-z0-9.+=_-]+", "-", text)
    return re.sub(r"-{2,}", "-", text).strip("-.") or "x"


def short_keys(keys: list[str]) -> dict[str, str]:
    """Each key's last part, or the whole key (dots as dashes) where two keys end alike."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (tail if last.count(tail) == 1 else k.replace(".", "-")) for k, tail in zip(keys, last, strict=True)}


def _hash(overrides: tuple[str, ...]) -> str:
    return hashlib.sha256("\n".join(overrides).encode()).hexdigest()[:6]


def run_names(variants: list[Variant], axes: list[list[str]]) -> list[str]:
    """Short, filesystem-safe, stable, unique directory names (see the module docstring)."""
    shorts = short_keys([k for keys in axes for k in keys])
    names = []
    for variant in variants:
        settings = dict(variant.settings)
        parts = []
        for keys, label in zip(axes, variant.labels, strict=True):
            if label is not None:
                parts.append(_safe(label))
            else:
                parts += [_safe(f"{shorts[k]}-{_name_value(settings[k])}") for k in keys]
        names.append("_".join(parts) or "base")
    hashes = [_hash(tuple(f"{k}={dotlist_value(v)}" for k, v in v.settings)) for v in variants]
    counts = {n: names.count(n) for n in names}
    unique = []
    for name, digest in zip(names, hashes, strict=True):
        if counts[name] > 1 or len(name) > NAME_LIMIT:
            name = f"{name[: NAME_LIMIT - 7]}-{digest}"
        unique.append(name)
    return unique


# ----------------------------------------------------------------------------------------------
# Loading


def _check_keys(path: Path, found, allowed: tuple[str, ...], where: str) -> None:
    for key in found:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            raise _fail(path, f"unknown key '{key}' {where}; allowed: {', '.join(allowed)}"
                        + (f"; did you mean '{hint[0]}'?" if hint else ""))


def _overrides(path: Path, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, dict):
        return tuple(f"{k}={dotlist_value(v)}" for k, v in raw.items())
    if isinstance(raw, list) and all(isinstance(item, str) and "=" in item for item in raw):
        return tuple(raw)
    raise _fail(path, "'overrides' must be a list of key=value strings or a mapping of keys to values")


def _axes(path: Path, spec: dict) -> tuple[dict[str, list], list[dict[str, list]]]:
    grid = spec.get("grid") or {}
    if not isinstance(grid, dict):
        raise _fail(path, "'grid' must map config keys to lists of values")
    for key, values in grid.items():
        if not isinstance(values, list):
            raise _fail(path, f"grid axis '{key}' must be a list of values, not {values!r}")
        if not values:
            raise _fail(path, f"grid axis '{key}' is empty; give it at least one value")
    zips = spec.get("zip") or []
    if isinstance(zips, dict):
        zips = [zips]
    if not isinstance(zips, list) or not all(isinstance(group, dict) and group for group in zips):
        raise _fail(path, "'zip' must be a list of groups, each mapping config keys to equal-length lists")
    for number, group in enumerate(zips, start=1):
        for key, values in group.items():
            if not isinstance(values, list) or not values:
                raise _fail(path, f"zip group {number}: '{key}' must be a non-empty list of values")
        lengths = {key: len(values) for key, values in group.items()}
        if len(set(lengths.values())) > 1:
            raise _fail(path, f"zip group {number}: lists of different lengths vary together: "
                        + ", ".join(f"{k} has {n}" for k, n in lengths.items()))
        if list(group) == ["name"]:
            raise _fail(path, f"zip group {number} has names but no config keys")
    keys = [*grid, *(k for group in zips for k in group if k != "name")]
    for key in keys:
        if keys.count(key) > 1:
            raise _fail(path, f"'{key}' is varied by two axes; put it in one")
        if key in MANAGED:
            raise _fail(path, f"'{key}' is set by the sweep for every run; use runs_dir / share_dir instead")
    return grid, zips


def default_runs_dir(path: Path) -> Path:
    return Path("runs") / (path.resolve().parent.name if path.stem == "sweep" else path.stem)


def load_sweep(path: Path) -> Sweep:
    """Parse, expand and validate a sweep file; every run's config is resolved here (none runs)."""
    import yaml

    if not path.is_file():
        raise ConfigError(f"sweep error: sweep file '{path}' does not exist")
    try:
        spec = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise _fail(path, f"cannot parse as YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise _fail(path, "a sweep file must hold a mapping (base, grid, zip, ...)")
    _check_keys(path, spec, TOP_KEYS, "at the top level")
    if not spec.get("base"):
        raise _fail(path, "'base' (the config every run starts from) is missing")
    base = Path(spec["base"])
    base = base if base.is_absolute() else path.parent / base
    if not base.is_file():
        raise _fail(path, f"base config '{base}' does not exist (base is relative to the sweep file)")
    executor = spec.get("executor", "local")
    if executor not in ("local", "slurm"):
        raise _fail(path, f"executor '{executor}' is not allowed; expected local or slurm")
    slurm = spec.get("slurm") or {}
    if not isinstance(slurm, dict):
        raise _fail(path, "'slurm' must be a mapping of options")
    _check_keys(path, slurm, SLURM_KEYS, "under 'slurm'")
    runs_dir = Path(spec["runs_dir"]) if spec.get("runs_dir") else default_runs_dir(path)
    share_dir = Path(spec["share_dir"]) if spec.get("share_dir") else runs_dir / "_shared"
    if "share_dir" in spec and spec["share_dir"] is None:
        share_dir = None
    overrides = _overrides(path, spec.get("overrides"))
    grid, zips = _axes(path, spec)
    variants = expand(grid, zips)
    axes = [[k] for k in grid] + [[k for k in group if k != "name"] for group in zips]
    runs = []
    for variant, name in zip(variants, run_names(variants, axes), strict=True):
        run_overrides = tuple(f"{k}={dotlist_value(v)}" for k, v in variant.settings)
        run_dir = runs_dir / name
        managed = [f"run_dir={run_dir}", f"share_dir={'null' if share_dir is None else share_dir}"]
        try:
            cfg = load_config(base, [*overrides, *run_overrides, *managed])
            check_generation_keys(cfg, "run")
        except ConfigError as exc:
            raise ConfigError(f"sweep {path}, run '{name}': {exc}") from None
        runs.append(SweepRun(name, run_overrides, run_dir, cfg))
    return Sweep(path, base, overrides, runs_dir, share_dir, executor, {**SLURM_DEFAULTS, **slurm}, tuple(runs))

