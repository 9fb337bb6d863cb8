"""Prompt templates, one text file each, versioned by content hash.

Templates use ``string.Template`` placeholders (``$name``) so that braces in few-shot examples (JSON,
code) need no escaping. The first line of every template names its task (``### Task: ...``); it also
lets a scripted test generator recognise which stage is asking. A template's SHA-256 (first 12 hex
digits) goes into each pair's provenance, so changing a prompt is visible in the data.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from functools import cache
from importlib import resources


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

    def render(self, **values: str) -> str:
        """Fill every placeholder; a missing value is an error, never a silent '$name' in a prompt."""
        return string.Template(self.text).substitute(**values).rstrip() + "\n"


@cache
def load_template(name: str) -> PromptTemplate:
    path = resources.files("musc_ecd.prompts").joinpath(f"{name}.txt")
    if not path.is_file():
        available = sorted(p.name[:-4] for p in resources.files("musc_ecd.prompts").iterdir()
                           if p.name.endswith(".txt"))
        raise KeyError(f"no prompt template {name!r}; available: {', '.join(available)}")
    return PromptTemplate(name, path.read_text(encoding="utf-8"))
