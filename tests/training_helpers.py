"""Shared pieces of the trainer tests: toy pairs, configs, one scored batch, hand-computed log-probs."""

from __future__ import annotations

import copy

import torch
from datasets import Dataset

PAIRS = [
    ("Write a haiku about rain.", "Rain taps the window softly.", "The sun is hot today."),
    ("List two fruits.", "Apple and pear.", "Carrots."),
    ("Answer in lowercase: what is water?", "water is a liquid.", "WATER IS WET."),
    ("Give a title in double angular brackets.", "<<Morning Light>>", "Morning Light"),
    ("Say hi without commas.", "hi there friend", "hi, there, friend"),
    ("Name a planet.", "Mars.", "The moon, which is not a planet at all."),
    ("Count to three.", "1 2 3", "one, two"),
    ("End with a question.", "Is it raining?", "It is raining."),
]


def conversational_rows(pairs=PAIRS) -> list[dict]:
    return [
        {
            "prompt": [{"role": "user", "content": p}],
            "chosen": [{"role": "assistant", "content": c}],
            "rejected": [{"role": "assistant", "content": r}],
        }
        for p, c, r in pairs
    ]


def dataset(rows=None) -> Dataset:
    return Dataset.from_list(rows if rows is not None else conversational_rows())


def config_kwargs(tmp_path, **overrides) -> dict:
    kwargs = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        use_cpu=True,
        bf16=False,
        report_to="none",
        gradient_checkpointing=False,
        beta=0.1,
        learning_rate=1e-3,
        max_length=256,
        seed=0,
        logging_steps=1,
        save_strategy="no",
    )
    kwargs.update(overrides)
    return kwargs


def perturbed_copy(model, scale=0.05, seed=1):
    """A copy of ``model`` moved away from its saved weights, so the policy differs from the reference."""
    clone = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in clone.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * scale)
    return clone


def score_one_batch(trainer, indices=(0, 1, 2, 3)):
    """Loss, last metrics and every parameter's gradient for one collated batch, in train mode."""
    model = trainer.model
    model.train()
    model.zero_grad(set_to_none=True)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in indices])
    trainer._metrics["train"].clear()
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    return loss.detach(), metrics, grads


def sequence_token_logps(model, input_ids, attention_mask, completion_mask):
    """Per-token log π(y_t | y_<t) of the completion tokens, zero elsewhere: (rows, seq − 1)."""
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    logps = torch.log_softmax(logits, dim=-1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return logps * completion_mask[:, 1:]
