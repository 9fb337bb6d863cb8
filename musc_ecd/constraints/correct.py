"""Self-correction (MuSC §1b step 4): the policy revises its own answer as minimally as possible."""

from __future__ import annotations

from collections.abc import Sequence

from musc_ecd.prompts import load_template


def correct_request(instruction: str, response: str, violated: Sequence[str]) -> list[dict]:
    listing = "\n".join(f"- {constraint}" for constraint in violated)
    return load_template("correct").chat(instruction=instruction, response=response, violated=listing)


def parse_revision(text: str, original: str) -> tuple[str | None, str]:
    """(revision, "") or (None, reason): an empty or unchanged revision teaches nothing."""
    revision = text.strip()
    if not revision:
        return None, "revision_empty"
    if " ".join(revision.split()) == " ".join(original.split()):
        return None, "revision_unchanged"
    return revision, ""
