"""``musc-ecd sweep SWEEP.yaml``: expand a base config along axes into runs, and run them.

A sweep file::

    base: ../../configs/musc.yaml      # the config every run starts from (relative to THIS file)
    overrides: [data.limit=64]         # applied to every run (a dotlist, or a mapping key: value)
    grid:                              # cartesian product of these axes
      train.loss: [sigmoid, hinge]
      train.weights: [none, kl]
    zip:                               # each group: keys that vary together (equal-length lists)
      - name: [self, teacher]          #   optional human names for the group's variants
        model.teacher: [null, Qwen/Qwen2.5-7B-Instruct]
        model.judge: [null, Qwen/Qwen2.5-7B-Instruct]
    runs_dir: runs/teacher_vs_self     # default runs/<file stem> (runs/<folder> for a file named sweep.yaml)
    share_dir: runs/teacher_vs_self/_shared   # default RUNS_DIR/_shared; null = nothing shared
    executor: local                    # local | slurm
    slurm: {partition: gpu, timeout_min: 240, gpus_per_node: 1, cpus_per_task: 8, mem_gb: 64}

Paths: ``base`` is relative to the sweep file (an experiment folder is self-contained); ``runs_dir``,
``share_dir`` and every path inside the configs are relative to the working directory, as ``run_dir`` is.

Runs are the product of the grid and of every zip group, in file order. A run's directory is
RUNS_DIR/NAME, NAME built from what varies: ``key-value`` per axis key (the key's last part, or the whole
key when two axes end alike), a zip group's ``name`` instead of its keys, joined by ``_``; e.g.
``loss-hinge_weights-kl_teacher``. Characters other than letters, digits and ``.+=_-`` become ``-``.
Names that collide, or are longer than 80 characters, get a hash of the run's overrides appended.

Every run's config is resolved through the normal loader *before* anything runs, so a bad key or value
fails at once with the loader's one-line error. A run is *done* when its ``report.json`` was made with
exactly its config (``config_fingerprint``); done runs are skipped, failed and pending ones (re)run.

Executors:

- ``local`` runs the runs one after another, each as a ``musc-ecd run`` **subprocess**: a crash, an
  out-of-memory kill or a vLLM engine that never frees its memory ends that run only; the next one starts
  in a clean process. Output streams to the console and ``RUN_DIR/console.log``. A failed run is
  recorded (``RUNS_DIR/sweep_status.json``, with the error) and the sweep goes on; the exit code is 1
  if any run failed.
- ``slurm`` submits the runs that are not done as one job array through ``submitit.AutoExecutor``
  (``slurm.cluster``: unset = detect, ``slurm``, or ``local``/``debug`` to test without SLURM), then
  waits for them and records each result (``slurm.wait: false`` = submit and return).

Runs share work through ``share_dir`` (see ``musc_ecd.pipeline``): runs that differ only in training
options generate their pairs once, and the base model is evaluated once per policy and set.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from musc_ecd.config import Config, load_config
from musc_ecd.errors import ConfigError
from musc_ecd.pipeline import REPORT, config_fingerprint, read_status
from musc_ecd.store import write_atomic

TOP_KEYS = ("base", "overrides", "grid", "zip", "runs_dir", "share_dir", "executor", "slurm")
SLURM_KEYS = ("cluster", "partition", "timeout_min", "gpus_per_node", "cpus_per_task", "mem_gb", "nodes",
              "array_parallelism", "additional_parameters", "wait")
SLURM_DEFAULTS = {"timeout_min": 240, "gpus_per_node": 1, "cpus_per_task": 8, "wait": True}
MANAGED = ("run_dir", "share_dir")  # set by the sweep for each run
NAME_LIMIT = 80
STATUS_FILE = "sweep_status.json"


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
        except ConfigError as exc:
            raise ConfigError(f"sweep {path}, run '{name}': {exc}") from None
        runs.append(SweepRun(name, run_overrides, run_dir, cfg))
    return Sweep(path, base, overrides, runs_dir, share_dir, executor, {**SLURM_DEFAULTS, **slurm}, tuple(runs))


# ----------------------------------------------------------------------------------------------
# Status


def run_state(run: SweepRun, recorded: dict | None = None) -> str:
    """``done`` (report.json made with this very config), ``failed`` (last attempt failed) or ``pending``."""
    try:
        report = json.loads((run.run_dir / REPORT).read_text())
    except (OSError, ValueError):
        report = {}
    if report.get("config_fingerprint") == config_fingerprint(run.cfg):
        return "done"
    status = read_status(run.run_dir) or {}
    if status.get("status") == "failed" or (recorded or {}).get("status") == "failed":
        return "failed"
    return "pending"


class StatusBook:
    """``RUNS_DIR/sweep_status.json``: each run's state, overrides, error and time; rewritten atomically."""

    def __init__(self, sweep: Sweep):
        self.path = sweep.runs_dir / STATUS_FILE
        try:
            previous = json.loads(self.path.read_text()).get("runs", {})
        except (OSError, ValueError):
            previous = {}
        self.data = {"sweep": str(sweep.path), "base": str(sweep.base), "runs": {}}
        for run in sweep.runs:
            old = previous.get(run.name, {})
            state = run_state(run, old)
            self.data["runs"][run.name] = {"status": state, "directory": str(run.run_dir),
                                           "overrides": list(run.overrides),
                                           "error": old.get("error") if state == "failed" else None}

    def state(self, name: str) -> str:
        return self.data["runs"][name]["status"]

    def record(self, name: str, status: str, **extra: Any) -> None:
        entry = self.data["runs"][name]
        entry.update({"status": status, "error": None, **extra})
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_atomic(self.path, json.dumps(self.data, indent=2) + "\n")


