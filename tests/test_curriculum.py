"""Curriculum orders, by hand, and as the trainer's sampler actually yields them."""

from __future__ import annotations

from collections import Counter

import pytest

from musc_ecd.training import CurriculumSampler, curriculum_order
from musc_ecd.training.curriculum import curriculum_schedule, rank_within_groups, samples_taken_per_epoch

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


# -- the run's real length ---------------------------------------------------------------------------

def test_samples_taken_per_epoch_by_hand():
    # 10 pairs, 2 per micro-batch (e.g. batch 1 × 2 processes) → 5 micro-batches; accumulation 2 → 3 steps per
    # epoch (2, 2, then the remainder 1)
    assert samples_taken_per_epoch(10, 6, 3, 5, 2, 2) == [10, 10]
    assert samples_taken_per_epoch(10, 4, 3, 5, 2, 2) == [10, 4]  # one step into epoch 2: 2 micro-batches
    assert samples_taken_per_epoch(10, 2, 3, 5, 2, 2) == [8]  # less than an epoch
    assert samples_taken_per_epoch(10, 1, 1, 1, 1, 16) == [10]  # one batch larger than the data


def _taken(schedule, taken):
    return [i for order, size in zip(schedule, taken, strict=True) for i in order[:size]]


@pytest.mark.parametrize("taken", [[8, 2], [8, 8, 4], [5], [8, 8, 8]])
def test_staged_gives_each_level_its_share_of_the_run_and_ends_on_the_hardest(taken):
    schedule = curriculum_schedule(DIFFICULTY, "staged", seed=0, taken=taken)
    assert all(len(order) == 8 for order in schedule)
    levels = [DIFFICULTY[i] for i in _taken(schedule, taken)]
    assert levels == sorted(levels) and levels[-1] == 3  # ascending, the last level reached
    total = sum(taken)
    for level, size in Counter(DIFFICULTY).items():  # each level's share, ±1 for rounding
        assert abs(levels.count(level) - total * size / 8) < 1, (level, levels)
    # within a level no pair is taken twice before every pair of the level was taken once
    ones = [i for i in _taken(schedule, taken) if DIFFICULTY[i] == 1]
    assert len(set(ones[:3])) == min(3, len(ones)) and set(ones) <= {1, 3, 6}


def test_easy_to_hard_partial_epoch_is_an_ascending_random_subset():
    schedule = curriculum_schedule(DIFFICULTY, "easy_to_hard", seed=0, taken=[8, 5])
    assert [DIFFICULTY[i] for i in schedule[0]] == sorted(DIFFICULTY)
    partial = schedule[1][:5]
    assert [DIFFICULTY[i] for i in partial] == sorted(DIFFICULTY[i] for i in partial)
    assert sorted(schedule[1]) == list(range(8))  # the rest of the epoch: the pairs not drawn
    subsets = {tuple(sorted(curriculum_schedule(DIFFICULTY, "easy_to_hard", seed=s, taken=[8, 5])[1][:5]))
               for s in range(6)}
    assert len(subsets) > 1  # a random subset, not always the easiest five


def test_a_planned_sampler_yields_the_schedule_and_groups_by_length_within_the_taken_part():
    from musc_ecd.training.curriculum import LengthGroupedCurriculumSampler

    sampler = CurriculumSampler(DIFFICULTY, "staged", seed=0, num_epochs=3)
    sampler.plan([8, 3])
    expected = curriculum_schedule(DIFFICULTY, "staged", seed=0, taken=[8, 3])
    orders = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    assert orders == expected
    grouped = LengthGroupedCurriculumSampler(sampler, lengths=[10, 80, 30, 70, 20, 60, 40, 50], batch_size=2)
    grouped.set_epoch(1)
    assert sorted(list(grouped)[:3]) == sorted(expected[1][:3])  # nothing moves into or out of the taken part


def test_rank_within_groups_puts_methods_on_one_scale():
    coarse = [1.0, 1.0, 1.0, 0.5]  # 1/k: mostly one corrupted constraint
    fine = [0.0, 0.25, 0.5, 0.75]  # the rejected answer's judged score
    ranked = rank_within_groups(coarse + fine, ["musc_coarse"] * 4 + ["musc_fine"] * 4)
    # coarse: 0.5 is below three ties → (0 + ½)/4; 1.0 → (1 + 3/2)/4. fine: distinct → (k + ½)/4
    assert ranked == [0.625, 0.625, 0.625, 0.125, 0.125, 0.375, 0.625, 0.875]
    assert rank_within_groups([3, 1, 2], ["x"] * 3) == pytest.approx([5 / 6, 1 / 6, 0.5])  # order kept


@pytest.mark.parametrize(("mode", "settings", "taken"), [
    ("staged", dict(max_steps=5), [8, 2]),  # 4 steps an epoch: the run stops 2 pairs into epoch 2
    ("staged", dict(num_train_epochs=1.5), [8, 4]),  # transformers: max_steps = ceil(1.5 × 4) = 6
    ("staged", dict(max_steps=3, gradient_accumulation_steps=3), [8, 6]),  # steps of 3 + 1 batches, then 3
    ("easy_to_hard", dict(num_train_epochs=1.5), [8, 4]),
], ids=["max_steps", "fractional-epochs", "accumulation", "easy_to_hard-fractional"])
def test_the_trainer_feeds_the_schedule_cut_to_its_real_length(tmp_path, mode, settings, taken):
    """What the trainer batches, in order, against the schedule for the samples it really takes."""
    import copy

    from training_helpers import config_kwargs, conversational_rows, dataset, perturbed_copy

    from musc_ecd.models import load_model
    from musc_ecd.training import TokenWeightedDPOConfig, TokenWeightedDPOTrainer

    model, tokenizer = load_model("tiny", dtype="float32", device="cpu")
    rows = [dict(row, difficulty=d) for row, d in zip(conversational_rows(), DIFFICULTY, strict=True)]
    args = TokenWeightedDPOConfig(**config_kwargs(tmp_path, per_device_train_batch_size=2, curriculum=mode,
                                                  **{"num_train_epochs": 3, **settings}))
    trainer = TokenWeightedDPOTrainer(model=perturbed_copy(model), ref_model=copy.deepcopy(model), args=args,
                                      train_dataset=dataset(rows), processing_class=tokenizer)
    consumed, step = [], trainer.training_step

    def record(model, inputs, *args):  # what is trained on (the dataloader collates one batch ahead)
        consumed.extend(inputs["difficulty"].tolist())
        return step(model, inputs, *args)

    trainer.training_step = record
    trainer.train()
    expected = [DIFFICULTY[i] for i in _taken(curriculum_schedule(DIFFICULTY, mode, 0, taken), taken)]
    assert consumed == expected
    if mode == "staged":
        assert consumed == sorted(consumed) and consumed[-1] == 3  # the hardest level is reached
