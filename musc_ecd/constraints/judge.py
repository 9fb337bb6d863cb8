"""Self-judge one (response, constraint): Yes/No with an analysis (MuSC §1b step 2)."""

from __future__ import annotations

import re

from musc_ecd.prompts import load_template

_ANSWER = re.compile(r"answer\s*[:：]\s*\**\s*(yes|no)\b", re.IGNORECASE)


def judge_request(instruction: str, response: str, constraint: str) -> list[dict]:
    return load_template("judge").chat(instruction=instruction, response=response, constraint=constraint)


def parse_verdict(text: str) -> bool | None:
    """True for Yes, False for No, None when no ``Answer: Yes|No`` line can be found (the last one wins)."""
    found = _ANSWER.findall(text)
    if not found:
        return None
    return found[-1].lower() == "yes"
