"""The one tokenization of a completion that the trainer scores and the weight producers annotate.

Token weights are only meaningful if weight ``i`` lands on the token the loss scores at position
``i``. ``completion_token_ids`` reproduces, step for step, how ``trl.DPOTrainer`` (1.16) tokenizes a
pair: the prompt alone with the generation prompt, prompt + completion as one sequence, and the
completion = what follows their common prefix (for plain text, after appending EOS as TRL does). The
trainer checks every weight column against the ids TRL produced, so a drift fails loudly.
"""

from __future__ import annotations

from trl.data_utils import _tokenize, common_prefix_length, is_conversational


def completion_token_ids(tokenizer, prompt, completion) -> list[int]:
    """Ids of ``completion`` as the trainer scores them after ``prompt``.

    prompt/completion: lists of chat messages (TRL's conversational format) or plain strings.
    """
    if is_conversational({"prompt": prompt}):
        prompt_ids = _tokenize(tokenizer, prompt, add_generation_prompt=True, tools=None)["input_ids"]
        full_ids = _tokenize(tokenizer, prompt + completion, tools=None)["input_ids"]
    else:
        eos = tokenizer.eos_token
        if eos is not None and not completion.endswith(eos):
            completion = completion + eos
        prompt_ids = _tokenize(tokenizer, prompt)["input_ids"]
        full_ids = _tokenize(tokenizer, prompt + completion)["input_ids"]
    return list(full_ids[common_prefix_length(prompt_ids, full_ids) :])
