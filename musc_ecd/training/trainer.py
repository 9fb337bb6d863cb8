"""``TokenWeightedDPOTrainer``: ``trl.DPOTrainer`` with per-token weights, prefix sharing and a curriculum.

The loss is TRL's, on *weighted* sequence log-probabilities (MuSC §1d; every formula in ``losses.py``):

    L = −log σ( β·Σ_t w_t^c · r_t(y_c) − β·Σ_t w_t^r · r_t(y_r) ),   r_t = log π(y_t|·) − log π_ref(y_t|·)

and likewise for ``hinge`` (SLiC), ``ipo`` and ``sft``, combined by TRL's ``loss_type`` list and
``loss_weights``. Without weight columns it *is* TRL's DPO, bit for bit; with every weight 1, to float rounding.

``_compute_loss`` is TRL 1.16's ``DPOTrainer._compute_loss`` step for step, for the options it supports,
with the weighting written out where TRL sums:

1. the policy scores the batch through the fused LM head TRL patched onto it (``_score``): per-token
   log-probs, entropy, mean logits and top-1 hits, in TRL's ``[chosen; rejected]`` rows (with prefix
   sharing, in the shared layout, mapped back onto those rows);
2. ``losses.weighted_sequence_logps(per_token_logps, weights, mask)``, where TRL has
   ``per_token_logps.sum(dim=1)``;
3. the reference the same way, under ``no_grad`` — the base model with the LoRA adapter disabled or the
   frozen copy, as TRL chooses — or TRL's precomputed column, filled by ``compute_ref_log_probs`` (the same
   weighted sum, once per dataset);
4. log-ratios, then ``losses.pair_loss`` / ``losses.sft_loss`` per ``loss_type``, ``losses.combined_loss``;
5. TRL's metrics, same names and reductions, plus ours (mean weights, padding share, difficulty).

Reference handling, precompute and its cache, logging, accelerate/DeepSpeed stay TRL's. Options whose
loss code is not reproduced here are refused up front (``_check_supported``).

Prefix sharing (``prefix_sharing``, see ``prefix_sharing.py``): when the batch carries the shared layout,
``_score`` runs the model once per pair on ``prompt + chosen + rejected`` (several pairs packed per row)
with a mask under which each completion sees only the prompt and itself, and maps the fused head's
per-token outputs back onto TRL's layout, so the loss and metrics read tensors equal to TRL's own rows.

Overridden besides the loss: dataset preparation (validate weight columns against the scored tokens; fold
the weights into the dataset fingerprint so TRL's precomputed-reference cache can never serve stale
values), the signature columns, the collator and the train sampler (curriculum).

Departures from the papers, on purpose: SLiC's margin term is TRL's ``hinge``, i.e. on log-ratios
against the reference with δ = 1/β; its SFT regulariser is TRL's ``sft`` term, a per-token mean.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import warnings
from dataclasses import dataclass, field

import torch
from accelerate.utils import is_peft_model
from trl import DPOConfig, DPOTrainer
from trl.models.utils import disable_gradient_checkpointing
from trl.trainer.dpo_trainer import DataCollatorForPreference
from trl.trainer.utils import use_adapter

from musc_ecd.config import LOSSES
from musc_ecd.config.choices import PREFIX_SHARING
from musc_ecd.tokens import pair_completion_token_ids
from musc_ecd.training import losses
from musc_ecd.training.collator import DataCollatorForWeightedPreference
from musc_ecd.training.curriculum import (
    CURRICULA,
    CurriculumSampler,
    LengthGroupedCurriculumSampler,
    samples_taken_per_epoch,
)
from musc_ecd.training.prefix_sharing import KEYS as SHARED_KEYS
from musc_ecd.training.prefix_sharing import additive_mask, padding_share, prefix_sharing_mask, unshare

log = logging.getLogger(__name__)

WEIGHT_COLUMNS = ("chosen_weights", "rejected_weights")
SUPPORTED_LOSSES = LOSSES  # one list for the config's check and the trainer's
FINGERPRINT_TAG = "musc-ecd-token-weights-v1"
# Attention implementations that take a custom 4-D mask as ``attention_mask`` (bool for SDPA, additive for eager).
MASKED_ATTENTION = ("sdpa", "eager")
# Per-token fields of TRL's FusedCausalLMOutput, each (rows, seq − 1), zero where the label is -100.
FUSED_FIELDS = ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1", "label_mask")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; raised before the optimizer step can spoil the weights."""


