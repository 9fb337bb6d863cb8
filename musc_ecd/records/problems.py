"""What makes two answers no preference pair: every builder asks ``pair_problem`` before ``make_pair``."""

from __future__ import annotations

import re
import zlib

DEGENERATE_RATIO = 0.25
"""An answer of 80+ characters that zlib compresses below this share of its size is degenerate repetition
("Mmmmmm…", one line pasted five times); English prose compresses to about 0.45–0.6."""


def is_degenerate(text: str) -> bool:
    """Repetition that makes an answer worthless as ``chosen`` (small models loop): the whole answer compresses
    like a loop, or it *ends* in one (``loops_at_end``: a sound start followed by "haha haha haha ..." passes the
    whole-text test). A looping ``rejected`` answer is kept: the label is still right. ECD ends a chain at one,
    since R^k is next round's negative *and* this round's chosen."""
    data = text.encode()
    return (len(data) >= 80 and len(zlib.compress(data, 9)) / len(data) < DEGENERATE_RATIO) or loops_at_end(text)


_LOOPING_TAIL = (re.compile(r"(.{1,40}?)\1{7,}$", re.DOTALL), re.compile(r"(.{41,300}?)\1{2,}$", re.DOTALL))
"""A unit of up to 40 characters said 8 or more times in a row at the end, or one of up to 300 said 3 or more."""


def loops_at_end(text: str) -> bool:
    """Whether ``text`` ends by repeating one unit (spacing ignored), covering at least 40 characters."""
    flat = re.sub(r"\s+", " ", text[-2400:]).strip()[-1200:] + " "  # a loop at the end fills the end: look there
    for pattern in _LOOPING_TAIL:
        found = pattern.search(flat)
        if found and len(flat) - found.start() >= 40:
            return True
    return False


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
