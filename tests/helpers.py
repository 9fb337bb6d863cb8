"""Small helpers shared by tests (imported as a plain module: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PROMPTS = [
    "Write a haiku about rain.",
    "List three tips for sleeping well, as a bulleted list with no commas.",
    "hi",
    "Explain compilers to a child in two sentences and end with a question.",
    "Give a title in double angular brackets.",
]


def chat(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def subprocess_env() -> dict:
    """The current environment plus this interpreter's import path, for child Python processes."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def sigkill_after_lines(command: list[str], shard: Path, lines: int, timeout: float = 120) -> int:
    """Start ``command``, SIGKILL it once ``shard`` holds ``lines`` complete lines; return the count then."""
    proc = subprocess.Popen(command, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and (not shard.exists() or shard.read_bytes().count(b"\n") < lines):
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return shard.read_bytes().count(b"\n") if shard.exists() else 0


def interrupt_on_chunk(monkeypatch, builder_class, chunk: int):
    """Make ``builder_class.__call__`` raise KeyboardInterrupt on its ``chunk``-th call (a Ctrl-C between
    durable commits); returns the original, to put back before resuming."""
    original, calls = builder_class.__call__, []

    def interrupted(self, items):
        calls.append(len(items))
        if len(calls) == chunk:
            raise KeyboardInterrupt
        return original(self, items)

    monkeypatch.setattr(builder_class, "__call__", interrupted)
    return original