class WeightAlignmentError(ValueError):
    """A weight column whose length differs from the completion tokens the trainer scores."""


@dataclass
class TokenWeightedDPOConfig(DPOConfig):
    """``trl.DPOConfig`` plus the curriculum and prefix sharing. Every DPOConfig argument means what it means
    in TRL."""

    curriculum: str = field(
        default="random",
        metadata={"help": "Order of training pairs by `difficulty` (larger = harder, one scale for all pairs): "
                          "random | easy_to_hard | staged, cut to the samples the run really takes (max_steps or "
                          "epochs, accumulation, batch size, processes). Pairs without a `difficulty` on every "
                          "pair can only use random."},
    )
    prefix_sharing: str = field(
        default="auto",
        metadata={"help": "Score each pair as one sequence prompt + chosen + rejected (the prompt computed once), "
                          "several pairs packed per row: auto | on | off. auto = on where supported (SDPA or eager "
                          "attention, keep_start truncation, no prompt-learning adapter, the trainer's collator) "
                          "and measured faster (CPU); otherwise TRL's layout, with the reason logged. on = an "
                          "error where unsupported. Same loss, metrics and gradients as off (in float32; under "
                          "bf16 autocast, to within bf16's own error: see training/prefix_sharing.py)."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.curriculum not in CURRICULA:
            raise ValueError(f"curriculum={self.curriculum!r}; allowed: {', '.join(CURRICULA)}")
        if self.prefix_sharing not in PREFIX_SHARING:
            raise ValueError(f"prefix_sharing={self.prefix_sharing!r}; allowed: {', '.join(PREFIX_SHARING)}")


@dataclass
class _Batch:
    """What the trainer takes out of a collated batch before TRL's keys reach the model: the token weights,
    the shared layout (prefix sharing) and the difficulty."""

    weights: torch.Tensor | None  # (2·batch, seq), the collator's completion_weights, aligned with input_ids
    shared: dict[str, torch.Tensor] | None  # the collator's shared_* tensors
    difficulty: torch.Tensor | None
    masks: dict[tuple, torch.Tensor] = field(default_factory=dict)  # shared masks, one per (attention, dtype)

    @classmethod
    def take(cls, inputs: dict) -> _Batch:
        shared = {key: inputs.pop(key) for key in SHARED_KEYS if key in inputs}
        return cls(inputs.pop("completion_weights", None), shared or None, inputs.pop("difficulty", None))

    def shifted_weights(self) -> torch.Tensor | None:
        """(2·batch, seq − 1): the weight of the token each position predicts, as ``losses`` expects."""
        return None if self.weights is None else self.weights[:, 1:]

    def attention_mask(self, module: torch.nn.Module) -> torch.Tensor:
        """The shared layout's 4-D mask in the form ``module``'s attention takes; built once per batch and
        form, so the policy and the reference reuse it."""
        implementation = module.config._attn_implementation
        dtype = next(module.parameters()).dtype
        if (implementation, dtype) not in self.masks:
            mask = prefix_sharing_mask(self.shared["shared_sequence_ids"], self.shared["shared_branch"])
            self.masks[implementation, dtype] = mask if implementation == "sdpa" else additive_mask(mask, dtype)
        return self.masks[implementation, dtype]


class TokenWeightedDPOTrainer(DPOTrainer):
    """``trl.DPOTrainer`` that reads optional ``chosen_weights``/``rejected_weights`` and ``difficulty``.

    Same constructor as ``DPOTrainer``; ``args`` may be a ``TokenWeightedDPOConfig`` (for the curriculum)
    or a plain ``DPOConfig`` (random order).
    """

    def __init__(self, model=None, ref_model=None, args=None, data_collator=None, train_dataset=None,
                 eval_dataset=None, processing_class=None, **kwargs):
        args = args if args is not None else TokenWeightedDPOConfig(output_dir="token-weighted-dpo")
        self._check_supported(args)
        sharing_unsupported = _prefix_sharing_unsupported(model, args, data_collator, kwargs.get("peft_config"))
        self.prefix_sharing = _resolve_prefix_sharing(getattr(args, "prefix_sharing", "auto"), sharing_unsupported,
                                                      on_gpu=torch.cuda.is_available() and not args.use_cpu)
        self._difficulties = None
        self._builds_collator = data_collator is None
        super().__init__(model=model, ref_model=ref_model, args=args, data_collator=data_collator,
                         train_dataset=train_dataset, eval_dataset=eval_dataset,
                         processing_class=processing_class, **kwargs)
        self._use_weighted_collator()
        if not isinstance(self.data_collator, DataCollatorForWeightedPreference):
            _check_collator_carries_weights(self.data_collator,
                                            {"train": self.train_dataset, "eval": self.eval_dataset})
        curriculum = getattr(self.args, "curriculum", "random")
        if self.train_dataset is not None and "difficulty" in self.train_dataset.column_names:
            values = self.train_dataset["difficulty"]
            missing = sum(1 for d in values if d is None)
            if missing and curriculum != "random":
                raise ValueError(f"curriculum={curriculum!r} needs a difficulty on every pair; {missing} of "
                                 f"{len(values)} have none")
            self._difficulties = None if missing else [float(d) for d in values]
        if curriculum != "random" and self._difficulties is None:
            raise ValueError(f"curriculum={curriculum!r} needs a `difficulty` column in the pairs")
        self._curriculum: CurriculumSampler | None = None

    @staticmethod
    def _check_supported(args) -> None:
        unsupported = [loss for loss in args.loss_type if loss not in SUPPORTED_LOSSES]
        if unsupported:
            raise ValueError(f"loss_type {unsupported} is not supported with token weights; "
                             f"allowed: {', '.join(SUPPORTED_LOSSES)}")
        if args.use_liger_kernel:
            raise ValueError("use_liger_kernel fuses the loss and never exposes per-token log-probs; "
                             "token weights cannot apply. Set use_liger_kernel=False.")
        if args.ld_alpha is not None or args.use_weighting or args.f_divergence_type != "reverse_kl":
            raise ValueError("ld_alpha, use_weighting (WPO) and f-divergences other than reverse_kl reweight "
                             "tokens or sequences themselves; they are not combined with token weights here")

    # -- data --------------------------------------------------------------------------------------

    def _use_weighted_collator(self) -> None:
        """Replace TRL's collator by ours, once TRL has resolved the tokenizer (loaded from the model when no
        processing_class is given) and the pad token (args.pad_token, else the tokenizer's, else EOS): ours takes
        the same settings and adds the weights and the shared layout. Called before TRL's precompute pass (which
        runs inside ``DPOTrainer.__init__``) and after it."""
        if self._builds_collator and type(self.data_collator) is DataCollatorForPreference:
            self.data_collator = DataCollatorForWeightedPreference(
                pad_token_id=self.data_collator.pad_token_id,
                max_length=self.args.max_length,
                truncation_mode=self.args.truncation_mode,
                pad_to_multiple_of=self.args.pad_to_multiple_of,
                prefix_sharing=self.prefix_sharing,
            )

    def _precompute_ref_logps(self, dataset, name, batch_size):
        self._use_weighted_collator()
        return super()._precompute_ref_logps(dataset, name, batch_size)

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        present = [c for c in WEIGHT_COLUMNS if c in dataset.column_names]
        if not present:
            return dataset
        _check_tokenization(dataset, processing_class, present, dataset_name)
        for column in present:
            side = column.split("_")[0]
            ids_column = dataset[f"{side}_ids"]
            for index, (weights, ids) in enumerate(zip(dataset[column], ids_column, strict=True)):
                if weights is None:
                    continue
                if len(weights) != len(ids):
                    raise WeightAlignmentError(
                        f"{dataset_name} example {index}: {column} has {len(weights)} weights but the {side} "
                        f"completion has {len(ids)} tokens; compute weights over "
                        "musc_ecd.tokens.pair_completion_token_ids(tokenizer, prompt, chosen, rejected)"
                    )
                if any(not math.isfinite(w) or w < 0 for w in weights):
                    raise WeightAlignmentError(f"{dataset_name} example {index}: {column} must be finite and >= 0")
        # TRL keys its precomputed reference cache on the dataset fingerprint; make that fingerprint depend
        # on the weight values, so changed weights can never be served stale reference sums.
        digest = hashlib.sha256()
        for column in present:
            for chunk in dataset.data.column(column).chunks:
                for buffer in chunk.buffers():
                    if buffer is not None:
                        digest.update(memoryview(buffer))
        new_fingerprint = hashlib.sha256(
            f"{dataset._fingerprint}|{FINGERPRINT_TAG}|{digest.hexdigest()}".encode()
        ).hexdigest()[:16]
        return dataset.map(lambda row: row, new_fingerprint=new_fingerprint,
                           desc=f"Fingerprinting {dataset_name} weights")

    def _set_signature_columns_if_needed(self):
        super()._set_signature_columns_if_needed()
        for column in (*WEIGHT_COLUMNS, "difficulty"):
            if column not in self._signature_columns:
                self._signature_columns.append(column)

    def _get_train_sampler(self, train_dataset=None):
        curriculum = getattr(self.args, "curriculum", "random")
        grouped = self.args.train_sampling_strategy == "group_by_length"
        if (curriculum == "random" or self._difficulties is None) and not grouped:
            return super()._get_train_sampler(train_dataset)
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        difficulties = self._difficulties if self._difficulties is not None else [0.0] * len(dataset)
        # whole epochs until set_initial_training_values knows the run's length
        sampler = CurriculumSampler(difficulties, curriculum, self.args.seed,
                                    num_epochs=math.ceil(self.args.num_train_epochs))
        self._curriculum = sampler
        if not grouped:
            return sampler
        # transformers' LengthGroupedSampler reads `input_ids`, which preference rows do not have, and would
        # undo the curriculum; the length of a pair is what the shared layout computes: prompt + both answers
        lengths = [len(p) + len(c) + len(r) for p, c, r in
                   zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"], strict=True)]
        return LengthGroupedCurriculumSampler(sampler, lengths, self.args.per_device_train_batch_size)

    def set_initial_training_values(self, args, dataloader):
        """transformers' computation of the run's length; the curriculum is then cut to the samples the run
        really takes from each epoch (max_steps, fractional epochs, accumulation, batch size, processes)."""
        values = super().set_initial_training_values(args, dataloader)
        _, steps_per_epoch, _, _, _, batches_per_epoch, max_steps = values
        if self._curriculum is not None and batches_per_epoch:
            self._curriculum.plan(samples_taken_per_epoch(
                len(self._curriculum), max_steps, steps_per_epoch, batches_per_epoch,
                args.gradient_accumulation_steps, args.per_device_train_batch_size * args.world_size))
        return values

    # -- loss --------------------------------------------------------------------------------------

    def _compute_loss(self, model, inputs, return_outputs):
        mode = "train" if self.model.training else "eval"
        batch = _Batch.take(inputs)
        completion_mask = inputs["completion_mask"]
        mask = completion_mask[:, 1:]  # (2B, L − 1): position t predicts token t + 1
        weights = batch.shifted_weights()
        model_kwargs, labels = _model_inputs(inputs)
        if self.aux_loss_enabled:  # MoE: the router logits give outputs.aux_loss
            model_kwargs["output_router_logits"] = True

        outputs = self._score(model, model_kwargs, labels, batch)
        per_token_logps = outputs.log_probs[:, -mask.size(1):]  # prompt-learning adapters prepend positions
        chosen_logps, rejected_logps = losses.weighted_sequence_logps(per_token_logps, weights, mask).chunk(2)
        if self.precompute_ref_logps:
            ref_chosen_logps, ref_rejected_logps = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:  # the frozen reference never needs router logits
            ref_kwargs = {k: v for k, v in model_kwargs.items() if k != "output_router_logits"}
            reference = self.model if self.ref_model is None else self.ref_model
            ref_chosen_logps, ref_rejected_logps = self._reference_logps(reference, ref_kwargs, labels, batch, mask)
        chosen_logratios = chosen_logps - ref_chosen_logps
        rejected_logratios = rejected_logps - ref_rejected_logps

        # IPO's normaliser: each completion's weight mass (its token count without weights, as TRL counts)
        chosen_lengths, rejected_lengths = losses.weighted_lengths(batch.weights, completion_mask).chunk(2)
        terms = []
        for loss_type in self.loss_types:
            if loss_type == "sft":  # a per-token mean over the chosen completions: one value for the batch
                chosen_weights = None if weights is None else weights.chunk(2)[0]
                term = losses.sft_loss(per_token_logps.chunk(2)[0], chosen_weights, mask.chunk(2)[0])
                terms.append(term.expand(chosen_logps.size(0)))
            else:
                terms.append(losses.pair_loss(loss_type, chosen_logratios, rejected_logratios, self.beta,
                                              chosen_lengths, rejected_lengths))
        loss = losses.combined_loss(terms, self.loss_weights)
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(outputs.aux_loss).mean().item())
        self._stop_if_not_finite(loss)

        self._log_trl_metrics(mode, inputs, outputs, mask, chosen_logps, rejected_logps, chosen_logratios,
                              rejected_logratios)
        self._log_weight_means(batch.weights, completion_mask)
        # Share of the positions the model computed that were padding (one small count per step)
        computed = inputs["attention_mask"] if batch.shared is None else batch.shared["shared_sequence_ids"] >= 0
        self._metrics[mode]["tokens/padding_share"].append(padding_share(computed))
        if batch.difficulty is not None:  # the curriculum's progress: mean difficulty of the pairs of this step
            gathered = self.accelerator.gather_for_metrics(batch.difficulty.to(loss.device))
            self._metrics[mode]["curriculum/difficulty"].append(gathered.float().mean().item())

        if return_outputs:  # as TRL: deprecated; the fused head builds no logits, so run the model once more
            warnings.warn("`return_outputs=True` is deprecated in TRL and recomputes the logits with an extra "
                          "forward pass", FutureWarning, stacklevel=2)
            with torch.no_grad():
                outputs = model(**model_kwargs)
            return loss, outputs
        return loss

    def _stop_if_not_finite(self, loss: torch.Tensor) -> None:
        """Raise ``NonFiniteLossError`` on every process when the loss is NaN or infinite on any of them.

        A collective: one all-reduce of a flag per micro-step (a sync point, cheap next to the step), before
        backward, so all processes stop at the same step; a process stopping alone would leave the others
        waiting in the gradient all-reduce."""
        here = not bool(torch.isfinite(loss.detach()).all())
        flag = torch.tensor([float(here)], device=loss.device)
        if self.accelerator.num_processes > 1:
            flag = self.accelerator.reduce(flag, reduction="sum")
        if flag.item() > 0:
            what = loss.item() if here else "non-finite on another process"
            raise NonFiniteLossError(
                f"the loss became {what} at step {self.state.global_step}; training stopped before the optimizer "
                f"step, so the last saved checkpoint in {self.args.output_dir} is still good. Lower the learning "
                "rate or check the token weights."
            )

    def compute_ref_log_probs(self, model, inputs):
        """(Σ_t w_t·log π_ref over chosen, over rejected) for one padded batch: TRL's precompute pass."""
        batch = _Batch.take(inputs)
        model_kwargs, labels = _model_inputs(inputs)
        return self._reference_logps(model, model_kwargs, labels, batch, inputs["completion_mask"][:, 1:],
                                     autocast=True)

    def _reference_logps(self, model, model_kwargs, labels, batch: _Batch, mask, autocast=False):
        """The reference's weighted sequence log-probs, (B,) chosen and (B,) rejected. ``model`` is the frozen
        copy, or the policy, which then scores with its adapter disabled (or TRL's ``ref`` adapter)."""
        adapter = contextlib.nullcontext()
        if self.ref_model is None and is_peft_model(self.model):
            unwrapped = self.accelerator.unwrap_model(self.model)
            adapter = use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None)
        with (torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs),
              adapter, self.accelerator.autocast() if autocast else contextlib.nullcontext()):
            outputs = self._score(model, model_kwargs, labels, batch)
        per_token_logps = outputs.log_probs[:, -mask.size(1):]
        return losses.weighted_sequence_logps(per_token_logps, batch.shifted_weights(), mask).chunk(2)

    def _score(self, model, model_kwargs: dict, labels: torch.Tensor, batch: _Batch):
        """The fused LM head's per-token outputs for the batch, each (2B, L − 1) in TRL's layout (zero where the
        label is -100): from TRL's rows, or from the shared layout mapped back onto them."""
        if batch.shared is None:
            return model(**model_kwargs, labels=labels, fused_lm_head=True)
        shared = batch.shared
        module = self.accelerator.unwrap_model(model)
        module = module.get_base_model() if is_peft_model(module) else module
        rest = {k: v for k, v in model_kwargs.items() if k not in ("input_ids", "attention_mask", "position_ids")}
        outputs = model(input_ids=shared["shared_input_ids"], attention_mask=batch.attention_mask(module),
                        position_ids=shared["shared_position_ids"], labels=shared["shared_labels"],
                        fused_lm_head=True, **rest)
        for name in FUSED_FIELDS:
            value = getattr(outputs, name, None)
            if value is not None:
                setattr(outputs, name, unshare(value, shared["shared_index"]))
        return outputs

    def _log_trl_metrics(self, mode, inputs, outputs, mask, chosen_logps, rejected_logps, chosen_logratios,
                         rejected_logratios) -> None:
        """TRL's metrics, as ``DPOTrainer._compute_loss`` computes them: same names, same reductions, over
        all processes."""
        metrics, gather = self._metrics[mode], self.accelerator.gather_for_metrics
        seq_len = mask.size(1)
        entropy_sum = gather((outputs.entropy[:, -seq_len:].detach() * mask).sum()).sum()
        total_tokens = gather(mask.sum()).sum()
        metrics["entropy"].append((entropy_sum / total_tokens).item() if total_tokens > 0 else 0.0)
        if mode == "train":
            self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item() // self._tp_size
        metrics["num_tokens"] = [self._total_train_tokens]
        chosen_mask, rejected_mask = mask.chunk(2, dim=0)
        for side, mean_logits, side_mask in zip(("chosen", "rejected"), outputs.mean_logits[:, -seq_len:].chunk(2),
                                                (chosen_mask, rejected_mask), strict=True):
            total = gather(mean_logits[side_mask.bool()].sum()).sum().item()
            count = gather(side_mask.sum()).sum().item()
            metrics[f"logits/{side}"].append(total / count if count > 0 else 0.0)
        chosen_is_top1 = outputs.is_top1[:, -seq_len:].chunk(2, dim=0)[0]
        correct = gather((chosen_is_top1 & chosen_mask.bool()).sum()).sum()
        count = gather(chosen_mask.sum()).sum()
        metrics["mean_token_accuracy"].append((correct / count).item() if count > 0 else 0.0)
        chosen_rewards = self.beta * chosen_logratios.detach()
        rejected_rewards = self.beta * rejected_logratios.detach()
        metrics["rewards/chosen"].append(self.accelerator.gather(chosen_rewards).mean().item())
        metrics["rewards/rejected"].append(self.accelerator.gather(rejected_rewards).mean().item())
        accuracies = (chosen_rewards > rejected_rewards).float()
        metrics["rewards/accuracies"].append(self.accelerator.gather(accuracies).mean().item())
        metrics["rewards/margins"].append(self.accelerator.gather(chosen_rewards - rejected_rewards).mean().item())
        metrics["logps/chosen"].append(self.accelerator.gather(chosen_logps.detach()).mean().item())
        metrics["logps/rejected"].append(self.accelerator.gather(rejected_logps.detach()).mean().item())

    def _log_weight_means(self, weights: torch.Tensor | None, completion_mask: torch.Tensor) -> None:
        """Mean token weight of chosen and rejected completions, over all processes (one gather, one sync)."""
        mode = "train" if self.model.training else "eval"
        mask = completion_mask.float()
        values = mask if weights is None else weights.to(mask.device) * mask
        chosen, rejected = values.chunk(2, dim=0)
        chosen_mask, rejected_mask = mask.chunk(2, dim=0)
        totals = torch.stack([chosen.sum(), rejected.sum(), chosen_mask.sum(), rejected_mask.sum()])
        chosen_total, rejected_total, chosen_count, rejected_count = (
            self.accelerator.gather_for_metrics(totals.unsqueeze(0)).sum(0).tolist()
        )
        self._metrics[mode]["weights/chosen_mean"].append(chosen_total / max(chosen_count, 1.0))
        self._metrics[mode]["weights/rejected_mean"].append(rejected_total / max(rejected_count, 1.0))


