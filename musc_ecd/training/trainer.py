"""``TokenWeightedDPOTrainer``: ``trl.DPOTrainer`` with per-token weights and a curriculum.

The loss is TRL's, applied to *weighted* sequence log-probabilities (MuSC §1d):

    L = −log σ( β·Σ_t w_t^c · r_t(y_c) − β·Σ_t w_t^r · r_t(y_r) ),   r_t = log π(y_t|·) − log π_ref(y_t|·)

and likewise for ``hinge`` (SLiC), ``ipo`` and ``sft`` — whatever TRL's ``loss_type`` list and
``loss_weights`` select. With every weight 1 (or no weight columns) it *is* TRL's DPO, bit for bit.

How, with the least override: TRL 1.16 gets per-token log-probs from a fused LM head that it patches
onto the model's ``forward``; every sum TRL forms (policy, reference, precomputed reference, SFT term,
the ``rewards/*`` and ``logps/*`` metrics) is a sum of those per-token values. We wrap that forward once
so that, while a batch is being scored, its per-token log-probs come out multiplied by the batch's
token weights. Everything else — reference handling (LoRA adapter disabled or a frozen copy),
precompute, logging, accelerate/DeepSpeed — stays TRL's.

Prefix sharing (``prefix_sharing``, see ``prefix_sharing.py``): the same wrapped forward, when the batch
carries the shared layout, runs the model once per pair on ``prompt + chosen + rejected`` (several pairs
packed per row) with a mask under which each completion sees only the prompt and itself, and maps the
fused head's per-token outputs back onto TRL's ``[chosen; rejected]`` layout. TRL's loss and metrics code
then runs on tensors equal to the ones its own rows would have given, for the policy and the reference
(live or precomputed) alike.

Overridden: dataset preparation (validate weight columns against the scored tokens; fold the weights
into the dataset fingerprint so TRL's precomputed-reference cache can never serve stale values), the
signature columns, the collator, the loss entry points (set/clear the current weights, log the mean
weights, stop on a non-finite loss) and the train sampler (curriculum).

Departures from the papers, on purpose: SLiC's margin term is TRL's ``hinge``, i.e. on log-ratios
against the reference with δ = 1/β; its SFT regulariser is TRL's ``sft`` term, a per-token mean.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from accelerate.utils import is_peft_model
from trl import DPOConfig, DPOTrainer

from musc_ecd.config import LOSSES
from musc_ecd.training.collator import DataCollatorForWeightedPreference
from musc_ecd.training.curriculum import CURRICULA, CurriculumSampler, LengthGroupedCurriculumSampler
from musc_ecd.training.prefix_sharing import KEYS as SHARED_KEYS
from musc_ecd.training.prefix_sharing import additive_mask, padding_share, prefix_sharing_mask, unshare

log = logging.getLogger(__name__)

WEIGHT_COLUMNS = ("chosen_weights", "rejected_weights")
SUPPORTED_LOSSES = LOSSES  # one list for the config's check and the trainer's
FINGERPRINT_TAG = "musc-ecd-token-weights-v1"
PREFIX_SHARING = ("auto", "on", "off")
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
        metadata={"help": "Order of training pairs by `difficulty` (larger = harder): random | easy_to_hard | "
                          "staged. Pairs without a `difficulty` column can only use random."},
    )
    prefix_sharing: str = field(
        default="auto",
        metadata={"help": "Score each pair as one sequence prompt + chosen + rejected (the prompt computed once), "
                          "several pairs packed per row: auto | on | off. auto = on where supported (SDPA or eager "
                          "attention, keep_start truncation, no prompt-learning adapter, the trainer's collator) "
                          "and measured faster (CPU); otherwise TRL's layout, with the reason logged. on = an "
                          "error where unsupported. Same loss, metrics and gradients as off."},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.curriculum not in CURRICULA:
            raise ValueError(f"curriculum={self.curriculum!r}; allowed: {', '.join(CURRICULA)}")
        if self.prefix_sharing not in PREFIX_SHARING:
            raise ValueError(f"prefix_sharing={self.prefix_sharing!r}; allowed: {', '.join(PREFIX_SHARING)}")


class _BatchScoring:
    """What the wrapped fused-head forward needs about the batch being scored: its token weights and, with
    prefix sharing, its shared layout."""

    def __init__(self) -> None:
        self.weights: torch.Tensor | None = None  # (2·batch, seq), the collator's completion_weights
        self.shared: dict[str, torch.Tensor] | None = None  # the collator's shared_* tensors
        self._masks: dict[tuple, torch.Tensor] = {}  # built once per batch, reused by policy and reference

    def start(self, inputs: dict) -> None:
        """Take the weights and the shared layout out of ``inputs`` (TRL would pass them to the model)."""
        self.weights = inputs.pop("completion_weights", None)
        shared = {key: inputs.pop(key) for key in SHARED_KEYS if key in inputs}
        self.shared = shared or None
        self._masks = {}

    def stop(self) -> None:
        self.weights, self.shared, self._masks = None, None, {}

    def wrap(self, module: torch.nn.Module) -> None:
        """Wrap ``module.forward`` (TRL's fused-head forward) once; later calls are no-ops."""
        if getattr(module, "_musc_ecd_batch_scoring", None) is self:
            return
        inner = module.forward

        @functools.wraps(inner)
        def forward(*args, **kwargs):
            if not kwargs.get("fused_lm_head"):
                return inner(*args, **kwargs)
            outputs = self._shared_forward(module, inner, args, kwargs) if self.shared else inner(*args, **kwargs)
            if self.weights is not None:
                outputs.log_probs = scale_shifted_log_probs(outputs.log_probs, self.weights)
            return outputs

        module.forward = forward
        module._musc_ecd_batch_scoring = self

    def _shared_forward(self, module, inner, args, kwargs):
        """Run the shared layout instead of TRL's rows; return outputs in TRL's layout."""
        if args:
            raise TypeError("prefix sharing expects the model to be called with keyword arguments, as TRL does")
        shared = self.shared
        rest = {k: v for k, v in kwargs.items() if k not in ("input_ids", "attention_mask", "labels", "position_ids")}
        outputs = inner(input_ids=shared["shared_input_ids"], attention_mask=self._mask(module),
                        position_ids=shared["shared_position_ids"], labels=shared["shared_labels"], **rest)
        index = shared["shared_index"]
        for name in FUSED_FIELDS:
            value = getattr(outputs, name, None)
            if value is not None:
                setattr(outputs, name, unshare(value, index))
        return outputs

    def _mask(self, module) -> torch.Tensor:
        implementation = module.config._attn_implementation
        dtype = next(module.parameters()).dtype
        key = (implementation, dtype)
        if key not in self._masks:
            mask = prefix_sharing_mask(self.shared["shared_sequence_ids"], self.shared["shared_branch"])
            self._masks[key] = mask if implementation == "sdpa" else additive_mask(mask, dtype)
        return self._masks[key]


def scale_shifted_log_probs(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Multiply next-token log-probs by the weights of the tokens they predict.

    log_probs: (rows, n) with n = seq − 1 (+ any leading virtual-token positions) — position j scores
    token j + 1. weights: (rows, seq), aligned with the input ids. Returns (rows, n).
    """
    shifted = weights[:, 1:].to(log_probs.dtype)
    extra = log_probs.size(1) - shifted.size(1)
    if extra > 0:  # prompt-learning adapters prepend virtual positions; they are never completion tokens
        shifted = F.pad(shifted, (extra, 0), value=1.0)
    return log_probs * shifted.to(log_probs.device)


class TokenWeightedDPOTrainer(DPOTrainer):
    """``trl.DPOTrainer`` that reads optional ``chosen_weights``/``rejected_weights`` and ``difficulty``.

    Same constructor as ``DPOTrainer``; ``args`` may be a ``TokenWeightedDPOConfig`` (for the curriculum)
    or a plain ``DPOConfig`` (random order).
    """

    def __init__(self, model=None, ref_model=None, args=None, data_collator=None, train_dataset=None,
                 eval_dataset=None, processing_class=None, **kwargs):
        args = args if args is not None else TokenWeightedDPOConfig(output_dir="token-weighted-dpo")
        self._check_supported(args)
        self._scoring = _BatchScoring()
        sharing_unsupported = _prefix_sharing_unsupported(model, args, data_collator, kwargs.get("peft_config"))
        self.prefix_sharing = _resolve_prefix_sharing(getattr(args, "prefix_sharing", "auto"), sharing_unsupported,
                                                      on_gpu=torch.cuda.is_available() and not args.use_cpu)
        if data_collator is None and processing_class is not None:
            pad_id = processing_class.pad_token_id
            if pad_id is None:
                pad_id = processing_class.eos_token_id
            data_collator = DataCollatorForWeightedPreference(
                pad_token_id=pad_id,
                max_length=args.max_length,
                truncation_mode=args.truncation_mode,
                pad_to_multiple_of=args.pad_to_multiple_of,
                prefix_sharing=self.prefix_sharing,
            )
        self._difficulties = None
        super().__init__(model=model, ref_model=ref_model, args=args, data_collator=data_collator,
                         train_dataset=train_dataset, eval_dataset=eval_dataset,
                         processing_class=processing_class, **kwargs)
        if self.train_dataset is not None and "difficulty" in self.train_dataset.column_names:
            self._difficulties = [float(d) for d in self.train_dataset["difficulty"]]
        if getattr(self.args, "curriculum", "random") != "random" and self._difficulties is None:
            raise ValueError(f"curriculum={self.args.curriculum!r} needs a `difficulty` column in the pairs")

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

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        present = [c for c in WEIGHT_COLUMNS if c in dataset.column_names]
        if not present:
            return dataset
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
                        "musc_ecd.training.completion_token_ids(tokenizer, prompt, completion)"
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
        sampler = CurriculumSampler(difficulties, curriculum, self.args.seed,
                                    num_epochs=math.ceil(self.args.num_train_epochs))
        if not grouped:
            return sampler
        # transformers' LengthGroupedSampler reads `input_ids`, which preference rows do not have, and would
        # undo the curriculum; the length of a pair is what the shared layout computes: prompt + both answers
        lengths = [len(p) + len(c) + len(r) for p, c, r in
                   zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"], strict=True)]
        return LengthGroupedCurriculumSampler(sampler, lengths, self.args.per_device_train_batch_size)

    # -- loss --------------------------------------------------------------------------------------

    def _hook_fused_heads(self) -> None:
        """Wrap the modules TRL gave a fused LM head: every policy/reference forward passes through them.

        Done lazily, at the first scoring call, because TRL patches them inside its ``__init__`` and may
        precompute the reference log-probs before that ``__init__`` returns.
        """
        policy = self.accelerator.unwrap_model(self.model)
        self._scoring.wrap(policy.get_base_model() if is_peft_model(policy) else policy)
        if self.ref_model is not None:
            self._scoring.wrap(self.accelerator.unwrap_model(self.ref_model))

    def _compute_loss(self, model, inputs, return_outputs):
        self._hook_fused_heads()
        difficulty = inputs.pop("difficulty", None)
        self._scoring.start(inputs)
        weights, shared = self._scoring.weights, self._scoring.shared
        try:
            result = super()._compute_loss(model, inputs, return_outputs)
        finally:
            self._scoring.stop()
        loss = result[0] if return_outputs else result
        if not torch.isfinite(loss.detach()).all():  # a sync point, once per step: cheap next to the step
            raise NonFiniteLossError(
                f"the loss became {loss.item()} at step {self.state.global_step}; training stopped before the "
                f"optimizer step, so the last saved checkpoint in {self.args.output_dir} is still good. "
                "Lower the learning rate or check the token weights."
            )
        self._log_weight_means(weights, inputs["completion_mask"])
        # Share of the positions the model computed that were padding (one small count per step)
        mode = "train" if self.model.training else "eval"
        computed = inputs["attention_mask"] if shared is None else shared["shared_sequence_ids"] >= 0
        self._metrics[mode]["tokens/padding_share"].append(padding_share(computed))
        if difficulty is not None:  # the curriculum's progress: mean difficulty of the pairs of this step
            mode = "train" if self.model.training else "eval"
            gathered = self.accelerator.gather_for_metrics(difficulty.to(loss.device))
            self._metrics[mode]["curriculum/difficulty"].append(gathered.float().mean().item())
        return result

    def compute_ref_log_probs(self, model, inputs):
        self._hook_fused_heads()
        inputs.pop("difficulty", None)
        self._scoring.start(inputs)
        try:
            return super().compute_ref_log_probs(model, inputs)
        finally:
            self._scoring.stop()

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
