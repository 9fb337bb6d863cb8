"""Self-correction (MuSC §1b step 4): the policy revises its own answer as minimally as possible."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from musc_ecd.prompts import load_template


def correct_request(instruction: str, response: str, violated: Sequence[str]) -> list[dict]:
    listing = "\n".join(f"- {constraint}" for constraint in violated)
    return load_template("correct").chat(instruction=instruction, response=response, violated=listing)


def kept_share(original: str, revision: str) -> float:
    """Share of the original answer's words that the revision keeps, in order (difflib's matching blocks).

    Words are compared without case and surrounding punctuation: re-casing ("write in lowercase") or
    re-punctuating ("no commas") is the very minimal correction this must not count as a rewrite."""
    before, after = _words(original), _words(revision)
    if not before:
        return 0.0
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(before)


_LEAK = re.compile(r"^\s*(?:violated constraints|instruction|response)\s*:", re.IGNORECASE | re.MULTILINE)


def _words(text: str) -> list[str]:
    return [w for w in (word.strip(".,;:!?\"'()[]*").lower() for word in text.split()) if w]


def parse_revision(text: str, original: str, min_kept: float = 0.0) -> tuple[str | None, str]:
    """(revision, "") or (None, reason). Rejected: an empty or unchanged revision (teaches nothing), a copy of
    the template's demonstration answer, and one that keeps less than ``min_kept`` of the answer's words —
    a rewrite, not the minimal correction MuSC's fine pairs are made of."""
    revision = text.strip()
    if not revision:
        return None, "revision_empty"
    if " ".join(revision.split()) == " ".join(original.split()):
        return None, "revision_unchanged"
    if load_template("correct").copies_demonstration(revision):
        return None, "copied_demonstration"
    if _LEAK.search(revision):
        return None, "revision_leak"  # the correction prompt's own labels ("Violated constraints:") in the text
    if kept_share(original, revision) < min_kept:
        return None, "revision_not_minimal"
    return revision, ""
