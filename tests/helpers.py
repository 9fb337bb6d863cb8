"""Small helpers shared by tests (imported as a plain module: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
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
