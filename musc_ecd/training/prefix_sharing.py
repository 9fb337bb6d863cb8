"""Prefix sharing: one sequence per preference pair, ``prompt + chosen + rejected``, packed into rows.

TRL scores a pair as two rows, ``[prompt; chosen]`` and ``[prompt; rejected]``, padded to the longest row
of the batch: the prompt is run twice and padding is computed as if it were text. Here each pair is one
sequence in which the prompt is computed once and both completions branch off it (Wang et al., 2024,
"Accelerating Direct Preference Optimization with Prefix Sharing"), and the sequences of a batch are
packed into as few rows as fit the longest one (first-fit decreasing), so padding is only what is left
over in a row.

Layout of one pair, prompt ``p`` (P tokens), chosen ``c`` (C tokens), rejected ``r`` (R tokens):

    token      p0 … p_{P-2} | p_{P-1}  c0 … c_{C-1} | p_{P-1}  r0 … r_{R-1}
    branch     0  …  0      | 1        1  …  1      | 2        2  …  2
    position   0  …  P-2    | P-1      P  …  P+C-1  | P-1      P  …  P+R-1

The prompt's last token opens *both* branches. The fused LM head predicts token j + 1 from position j, and
the first token of each completion is predicted from the prompt's last token, so each branch needs its own
copy of it (one extra token per pair, against P − 1 saved). A token sees the earlier tokens of its own pair
that lie in the stem (branch 0) or in its own branch; with the position ids above, every completion token
therefore has exactly the context, at exactly the positions, it has in TRL's layout, so its logits are the
same (up to the order of the sums inside attention).

Under bf16 autocast the two layouts agree to bf16's own error, not more closely. The cause is the attention
kernel, not the layout's masks, positions or reductions: PyTorch's CPU SDPA (flash) kernel blocks queries and
keys by the row's length, and in bf16 its result for a token moves with that length, masked keys included.
Measured on SmolLM2-135M (AVX2 CPU): a pair's chosen log-probs from the shared layout are bit-identical to
those of TRL's row padded to the shared row's length, and TRL's own row moves by the same 0.17 nats (summed
over the answer) when padded from 45 to 48 tokens or more; with eager attention both layouts give
bit-identical bf16 results. Over the 32 sample pairs in batches of 4, the model's summed log-probs differ
from float32 by 0.201 nats per sequence on average in TRL's layout and 0.203 in the shared one (sequences of
about 71 nats), and from each other by 0.087; the DPO loss (LoRA r=16 at random init against the base)
differs from float32 by 1.9% in TRL's layout and 1.6% in the shared one, and between the layouts by 0.8%.
The tolerance the tests hold it to: over a set of batches, the mean |shared − TRL| of the bf16 loss (and of
the summed log-probs) is at most the mean |TRL in bf16 − TRL in float32|: prefix sharing moves the result
less than bf16 itself does.

Everything here is pure: lists of ids in, tensors out. The collator calls ``share_prefixes``; the trainer
builds the mask with ``prefix_sharing_mask`` and maps the fused head's per-token outputs back onto TRL's
``[chosen; rejected]`` layout with ``unshare``, so TRL's loss and metrics code runs on them unchanged.
"""

from __future__ import annotations

import torch

PAD_SEQUENCE = -1  # sequence id and branch of padding positions
KEYS = ("shared_input_ids", "shared_position_ids", "shared_sequence_ids", "shared_branch", "shared_labels",
        "shared_index")


