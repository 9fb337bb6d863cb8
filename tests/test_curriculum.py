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


def test_group_by_length_by_hand():
    from musc_ecd.training.curriculum import group_by_length

    lengths = [5, 1, 4, 2, 6, 3]
    # one window of 3 batches: sorted longest first [4, 0, 2, 5, 3, 1] → batches {4, 0}, {2, 5}, {3, 1}
    grouped = group_by_length([0, 1, 2, 3, 4, 5], lengths, None, batch_size=2, seed=0, window_batches=3)
    batches = {frozenset(grouped[i : i + 2]) for i in range(0, 6, 2)}
    assert batches == {frozenset({4, 0}), frozenset({2, 5}), frozenset({3, 1})}
    assert group_by_length([0, 1, 2, 3, 4, 5], lengths, None, 2, seed=0, window_batches=3) == grouped  # seeded
    # two difficulty levels: no pair crosses its level, each level grouped on its own
    levels = [0, 0, 0, 1, 1, 1]
    grouped = group_by_length([0, 1, 2, 3, 4, 5], lengths, levels, batch_size=2, seed=0, window_batches=3)
    # level 0: lengths 5, 1, 4 → batches [0, 2], [1]; level 1: lengths 2, 6, 3 → [4, 5], [3]; batch order shuffled
    assert grouped[:3] in ([0, 2, 1], [1, 0, 2]) and grouped[3:] in ([4, 5, 3], [3, 4, 5])


def test_length_grouped_sampler_keeps_the_staged_order():
    from musc_ecd.training.curriculum import LengthGroupedCurriculumSampler

    lengths = [10, 80, 30, 70, 20, 60, 40, 50]
    sampler = LengthGroupedCurriculumSampler(CurriculumSampler(DIFFICULTY, "staged", seed=0, num_epochs=1),
                                             lengths, batch_size=2)
    order = list(sampler)
    assert sorted(order) == list(range(8))
    assert [DIFFICULTY[i] for i in order] == sorted(DIFFICULTY)  # the curriculum still decides the levels
