"""The token-weighted losses (musc_ecd.training.losses) against values worked out by hand.

Layout of every per-token tensor below: rows = [chosen pairs; rejected pairs], positions = what a causal
LM head predicts (token t + 1 at position t), mask 1 on completion tokens.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from musc_ecd.config import LOSSES
from musc_ecd.training import losses

LOGPS = torch.tensor([[-1.0, -2.0, -3.0, -4.0],
                      [-0.5, -1.5, 0.0, 0.0]])
MASK = torch.tensor([[0, 1, 1, 0],
                     [1, 1, 0, 0]])


def test_weighted_sequence_logps_by_hand():
    weights = torch.tensor([[9.0, 2.0, 0.5, 7.0],  # 9 and 7 sit on unmasked positions: they never count
                            [1.0, 0.0, 0.0, 0.0]])  # a zero weight drops its token
    # row 0: 2·(−2) + 0.5·(−3) = −5.5; row 1: 1·(−0.5) + 0·(−1.5) = −0.5
    assert_close(losses.weighted_sequence_logps(LOGPS, weights, MASK), torch.tensor([-5.5, -0.5]))
    assert_close(losses.weighted_token_logps(LOGPS, weights, MASK),
                 torch.tensor([[0.0, -4.0, -1.5, 0.0], [-0.5, 0.0, 0.0, 0.0]]))


def test_uniform_or_absent_weights_are_the_plain_masked_sum():
    expected = torch.tensor([-2.0 - 3.0, -0.5 - 1.5])
    assert_close(losses.weighted_sequence_logps(LOGPS, None, MASK), expected)
    assert_close(losses.weighted_sequence_logps(LOGPS, torch.ones(2, 4), MASK), expected)
    assert_close(losses.weighted_sequence_logps(LOGPS, torch.zeros(2, 4), MASK), torch.zeros(2))


def test_a_zero_weight_token_gets_no_gradient():
    logps = LOGPS.clone().requires_grad_()
    weights = torch.tensor([[1.0, 0.0, 3.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    losses.weighted_sequence_logps(logps, weights, MASK).sum().backward()
    # d/d logp_t = w_t · m_t
    assert_close(logps.grad, torch.tensor([[0.0, 0.0, 3.0, 0.0], [1.0, 1.0, 0.0, 0.0]]))


def test_sigmoid_loss_by_hand():
    chosen, rejected = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 4.0])
    # β·(Δc − Δr) = 0.5, 0, −1; −log σ(z) = log(1 + e^{−z})
    expected = torch.tensor([math.log1p(math.exp(-0.5)), math.log(2.0), math.log1p(math.exp(1.0))])
    assert_close(losses.sigmoid_loss(chosen, rejected, beta=0.5), expected)


def test_hinge_loss_by_hand():
    chosen, rejected = torch.tensor([1.0, 4.0, -2.0]), torch.tensor([0.0, 0.0, 0.0])
    # 1 − 0.5·Δ = 0.5, −1, 2 → clipped at 0
    assert_close(losses.hinge_loss(chosen, rejected, beta=0.5), torch.tensor([0.5, 0.0, 2.0]))


def test_ipo_loss_by_hand():
    chosen, rejected = torch.tensor([2.0, 3.0]), torch.tensor([-1.0, 1.0])
    chosen_lengths, rejected_lengths = torch.tensor([4, 0]), torch.tensor([2, 1])  # a 0 count counts as 1
    # pair 0: 2/4 − (−1/2) = 1, 1/(2·0.25) = 2 → (1 − 2)² = 1; pair 1: 3/1 − 1/1 = 2 → (2 − 2)² = 0
    assert_close(losses.ipo_loss(chosen, rejected, 0.25, chosen_lengths, rejected_lengths), torch.tensor([1.0, 0.0]))
    # weight masses below 1 are not rounded up: pair 0: 2/0.5 − (−1/0.25) = 8 → (8 − 2)² = 36
    assert_close(losses.ipo_loss(chosen[:1], rejected[:1], 0.25, torch.tensor([0.5]), torch.tensor([0.25])),
                 torch.tensor([36.0]))


def test_sft_loss_is_a_weighted_per_token_mean_over_the_mask():
    logps = torch.tensor([[-1.0, -2.0], [-4.0, -9.0]])
    weights = torch.tensor([[1.0, 0.5], [2.0, 5.0]])
    mask = torch.tensor([[1, 1], [1, 0]])
    # masked w·logp: −1, −1, −8 → sum −10; masked weights 1 + 0.5 + 2 = 3.5 → 10/3.5
    assert_close(losses.sft_loss(logps, weights, mask), torch.tensor(10 / 3.5))
    assert_close(losses.sft_loss(logps, None, mask), torch.tensor(7 / 3))  # (1 + 2 + 4) / 3
    assert_close(losses.sft_loss(logps, torch.zeros(2, 2), mask), torch.tensor(0.0))  # no weight, no signal


def test_weighted_lengths_by_hand():
    weights = torch.tensor([[9.0, 0.5, 0.25], [1.0, 1.0, 1.0]])
    mask = torch.tensor([[0, 1, 1], [1, 1, 0]])
    assert_close(losses.weighted_lengths(weights, mask), torch.tensor([0.75, 2.0]))
    assert losses.weighted_lengths(None, mask).tolist() == [2, 2]


def test_ipo_and_sft_are_weighted_means_that_clipping_or_scaling_the_weights_does_not_shrink():
    """Weights of mean 1 clipped to w_max have a mean below 1; a weighted mean (Σ w·x / Σ w) is unchanged by
    a common factor, where dividing by the token count shrank the term by that factor."""
    generator = torch.Generator().manual_seed(0)
    policy, reference = torch.randn(4, 6, generator=generator), torch.randn(4, 6, generator=generator)
    weights, mask = torch.rand(4, 6, generator=generator) + 0.1, (torch.rand(4, 6, generator=generator) > 0.2).int()

    def ipo(w):
        ratios = losses.weighted_sequence_logps(policy, w, mask) - losses.weighted_sequence_logps(reference, w, mask)
        return losses.ipo_loss(*ratios.chunk(2), 0.1, *losses.weighted_lengths(w, mask).chunk(2))

    assert_close(ipo(weights * 0.5), ipo(weights))
    assert_close(losses.sft_loss(policy, weights * 0.5, mask), losses.sft_loss(policy, weights, mask))
    # uniform weights of any value are no weights
    assert_close(ipo(torch.full((4, 6), 0.7)), ipo(None))
    assert_close(losses.sft_loss(policy, torch.full((4, 6), 0.7), mask), losses.sft_loss(policy, None, mask))


def test_pair_loss_dispatches_and_refuses_other_names():
    chosen, rejected, lengths = torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([1])
    for name, function in (("sigmoid", losses.sigmoid_loss), ("hinge", losses.hinge_loss)):
        assert_close(losses.pair_loss(name, chosen, rejected, 0.1, lengths, lengths), function(chosen, rejected, 0.1))
    assert_close(losses.pair_loss("ipo", chosen, rejected, 0.1, lengths, lengths),
                 losses.ipo_loss(chosen, rejected, 0.1, lengths, lengths))
    with pytest.raises(ValueError, match="not a pair loss"):
        losses.pair_loss("sft", chosen, rejected, 0.1, lengths, lengths)
    assert set(losses.PAIR_LOSSES) | {"sft"} == set(LOSSES)  # the config's list, no more, no less


def test_combined_loss_weights_each_mean():
    # means 2 and 2, weights 1 and 0.5 → 2 + 1 = 3
    assert_close(losses.combined_loss([torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])], [1.0, 0.5]),
                 torch.tensor(3.0))
    with pytest.raises(ValueError):
        losses.combined_loss([torch.tensor([1.0])], [1.0, 2.0])


def test_token_weighted_dpo_end_to_end_by_hand():
    """One pair, two completion tokens each: chosen log-probs (−1, −2) under π and (−1.5, −1.5) under π_ref,
    rejected (−3, −1) and (−2, −2); weights chosen (2, 0), rejected (0.5, 1.5)."""
    policy = torch.tensor([[-1.0, -2.0], [-3.0, -1.0]])
    reference = torch.tensor([[-1.5, -1.5], [-2.0, -2.0]])
    weights = torch.tensor([[2.0, 0.0], [0.5, 1.5]])
    mask = torch.ones(2, 2)
    ratios = (losses.weighted_sequence_logps(policy, weights, mask)
              - losses.weighted_sequence_logps(reference, weights, mask))
    # chosen: 2·(−1) − 2·(−1.5) = 1; rejected: (0.5·(−3) + 1.5·(−1)) − (0.5·(−2) + 1.5·(−2)) = −3 + 4 = 1
    assert_close(ratios, torch.tensor([1.0, 1.0]))
    chosen, rejected = ratios.chunk(2)
    assert_close(losses.sigmoid_loss(chosen, rejected, 0.1), torch.tensor([math.log(2.0)]))
    # uniform weights: chosen −3 − (−3) = 0, rejected −4 − (−4) = 0 → the same log 2, i.e. plain DPO
    plain = losses.weighted_sequence_logps(policy, None, mask) - losses.weighted_sequence_logps(reference, None, mask)
    assert_close(plain, torch.tensor([0.0, 0.0]))


def test_doubling_the_weights_is_doubling_beta():
    policy, reference = torch.randn(4, 5, generator=torch.Generator().manual_seed(0)), torch.zeros(4, 5)
    weights, mask = torch.rand(4, 5, generator=torch.Generator().manual_seed(1)), torch.ones(4, 5)

    def sigmoid(w, beta):
        ratios = losses.weighted_sequence_logps(policy, w, mask) - losses.weighted_sequence_logps(reference, w, mask)
        return losses.sigmoid_loss(*ratios.chunk(2), beta)

    assert_close(sigmoid(weights * 2, 0.1), sigmoid(weights, 0.2))

