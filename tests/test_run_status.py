"""`status.json`'s stage times: a stage's time sums every session that worked on it, a kill without warning
included (a sweep that outlives its session is killed with SIGKILL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from musc_ecd import run_status

REPO = Path(__file__).resolve().parents[1]


def _stages(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())["stages"]


def _session_killed_while_generating(run_dir: Path, worked: float) -> dict:
    """A separate process starts the generate stage and is SIGKILLed once its heartbeat has saved ``worked``
    seconds; returns the entry it left."""
    code = ("import sys, time\nfrom pathlib import Path\nfrom musc_ecd import run_status\n"
            "run_status.HEARTBEAT_SECONDS = 0.05\n"
            "run_status.RunStatus(Path(sys.argv[1]), 'fp').begin('generate')\ntime.sleep(120)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            entry = _stages(run_dir).get("generate", {}) if (run_dir / "status.json").is_file() else {}
            if entry.get("seconds", 0) >= worked:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"the heartbeat never saved {worked} s: {entry}")
    finally:
        process.kill()
        process.wait()
    return _stages(run_dir)["generate"]


def _session_finishing(run_dir: Path, stage: str, seconds: float, fingerprint: str = "fp") -> dict:
    """One session of ``run`` that works ``seconds`` on ``stage`` (or skips it, when done) and ends; its entry."""
    status = run_status.RunStatus(run_dir, fingerprint)
    status.begin(stage)
    time.sleep(seconds)
    status.stage_done(stage)
    status.end("done")
    return _stages(run_dir)[stage]


def test_a_stage_killed_without_warning_keeps_its_time_and_the_resuming_session_adds_its_own(tmp_path):
    killed = _session_killed_while_generating(tmp_path, worked=0.3)
    assert killed["state"] == "running" and killed["seconds"] >= 0.3 and "sessions" not in killed

    entry = _session_finishing(tmp_path, "generate", 0.2)
    assert entry["state"] == "done" and entry["sessions"] == 2
    assert entry["seconds"] >= round(killed["seconds"] + 0.2, 1)


def test_a_stage_found_done_keeps_its_time_and_a_new_config_starts_afresh(tmp_path):
    done = _session_finishing(tmp_path, "train", 0.15)
    assert done["state"] == "done" and done["seconds"] >= 0.1 and "sessions" not in done
    assert _session_finishing(tmp_path, "train", 0.0) == done  # a rerun that skips the finished stage

    changed = run_status.RunStatus(tmp_path, "other")  # another config: earlier times are not its own
    assert _stages(tmp_path) == {}
    changed.end("done")


def test_an_interrupted_stage_records_the_time_it_worked(tmp_path):
    status = run_status.RunStatus(tmp_path, "fp")
    status.begin("weights")
    time.sleep(0.15)
    status.end("interrupted", "weights", "interrupted")
    entry = _stages(tmp_path)["weights"]
    assert entry["state"] == "interrupted" and entry["seconds"] >= 0.1
