"""The ``train`` stage: a pairs artifact in, a trained adapter (or model) and its metrics out.

    RUN_DIR/train/checkpoint-N/   Trainer checkpoints (a rerun resumes from the last complete one)
    RUN_DIR/train/metrics.jsonl   one line per logged step (TRL's metrics, weight means, loss, lr)
    RUN_DIR/train/runs/           TensorBoard event files (train.report_to=[tensorboard])
    RUN_DIR/model/                the LoRA adapter (or full model) + tokenizer, loadable with peft/transformers
    RUN_DIR/model/manifest.json   written last: the stage is complete

The pairs are ``train.pairs`` (default RUN_DIR/generate/pairs.jsonl, ``musc_ecd.layout``) or, with
``train.weights`` set, their weighted copy RUN_DIR/weights/pairs.jsonl, which the weights stage makes
(``musc-ecd weights``, or ``run``'s weights stage) and ``train`` only checks: made with this config, of the
pairs ``train.pairs`` holds now.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from musc_ecd.config import Config
from musc_ecd.errors import ConfigError, DataError, TrainingDivergedError
from musc_ecd.fingerprints import MODEL, WEIGHTS, fingerprint_matches, model_fingerprint
from musc_ecd.layout import RunLayout
from musc_ecd.store import DirectoryLock, file_sha256, read_jsonl, retire, write_atomic
from musc_ecd.training.arguments import (
    Phase,
    check_launcher_precision,
    check_report_backends,
    reporting_environment,
    trl_config,
)
from musc_ecd.training.curriculum import rank_within_groups
from musc_ecd.training.selection import swap_labels, within_budget

log = logging.getLogger(__name__)

PAIR_COLUMNS = ("prompt", "chosen", "rejected")
OPTIONAL_COLUMNS = ("chosen_weights", "rejected_weights", "difficulty")
WEIGHTS_COMMAND = "run `musc-ecd weights CONFIG` with the same config and overrides first"


class WeightsNotComputedError(DataError):
    """``train.weights`` is set but RUN_DIR/weights holds no weights of this config and these pairs."""


def load_pairs(path: Path) -> list[dict]:
    """The pairs a trainer needs from an artifact: TRL's columns plus weights and difficulty.

    ``difficulty`` is put on the curriculum's common scale (``common_difficulty``). Provenance (``meta``)
    otherwise stays on disk: its shape differs between methods and TRL never reads it. A line without
    prompt/chosen/rejected is an error naming the line: a pairs artifact is produced by this project, so a bad
    line means a damaged file, not noisy input.
    """
    if not path.is_file():
        raise DataError(f"no pairs artifact at {path}; run `musc-ecd generate` first or set train.pairs")
    rows, methods = [], []
    for index, record in enumerate(read_jsonl(path)):
        missing = [c for c in PAIR_COLUMNS if not record.get(c)]
        if missing:
            raise DataError(f"{path}: pair {index} (id {record.get('id', '?')}) has no {', '.join(missing)}")
        row = {c: record[c] for c in PAIR_COLUMNS}
        row.update({c: record.get(c) for c in OPTIONAL_COLUMNS})
        rows.append(row)
        meta = record.get("meta")
        methods.append(meta.get("method") if isinstance(meta, dict) else None)
    if not rows:
        raise DataError(f"{path} holds no pairs")
    common_difficulty(rows, methods)
    # Leave out optional columns that no row has, so the dataset has no all-None columns.
    present = {c for c in OPTIONAL_COLUMNS if any(r[c] is not None for r in rows)}
    return [{k: v for k, v in row.items() if k in PAIR_COLUMNS or k in present} for row in rows]


def common_difficulty(rows: list[dict], methods: list[str | None]) -> None:
    """Replace each pair's ``difficulty`` by its mid-rank among the pairs of its method (``meta.method``) in the
    artifact, in (0, 1), larger = harder (``curriculum.rank_within_groups``).

    Each method grades difficulty its own way (MuSC coarse 1/k corrupted constraints, MuSC fine the rejected
    answer's judged score, ECD 1/(rounds apart), APC the responders' strength gap); one artifact can mix them
    (``method=musc``), and a curriculum must compare like with like. The map keeps every method's own order and
    levels. Pairs without a difficulty keep none."""
    graded = [index for index, row in enumerate(rows) if row["difficulty"] is not None]
    ranked = rank_within_groups([rows[i]["difficulty"] for i in graded], [methods[i] for i in graded])
    for index, value in zip(graded, ranked, strict=True):
        rows[index]["difficulty"] = value


def train(cfg: Config, run_dir: Path) -> dict:
    """Train ``model.policy`` on the pairs; resume from the last checkpoint; return the summary."""
    check_report_backends(cfg.train.report_to)
    check_launcher_precision(cfg.train.precision)
    layout = RunLayout(run_dir)
    pairs_path = layout.pairs_source(cfg)
    if not pairs_path.is_file():
        raise DataError(f"no pairs artifact at {pairs_path}; run `musc-ecd generate` first or set train.pairs")
    if cfg.train.weights != "none":
        pairs_path = weighted_pairs(cfg, layout, pairs_path)
    model_dir, work_dir = layout.model, layout.train
    key = model_fingerprint(cfg)
    from musc_ecd.training.sft import sft_selection, sft_source

    sft_only, sft_data = list(cfg.train.loss) == ["sft"], None
    if sft_only or cfg.train.sft_first:
        sft_data = sft_source(pairs_path, layout.pairs_source(cfg))
    # The model is keyed by the data it learnt from (pairs, and the SFT set), not only by the config.
    source = file_sha256(pairs_path) + (f"+sft:{file_sha256(sft_data)}" if sft_data else "")
    # Under `accelerate launch` every rank runs this; rank 0 alone holds the lock and writes the manifest.
    main_process = int(os.environ.get("RANK", "0")) == 0
    with DirectoryLock(run_dir, "train") if main_process else contextlib.nullcontext():
        manifest = model_dir / "manifest.json"
        if manifest.is_file():
            done = json.loads(manifest.read_text())
            same_settings = fingerprint_matches(done.get("fingerprint"), cfg, MODEL)
            if same_settings and done.get("pairs_sha256") == source:
                if done["fingerprint"] != key and main_process:  # keyed by an older musc-ecd: re-keyed
                    write_atomic(manifest, json.dumps({**done, "fingerprint": key}, indent=2) + "\n")
                log.info("the trained model in %s is complete; nothing to do", model_dir)
                return done["summary"]
            if main_process:  # other settings (train.beta) or other pairs (data.limit raised): the model is stale
                retire(model_dir, f"trained on other pairs than {pairs_path} now holds" if same_settings
                       else "trained with other settings")
        _retire_stale_checkpoints(work_dir, source, key, main_process)
        if sft_only:
            chosen = sft_selection(sft_data, cfg.train.max_pairs, cfg.seed)
            # "pairs": the records drawn (the budget's unit); "sft_examples": their distinct answers
            summary = _fit_sft(cfg, chosen.rows, work_dir, model_dir, cfg.model.policy, cfg.train.epochs,
                               {"sft_data": str(sft_data), "pairs": chosen.selected,
                                **_budget_record(cfg, chosen.available)})
        else:
            available = load_pairs(pairs_path)
            rows = within_budget(available, cfg.train.max_pairs, cfg.seed)
            if cfg.train.swap_labels:
                rows = swap_labels(rows)
            if cfg.train.curriculum != "random" and not all(r.get("difficulty") is not None for r in rows):
                raise ConfigError(f"config error: train.curriculum={cfg.train.curriculum} needs a difficulty on "
                                  f"every pair, and {pairs_path} has pairs without one")
            base, sft_phase = cfg.model.policy, None
            if cfg.train.sft_first:
                base, sft_phase = _sft_phase(cfg, sft_data, work_dir / "sft", main_process)
            summary = _fit(cfg, rows, work_dir, model_dir, pairs_path, base, _budget_record(cfg, len(available)))
            if sft_phase is not None:
                summary["sft_phase"] = sft_phase
                if main_process:  # evaluation merges the adapter into this base, not into model.policy
                    write_atomic(model_dir / BASE_MODEL_FILE, json.dumps({"base_model": base}) + "\n")
        if main_process:
            write_atomic(manifest, json.dumps({"fingerprint": key, "pairs_sha256": source, "summary": summary},
                                              indent=2) + "\n")
    return summary


def _retire_stale_checkpoints(work_dir: Path, source: str, key: str, main_process: bool) -> None:
    """Checkpoints resume only training on the same pairs with the same settings; ``train/pairs.json`` says which
    they were (one written before it named the settings cannot tell, and is retired too)."""
    stamp = work_dir / "pairs.json"
    made = {"pairs_sha256": source, "fingerprint": key}
    if main_process and stamp.is_file() and json.loads(stamp.read_text()) != made:
        retire(work_dir, "its checkpoints were trained on other pairs or with other settings")
    if main_process:
        work_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(stamp, json.dumps(made) + "\n")


def weighted_pairs(cfg: Config, layout: RunLayout, source: Path) -> Path:
    """RUN_DIR/weights/pairs.jsonl, once checked to hold the ``train.weights`` weights of this config, computed
    for exactly the pairs of ``source`` as they are now; else a one-line error naming the command to run."""
    from musc_ecd.weighting import items_of

    stage_dir, artifact, manifest = layout.weights, layout.weighted_pairs, layout.weights / "manifest.json"
    scheme = cfg.train.weights
    if not (artifact.is_file() and manifest.is_file()):
        raise WeightsNotComputedError(f"train.weights={scheme} but {stage_dir} holds no finished token weights; "
                                      f"{WEIGHTS_COMMAND}")
    if not fingerprint_matches(json.loads(manifest.read_text()).get("fingerprint"), cfg, WEIGHTS):
        summary = stage_dir / "summary.json"
        made = json.loads(summary.read_text()).get("scheme") if summary.is_file() else None
        what = f"{made} weights" if made and made != scheme else f"{scheme} weights made with another config"
        raise WeightsNotComputedError(f"{artifact} holds {what}, not the train.weights={scheme} weights of this "
                                      f"config (train.weights, its options and model.policy key them); "
                                      f"{WEIGHTS_COMMAND}")
    expected = list(items_of({pair["id"]: pair for pair in read_jsonl(source)}))
    if [record.get("item_id") for record in read_jsonl(artifact)] != expected:
        raise WeightsNotComputedError(f"{artifact} holds the weights of other pairs than {source} holds now; "
                                      f"{WEIGHTS_COMMAND}")
    return artifact


def _budget_record(cfg: Config, available: int) -> dict:
    """What the summary says of the pair budget and the flip: how many there were to train on, the budget."""
    return {"pairs_available": available, "max_pairs": cfg.train.max_pairs, "swap_labels": cfg.train.swap_labels}


def _fit(cfg: Config, rows: list[dict], work_dir: Path, model_dir: Path, pairs_path: Path, base: str,
         selection: dict) -> dict:
    """The preference phase: ``TokenWeightedDPOTrainer`` on the pairs."""
    import torch

    from musc_ecd.models.precision import precision_record
    from musc_ecd.training.trainer import TokenWeightedDPOTrainer

    fitted = _fit_phase(cfg, "preference", TokenWeightedDPOTrainer, rows, base, work_dir, model_dir)
    summary = {
        "base_model": base,
        "finetuning": cfg.train.finetuning,
        "loss": list(cfg.train.loss),
        "pairs": len(rows),
        **selection,
        "pairs_path": str(pairs_path),
        "weighted_pairs": sum(1 for r in rows if r.get("chosen_weights") is not None),
        "global_steps": fitted.result.global_step,
        "train_loss": fitted.result.training_loss,
        "train_seconds_this_session": round(fitted.seconds, 1),
        "resumed_from": fitted.checkpoint,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "precision": "bf16" if fitted.bf16 else "fp32",
        "precision_detail": {**precision_record(cfg.model.dtype), "weights_dtype": fitted.weights_dtype,
                             "autocast_bf16": fitted.bf16},
        "final_metrics": fitted.last_metrics,
    }
    _write_summary(fitted, model_dir, summary)
    log.info("trained %d steps in %.1f s -> %s", fitted.result.global_step, fitted.seconds, model_dir)
    return summary


# ----------------------------------------------------------------------------------------------
# Supervised fine-tuning: train.loss=[sft] alone, or the train.sft_first phase

BASE_MODEL_FILE = "base_model.json"


def _fit_sft(cfg: Config, rows: list[dict], work_dir: Path, out_dir: Path, base: str, epochs: float,
             extra: dict | None = None) -> dict:
    """SFT with TRL's ``SFTTrainer`` (loss on the completion only), resumable from ``work_dir``'s checkpoints."""
    from trl import SFTTrainer

    fitted = _fit_phase(cfg, "sft", SFTTrainer, rows, base, work_dir, out_dir, num_train_epochs=epochs)
    summary = {"base_model": base, "finetuning": cfg.train.finetuning, "loss": ["sft"], "sft_examples": len(rows),
               "pairs": len(rows), "global_steps": fitted.result.global_step,
               "train_loss": fitted.result.training_loss,
               "train_seconds_this_session": round(fitted.seconds, 1), "resumed_from": fitted.checkpoint,
               "precision": "bf16" if fitted.bf16 else "fp32", "final_metrics": fitted.last_metrics, **(extra or {})}
    _write_summary(fitted, out_dir, summary)
    return summary


def _sft_phase(cfg: Config, source: Path, phase_dir: Path, main_process: bool) -> tuple[str, dict]:
    """``train.sft_first``: SFT once (skipped when done), then the model the preference phase starts from.

    With LoRA the SFT adapter is merged into its base, so that the preference phase's reference (the base
    with the new adapter disabled) is the SFT model, as in SFT-then-DPO."""
    manifest = phase_dir / "manifest.json"
    if manifest.is_file():
        done = json.loads(manifest.read_text())
        log.info("the SFT phase in %s is complete; starting the preference phase from it", phase_dir)
        return done["model"], done["summary"]
    from musc_ecd.training.sft import sft_selection

    chosen = sft_selection(source, cfg.train.max_pairs, cfg.seed)
    summary = _fit_sft(cfg, chosen.rows, phase_dir / "checkpoints", phase_dir / "model", cfg.model.policy,
                       cfg.train.sft_epochs)
    summary["sft_data"] = str(source)
    model = phase_dir / "model"
    if cfg.train.finetuning == "lora" and main_process:
        from musc_ecd.models.adapters import merge_adapter

        model = merge_adapter(phase_dir / "model", cfg.model.policy, phase_dir / "merged",
                              trust_remote_code=cfg.model.trust_remote_code)
    if main_process:
        write_atomic(manifest, json.dumps({"model": str(model), "summary": summary}, indent=2) + "\n")
    return str(model), summary


# ----------------------------------------------------------------------------------------------
# What both phases share


@dataclass
class _Fitted:
    """One finished ``trainer.train`` and what its summary reports."""

    trainer: Any
    result: Any  # transformers' TrainOutput
    checkpoint: str | None  # resumed from
    seconds: float
    bf16: bool
    weights_dtype: str
    last_metrics: dict


def _fit_phase(cfg: Config, phase: Phase, trainer_class: type, rows: list[dict], base: str, work_dir: Path,
               out_dir: Path, **overrides: Any) -> _Fitted:
    """Load ``base``, train it on ``rows`` with ``trainer_class`` and TRL's config for ``phase`` (LoRA or full,
    resumed from ``work_dir``'s last checkpoint, metrics to ``work_dir/metrics.jsonl``), save it to ``out_dir``."""
    from datasets import Dataset

    from musc_ecd.models.loading import load_model
    from musc_ecd.training.callbacks import MetricsJsonl
    from musc_ecd.training.trainer import NonFiniteLossError

    # Mixed precision keeps fp32 master weights; only an explicit model.dtype loads lower precision.
    dtype = "float32" if cfg.model.dtype == "auto" else cfg.model.dtype
    # Loaded on CPU: the Trainer (accelerate) places it on each process's own device.
    model, tokenizer = load_model(base, dtype=dtype, trust_remote_code=cfg.model.trust_remote_code, device="cpu")
    args = trl_config(cfg, phase, work_dir, **overrides)
    peft_config = lora_config(cfg) if cfg.train.finetuning == "lora" else None
    with reporting_environment(cfg.train.report_to, work_dir):
        trainer = trainer_class(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                processing_class=tokenizer, peft_config=peft_config)
        checkpoint = last_complete_checkpoint(work_dir)
        metrics = MetricsJsonl(work_dir / "metrics.jsonl", resume_step=_checkpoint_step(checkpoint))
        trainer.add_callback(metrics)
        if checkpoint:
            log.info("resuming from %s", checkpoint)
        started = time.perf_counter()
        try:
            result = trainer.train(resume_from_checkpoint=checkpoint)
        except NonFiniteLossError as exc:
            last = last_complete_checkpoint(work_dir)
            raise TrainingDivergedError(f"{exc} Last good checkpoint: {last or 'none saved yet'}") from None
        seconds = time.perf_counter() - started
    trainer.save_model(str(out_dir))  # the adapter (LoRA) or the full model (by the main process)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out_dir))
    return _Fitted(trainer, result, checkpoint, seconds, bool(args.bf16), str(model.dtype).split(".")[-1],
                   metrics.last)