def _check_collator_carries_weights(collator, datasets: dict) -> None:
    """A data collator given by the caller must put the weight columns into the batch (``completion_weights``),
    or training would run plain DPO on weighted pairs without a word; tried on one weighted example."""
    for name, dataset in datasets.items():
        for split, data in (dataset.items() if isinstance(dataset, dict) else [(name, dataset)]):
            present = [c for c in WEIGHT_COLUMNS if data is not None and c in data.column_names]
            weighted = next((index for index, row in enumerate(data.select_columns(present))
                             if any(row[c] is not None for c in present)), None) if present else None
            if weighted is not None and "completion_weights" not in collator([data[weighted]]):
                raise ValueError(
                    f"the {split} dataset has token weights ({', '.join(present)}) but data_collator="
                    f"{type(collator).__name__} does not carry them into the batch (no completion_weights), so they "
                    "would be ignored; pass no data_collator (the trainer builds DataCollatorForWeightedPreference) "
                    "or a DataCollatorForWeightedPreference")


def _check_tokenization(dataset, processing_class, weight_columns: list[str], dataset_name: str) -> None:
    """Every weighted example's completions, tokenized as the weights were (``pair_completion_token_ids``), must
    be exactly the ids TRL scores; a difference (another TRL or tokenizer version) would shift every weight."""
    if "prompt" not in dataset.column_names:  # pre-tokenized data: nothing to tokenize again
        return
    columns = ["prompt", "chosen", "rejected", "chosen_ids", "rejected_ids", *weight_columns]
    for index, example in enumerate(dataset.select_columns(columns)):
        if all(example[column] is None for column in weight_columns):
            continue
        ours = pair_completion_token_ids(processing_class, example["prompt"], example["chosen"], example["rejected"])
        for side, ids in zip(("chosen", "rejected"), ours, strict=True):
            if ids != example[f"{side}_ids"]:
                raise WeightAlignmentError(
                    f"{dataset_name} example {index}: the {side} tokens the weights are computed over "
                    f"(musc_ecd.tokens.pair_completion_token_ids, {len(ids)} tokens) differ from the {side} tokens "
                    f"TRL scores ({len(example[f'{side}_ids'])} tokens); the weights cannot be aligned. Is TRL "
                    "at the pinned version (1.16)?")


