"""Token-weighted preference losses: pure functions on tensors (METHODS.md §1c–1d).

Token-weighted DPO (MuSC) replaces the log-probability of each completion by a weighted sum over its tokens,

    log π(y | x)   →   Σ_t w_t · log π(y_t | x, y_<t)                            weighted_sequence_logps

and keeps the preference losses, now on the weighted log-ratios against the reference:

    Δ(y) = Σ_t w_t · log π(y_t | ·) − Σ_t w_t · log π_ref(y_t | ·)
    sigmoid (DPO, Rafailov et al. 2023, eq. 7)   −log σ(β · (Δ(y_c) − Δ(y_r)))                sigmoid_loss
    hinge (SLiC, Zhao et al. 2023)              max(0, 1 − β · (Δ(y_c) − Δ(y_r)))             hinge_loss
    ipo (Azar et al. 2023, eq. 17)              (Δ(y_c)/|y_c| − Δ(y_r)/|y_r| − 1/(2β))²        ipo_loss
    sft                                         −mean over chosen tokens of w_t · log π(y_t|·)  sft_loss

combined as Σ_k λ_k · mean over pairs (``combined_loss``; λ = ``loss_weights``). With every w_t = 1 each
is TRL's (1.16) loss of the same name, operation for operation, so the trainer equals ``trl.DPOTrainer``
bit for bit on unweighted data (the parity tests compare to 1e-6).

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
are divided by the completion length, as TRL does and the IPO authors confirmed.
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


def ipo_loss(chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, beta: float,
             chosen_lengths: torch.Tensor, rejected_lengths: torch.Tensor) -> torch.Tensor:
    """IPO with per-token log-ratios: (Δ_c/|y_c| − Δ_r/|y_r| − 1/(2β))², β being IPO's τ.

    chosen/rejected_logratios: (B,). chosen/rejected_lengths: (B,) completion token counts (any dtype; a
    count below 1 counts as 1). Returns (B,).
    """
    delta = chosen_logratios / chosen_lengths.clamp(min=1.0) - rejected_logratios / rejected_lengths.clamp(min=1.0)
    return (delta - 1 / (2 * beta)) ** 2


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
    """−mean over the masked tokens of w_t · log π(y_t | ·): the (weighted) SFT term, a per-token mean.

    Shapes as ``weighted_token_logps``, for the chosen rows only. Returns a scalar (NaN without any token).
    """
    return -weighted_token_logps(per_token_logps, weights, mask)[mask.bool()].mean()


def combined_loss(per_pair_losses: Sequence[torch.Tensor], loss_weights: Sequence[float]) -> torch.Tensor:
    """Σ_k λ_k · mean_b L_k[b]: TRL's combination of a ``loss_type`` list with its ``loss_weights``.

    per_pair_losses: one (B,) tensor per loss (a batch-level term such as ``sft_loss`` expanded to (B,)).
    """
    total = 0.0
    for per_pair, weight in zip(per_pair_losses, loss_weights, strict=True):
        total = total + per_pair.mean() * weight
    return total  # type: ignore[return-value]

