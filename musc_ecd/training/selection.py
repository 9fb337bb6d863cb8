"""Which pairs a run trains on, and which side of each it prefers: the pair budget and the label-flip control.

Both act on the rows training reads, after the artifact is loaded and before any ordering or tokenization, so
the artifact on disk (shared between the runs of a sweep) stays as the method made it.
"""

from __future__ import annotations

import logging
import random

log = logging.getLogger(__name__)

SIDES = (("chosen", "rejected"), ("chosen_weights", "rejected_weights"))
"""Columns that belong to one side of a pair: a flip exchanges each pair of them together."""


def budget_indices(count: int, max_pairs: int | None, seed: int) -> list[int]:
    """The indices (ascending) of the rows a pair budget keeps: all of them within the budget, else a subset of
    ``max_pairs`` drawn with ``seed``. The same count, budget and seed always give the same subset, so a DPO run
    and an SFT run on the same pairs train on the same ones."""
    if max_pairs is None or count <= max_pairs:
        return list(range(count))
    return sorted(random.Random(seed).sample(range(count), max_pairs))


def within_budget(rows: list[dict], max_pairs: int | None, seed: int) -> list[dict]:
    """At most ``max_pairs`` rows: a seeded random subset, in artifact order (a curriculum reorders later)."""
    keep = budget_indices(len(rows), max_pairs, seed)
    if len(keep) < len(rows):
        log.info("pair budget: training on %d of %d pairs (train.max_pairs)", len(keep), len(rows))
    return [rows[i] for i in keep]


def swap_labels(rows: list[dict]) -> list[dict]:
    """Each pair with chosen and rejected exchanged, and their token weights with them.

    The weights are per token of their own completion (``chosen_weights[t]`` weighs token t of ``chosen``), so
    they move with the text they were computed on; a pair's prompt and difficulty stay. New dicts: the input
    rows are not changed."""
    swapped = []
    for row in rows:
        row = dict(row)
        for first, second in SIDES:
            if first in row or second in row:
                row[first], row[second] = row.get(second), row.get(first)
        swapped.append(row)
    log.info("label-flip control: training on %d pairs with chosen and rejected swapped (train.swap_labels)",
             len(rows))
    return swapped
