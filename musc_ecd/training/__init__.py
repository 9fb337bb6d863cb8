"""Token-weighted preference training on TRL (DPO, SLiC/hinge, IPO, SFT), LoRA or full, with curricula."""

from musc_ecd.tokens import completion_token_ids, pair_completion_token_ids
from musc_ecd.training.collator import DataCollatorForWeightedPreference
from musc_ecd.training.curriculum import CurriculumSampler, curriculum_order
from musc_ecd.training.trainer import (
    NonFiniteLossError,
    TokenWeightedDPOConfig,
    TokenWeightedDPOTrainer,
    WeightAlignmentError,
)

__all__ = [
    "CurriculumSampler",
    "DataCollatorForWeightedPreference",
    "NonFiniteLossError",
    "TokenWeightedDPOConfig",
    "TokenWeightedDPOTrainer",
    "WeightAlignmentError",
    "completion_token_ids",
    "curriculum_order",
    "pair_completion_token_ids",
]
