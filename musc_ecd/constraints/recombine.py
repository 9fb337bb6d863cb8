"""Recombine constraints (and input) into one fluent instruction (MuSC §1a steps 2 and 4)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from musc_ecd.degenerate import is_degenerate
from musc_ecd.prompts import load_template

# Markup of our own templates (or of a numbered list) in an answer means the model echoed the prompt.
_LEAK = re.compile(r"(^|\n)\s*(?:###|constraints\s*:|input\s*:|instruction\s*:|task\s*:|\d{1,2}[.)]\s)",
                   re.IGNORECASE)
_PREAMBLE = re.compile(r"^\s*(?:sure|here(?:'s| is)|okay|ok)\b[^\n]*:\s*\n", re.IGNORECASE)


def recombine_request(constraints: Sequence[str], input_text: str | None) -> list[dict]:
    listing = "\n".join(f"{i}. {c}" for i, c in enumerate(constraints, start=1))
    return load_template("recombine").chat(constraints=listing, input=input_text or "none")


def parse_recombined(text: str) -> tuple[str | None, str]:
    """(instruction, "") on success, (None, reason) on failure. A one-line "Here is ...:" is dropped."""
    text = _PREAMBLE.sub("", text, count=1).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    if not text:
        return None, "recombine_empty"
    if _LEAK.search(text):
        return None, "recombine_leak"
    if load_template("recombine").copies_demonstration(text):
        return None, "copied_demonstration"  # the template's example instruction, not this seed's
    if is_degenerate(text):  # a looping "instruction" (seen at 135M) asks for nothing the constraints said
        return None, "recombine_degenerate"
    return text, ""
