"""Curriculum orders over preference pairs by ``difficulty`` (larger = harder).

- ``random``: a fresh permutation each epoch (the plain Trainer's behaviour).
- ``easy_to_hard``: every epoch goes through all pairs in ascending difficulty, equal difficulties in
  random order.
- ``staged``: training proceeds level by level: all epochs' worth of passes over the easiest level
  (each pass shuffled), then over the next level, and so on (APC's staged curriculum). The schedule is
  cut into epochs of the usual length, so the Trainer's step counting, scheduler and resume work
  unchanged. With one epoch, ``staged`` equals ``easy_to_hard``.

Randomness comes from a generator seeded by the run seed and the epoch or pass, never global state.
The Trainer tells the sampler its epoch through ``set_epoch`` (accelerate forwards it), which also
makes a resumed run see the same order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import torch
from torch.utils.data import Sampler

Curriculum = Literal["random", "easy_to_hard", "staged"]
CURRICULA = ("random", "easy_to_hard", "staged")


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
