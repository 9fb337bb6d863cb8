"""Batches for the token-weighted trainer: TRL's preference batch plus per-token weights (and, with prefix
sharing, the same pairs in the shared layout of ``prefix_sharing``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from trl.trainer.dpo_trainer import DataCollatorForPreference
from trl.trainer.utils import pad

from musc_ecd.training.prefix_sharing import share_prefixes


@dataclass
class DataCollatorForWeightedPreference(DataCollatorForPreference):
    """``DataCollatorForPreference`` that also emits ``completion_weights``.

    ``completion_weights`` has the shape and layout of ``completion_mask`` — (2·batch, seq), chosen rows
    first, right-padded, truncated exactly like the ids — holding each completion token's weight and 0 on
    prompt and padding positions. Examples without ``chosen_weights``/``rejected_weights`` (or with None)
    weigh every completion token 1. When no example of the batch carries weights, the key is left out and
    the loss is TRL's unchanged. When every example has a ``difficulty``, the batch carries it too.

    With ``prefix_sharing``, the batch also carries the ``shared_*`` tensors of
    ``prefix_sharing.share_prefixes`` (several pairs per row when ``pack``), which the trainer computes
    instead of TRL's rows; TRL's tensors stay, for its labels, masks and metrics (they cost no compute).
    Truncation is TRL's: ``keep_start`` cuts prompt + completion at ``max_length``, which cuts both
    completions after the same shared prompt; ``keep_end`` cuts the prompt by different amounts for
    chosen and rejected, so the trainer does not share prefixes with it. A batch with an empty prompt
    (nothing to predict the first completion token from) is left in TRL's layout.
    """

    prefix_sharing: bool = False
    pack: bool = True

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        output = super().torch_call(examples)
        if all(example.get("difficulty") is not None for example in examples):
            # Not used by the loss: the trainer logs it, so a curriculum's order is visible in the metrics.
            output["difficulty"] = torch.tensor([float(e["difficulty"]) for e in examples])
        if self.prefix_sharing and all(example["prompt_ids"] for example in examples):
            output.update(self._shared(examples, output["input_ids"].size(1)))
        if not any(example.get("chosen_weights") is not None or example.get("rejected_weights") is not None
                   for example in examples):
            return output
        rows = [self._row(e, "chosen") for e in examples] + [self._row(e, "rejected") for e in examples]
        if self.max_length is not None:
            keep_start = self.truncation_mode == "keep_start"
            cut = slice(None, self.max_length) if keep_start else slice(-self.max_length, None)
            rows = [row[cut] for row in rows]
        output["completion_weights"] = pad(
            [torch.tensor(row, dtype=torch.float32) for row in rows],
            padding_value=0.0,
            padding_side="right",
            pad_to_multiple_of=self.pad_to_multiple_of,
        )
        return output

    def _shared(self, examples: list[dict[str, Any]], trl_length: int) -> dict[str, torch.Tensor]:
        if self.max_length is not None and self.truncation_mode != "keep_start":
            raise ValueError("prefix sharing needs truncation_mode='keep_start' (keep_end cuts the prompt of "
                             "chosen and rejected differently)")
        prompts, chosens, rejecteds = [], [], []
        for example in examples:
            prompt = example["prompt_ids"]
            if self.max_length is not None:  # as TRL's cut of prompt + completion at max_length (keep_start)
                prompt = prompt[: self.max_length]
                room = self.max_length - len(prompt)
                chosens.append(example["chosen_ids"][:room])
                rejecteds.append(example["rejected_ids"][:room])
            else:
                chosens.append(example["chosen_ids"])
                rejecteds.append(example["rejected_ids"])
            prompts.append(prompt)
        return share_prefixes(prompts, chosens, rejecteds, trl_length, self.pad_token_id, pack=self.pack,
                              pad_to_multiple_of=self.pad_to_multiple_of)

    @staticmethod
    def _row(example: dict[str, Any], side: str) -> list[float]:
        weights = example.get(f"{side}_weights")
        completion = [1.0] * len(example[f"{side}_ids"]) if weights is None else list(weights)
        return [0.0] * len(example["prompt_ids"]) + completion
