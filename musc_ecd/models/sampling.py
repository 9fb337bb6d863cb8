"""Per-row seeded sampling for transformers' ``generate``.

``transformers`` samples every row of a batch from one global random stream, so a row's sample
depends on its batch mates and on how many rows came before it. That breaks two things we need:
resuming an interrupted run must regenerate a missing item exactly, and bucketing requests by
length must not change the results. ``PerRowSampler`` draws each row's next token from that row's
own ``torch.Generator`` and returns logits that put all mass on the drawn token, so ``generate``
runs in greedy mode and simply takes it.
"""

from __future__ import annotations

import torch


def top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero out the tail outside the nucleus and renormalise.

    probs: (batch, vocab), rows summing to 1. Keeps the smallest set of most likely tokens whose mass
    reaches ``top_p`` (always at least the most likely token). Returns (batch, vocab).
    """
    if top_p >= 1.0:
        return probs
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    sorted_probs = sorted_probs.masked_fill(mass_before >= top_p, 0.0)
    kept = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return kept / kept.sum(dim=-1, keepdim=True)


class PerRowSampler:
    """A logits processor that samples row ``i`` with ``generators[i]``; see the module docstring."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float, device: torch.device | str = "cpu"):
        self.generators = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        probs = top_p_filter(probs, self.top_p)
        chosen = [torch.multinomial(probs[row], 1, generator=gen) for row, gen in enumerate(self.generators)]
        forced = torch.full_like(scores, float("-inf"))
        forced.scatter_(-1, torch.stack(chosen), 0.0)
        return forced
