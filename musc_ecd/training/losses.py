"""Token-weighted preference losses: pure functions on tensors (METHODS.md §1c–1d).

Token-weighted DPO (MuSC) replaces the log-probability of each completion by a weighted sum over its tokens,

    log π(y | x)   →   Σ_t w_t · log π(y_t | x, y_<t)                            weighted_sequence_logps

and keeps the preference losses, now on the weighted log-ratios against the reference:

    Δ(y) = Σ_t w_t · log π(y_t | ·) − Σ_t w_t · log π_ref(y_t | ·)
    sigmoid (DPO, Rafailov et al. 2023, eq. 7)   −log σ(β · (Δ(y_c) − Δ(y_r)))                sigmoid_loss
    hinge (SLiC, Zhao et al. 2023)              max(0, 1 − β · (Δ(y_c) − Δ(y_r)))             hinge_loss
    ipo (Azar et al. 2023, eq. 17)              (Δ(y_c)/W(y_c) − Δ(y_r)/W(y_r) − 1/(2β))²     ipo_loss
    sft                                         −Σ_t w_t · log π(y_t|·) / Σ_t w_t, chosen tokens  sft_loss

where W(y) = Σ_t w_t (``weighted_lengths``; |y| without weights). The two per-token averages, IPO's and SFT's,
divide by the weight mass rather than by the token count: a weighted *mean*, so clipping or rescaling the
weights (``train.w_max``) moves weight between tokens without shrinking the term. With uniform weights the
mass is the token count, TRL's normaliser.

combined as Σ_k λ_k · mean over pairs (``combined_loss``; λ = ``loss_weights``). With every w_t = 1 each
is TRL's (1.16) loss of the same name, operation for operation, so the trainer equals ``trl.DPOTrainer``
on unweighted data (the parity tests compare to 1e-6).

Layout, TRL's: a batch of B pairs has 2B rows, chosen rows [0, B) then rejected rows [B, 2B). Per-token
tensors are (rows, T) in the *shifted* layout of a causal LM head: position t holds the log-prob of input
token t + 1, so ``mask`` is the completion mask shifted by one (``completion_mask[:, 1:]``) and token weights
are shifted the same way; both are 0 on prompt and padding.

How this maps onto ``trl.DPOTrainer._compute_loss`` (1.16), which ``TokenWeightedDPOTrainer._compute_loss``
follows step for step: TRL sums the fused LM head's per-token log-probs over each row (zero off the
completion), ``per_token_logps.sum(dim=1)`` — here ``weighted_sequence_logps`` — for the policy and for the
reference (live, or precomputed once by ``compute_ref_log_probs``), subtracts them into the chosen and
rejected log-ratios and applies its ``loss_type`` branches — here the functions below. Departures from the
papers, TRL's and kept on purpose: SLiC's margin is TRL's ``hinge`` on log-ratios against the reference
with δ = 1/β, its regulariser is TRL's ``sft`` term (a per-token mean, not a sequence sum); IPO's log-ratios
are divided by the completion length (here its weight mass), as TRL does and the IPO authors confirmed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

PAIR_LOSSES = ("sigmoid", "hinge", "ipo")  # losses of a pair's two log-ratios; ``sft`` reads tokens instead


def weighted_token_logps(per_token_logps: torch.Tensor, weights: torch.Tensor | None,
                         mask: torch.Tensor) -> torch.Tensor:
    """w_t · m_t · log π(y_t | ·), per token.

    per_token_logps: (rows, T) float. weights: (rows, T), or None for all ones. mask: (rows, T), 1 on the
    completion tokens scored, 0 elsewhere (any dtype). Returns (rows, T) in per_token_logps's dtype.
    """
    mask = mask.to(per_token_logps.dtype)
    if weights is not None:
        mask = weights.to(device=per_token_logps.device, dtype=per_token_logps.dtype) * mask
    return per_token_logps * mask


def weighted_sequence_logps(per_token_logps: torch.Tensor, weights: torch.Tensor | None,
                            mask: torch.Tensor) -> torch.Tensor:
    """Σ_t w_t · m_t · log π(y_t | ·) per row: the weighted log-probability of each completion.

    Shapes as ``weighted_token_logps``; returns (rows,). With weights None (or all 1) it is the plain sum of
    the completion's log-probs, TRL's ``logps``.
    """
    return weighted_token_logps(per_token_logps, weights, mask).sum(dim=1)


def sigmoid_loss(chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO: −log σ(β · (Δ_c − Δ_r)). chosen/rejected_logratios: (B,). Returns (B,)."""
    return -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))


