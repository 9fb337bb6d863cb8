"""Curriculum orders, by hand, and as the trainer's sampler actually yields them."""

from __future__ import annotations

from collections import Counter

import pytest

from musc_ecd.training import CurriculumSampler, curriculum_order

DIFFICULTY = [3, 1, 2, 1, 3, 2, 1, 2]


def test_random_is_a_seeded_permutation():
    order = curriculum_order(DIFFICULTY, "random", seed=0)
    assert sorted(order) == list(range(8))
    assert order == curriculum_order(DIFFICULTY, "random", seed=0)
    assert order != curriculum_order(DIFFICULTY, "random", seed=1)
    assert order != curriculum_order(DIFFICULTY, "random", seed=0, epoch=1)


def test_easy_to_hard_each_epoch_sorted_with_shuffled_ties():
    orders = [curriculum_order(DIFFICULTY, "easy_to_hard", seed=s, epoch=e) for s in range(4) for e in range(2)]
    for order in orders:
        assert [DIFFICULTY[i] for i in order] == sorted(DIFFICULTY)
    assert len({tuple(o) for o in orders}) > 1  # ties are not always in index order


def test_staged_trains_each_level_for_all_epochs_before_the_next():
    epochs = 3
    schedule = [i for e in range(epochs) for i in curriculum_order(DIFFICULTY, "staged", seed=0, epoch=e,
                                                                    num_epochs=epochs)]
    levels = [DIFFICULTY[i] for i in schedule]
    assert levels == sorted(levels)  # level 1 (×3 passes), then level 2, then 3
    assert Counter(schedule) == Counter({i: epochs for i in range(8)})
    first_pass, second_pass = schedule[:3], schedule[3:6]
    assert sorted(first_pass) == sorted(second_pass) == [1, 3, 6]


def test_staged_with_one_epoch_is_easy_to_hard_by_level():
    order = curriculum_order(DIFFICULTY, "staged", seed=0, num_epochs=1)
    assert [DIFFICULTY[i] for i in order] == sorted(DIFFICULTY)


def test_sampler_follows_set_epoch_and_rejects_unknown_modes():
    sampler = CurriculumSampler(DIFFICULTY, "staged", seed=0, num_epochs=2)
    assert len(sampler) == 8
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert [DIFFICULTY[i] for i in first + second] == sorted(DIFFICULTY * 2)
    with pytest.raises(ValueError, match="unknown curriculum"):
        curriculum_order(DIFFICULTY, "hard_first", seed=0)