def format_plan(sweep: Sweep) -> str:
    """``--dry-run``: one line per run (name, directory, overrides, status), nothing written."""
    try:
        recorded = json.loads((sweep.runs_dir / STATUS_FILE).read_text()).get("runs", {})
    except (OSError, ValueError):
        recorded = {}
    width = max(len(run.name) for run in sweep.runs)
    lines = [f"{len(sweep.runs)} runs of {sweep.path} (base {sweep.base}, executor {sweep.executor}, "
             f"share_dir {sweep.share_dir})"]
    for run in sweep.runs:
        state = run_state(run, recorded.get(run.name))
        lines.append(f"{run.name:<{width}}  {state:<7}  {run.run_dir}  {' '.join(run.overrides) or '(base)'}")
    return "\n".join(lines)


def _error_of(run_dir: Path, fallback: str) -> str:
    """The failure's one-line description: the stage and error from status.json, else the last output."""
    status = read_status(run_dir) or {}
    if status.get("status") == "failed" and status.get("error"):
        error = status["error"]
        return error if error.startswith("stage ") else f"stage '{status.get('stage')}' failed: {error}"
    log = run_dir / "console.log"
    if log.is_file():
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1].removeprefix("musc-ecd: error: ")
    return fallback


# ----------------------------------------------------------------------------------------------
# Executors


def execute(sweep: Sweep) -> int:
    """Run every run that is not done; 0 when all end done, 1 when any failed."""
    book = StatusBook(sweep)
    book.save()
    if sweep.executor == "slurm":
        return _execute_slurm(sweep, book)
    return _execute_local(sweep, book)


