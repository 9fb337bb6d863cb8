"""``completion_token_ids`` and ``pair_completion_token_ids``, kept importable here; they live in
``musc_ecd.tokens`` so that data building (the weights stage) can use them without importing the training
package (TRL's trainer)."""

from musc_ecd.tokens import completion_token_ids, pair_completion_token_ids

__all__ = ["completion_token_ids", "pair_completion_token_ids"]
