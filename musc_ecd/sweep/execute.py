"""Sweep execution: which runs are done, the status book, and the local and submitit executors.

See ``musc_ecd.sweep`` for what each executor does and why the local one starts a process per run.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from musc_ecd.errors import ConfigError
from musc_ecd.fingerprints import config_fingerprint
from musc_ecd.layout import RunLayout
from musc_ecd.run_status import read_status
from musc_ecd.store import write_atomic
from musc_ecd.sweep.spec import Sweep, SweepRun

STATUS_FILE = "sweep_status.json"


# ----------------------------------------------------------------------------------------------
# Status


def run_state(run: SweepRun, recorded: dict | None = None) -> str:
    """``done`` (report.json made with this very config), ``failed`` (last attempt failed) or ``pending``."""
    try:
        report = json.loads(RunLayout(run.run_dir).report_json.read_text())
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


def execute(sweep: Sweep, only: list[str] | None = None) -> int:
    """Run every run that is not done (of ``only``, the named runs, when given); 0 when all of them end done,
    1 when any failed. The status book keeps every run of the sweep either way."""
    chosen = select(sweep, only)
    book = StatusBook(sweep)
    book.save()
    if sweep.executor == "slurm":
        return _execute_slurm(sweep, book, chosen)
    return _execute_local(sweep, book, chosen)


def select(sweep: Sweep, only: list[str] | None) -> list[SweepRun]:
    """The runs named in ``only`` (all runs when None), in the sweep's order; an unknown name is an error."""
    if only is None:
        return list(sweep.runs)
    names = [run.name for run in sweep.runs]
    unknown = [name for name in only if name not in names]
    if unknown:
        raise ConfigError(f"sweep {sweep.path}: no run named {', '.join(map(repr, unknown))}; its runs: "
                          f"{', '.join(names)}")
    return [run for run in sweep.runs if run.name in only]


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


def _execute_local(sweep: Sweep, book: StatusBook, runs: list[SweepRun]) -> int:
    total = len(runs)
    for number, run in enumerate(runs, start=1):
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
    return _summarise(book, runs)


def _summarise(book: StatusBook, runs: list[SweepRun]) -> int:
    states = [book.state(run.name) for run in runs]
    counts = {s: states.count(s) for s in dict.fromkeys(states)}
    print("sweep: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + f" -> {book.path}")
    return 1 if "failed" in counts else 0


def run_job(base: str, overrides: list[str], cwd: str) -> dict:
    """A submitit job: ``musc-ecd run`` in-process on the worker.

    A failed run is a result (``{"status": "failed", "error": ...}``), not an exception: the job itself
    worked, and submitit's debug executor would open a debugger on an exception. A crash of the worker
    (killed, out of memory, over time) still surfaces as submitit's exception.
    """
    from musc_ecd.errors import UserError
    from musc_ecd.pipeline import run as run_pipeline
    from musc_ecd.session import prepare

    os.chdir(cwd)  # configs' relative paths are relative to where the sweep was started
    try:
        cfg, run_dir = prepare(base, overrides, "run")
        run_pipeline(cfg, run_dir)
    except UserError as exc:  # what `musc-ecd run` would print and exit with
        print(f"musc-ecd: error: {exc}", file=sys.stderr)
        run_dir = Path(next(o for o in overrides if o.startswith("run_dir=")).split("=", 1)[1])
        return {"status": "failed", "exit_code": exc.exit_code,
                "error": _error_of(run_dir, f"musc-ecd run failed: {exc}")}
    return {"status": "done"}


def import_submitit():
    """submitit, imported without the logging set-up its import does.

    Importing submitit runs ``logging.config.dictConfig``, which first closes every handler already in the process:
    this run's log file, and any handler another library bound to a stream when it was imported (OpenVINO's
    converter imports absl, whose handler closes its stream unless that stream is still ``sys.stderr``; under
    pytest it no longer was, and the capture file it closed took the whole test session down). Its import is told
    not to configure (``SUBMITIT_LOG_LEVEL=NOCONFIG``, submitit's own switch), and its logger gets one console
    handler (stderr) at the level ``SUBMITIT_LOG_LEVEL`` asks for (INFO unless set)."""
    if "submitit" in sys.modules:
        return sys.modules["submitit"]
    asked = os.environ.get("SUBMITIT_LOG_LEVEL")
    os.environ["SUBMITIT_LOG_LEVEL"] = "NOCONFIG"
    try:
        import submitit
    finally:
        if asked is None:
            del os.environ["SUBMITIT_LOG_LEVEL"]
        else:
            os.environ["SUBMITIT_LOG_LEVEL"] = asked
    if (asked or "").upper() != "NOCONFIG":
        level = (asked or "INFO").upper()
        logger = logging.getLogger("submitit")
        logger.setLevel(int(level) if level.isdigit() else level)
        if not logger.handlers:
            console = logging.StreamHandler(sys.stderr)
            console.setFormatter(logging.Formatter("%(name)s %(levelname)s (%(asctime)s) - %(message)s"))
            logger.addHandler(console)
    return submitit


def _execute_slurm(sweep: Sweep, book: StatusBook, runs: list[SweepRun]) -> int:
    submitit = import_submitit()

    options = sweep.slurm
    executor = submitit.AutoExecutor(folder=str(sweep.runs_dir / "_submitit"), cluster=options.get("cluster"))
    parameters = {key: options.get(key) for key in ("timeout_min", "gpus_per_node", "cpus_per_task", "mem_gb",
                                                      "nodes")}
    parameters.update(name=f"musc-ecd-{sweep.runs_dir.name}", slurm_partition=options.get("partition"),
                      slurm_array_parallelism=options.get("array_parallelism"),
                      slurm_additional_parameters=options.get("additional_parameters"))
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    todo = [run for run in runs if book.state(run.name) != "done"]
    for run in runs:
        if run not in todo:
            print(f"[sweep] {run.name}: done, skipped")
    if not todo:
        return _summarise(book, runs)
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
    return _summarise(book, runs)