def _child_env() -> dict[str, str]:
    """The environment for a run's process, importing this very musc_ecd (not another checkout)."""
    package_root = str(Path(__file__).resolve().parents[1])
    paths = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def _run_subprocess(sweep: Sweep, run: SweepRun) -> int:
    """``musc-ecd run`` for one run in its own process; output to the console and RUN_DIR/console.log."""
    command = [sys.executable, "-m", "musc_ecd", "run", str(sweep.base), *sweep.command_overrides(run)]
    run.run_dir.mkdir(parents=True, exist_ok=True)
    with open(run.run_dir / "console.log", "ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        process = subprocess.Popen(command, env=_child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert process.stdout is not None
        while chunk := os.read(process.stdout.fileno(), 65536):
            log.write(chunk)
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()
        return process.wait()


def _execute_local(sweep: Sweep, book: StatusBook) -> int:
    total = len(sweep.runs)
    for number, run in enumerate(sweep.runs, start=1):
        prefix = f"[sweep {number}/{total}] {run.name}"
        if book.state(run.name) == "done":
            print(f"{prefix}: done, skipped")
            continue
        print(f"{prefix}: running in {run.run_dir}", flush=True)
        book.record(run.name, "running")
        started = time.perf_counter()
        try:
            code = _run_subprocess(sweep, run)
        except KeyboardInterrupt:
            book.record(run.name, "pending")
            raise
        seconds = round(time.perf_counter() - started, 1)
        if code == 0:
            book.record(run.name, "done", seconds=seconds)
            print(f"{prefix}: done in {seconds:g} s", flush=True)
        else:
            error = _error_of(run.run_dir, f"exit code {code}")
            book.record(run.name, "failed", seconds=seconds, error=error, exit_code=code)
            print(f"{prefix}: FAILED ({error}); going on", flush=True)
    return _summarise(book)


def _summarise(book: StatusBook) -> int:
    states = [entry["status"] for entry in book.data["runs"].values()]
    counts = {s: states.count(s) for s in dict.fromkeys(states)}
    print("sweep: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + f" -> {book.path}")
    return 1 if "failed" in counts else 0


def run_job(base: str, overrides: list[str], cwd: str) -> dict:
    """A submitit job: ``musc-ecd run`` in-process on the worker.

    A failed run is a result (``{"status": "failed", "error": ...}``), not an exception: the job itself
    worked, and submitit's debug executor would open a debugger on an exception. A crash of the worker
    (killed, out of memory, over time) still surfaces as submitit's exception.
    """
    from musc_ecd.cli import main

    os.chdir(cwd)  # configs' relative paths are relative to where the sweep was started
    code = main(["run", base, *overrides])
    if code == 0:
        return {"status": "done"}
    run_dir = Path(next(o for o in overrides if o.startswith("run_dir=")).split("=", 1)[1])
    return {"status": "failed", "exit_code": code, "error": _error_of(run_dir, f"musc-ecd run exited with code {code}")}


def _execute_slurm(sweep: Sweep, book: StatusBook) -> int:
    import submitit

    options = sweep.slurm
    executor = submitit.AutoExecutor(folder=str(sweep.runs_dir / "_submitit"), cluster=options.get("cluster"))
    parameters = {key: options.get(key) for key in ("timeout_min", "gpus_per_node", "cpus_per_task", "mem_gb",
                                                      "nodes")}
    parameters.update(name=f"musc-ecd-{sweep.runs_dir.name}", slurm_partition=options.get("partition"),
                      slurm_array_parallelism=options.get("array_parallelism"),
                      slurm_additional_parameters=options.get("additional_parameters"))
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    todo = [run for run in sweep.runs if book.state(run.name) != "done"]
    for run in sweep.runs:
        if run not in todo:
            print(f"[sweep] {run.name}: done, skipped")
    if not todo:
        return _summarise(book)
    cwd = str(Path.cwd())
    jobs = executor.map_array(run_job, [str(sweep.base.resolve())] * len(todo),
                              [sweep.command_overrides(run) for run in todo], [cwd] * len(todo))
    for run, job in zip(todo, jobs, strict=True):
        book.record(run.name, "submitted", job_id=str(job.job_id))
        print(f"[sweep] {run.name}: submitted as job {job.job_id}")
    if not options.get("wait", True):
        print(f"submitted {len(jobs)} jobs; `musc-ecd sweep {sweep.path} --dry-run` shows their state")
        return 0
    for run, job in zip(todo, jobs, strict=True):
        try:
            result = job.result()
        except Exception as exc:  # the worker itself failed; submitit wraps its error, keep the last line
            lines = [line for line in str(exc).splitlines() if line.strip()]
            result = {"status": "failed", "error": _error_of(run.run_dir, lines[-1] if lines else type(exc).__name__)}
        book.record(run.name, result["status"], job_id=str(job.job_id),
                    **{k: v for k, v in result.items() if k != "status"})
        print(f"[sweep] {run.name}: " + ("done" if result["status"] == "done" else f"FAILED ({result['error']})"))
    return _summarise(book)
