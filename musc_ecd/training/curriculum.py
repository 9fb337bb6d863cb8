"""Curriculum orders over preference pairs by ``difficulty`` (larger = harder).

- ``random``: a fresh permutation each epoch (the plain Trainer's behaviour).
- ``easy_to_hard``: every epoch goes through all pairs in ascending difficulty, equal difficulties in
  random order.
- ``staged``: training proceeds level by level: all epochs' worth of passes over the easiest level
  (each pass shuffled), then over the next level, and so on (APC's staged curriculum). The schedule is
  cut into epochs of the usual length, so the Trainer's step counting, scheduler and resume work
  unchanged. With one epoch, ``staged`` equals ``easy_to_hard``.

Grouping by length (``train_sampling_strategy="group_by_length"``) reorders *within* a curriculum's order:
runs of equal difficulty are cut into windows of a few batches, each window sorted by pair length and its
batches shuffled, so a batch holds pairs of similar length (little padding) and no pair moves to another
difficulty level.

Randomness comes from a generator seeded by the run seed and the epoch or pass, never global state.
The Trainer tells the sampler its epoch through ``set_epoch`` (accelerate forwards it), which also
makes a resumed run see the same order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import torch
from torch.utils.data import Sampler

from musc_ecd.config.choices import CURRICULA

Curriculum = Literal[CURRICULA]


def _permutation(indices: Sequence[int], seed: int) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]


def curriculum_order(difficulties: Sequence[float], mode: Curriculum, seed: int, epoch: int = 0,
                     num_epochs: int = 1) -> list[int]:
    """Indices into ``difficulties`` for one epoch of the curriculum (``len(difficulties)`` of them)."""
    if mode not in CURRICULA:
        raise ValueError(f"unknown curriculum {mode!r}; allowed: {', '.join(CURRICULA)}")
    count = len(difficulties)
    if mode == "random":
        return _permutation(range(count), seed * 1_000_003 + epoch)
    if mode == "easy_to_hard":
        shuffled = _permutation(range(count), seed * 1_000_003 + epoch)
        return sorted(shuffled, key=lambda index: difficulties[index])  # stable: random among equals
    schedule: list[int] = []
    for level in sorted(set(difficulties)):
        members = [i for i in range(count) if difficulties[i] == level]
        for repeat in range(num_epochs):
            schedule += _permutation(members, seed * 1_000_003 + int(level * 1000) * 101 + repeat)
    return schedule[epoch * count : (epoch + 1) * count]


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


class LengthGroupedCurriculumSampler(Sampler[int]):
    """A curriculum's order (``CurriculumSampler``), regrouped by ``group_by_length`` every epoch."""

    def __init__(self, base: CurriculumSampler, lengths: Sequence[int], batch_size: int):
        self.base = base
        self.lengths = list(lengths)
        self.batch_size = batch_size

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        order = list(self.base)
        difficulties = None if self.base.mode == "random" else self.base.difficulties
        return iter(group_by_length(order, self.lengths, difficulties, self.batch_size,
                                    self.base.seed * 1_000_003 + self.base.epoch + 7))

    def __len__(self) -> int:
        return len(self.base)


class CurriculumSampler(Sampler[int]):
    """A map-style sampler yielding ``curriculum_order`` for the epoch set by ``set_epoch``."""

    def __init__(self, difficulties: Sequence[float], mode: Curriculum, seed: int, num_epochs: int):
        self.difficulties = [float(d) for d in difficulties]
        self.mode = mode
        self.seed = seed
        self.num_epochs = max(1, num_epochs)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        epoch = min(self.epoch, self.num_epochs - 1)
        return iter(curriculum_order(self.difficulties, self.mode, self.seed, epoch, self.num_epochs))

    def __len__(self) -> int:
        return len(self.difficulties)
