"""``RUN_DIR/status.json``: which stage of ``musc-ecd run`` is running, which are done, their wall time."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from musc_ecd.layout import RunLayout
from musc_ecd.store import write_atomic

HEARTBEAT_SECONDS = 30.0  # how often a running stage's time is saved: what a kill without warning can lose


class RunStatus:
    """``RUN_DIR/status.json``: running / failed / interrupted / done, the current stage, per-stage times.

    A stage's time is the wall time of every session that worked on it: while a stage runs, a heartbeat
    rewrites its entry (``state`` running, ``seconds`` so far, ``sessions``) every ``HEARTBEAT_SECONDS``, so
    a session killed without warning (a sweep outliving its session) loses at most one interval, and the
    session that resumes the stage adds its own time to what the entry holds. A later session that finds a
    stage done keeps that time rather than the seconds it took to skip it.
    """

    def __init__(self, run_dir: Path, fingerprint: str):
        self.path = RunLayout(run_dir).status
        previous = read_status(run_dir) or {}
        same = previous.get("config_fingerprint") == fingerprint
        self.data = {"status": "running", "stage": None, "error": None, "config_fingerprint": fingerprint,
                     "stages": previous.get("stages", {}) if same else {}}
        self._done_before = {name for name, s in self.data["stages"].items() if s.get("state") == "done"}
        self._lock = threading.Lock()  # the heartbeat thread and the pipeline write the same file
        self._running: tuple[str, float, float, int] | None = None  # stage, started, seconds before, sessions
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._write()

    def begin(self, stage: str) -> None:
        with self._lock:
            self.data["stage"] = stage
            if stage not in self._done_before:
                earlier = self.data["stages"].get(stage) or {}  # left by a session killed or failed in it
                self._running = (stage, time.perf_counter(), float(earlier.get("seconds", 0.0)),
                                 int(earlier.get("sessions", 1)) + 1 if earlier else 1)
                self._stamp("running")
            self._write()
        if self._running is not None and self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._beat, name="status-heartbeat", daemon=True)
            self._heartbeat.start()

    def stage_done(self, stage: str) -> None:
        with self._lock:
            if stage not in self._done_before:
                self._stamp("done")
                self._running = None
            self._write()

    def end(self, state: str, stage: str | None = None, error: str | None = None) -> None:
        self._stop.set()
        with self._lock:
            if self._running is not None:  # interrupted or failed mid-stage: keep the time it worked
                self._stamp(state)
                self._running = None
            self.data.update({"status": state, "stage": stage, "error": error})
            self._write()

    def _stamp(self, state: str) -> None:
        stage, started, before, sessions = self._running
        entry = {"state": state, "seconds": round(before + time.perf_counter() - started, 1)}
        if sessions > 1:
            entry["sessions"] = sessions
        self.data["stages"][stage] = entry

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with self._lock:
                if self._running is not None:
                    self._stamp("running")
                    self._write()

    def _write(self) -> None:
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_atomic(self.path, json.dumps(self.data, indent=2) + "\n")


def stage_time(seconds: float, sessions: int | None = None) -> str:
    """``3,000 s (2 sessions)``: a stage's time, and how many sessions it spans when more than one."""
    return f"{seconds:,.0f} s" + (f" ({sessions} sessions)" if sessions else "")


def read_status(run_dir: Path) -> dict | None:
    path = RunLayout(run_dir).status
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
