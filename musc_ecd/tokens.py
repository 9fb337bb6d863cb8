"""The one tokenization of a completion that the trainer scores and the weight producers annotate.

Token weights are only meaningful if weight ``i`` lands on the token the loss scores at position
``i``. ``pair_completion_token_ids`` reproduces, step for step, how ``trl.DPOTrainer`` (1.16) tokenizes a
pair: the prompt alone with the generation prompt, prompt + chosen and prompt + rejected as one sequence
each (for plain text, after appending EOS as TRL does), and each completion = what follows the prompt's
common prefix with *both* sequences (TRL cuts chosen and rejected at the same place).
``completion_token_ids`` is the one-sided form, equal to it whenever the tokenized prompt is a prefix of
both sequences (every chat template we ship; a BPE merge across the prompt's end can break it).

The trainer checks every weighted example against the ids TRL produced: the weight columns must have as
many weights as TRL's completions have tokens, and ``pair_completion_token_ids`` with the trainer's
tokenizer must give exactly TRL's ids (``TokenWeightedDPOTrainer._prepare_dataset``), so a drift between
the two tokenizations fails loudly instead of shifting weights onto other tokens.
"""

from __future__ import annotations

from trl.data_utils import _tokenize, common_prefix_length, is_conversational


def pair_completion_token_ids(tokenizer, prompt, chosen, rejected) -> tuple[list[int], list[int]]:
    """(chosen ids, rejected ids) as the trainer scores them after ``prompt``.

    prompt/chosen/rejected: lists of chat messages (TRL's conversational format) or plain strings.
    """
    prompt_ids, chosen_full, rejected_full = _full_ids(tokenizer, prompt, chosen, rejected)
    cut = min(common_prefix_length(prompt_ids, chosen_full), common_prefix_length(prompt_ids, rejected_full))
    return list(chosen_full[cut:]), list(rejected_full[cut:])


def completion_token_ids(tokenizer, prompt, completion) -> list[int]:
    """Ids of ``completion`` as the trainer scores them after ``prompt`` (see the module docstring for when
    they differ from ``pair_completion_token_ids``)."""
    prompt_ids, full_ids = _full_ids(tokenizer, prompt, completion)
    return list(full_ids[common_prefix_length(prompt_ids, full_ids) :])


def _full_ids(tokenizer, prompt, *completions) -> list[list[int]]:
    """The prompt's ids (with the generation prompt), then prompt + each completion's, as TRL tokenizes them."""
    if is_conversational({"prompt": prompt}):
        return [_tokenize(tokenizer, prompt, add_generation_prompt=True, tools=None)["input_ids"],
                *(_tokenize(tokenizer, prompt + completion, tools=None)["input_ids"] for completion in completions)]
    eos = tokenizer.eos_token
    if eos is not None:
        completions = tuple(c if c.endswith(eos) else c + eos for c in completions)
    return [_tokenize(tokenizer, prompt)["input_ids"],
            *(_tokenize(tokenizer, prompt + completion)["input_ids"] for completion in completions)]
