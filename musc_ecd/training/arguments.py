"""``TrainConfig`` → TRL's configs, by one declarative table, and where the metrics are reported.

``TRL_FIELDS`` maps each of our fields that TRL reads to its TRL (``TrainingArguments``) name, the phases it
applies to (``preference``: ``TokenWeightedDPOConfig``; ``sft``: ``SFTConfig``) and a converter. Every other
``TrainConfig`` field is listed in ``CONSUMED_ELSEWHERE`` with what reads it; a test checks the two cover
the dataclass exactly, so a new field cannot be silently ignored.

``report_to`` (``tensorboard``, ``wandb``): a backend whose package is missing is a one-line error when
``train`` starts; W&B runs offline unless ``WANDB_MODE`` is set (this project is offline-first) and writes
under ``RUN_DIR/train`` unless ``WANDB_DIR`` is set; TensorBoard writes ``OUTPUT_DIR/runs/`` (transformers'
default, inside the run directory).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from musc_ecd.config import Config
from musc_ecd.errors import BackendUnavailableError, ConfigError

log = logging.getLogger(__name__)

Phase = Literal["preference", "sft"]
BOTH: tuple[Phase, ...] = ("preference", "sft")


@dataclass(frozen=True)
class Placement:
    """What a converter may read besides the value: where training runs, and for how long."""

    on_gpu: bool
    epochs: float = 1.0
    max_steps: int = -1


def _same(value: Any, placement: Placement) -> Any:
    return value


def _bf16(precision: str, placement: Placement) -> bool:
    """Whether training autocasts to bf16: ``train.precision`` as ``resolve_train_precision`` reads it here."""
    from musc_ecd.models.precision import resolve_train_precision

    return resolve_train_precision(precision, "cuda" if placement.on_gpu else "cpu") == "bf16"


def _precompute_ref(setting: str, placement: Placement) -> bool:
    """``auto``: on when the run has more than one epoch, where one pass before training replaces a reference
    pass per epoch (measured faster at the same loss: benchmarks/precompute_ref.py)."""
    if setting != "auto":
        return setting == "on"
    chosen = placement.max_steps <= 0 and placement.epochs > 1
    log.info("train.precompute_ref_log_probs=auto -> %s (%s)", "on" if chosen else "off",
             f"{placement.epochs:g} epochs" if placement.max_steps <= 0 else f"max_steps={placement.max_steps}")
    return chosen


def _list(value: Any, placement: Placement) -> list | None:
    return None if value is None else list(value)


def _report_to(value: list[str], placement: Placement) -> list[str] | str:
    return list(value) or "none"


@dataclass(frozen=True)
class TrlField:
    """One ``TrainConfig`` field as TRL receives it."""

    ours: str
    theirs: str
    phases: tuple[Phase, ...] = BOTH
    convert: Callable[[Any, Placement], Any] = _same


TRL_FIELDS: tuple[TrlField, ...] = (
    TrlField("batch_size", "per_device_train_batch_size"),
    TrlField("gradient_accumulation_steps", "gradient_accumulation_steps"),
    TrlField("learning_rate", "learning_rate"),
    TrlField("epochs", "num_train_epochs"),  # the sft_first phase overrides it with sft_epochs
    TrlField("max_steps", "max_steps"),
    TrlField("lr_scheduler", "lr_scheduler_type"),
    TrlField("warmup_ratio", "warmup_steps"),  # transformers 5: a value below 1 is a ratio of the total steps
    TrlField("max_length", "max_length"),
    TrlField("precision", "bf16", convert=_bf16),
    TrlField("gradient_checkpointing", "gradient_checkpointing"),
    TrlField("logging_steps", "logging_steps"),
    TrlField("save_steps", "save_steps"),
    TrlField("save_total_limit", "save_total_limit"),
    TrlField("report_to", "report_to", convert=_report_to),
    TrlField("loss", "loss_type", ("preference",), _list),
    TrlField("loss_weights", "loss_weights", ("preference",), _list),
    TrlField("beta", "beta", ("preference",)),
    TrlField("precompute_ref_log_probs", "precompute_ref_log_probs", ("preference",), _precompute_ref),
    TrlField("curriculum", "curriculum", ("preference",)),
    TrlField("prefix_sharing", "prefix_sharing", ("preference",)),
)

CONSUMED_ELSEWHERE: dict[str, str] = {
    "pairs": "run.train: the pairs artifact",
    "finetuning": "run.lora_config: LoRA adapter or full fine-tuning",
    "lora": "run.lora_config",
    "max_pairs": "selection.within_budget: the pair budget",
    "swap_labels": "selection.swap_labels: the label-flip control",
    "sft_first": "run.train: the SFT phase before the preference phase",
    "sft_epochs": "run.sft_phase: that phase's num_train_epochs",
    "weights": "the weights stage (musc_ecd.weighting); run.weighted_pairs checks its artifact",
    "w_max": "the weights stage",
    "edit_low": "the weights stage",
    "weights_fallback": "the weights stage",
}

# Settings of every phase that no config field changes.
FIXED: dict[str, Any] = {"save_strategy": "steps", "disable_tqdm": False}
PHASE_FIXED: dict[Phase, dict[str, Any]] = {"preference": {}, "sft": {"completion_only_loss": True}}


def trl_config_class(phase: Phase) -> type:
    if phase == "preference":
        from musc_ecd.training.trainer import TokenWeightedDPOConfig

        return TokenWeightedDPOConfig
    from trl import SFTConfig

    return SFTConfig


def trl_kwargs(cfg: Config, phase: Phase, output_dir: Path, on_gpu: bool) -> dict[str, Any]:
    """The keyword arguments of ``phase``'s TRL config: the table, then the run's seed, device and output."""
    placement = Placement(on_gpu, cfg.train.epochs, cfg.train.max_steps)
    values = {f.theirs: f.convert(getattr(cfg.train, f.ours), placement) for f in TRL_FIELDS if phase in f.phases}
    values.update(FIXED, **PHASE_FIXED[phase], output_dir=str(output_dir), seed=cfg.seed, use_cpu=not on_gpu)
    return values


def trl_config(cfg: Config, phase: Phase, output_dir: Path, **overrides: Any):
    """``TokenWeightedDPOConfig`` (preference) or ``SFTConfig`` (sft) for ``cfg.train``; ``overrides`` are TRL
    names (the sft_first phase's ``num_train_epochs``)."""
    import torch

    values = trl_kwargs(cfg, phase, output_dir, on_gpu=torch.cuda.is_available())
    return trl_config_class(phase)(**{**values, **overrides})


def check_launcher_precision(precision: str) -> None:
    """``accelerate launch`` passes its mixed precision (``--mixed_precision``, or its config file's, e.g. bf16 in
    ``configs/accelerate/ddp.yaml``) to transformers through ``ACCELERATE_MIXED_PRECISION``, which trains in it
    where ``train.precision`` resolves to fp32: the model would be trained in another precision than its key and
    summary record. A one-line error unless the two agree, before any model loads."""
    import torch

    ours = "bf16" if _bf16(precision, Placement(torch.cuda.is_available())) else "no"
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if launcher not in ("no", ours):
        instead = " or set train.precision=bf16," if launcher == "bf16" else ""
        raise ConfigError(f"config error: the launcher asks for mixed precision {launcher} (accelerate launch "
                          f"--mixed_precision or its config file) but train.precision={precision} trains in "
                          f"{'bf16' if ours == 'bf16' else 'fp32'} here;{instead} launch with --mixed_precision "
                          f"{ours}")


# ----------------------------------------------------------------------------------------------
# Reporting backends

# train.report_to name → the packages any one of which transformers' callback can use
REPORT_PACKAGES: dict[str, tuple[str, ...]] = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}


def check_report_backends(report_to: list[str]) -> None:
    """A one-line error for a backend whose package is not installed (instead of transformers' traceback)."""
    for name in report_to:
        packages = REPORT_PACKAGES[name]
        if not any(importlib.util.find_spec(package) is not None for package in packages):
            raise BackendUnavailableError(
                f"train.report_to={list(report_to)} needs the {name} package, which is not installed here; "
                f"pip install {packages[0]}, or leave {name} out of train.report_to")


@contextlib.contextmanager
def reporting_environment(report_to: list[str], log_dir: Path) -> Iterator[None]:
    """While training: W&B offline unless WANDB_MODE is set, its files under ``log_dir`` unless WANDB_DIR is set.
    Restored afterwards, so that one run's settings never leak into the next in the same process."""
    defaults = {"WANDB_MODE": "offline", "WANDB_DIR": str(log_dir)} if "wandb" in report_to else {}
    added = [key for key in defaults if key not in os.environ]
    for key in added:
        os.environ[key] = defaults[key]
    if added:
        log_dir.mkdir(parents=True, exist_ok=True)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
