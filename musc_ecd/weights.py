"""Token-weight schemes (MuSC §1c) as pure tensor functions, and their normalisation.

Each scheme turns model outputs over a *fixed* response into one raw, non-negative number per response
token; ``normalise`` then scales each sequence to mean 1 and clips to ``[0, w_max]`` (inferred from the
authors' released demo data: values in [0, 2], mean ≈ 1). Every response token, the first included,
gets its own weight (the released code gave the first one 0 by an off-by-one).

Shapes: ``T`` response tokens, ``V`` vocabulary. Log-probability inputs are ``log_softmax`` outputs at
the positions that *predict* each response token, so row ``t`` is the distribution over token ``t``.

- ``uniform``: 1 everywhere — reproduces plain DPO exactly.
- ``kl``: KL(p(·|x_neg, y_<t) ‖ p(·|x_pos, y_<t)): how much token t's distribution moves when the
  instruction loses or changes constraints. ``bi_kl``: the symmetric sum.
- ``pmi``: log p(y_t|x, y_<t) − log p(y_t|∅, y_<t), clipped at 0 from below (inferred: a negative PMI —
  the instruction makes the token *less* likely — gets no extra weight, and weights must be ≥ 0).
- ``entropy``: the entropy of p(·|x, y_<t) (inferred reading of "confidence": tokens where the policy is
  unsure carry the decision, confident continuations get less weight).
- ``edit``: tokens inside the diff between a rejected answer and its correction get 1, shared tokens
  ``low`` (this project's addition, for self-corrected pairs).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import torch

from musc_ecd.config.choices import WEIGHT_SCHEMES

SCHEMES = WEIGHT_SCHEMES


def kl_per_token(logp_from: torch.Tensor, logp_to: torch.Tensor) -> torch.Tensor:
    """KL(p_from ‖ p_to) at each position. logp_*: (T, V) log-probabilities. Returns (T,)."""
    return (logp_from.exp() * (logp_from - logp_to)).sum(-1).clamp_min(0.0)


def bi_kl_per_token(logp_a: torch.Tensor, logp_b: torch.Tensor) -> torch.Tensor:
    """KL(a ‖ b) + KL(b ‖ a) at each position. (T, V), (T, V) → (T,)."""
    return kl_per_token(logp_a, logp_b) + kl_per_token(logp_b, logp_a)


def pmi_per_token(logp_conditioned: torch.Tensor, logp_unconditioned: torch.Tensor,
                  tokens: torch.Tensor) -> torch.Tensor:
    """max(0, log p(y_t|x,·) − log p(y_t|∅,·)). logp_*: (T, V); tokens: (T,) ids. Returns (T,)."""
    picked = tokens.unsqueeze(-1)
    difference = logp_conditioned.gather(-1, picked) - logp_unconditioned.gather(-1, picked)
    return difference.squeeze(-1).clamp_min(0.0)


def entropy_per_token(logp: torch.Tensor) -> torch.Tensor:
    """Entropy of the distribution at each position. (T, V) → (T,)."""
    return (-(logp.exp() * logp).sum(-1)).clamp_min(0.0)


def edit_signal(rejected: Sequence[int], corrected: Sequence[int], low: float = 0.1) -> tuple[list[float], list[float]]:
    """Raw weights for (rejected, corrected): 1 on tokens outside their longest matching blocks, ``low`` inside."""
    matcher = difflib.SequenceMatcher(a=list(rejected), b=list(corrected), autojunk=False)
    in_rejected, in_corrected = [1.0] * len(rejected), [1.0] * len(corrected)
    for block in matcher.get_matching_blocks():
        for offset in range(block.size):
            in_rejected[block.a + offset] = low
            in_corrected[block.b + offset] = low
    return in_rejected, in_corrected


def normalise(raw: torch.Tensor, w_max: float = 2.0) -> torch.Tensor:
    """Scale a sequence's raw weights to mean 1, then clip to [0, w_max]. (T,) → (T,).

    A sequence whose raw signal is all zero (no token stands out) gets uniform weights 1.
    """
    raw = raw.float().clamp_min(0.0)
    mean = raw.mean() if raw.numel() else raw.new_tensor(0.0)
    if raw.numel() == 0 or mean <= 0:
        return torch.ones_like(raw)
    return (raw / mean).clamp(0.0, w_max)
