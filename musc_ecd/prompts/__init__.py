"""Prompt templates, one text file each, versioned by content hash.

A template is a chat: its first line names the task (``### Task: ...``), the text up to the first
``=== user`` line is the system message, and ``=== user`` / ``=== assistant`` lines open the turns.
Few-shot demonstrations are real conversation turns, which small chat models follow far more reliably
than demonstrations pasted into one message (SmolLM2-135M answers the latter instead of decomposing).
Placeholders are ``string.Template``'s ``$name``, filled per message after splitting, so braces in
demonstrations need no escaping and filled-in text can never create turns. A template's SHA-256 (first
12 hex digits) goes into each pair's provenance, so changing a prompt is visible in the data.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from functools import cache
from importlib import resources

_TURN = re.compile(r"^=== (user|assistant)\s*$")


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    text: str

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]

    @property
    def task_line(self) -> str:
        return self.text.splitlines()[0]

    def chat(self, **values: str) -> list[dict]:
        """The filled-in messages; a missing value is an error, never a silent '$name' in a prompt."""
        lines = self.text.splitlines()
        messages = [{"role": "system", "content": []}]
        for line in lines:
            marker = _TURN.match(line)
            if marker:
                messages.append({"role": marker.group(1), "content": []})
            else:
                messages[-1]["content"].append(line)
        return [{"role": m["role"], "content": string.Template("\n".join(m["content"]).strip()).substitute(**values)}
                for m in messages]


@cache
def load_template(name: str) -> PromptTemplate:
    path = resources.files("musc_ecd.prompts").joinpath(f"{name}.txt")
    if not path.is_file():
        available = sorted(p.name[:-4] for p in resources.files("musc_ecd.prompts").iterdir()
                           if p.name.endswith(".txt"))
        raise KeyError(f"no prompt template {name!r}; available: {', '.join(available)}")
    return PromptTemplate(name, path.read_text(encoding="utf-8"))
