"""Trainer callbacks: metrics as JSONL, one line per logged step, resume-aware."""

from __future__ import annotations

import json
import os
from pathlib import Path

from transformers import TrainerCallback


class MetricsJsonl(TrainerCallback):
    """Append each log record (with its step and epoch) to ``path``, fsynced.

    On resume from checkpoint N, lines for steps after N are dropped first: those steps are redone,
    and the file must not list them twice.
    """

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        self.last: dict = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a kill
                if resume_step is not None and record.get("step", 0) <= resume_step:
                    kept.append(line + "\n")
            path.write_text("".join(kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        record = {"step": state.global_step, "epoch": state.epoch, **logs}
        self.last = record
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
