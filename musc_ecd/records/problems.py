"""What makes two answers no preference pair: every builder asks ``pair_problem`` before ``make_pair``."""

from __future__ import annotations

import zlib

DEGENERATE_RATIO = 0.25
"""An answer of 80+ characters that zlib compresses below this share of its size is degenerate repetition
("Mmmmmm…", one line pasted five times); English prose compresses to about 0.45–0.6."""


def is_degenerate(text: str) -> bool:
    """Repetition that makes an answer worthless as ``chosen`` (small models loop). A looping ``rejected``
    answer is kept: the label is still right. ECD ends a chain at one, since R^k is next round's negative
    *and* this round's chosen."""
    data = text.encode()
    return len(data) >= 80 and len(zlib.compress(data, 9)) / len(data) < DEGENERATE_RATIO


PAIR_PROBLEMS = ("empty_chosen", "empty_rejected", "identical_responses", "degenerate_chosen")


def pair_problem(chosen: str, rejected: str) -> str | None:
    """What makes two answers no preference pair, checked in this order — one of ``PAIR_PROBLEMS`` — or None.

    An empty side teaches nothing, identical sides have no preference, and a looping chosen answer is no
    target (a looping rejected one is a true negative). Every builder asks this before ``make_pair``; each
    names the problem in its own reject reasons."""
    if not chosen:
        return "empty_chosen"
    if not rejected:
        return "empty_rejected"
    if chosen == rejected:
        return "identical_responses"
    if is_degenerate(chosen):
        return "degenerate_chosen"
    return None
