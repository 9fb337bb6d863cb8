"""Curriculum orders over preference pairs by ``difficulty`` (larger = harder).

- ``random``: a fresh permutation each epoch (the plain Trainer's behaviour).
- ``easy_to_hard``: every epoch goes through its pairs in ascending difficulty, equal difficulties in random
  order; a last, partial epoch (fractional ``num_train_epochs``, or ``max_steps``) goes, ascending, through a
  random subset of the size the trainer takes, so it too runs from easy to hard.
- ``staged``: training proceeds level by level: every level gets its share of the samples the whole run
  takes (passes over the level, each shuffled, the last one possibly partial), easiest level first, so the
  run ends on the hardest level and repeats none (APC's staged curriculum). The schedule is cut into epochs
  of the usual length, so the Trainer's step counting, scheduler and resume work unchanged. With one
  epoch, ``staged`` equals ``easy_to_hard``.

How many samples the run takes from each epoch's order is the trainer's to say (``samples_taken_per_epoch``,
from the steps transformers computed: ``max_steps`` or the epochs, gradient accumulation, batch size and
world size); ``CurriculumSampler.plan`` receives it. Without a plan every epoch is taken whole.

Difficulties must be on one scale: ``rank_within_groups`` puts pairs of several methods (e.g. ``method=musc``:
coarse pairs' 1/k beside fine pairs' judged score) on a common one, each pair's mid-rank among the pairs of
its own method; the ``train`` stage applies it by ``meta.method``.

Grouping by length (``train_sampling_strategy="group_by_length"``) reorders *within* a curriculum's order:
runs of equal difficulty are cut into windows of a few batches, each window sorted by pair length and its
batches shuffled, so a batch holds pairs of similar length (little padding) and no pair moves to another
difficulty level or out of the part of the epoch the trainer takes.

Randomness comes from a generator seeded by the run seed and the epoch or pass, never global state, so every
process of a distributed run computes the same order (accelerate hands each its share of every batch).
The Trainer tells the sampler its epoch through ``set_epoch``, which also makes a resumed run see the same
order.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from typing import Literal

import torch
from torch.utils.data import Sampler

from musc_ecd.config.choices import CURRICULA

Curriculum = Literal[CURRICULA]


def _permutation(indices: Sequence[int], seed: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def rank_within_groups(difficulties: Sequence[float], groups: Sequence[Hashable]) -> list[float]:
    """Each difficulty as its mid-rank among the difficulties of its group: a common scale in (0, 1).

    (number of the group's pairs that are easier + half the number as hard, itself included) / group size:
    0.5 is a group's median pair, and a group with a single level puts every pair at 0.5. The map is
    increasing within a group, so a single group keeps its order and its levels.
    """
    members: dict[Hashable, list[float]] = {}
    for difficulty, group in zip(difficulties, groups, strict=True):
        members.setdefault(group, []).append(difficulty)
    ranked = []
    for difficulty, group in zip(difficulties, groups, strict=True):
        values = members[group]
        easier = sum(1 for value in values if value < difficulty)
        same = sum(1 for value in values if value == difficulty)
        ranked.append((easier + same / 2) / len(values))
    return ranked


def samples_taken_per_epoch(count: int, max_steps: int, steps_per_epoch: int, batches_per_epoch: int,
                            accumulation: int, samples_per_batch: int) -> list[int]:
    """How many positions of each epoch's order a run takes, from the numbers transformers' Trainer computed.

    count: pairs in the dataset. max_steps: optimizer steps of the run. steps_per_epoch: optimizer steps per
    full epoch. batches_per_epoch: micro-batches per full epoch on one process (the dataloader's length).
    accumulation: gradient accumulation steps. samples_per_batch: per-device batch size × processes (one
    micro-batch on every process takes that many consecutive positions of the order).
    """
    taken = []
    remaining = max_steps
    while remaining > 0:
        steps = min(steps_per_epoch, remaining)
        batches = batches_per_epoch if steps == steps_per_epoch else steps * accumulation
        taken.append(min(count, batches * samples_per_batch))
        remaining -= steps
    return taken


def curriculum_schedule(difficulties: Sequence[float], mode: Curriculum, seed: int,
                        taken: Sequence[int]) -> list[list[int]]:
    """One order per epoch: indices into ``difficulties``, ``len(difficulties)`` of them each, the first
    ``taken[epoch]`` being what the run takes (see the module docstring for each mode). Positions past them
    (the end of a last, partial epoch) are never reached; they hold the rest of a random permutation."""
    if mode not in CURRICULA:
        raise ValueError(f"unknown curriculum {mode!r}; allowed: {', '.join(CURRICULA)}")
    count = len(difficulties)
    if any(not 0 <= t <= count for t in taken):
        raise ValueError(f"each epoch takes between 0 and {count} samples, not {list(taken)}")
    if mode == "random":
        return [_permutation(range(count), _epoch_seed(seed, epoch)) for epoch in range(len(taken))]
    if mode == "easy_to_hard":
        orders = []
        for epoch, size in enumerate(taken):
            shuffled = _permutation(range(count), _epoch_seed(seed, epoch))
            # stable sort: random among equals; a partial epoch sorts the random subset it takes
            orders.append(sorted(shuffled[:size], key=lambda index: difficulties[index]) + shuffled[size:])
        return orders
    run = _staged_run(difficulties, seed, sum(taken))
    orders, start = [], 0
    for epoch, size in enumerate(taken):
        chosen = run[start : start + size]
        start += size
        orders.append(chosen + _permutation(range(count), _epoch_seed(seed, epoch))[: count - size])
    return orders


def _staged_run(difficulties: Sequence[float], seed: int, total: int) -> list[int]:
    """``total`` samples, level by level, easiest first; each level gets its share of ``total`` (its share of
    the pairs, largest remainders rounded up), as shuffled passes over its pairs, the last possibly partial."""
    count = len(difficulties)
    levels = sorted(set(difficulties))
    members = [[i for i in range(count) if difficulties[i] == level] for level in levels]
    shares = [total * len(m) // count for m in members]
    by_remainder = sorted(range(len(levels)), key=lambda k: (-(total * len(members[k]) % count), k))
    for k in by_remainder[: total - sum(shares)]:
        shares[k] += 1
    run: list[int] = []
    for level, (pairs, share) in enumerate(zip(members, shares, strict=True)):
        passes = -(-share // len(pairs))
        stream = [i for p in range(passes) for i in _permutation(pairs, _epoch_seed(seed, level * 10_007 + p))]
        run += stream[:share]
    return run


def curriculum_order(difficulties: Sequence[float], mode: Curriculum, seed: int, epoch: int = 0,
                     num_epochs: int = 1) -> list[int]:
    """Indices into ``difficulties`` for epoch ``epoch`` of a run of ``num_epochs`` whole epochs (at least
    ``epoch + 1``)."""
    count = len(difficulties)
    return curriculum_schedule(difficulties, mode, seed, [count] * max(num_epochs, epoch + 1))[epoch]


def group_by_length(order: Sequence[int], lengths: Sequence[int], difficulties: Sequence[float] | None,
                    batch_size: int, seed: int, window_batches: int = 8) -> list[int]:
    """``order`` rearranged so each run of ``batch_size`` consecutive indices holds pairs of similar length.

    order: indices into ``lengths`` (one epoch of a curriculum). Runs of equal ``difficulties`` in ``order``
    stay where they are; inside a run, each window of ``window_batches × batch_size`` indices is sorted by
    length (longest first, ties in their order) and cut into batches, whose order inside the window is then
    shuffled with a generator seeded by ``seed``. Returns a permutation of ``order``.
    """
    levels = [0.0] * len(lengths) if difficulties is None else difficulties
    runs: list[list[int]] = []
    for index in order:
        if runs and levels[runs[-1][-1]] == levels[index]:
            runs[-1].append(index)
        else:
            runs.append([index])
    generator = torch.Generator().manual_seed(seed)
    grouped: list[int] = []
    size = window_batches * batch_size
    for run in runs:
        for start in range(0, len(run), size):
            window = sorted(run[start : start + size], key=lambda i: -lengths[i])
            batches = [window[i : i + batch_size] for i in range(0, len(window), batch_size)]
            for b in torch.randperm(len(batches), generator=generator).tolist():
                grouped += batches[b]
    return grouped


class CurriculumSampler(Sampler[int]):
    """A map-style sampler yielding ``curriculum_schedule``'s order for the epoch set by ``set_epoch``.

    ``num_epochs`` whole epochs until ``plan`` says how many samples the run takes from each epoch."""

    def __init__(self, difficulties: Sequence[float], mode: Curriculum, seed: int, num_epochs: int):
        self.difficulties = [float(d) for d in difficulties]
        self.mode = mode
        self.seed = seed
        self.epoch = 0
        self.plan([len(self.difficulties)] * max(1, num_epochs))

    def plan(self, taken: Sequence[int]) -> None:
        """Samples the run takes from each epoch's order (``samples_taken_per_epoch``)."""
        self.taken = list(taken) or [len(self.difficulties)]
        self._orders = curriculum_schedule(self.difficulties, self.mode, self.seed, self.taken)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def taken_this_epoch(self) -> int:
        return self.taken[min(self.epoch, len(self.taken) - 1)]

    def __iter__(self) -> Iterator[int]:
        return iter(self._orders[min(self.epoch, len(self._orders) - 1)])

    def __len__(self) -> int:
        return len(self.difficulties)


class LengthGroupedCurriculumSampler(Sampler[int]):
    """A curriculum's order (``CurriculumSampler``), regrouped by ``group_by_length`` every epoch; the part of
    the epoch the run takes and the part it never reaches are grouped apart, so none crosses over."""

    def __init__(self, base: CurriculumSampler, lengths: Sequence[int], batch_size: int):
        self.base = base
        self.lengths = list(lengths)
        self.batch_size = batch_size

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        order, taken = list(self.base), self.base.taken_this_epoch()
        difficulties = None if self.base.mode == "random" else self.base.difficulties
        seed = _epoch_seed(self.base.seed, self.base.epoch) + 7
        return iter([index for part in (order[:taken], order[taken:])
                     for index in group_by_length(part, self.lengths, difficulties, self.batch_size, seed)])

    def __len__(self) -> int:
        return len(self.base)
