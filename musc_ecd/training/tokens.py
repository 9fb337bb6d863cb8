"""``completion_token_ids``, kept importable here; it lives in ``musc_ecd.tokens`` so that data building
(the weights stage) can use it without importing the training package (TRL's trainer)."""

from musc_ecd.tokens import completion_token_ids

__all__ = ["completion_token_ids"]