def _trainer_args(cfg: Config, work_dir: Path):
    """The preference phase's ``TokenWeightedDPOConfig`` (the name tests/test_precision.py imports)."""
    return trl_config(cfg, "preference", work_dir)


def _write_summary(fitted: _Fitted, out_dir: Path, summary: dict) -> None:
    if fitted.trainer.is_world_process_zero():
        write_atomic(out_dir / "train_summary.json", json.dumps(summary, indent=2) + "\n")


def lora_config(cfg: Config):
    """peft's ``LoraConfig`` from ``train.lora``."""
    from peft import LoraConfig

    lora = cfg.train.lora
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM")


def last_complete_checkpoint(work_dir: Path) -> str | None:
    """The newest ``checkpoint-N`` in ``work_dir`` that was written to the end, or None.

    transformers writes a checkpoint in place, its ``trainer_state.json`` last; a run killed while writing one
    leaves it without that file, and resuming from it would fail, so such a checkpoint is passed over."""
    if not work_dir.is_dir():
        return None
    steps = [int(path.name.split("-", 1)[1]) for path in work_dir.glob("checkpoint-*")
             if path.name.split("-", 1)[1].isdigit() and (path / "trainer_state.json").is_file()]
    return str(work_dir / f"checkpoint-{max(steps)}") if steps else None


def _checkpoint_step(checkpoint: str | None) -> int | None:
    if checkpoint is None:
        return None
    step = Path(checkpoint).name.rsplit("-", 1)[-1]
    return int(step) if step.isdigit() else None