def _round_up(value: int, multiple: int | None) -> int:
    return value if not multiple else -(-value // multiple) * multiple


def pack_first_fit(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices of ``lengths`` grouped into rows of total length ≤ ``capacity``, first-fit decreasing.

    Longest first, each into the first row with room (ties keep input order, so the result is
    deterministic). Every length must be ≤ capacity. Returns rows in creation order.
    """
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if lengths[index] > capacity:
            raise ValueError(f"sequence {index} has {lengths[index]} tokens, more than the row capacity {capacity}")
        for row, free in enumerate(room):
            if lengths[index] <= free:
                rows[row].append(index)
                room[row] -= lengths[index]
                break
        else:
            rows.append([index])
            room.append(capacity - lengths[index])
    return rows


def share_prefixes(prompts: list[list[int]], chosens: list[list[int]], rejecteds: list[list[int]],
                   trl_length: int, pad_token_id: int, pack: bool = True,
                   pad_to_multiple_of: int | None = None) -> dict[str, torch.Tensor]:
    """The shared layout of a batch of B pairs, plus where each of TRL's log-prob positions lies in it.

    prompts/chosens/rejecteds: B lists of token ids, already truncated as TRL truncates them; every prompt
    has at least one token. trl_length: L, the width of TRL's padded ``[chosen; rejected]`` batch.
    pack: several pairs per row (rows as long as the longest pair) instead of one pair per row.

    Returns (rows × T unless noted; T = the longest pair's 1 + P + C + R, rounded up to pad_to_multiple_of):
      shared_input_ids     token ids, ``pad_token_id`` on padding
      shared_position_ids  position of each token within its own pair's branch (see the module docstring)
      shared_sequence_ids  index of the pair in the batch, −1 on padding
      shared_branch        0 stem, 1 chosen branch, 2 rejected branch, −1 padding
      shared_labels        the completion tokens' ids where they are scored, −100 elsewhere
      shared_index         (2B, L − 1): for each position of TRL's shifted log-probs (chosen rows first),
                           the flat index into the shared (rows, T − 1) log-probs, or −1 where TRL's is 0
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("prefix sharing needs a non-empty prompt in every pair")
    count = len(prompts)
    lengths = [1 + len(p) + len(c) + len(r) for p, c, r in zip(prompts, chosens, rejecteds, strict=True)]
    width = _round_up(max(lengths), pad_to_multiple_of)
    rows = pack_first_fit(lengths, width) if pack else [[i] for i in range(count)]
    shape = (len(rows), width)
    input_ids = torch.full(shape, pad_token_id, dtype=torch.long)
    position_ids = torch.zeros(shape, dtype=torch.long)
    sequence_ids = torch.full(shape, PAD_SEQUENCE, dtype=torch.long)
    branch = torch.full(shape, PAD_SEQUENCE, dtype=torch.long)
    labels = torch.full(shape, -100, dtype=torch.long)
    index = torch.full((2 * count, trl_length - 1), -1, dtype=torch.long)
    for row, members in enumerate(rows):
        offset = 0
        for pair in members:
            prompt, chosen, rejected = prompts[pair], chosens[pair], rejecteds[pair]
            stem = len(prompt) - 1
            tokens = prompt + chosen + prompt[-1:] + rejected
            span = slice(offset, offset + len(tokens))
            input_ids[row, span] = torch.tensor(tokens)
            position_ids[row, span] = torch.tensor(
                list(range(len(prompt) + len(chosen))) + list(range(stem, stem + 1 + len(rejected))))
            sequence_ids[row, span] = pair
            branch[row, span] = torch.tensor([0] * stem + [1] * (1 + len(chosen)) + [2] * (1 + len(rejected)))
            for side, completion, start in ((0, chosen, offset + stem + 1), (1, rejected,
                                                                           offset + stem + 2 + len(chosen))):
                if not completion:
                    continue
                labels[row, start : start + len(completion)] = torch.tensor(completion)
                # token at shared position j is predicted at shifted position j − 1; in TRL's row it sits at
                # P + i and is predicted at P + i − 1
                index[side * count + pair, stem : stem + len(completion)] = (
                    row * (width - 1) + torch.arange(start - 1, start - 1 + len(completion)))
            offset += len(tokens)
    return {"shared_input_ids": input_ids, "shared_position_ids": position_ids,
            "shared_sequence_ids": sequence_ids, "shared_branch": branch, "shared_labels": labels,
            "shared_index": index}


def prefix_sharing_mask(sequence_ids: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """Which keys each query may attend to: (rows, 1, T, T) bool, True = attend.

    sequence_ids, branch: (rows, T) as ``share_prefixes`` returns them. A query sees an earlier (or the
    same) position of the same pair that is in the stem or in its own branch. Padding positions see the
    padding before them, themselves included, so no row of the mask is empty (an all-masked row makes
    SDPA return NaN, which would reach the gradients through the backward pass even though unscored).
    """
    length = sequence_ids.size(1)
    causal = torch.ones(length, length, dtype=torch.bool, device=sequence_ids.device).tril()
    same_pair = sequence_ids[:, :, None] == sequence_ids[:, None, :]
    visible = (branch[:, None, :] == 0) | (branch[:, :, None] == branch[:, None, :])
    return (causal & same_pair & visible)[:, None]


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean mask as the additive float mask eager attention adds to its scores (0 or dtype's min)."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


def unshare(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Per-token values of the shared layout, rearranged into TRL's ``[chosen; rejected]`` layout.

    values: (rows, T − 1), any dtype (log-probs, entropy, is_top1, ...). index: (2B, L − 1) from
    ``share_prefixes``. Returns (2B, L − 1): the value at each mapped position, 0 (False) elsewhere —
    what the fused head returns at unscored positions. Differentiable in ``values``.
    """
    gathered = values.reshape(-1)[index.clamp(min=0)]
    return torch.where(index >= 0, gathered, torch.zeros((), dtype=values.dtype, device=values.device))


def padding_share(mask: torch.Tensor) -> float:
    """Share of computed positions that are padding: mask is (rows, T), nonzero = a real token."""
    return 1.0 - float(mask.count_nonzero()) / max(mask.numel(), 1)