def hinge_loss(chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, beta: float) -> torch.Tensor:
    """SLiC's rank calibration as TRL's ``hinge``: max(0, 1 − β · (Δ_c − Δ_r)). (B,) in, (B,) out."""
    return torch.relu(1 - beta * (chosen_logratios - rejected_logratios))


def weighted_lengths(weights: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
    """W(y) = Σ_t w_t · m_t per row: a completion's weight mass, its token count Σ_t m_t when weights is None.

    weights: (rows, T) or None; mask: (rows, T), 1 on the completion tokens. Returns (rows,).
    """
    if weights is None:
        return mask.sum(dim=1)
    return (weights.to(mask.device) * mask).sum(dim=1)


def ipo_loss(chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, beta: float,
             chosen_lengths: torch.Tensor, rejected_lengths: torch.Tensor) -> torch.Tensor:
    """IPO with per-token log-ratios: (Δ_c/W_c − Δ_r/W_r − 1/(2β))², β being IPO's τ.

    chosen/rejected_logratios: (B,). chosen/rejected_lengths: (B,) the completions' ``weighted_lengths``
    (token counts without weights; any dtype); a length of 0 counts as 1 (its log-ratio is 0 then too).
    Returns (B,).
    """
    delta = chosen_logratios / _nonzero(chosen_lengths) - rejected_logratios / _nonzero(rejected_lengths)
    return (delta - 1 / (2 * beta)) ** 2


def _nonzero(lengths: torch.Tensor) -> torch.Tensor:
    """Lengths with 0 replaced by 1; for token counts, TRL's ``clamp(min=1.0)``. (A weight mass may lie in
    (0, 1) and must stay as it is.)"""
    lengths = lengths.float() if not lengths.is_floating_point() else lengths
    return torch.where(lengths > 0, lengths, torch.ones_like(lengths))


def pair_loss(loss_type: str, chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, beta: float,
              chosen_lengths: torch.Tensor, rejected_lengths: torch.Tensor) -> torch.Tensor:
    """The per-pair loss ``loss_type`` (one of ``PAIR_LOSSES``) of the log-ratios: (B,) in, (B,) out."""
    if loss_type == "sigmoid":
        return sigmoid_loss(chosen_logratios, rejected_logratios, beta)
    if loss_type == "hinge":
        return hinge_loss(chosen_logratios, rejected_logratios, beta)
    if loss_type == "ipo":
        return ipo_loss(chosen_logratios, rejected_logratios, beta, chosen_lengths, rejected_lengths)
    raise ValueError(f"loss_type={loss_type!r} is not a pair loss; allowed: {', '.join(PAIR_LOSSES)}")


def sft_loss(per_token_logps: torch.Tensor, weights: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
    """−Σ_t w_t · log π(y_t | ·) / Σ_t w_t over the masked tokens: the (weighted) SFT term, a per-token mean.

    Shapes as ``weighted_token_logps``, for the chosen rows only. Returns a scalar. Without weights it is TRL's
    mean over the masked tokens (NaN without any token); with weights of total 0, 0 (no token carries signal).
    """
    selected = mask.bool()
    weighted = weighted_token_logps(per_token_logps, weights, mask)[selected]
    if weights is None:
        return -weighted.mean()
    return -weighted.sum() / _nonzero(weights.to(per_token_logps.device, per_token_logps.dtype)[selected].sum())


def combined_loss(per_pair_losses: Sequence[torch.Tensor], loss_weights: Sequence[float]) -> torch.Tensor:
    """Σ_k λ_k · mean_b L_k[b]: TRL's combination of a ``loss_type`` list with its ``loss_weights``.

    per_pair_losses: one (B,) tensor per loss (a batch-level term such as ``sft_loss`` expanded to (B,)).
    """
    total = 0.0
    for per_pair, weight in zip(per_pair_losses, loss_weights, strict=True):
        total = total + per_pair.mean() * weight
    return total  # type: ignore[return-value]

