"""Self-judge one (response, constraint): Yes/No with an analysis (MuSC §1b step 2)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from musc_ecd.prompts import load_template

UNPARSABLE_VERDICT = "unparsable_verdict"
"""The reject reason of a pair a judge filter could not decide (``musc.unparsable_verdict=drop``, ``ecd.…``)."""
_ANSWER = re.compile(r"answer\s*[:：]\s*\**\s*(yes|no)\b", re.IGNORECASE)


def judge_request(instruction: str, response: str, constraint: str) -> list[dict]:
    return load_template("judge").chat(instruction=instruction, response=response, constraint=constraint)


def parse_verdict(text: str) -> bool | None:
    """True for Yes, False for No, None when no ``Answer: Yes|No`` line can be found (the last one wins)."""
    found = _ANSWER.findall(text)
    if not found:
        return None
    return found[-1].lower() == "yes"


def undecided(verdicts: Iterable[bool | None]) -> bool:
    """No verdict says "No" and at least one is unparsable: a filter that drops on all-Yes cannot tell."""
    verdicts = list(verdicts)
    return False not in verdicts and None in verdicts


def verdict_counts(verdicts: Iterable[bool | None]) -> dict:
    """``{"yes", "no", "unparsable"}`` counts of parsed verdicts."""
    verdicts = list(verdicts)
    return {"yes": verdicts.count(True), "no": verdicts.count(False), "unparsable": verdicts.count(None)}


def add_counts(*counts: dict | None) -> dict:
    total = {"yes": 0, "no": 0, "unparsable": 0}
    for c in counts:
        for key in total:
            total[key] += (c or {}).get(key, 0)
    return total


def judge_health(counts: dict, method: str, knobs: str, warn_above: float) -> dict:
    """The counts with the unparsable share; past ``warn_above`` (the method's ``judge_warning_share``) a
    ``warning`` names what to change (``generate`` logs every warning of a summary and lists them under
    ``warnings``).

    A judge that cannot give a verdict makes its filter or its scores inert (MuSC fine then degrades to
    "sample 0 vs its revision", every constraint counted as violated), which no pair count reveals."""
    total = sum(counts.get(k, 0) for k in ("yes", "no", "unparsable"))
    share = counts.get("unparsable", 0) / total if total else 0.0
    health = {**counts, "total": total, "unparsable_share": round(share, 4)}
    if total and share > warn_above:
        health["warning"] = (f"{counts['unparsable']} of {total} judge verdicts were unparsable ({share:.0%}), so "
                             f"{method}'s judge-based choices are mostly defaults, not judgements; try {knobs}")
    return health
