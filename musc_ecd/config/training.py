"""Schema of the ``train`` section: preference (and SFT) training on a pairs artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from musc_ecd.config.choices import (
    CURRICULA,
    FINETUNING,
    LOSSES,
    PRECOMPUTE_REF,
    PREFIX_SHARING,
    REPORT_TO,
    TRAIN_PRECISION,
    WEIGHT_FALLBACKS,
    WEIGHT_SCHEMES,
)
from musc_ecd.config.validate import check


def _on_off(switch: str | bool) -> str:
    """An ``AUTO_ON_OFF`` switch as its name: YAML's true/false (what a user writes for a switch) become on/off."""
    if isinstance(switch, bool):
        return "on" if switch else "off"
    return switch


@dataclass
class LoraSettings:
    r: int = 16
    """LoRA rank."""
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str = "all-linear"
    """Which linear layers get adapters; ``all-linear`` as in the MuSC release."""


@dataclass
class TrainConfig:
    """Preference training on a pairs artifact (TokenWeightedDPOTrainer on TRL). Defaults: MuSC's release."""

    pairs: str | None = None
    """Pairs artifact (JSONL); None = the run's generated pairs, RUN_DIR/generate/pairs.jsonl."""
    finetuning: Literal[FINETUNING] = "lora"
    """``lora``: the reference is the base model with the adapter disabled; ``full``: a frozen copy."""
    loss: list[str] = field(default_factory=lambda: ["sigmoid"])
    """TRL loss types, combined: sigmoid (DPO), hinge (SLiC), ipo, sft. SLiC with its SFT term: [hinge, sft]."""
    loss_weights: list[float] | None = None
    """One weight per loss (e.g. SLiC's λ for sft); None = all 1."""
    beta: float = 0.1
    """β, the DPO temperature (for ipo: τ)."""
    learning_rate: float = 5e-6
    epochs: float = 3.0
    max_steps: int = -1
    """> 0 overrides epochs."""
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.1
    batch_size: int = 2
    """Pairs per device per step."""
    gradient_accumulation_steps: int = 4
    """Effective batch = batch_size × this × devices (8 in the MuSC release)."""
    max_length: int = 2048
    precompute_ref_log_probs: Literal[PRECOMPUTE_REF] | bool = "auto"
    """The reference's log-probabilities computed in one pass before training (TRL's precompute) instead of at
    every step. ``auto``: on when the preference phase runs more than one epoch (``epochs > 1``, no
    ``max_steps``): it then saves a reference pass per extra epoch, measured faster at the same loss
    (benchmarks/results/precompute_ref.json); off for one epoch or less, where it saves nothing. A bare YAML
    true/false means "on"/"off"."""
    max_pairs: int | None = None
    """Pair budget: train on at most N pairs, a random subset drawn with the run seed (order kept), so
    methods with different yields can be compared at the same budget. None = all. With ``loss=[sft]`` (or
    ``sft_first``) on pairs, the SFT set is the chosen answers of the same subset; on an ``sft.jsonl``, at most
    N of its examples, drawn the same way."""
    swap_labels: bool = False
    """The label-flip control: train on the same pairs with chosen and rejected swapped (each side's token
    weights go with it). Training that learns anything from the labels should then make the model worse; if
    it does not, the recipe is too weak to detect a method's effect. Preference losses only."""
    curriculum: Literal[CURRICULA] = "random"
    """Order by the pairs' ``difficulty`` (larger = harder)."""
    sft_first: bool = False
    """Supervised fine-tuning on the best answers (the method's ``sft.jsonl``, else each pair's chosen) before
    the preference phase, which then starts from the SFT model and uses it as the reference (METHODS.md §2
    step 6). Resumable like the rest of ``train``. ``loss=[sft]`` alone trains only this phase."""
    sft_epochs: float = 1.0
    """Epochs of the ``sft_first`` phase (``loss=[sft]`` alone uses ``epochs``)."""
    precision: Literal[TRAIN_PRECISION] = "auto"
    """``auto``: bf16 autocast over fp32 master weights where the hardware computes bf16 natively (the same
    test as ``model.dtype=auto``), else fp32."""
    gradient_checkpointing: bool = False
    prefix_sharing: Literal[PREFIX_SHARING] | bool = "auto"
    """Score each pair as one sequence prompt + chosen + rejected (the prompt computed once, pairs packed per
    row, no padding to the longest row): same loss and gradients as TRL's two rows per pair, fewer tokens
    computed. ``auto``: on where supported and measured faster (CPU; sdpa/eager attention, keep_start
    truncation), else TRL's layout with the reason logged; ``on``: an error where unsupported. YAML reads a
    bare on/off as true/false; those mean "on"/"off"."""
    save_steps: int = 50
    """Checkpoint every N optimizer steps; a rerun resumes from the last one."""
    save_total_limit: int = 2
    logging_steps: int = 1
    report_to: list[str] = field(default_factory=list)
    """Where the trainer also reports its metrics (``RUN_DIR/train/metrics.jsonl`` always has them):
    ``tensorboard`` (event files under RUN_DIR/train/runs/), ``wandb`` (offline unless WANDB_MODE is set;
    files under RUN_DIR/train/wandb/). Empty = nowhere else. Not part of the trained model's fingerprint."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    weights: Literal[("none", *WEIGHT_SCHEMES)] = "none"
    """Token-weight scheme (MuSC §1c), computed by ``musc-ecd weights`` into RUN_DIR/weights/pairs.jsonl,
    which ``train`` then reads. ``none``: train on the pairs as they are (weight columns, if any, apply)."""
    w_max: float = 2.0
    """Per-sequence weights are scaled to mean 1, then clipped to [0, w_max]."""
    edit_low: float = 0.1
    """``edit`` scheme: raw weight of tokens shared by rejected and chosen (diff tokens get 1)."""
    weights_fallback: Literal[WEIGHT_FALLBACKS] = "none"
    """Scheme for pairs the chosen one cannot weight (kl/bi_kl need a corrupted instruction, which fine pairs
    lack); ``none`` = such pairs are an error."""

    def __post_init__(self) -> None:
        self.prefix_sharing = _on_off(self.prefix_sharing)
        self.precompute_ref_log_probs = _on_off(self.precompute_ref_log_probs)
        unknown = [name for name in self.loss if name not in LOSSES]
        check(not unknown and bool(self.loss), "train.loss", self.loss, f"a non-empty list of {', '.join(LOSSES)}")
        check(self.loss_weights is None or len(self.loss_weights) == len(self.loss), "train.loss_weights",
              self.loss_weights, "null or one weight per entry of train.loss")
        check(self.beta > 0, "train.beta", self.beta, "a number > 0")
        check(self.learning_rate > 0, "train.learning_rate", self.learning_rate, "a number > 0")
        check(0 <= self.warmup_ratio < 1, "train.warmup_ratio", self.warmup_ratio, "a number in [0, 1)")
        check(self.batch_size >= 1, "train.batch_size", self.batch_size, "an integer >= 1")
        check(self.max_pairs is None or self.max_pairs >= 1, "train.max_pairs", self.max_pairs,
              "an integer >= 1 or null")
        check(all(name in REPORT_TO for name in self.report_to) and len(set(self.report_to)) == len(self.report_to),
              "train.report_to", self.report_to, f"a list of distinct {', '.join(REPORT_TO)} (empty = none)")
        check(self.sft_epochs > 0, "train.sft_epochs", self.sft_epochs, "a number > 0")
        check(not (self.sft_first and self.loss == ["sft"]), "train.sft_first", self.sft_first,
              "false when train.loss=[sft] (that run is already all SFT)")
        check(not (self.swap_labels and ("sft" in self.loss or self.sft_first)), "train.swap_labels",
              self.swap_labels, "false with an SFT loss or train.sft_first (they train on the chosen answers "
              "as such; the flip is a preference-pair control)")


