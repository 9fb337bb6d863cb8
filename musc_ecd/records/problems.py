"""What makes two answers no preference pair: every builder asks ``pair_problem`` before ``make_pair``."""

from __future__ import annotations

from musc_ecd.degenerate import is_degenerate

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