def _model_inputs(inputs: dict) -> tuple[dict, torch.Tensor]:
    """TRL's model arguments for a preference batch, and the labels that make the fused head score only the
    completion tokens (-100 elsewhere)."""
    model_kwargs = {k: v for k, v in inputs.items() if k not in ("completion_mask", "ref_chosen_logps",
                                                                 "ref_rejected_logps")}
    model_kwargs["use_cache"] = False
    return model_kwargs, inputs["input_ids"].masked_fill(inputs["completion_mask"] == 0, -100)


def _prefix_sharing_unsupported(model, args, data_collator, peft_config) -> str | None:
    """Why prefix sharing cannot be used with these settings, or None when it can."""
    if data_collator is not None:
        return "a custom data_collator is given (only the trainer's collator builds the shared layout)"
    if args.max_length is not None and args.truncation_mode != "keep_start":
        return f"truncation_mode={args.truncation_mode!r} cuts the prompt of chosen and rejected differently"
    if isinstance(model, str):
        implementation = (args.model_init_kwargs or {}).get("attn_implementation") or "sdpa"
    else:
        implementation = getattr(model.config, "_attn_implementation", None)
    if implementation not in MASKED_ATTENTION:
        return f"attention implementation {implementation!r} takes no custom 4-D mask (needs sdpa or eager)"
    adapters = [peft_config] if peft_config is not None else []
    if not isinstance(model, str) and is_peft_model(model):
        adapters += list(model.peft_config.values())
    if any(getattr(adapter, "is_prompt_learning", False) for adapter in adapters):
        return "prompt-learning adapters prepend virtual tokens to every row"
    return None


def _resolve_prefix_sharing(mode: str, unsupported: str | None, on_gpu: bool) -> bool:
    """``on``: share or fail; ``auto``: share where supported and measured faster (so far: CPU)."""
    if mode == "off":
        return False
    if mode == "on":
        if unsupported is not None:
            raise ValueError(f"prefix_sharing='on' cannot be used: {unsupported}")
        return True
    if unsupported is None and on_gpu:
        unsupported = "not yet measured faster on GPU (prefix_sharing='on' uses it there)"
    if unsupported is None:
        log.info("prefix sharing on: one sequence prompt + chosen + rejected per pair, packed rows")
        return True
    log.info("prefix sharing off, TRL's layout used: %s", unsupported)
    return False
