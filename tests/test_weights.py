"""Token-weight schemes on hand-made distributions, against hand computations, and normalisation."""

from __future__ import annotations

import math

import pytest
import torch

from musc_ecd.weights import (
    bi_kl_per_token,
    edit_signal,
    entropy_per_token,
    kl_per_token,
    normalise,
    pmi_per_token,
)


def _logp(rows):
    return torch.tensor(rows, dtype=torch.float64).log()


def test_kl_and_bi_kl_by_hand():
    p = _logp([[0.5, 0.5], [0.9, 0.1]])
    q = _logp([[0.5, 0.5], [0.5, 0.5]])
    # row 0: identical → 0; row 1: 0.9·ln(0.9/0.5) + 0.1·ln(0.1/0.5)
    expected = 0.9 * math.log(1.8) + 0.1 * math.log(0.2)
    torch.testing.assert_close(kl_per_token(p, q), torch.tensor([0.0, expected], dtype=torch.float64))
    reverse = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    torch.testing.assert_close(bi_kl_per_token(p, q), torch.tensor([0.0, expected + reverse], dtype=torch.float64))


def test_pmi_by_hand_and_clipped_at_zero():
    conditioned = _logp([[0.8, 0.2], [0.3, 0.7]])
    unconditioned = _logp([[0.4, 0.6], [0.6, 0.4]])
    tokens = torch.tensor([0, 0])  # row 0: ln(0.8/0.4) = ln 2; row 1: ln(0.3/0.6) < 0 → 0
    torch.testing.assert_close(pmi_per_token(conditioned, unconditioned, tokens),
                               torch.tensor([math.log(2), 0.0], dtype=torch.float64))


def test_entropy_by_hand():
    logp = _logp([[0.5, 0.5], [1.0, 1e-300]])
    torch.testing.assert_close(entropy_per_token(logp), torch.tensor([math.log(2), 0.0], dtype=torch.float64),
                               atol=1e-9, rtol=0)


def test_edit_marks_the_diff():
    rejected, corrected = [1, 2, 3, 4, 5], [1, 2, 9, 4, 5, 6]
    raw_rejected, raw_corrected = edit_signal(rejected, corrected, low=0.1)
    assert raw_rejected == [0.1, 0.1, 1.0, 0.1, 0.1]
    assert raw_corrected == [0.1, 0.1, 1.0, 0.1, 0.1, 1.0]


def test_normalise_mean_one_before_clipping_then_clipped():
    raw = torch.tensor([1.0, 1.0, 2.0, 0.0])  # mean 1 → unchanged, nothing above 2
    torch.testing.assert_close(normalise(raw), raw)
    spiky = torch.tensor([0.0, 0.0, 0.0, 8.0])  # mean 2 → [0, 0, 0, 4] → clipped to 2
    torch.testing.assert_close(normalise(spiky), torch.tensor([0.0, 0.0, 0.0, 2.0]))
    scaled = normalise(torch.tensor([0.2, 0.4, 0.6]))
    assert scaled.mean().item() == pytest.approx(1.0) and scaled.max() <= 2.0


@pytest.mark.parametrize("raw", [torch.zeros(3), torch.tensor([])])
def test_normalise_degenerate_sequences_are_uniform(raw):
    assert torch.equal(normalise(raw), torch.ones_like(raw))


def test_uniform_scheme_is_exactly_ones():
    assert torch.equal(normalise(torch.ones(7)), torch.ones(7))
