"""Batches for the token-weighted trainer: TRL's preference batch plus per-token weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from trl.trainer.dpo_trainer import DataCollatorForPreference
from trl.trainer.utils import pad


@dataclass
class DataCollatorForWeightedPreference(DataCollatorForPreference):
    """``DataCollatorForPreference`` that also emits ``completion_weights``.

    ``completion_weights`` has the shape and layout of ``completion_mask`` — (2·batch, seq), chosen rows
    first, right-padded, truncated exactly like the ids — holding each completion token's weight and 0 on
    prompt and padding positions. Examples without ``chosen_weights``/``rejected_weights`` (or with None)
    weigh every completion token 1. When no example of the batch carries weights, the key is left out and
    the loss is TRL's unchanged. When every example has a ``difficulty``, the batch carries it too.
    """

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        output = super().torch_call(examples)
        if all(example.get("difficulty") is not None for example in examples):
            # Not used by the loss: the trainer logs it, so a curriculum's order is visible in the metrics.
            output["difficulty"] = torch.tensor([float(e["difficulty"]) for e in examples])
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

    @staticmethod
    def _row(example: dict[str, Any], side: str) -> list[float]:
        weights = example.get(f"{side}_weights")
        completion = [1.0] * len(example[f"{side}_ids"]) if weights is None else list(weights)
        return [0.0] * len(example["prompt_ids"]) + completion
