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

import difflib
import hashlib
import re
import string
from dataclasses import dataclass
from functools import cache, cached_property
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

    @cached_property
    def demonstrations(self) -> tuple[str, ...]:
        """The few-shot answers (assistant turns) written into the template."""
        return tuple(m["content"] for m in self._turns() if m["role"] == "assistant")

    def copies_demonstration(self, text: str) -> bool:
        """Whether ``text`` reproduces one of this template's demonstration answers instead of doing the task.

        Small models often answer the few-shot example rather than the real request (SmolLM2-135M "revised"
        every answer into the correction template's autumn sentences). A copy is: the same text up to case and
        whitespace, a demonstration contained in ``text``, near-identical text (difflib ratio >= 0.9), at
        least half of a demonstration's sentences of 5+ words appearing verbatim, or — for a one-line output
        such as a requirement or a rewritten constraint — one line of a demonstration (its ``Label:`` dropped)."""
        output = _normal(text)
        if not output:
            return False
        if "\n" not in text.strip() and output.rstrip(".") in self._demonstration_lines:
            return True
        for demo in map(_normal, self.demonstrations):
            if not demo:
                continue
            if output == demo or (len(demo) >= 24 and demo in output):
                return True
            if difflib.SequenceMatcher(None, output, demo, autojunk=False).ratio() >= 0.9:
                return True
            sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", demo) if len(s.split()) >= 5]
            if sentences and sum(s in output for s in sentences) * 2 >= len(sentences):
                return True
        return False

    @cached_property
    def _demonstration_lines(self) -> frozenset[str]:
        lines = (re.sub(r"^[a-z ]{3,30}:\s*", "", _normal(line)) for demo in self.demonstrations
                 for line in demo.splitlines())
        return frozenset(line.rstrip(".") for line in lines if len(line) >= 12)

    def chat(self, **values: str) -> list[dict]:
        """The filled-in messages; a missing value is an error, never a silent '$name' in a prompt."""
        return [{"role": m["role"], "content": string.Template(m["content"]).substitute(**values)}
                for m in self._turns()]

    def _turns(self) -> list[dict]:
        """The template's messages, unfilled."""
        messages: list[dict] = [{"role": "system", "content": []}]
        for line in self.text.splitlines():
            marker = _TURN.match(line)
            if marker:
                messages.append({"role": marker.group(1), "content": []})
            else:
                messages[-1]["content"].append(line)
        return [{"role": m["role"], "content": "\n".join(m["content"]).strip()} for m in messages]


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


@cache
def load_template(name: str) -> PromptTemplate:
    path = resources.files("musc_ecd.prompts").joinpath(f"{name}.txt")
    if not path.is_file():
        available = sorted(p.name[:-4] for p in resources.files("musc_ecd.prompts").iterdir()
                           if p.name.endswith(".txt"))
        raise KeyError(f"no prompt template {name!r}; available: {', '.join(available)}")
    return PromptTemplate(name, path.read_text(encoding="utf-8"))
