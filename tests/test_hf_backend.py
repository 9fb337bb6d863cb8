"""The hf backend on the tiny model: the Generator contract that every method relies on."""

from __future__ import annotations

import pytest
import torch
from helpers import PROMPTS, chat

from musc_ecd.models import SamplingParams
from musc_ecd.models.sampling import top_p_filter

REQUESTS = [chat(p) for p in PROMPTS]


def test_greedy_batched_equals_one_at_a_time(tiny_hf):
    params = SamplingParams(max_new_tokens=16)
    batched = tiny_hf.generate(REQUESTS, params)
    alone = [tiny_hf.generate([r], params)[0] for r in REQUESTS]
    assert [b[0].token_ids for b in batched] == [a[0].token_ids for a in alone]
    assert len({b[0].text for b in batched}) > 1  # prompts matter: not one constant answer


def test_n_samples_differ_and_are_reproducible(tiny_hf):
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=12, seed=7)
    first = tiny_hf.generate(REQUESTS[:2], params)
    assert [len(samples) for samples in first] == [3, 3]
    assert len({s.token_ids for s in first[0]}) == 3  # three different samples
    assert tiny_hf.generate(REQUESTS[:2], params) == first
    other_seed = tiny_hf.generate(REQUESTS[:2], SamplingParams(n=3, temperature=1.0, max_new_tokens=12, seed=8))
    assert other_seed != first


def test_sampling_does_not_depend_on_batch_mates(tiny_hf):
    params = SamplingParams(n=2, temperature=0.9, top_p=0.95, max_new_tokens=12, seed=1)
    together = tiny_hf.generate(REQUESTS, params)
    reversed_order = tiny_hf.generate(REQUESTS[::-1], params)[::-1]
    alone = [tiny_hf.generate([r], params)[0] for r in REQUESTS]
    assert together == reversed_order == alone


def test_greedy_n_gives_n_identical_copies(tiny_hf):
    out = tiny_hf.generate(REQUESTS[:1], SamplingParams(n=2, max_new_tokens=8))
    assert len(out[0]) == 2 and out[0][0] == out[0][1]


def test_max_new_tokens_and_finish_reason(tiny_hf):
    out = tiny_hf.generate(REQUESTS, SamplingParams(max_new_tokens=5))
    for (completion,) in out:
        assert len(completion.token_ids) <= 5
        assert completion.finish_reason == ("length" if len(completion.token_ids) == 5 else "stop")
    assert any(c.finish_reason == "length" for (c,) in out)


def test_stop_string_cuts_text_before_it(tiny_hf):
    free = tiny_hf.generate(REQUESTS, SamplingParams(max_new_tokens=24))
    # choose a stop string that really occurs a few characters into an unconstrained answer
    text = next(c.text for (c,) in free if len(c.text.strip()) > 6)
    stop = text[3:5]
    index = REQUESTS[[c.text for (c,) in free].index(text)]
    (stopped,) = tiny_hf.generate([index], SamplingParams(max_new_tokens=24, stop=(stop,)))[0]
    assert stopped.finish_reason == "stop"
    assert stop not in stopped.text
    assert text.startswith(stopped.text) and len(stopped.text) == text.find(stop)
    decoded = tiny_hf.tokenizer.decode(list(stopped.token_ids), skip_special_tokens=True)
    # the ids end before the token that completed the stop string (which may straddle two tokens)
    assert stop not in decoded and (decoded.startswith(stopped.text) or stopped.text.startswith(decoded))


def test_bad_request_is_a_clear_error(tiny_hf):
    with pytest.raises(ValueError, match="request 0"):
        tiny_hf.generate(["not a chat"], SamplingParams())


def test_top_p_filter_by_hand():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    # mass before each token: 0, .5, .8, .95 → top_p=0.8 keeps the first two, renormalised
    kept = top_p_filter(probs, 0.8)
    torch.testing.assert_close(kept, torch.tensor([[0.625, 0.375, 0.0, 0.0]]))
    torch.testing.assert_close(top_p_filter(probs, 0.01), torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    assert top_p_filter(probs, 1.0) is probs


def test_prompt_longer_than_the_context_is_a_clear_error(tiny_hf):
    from musc_ecd.errors import PromptTooLongError

    with pytest.raises(PromptTooLongError, match=r"request 1 has \d+ prompt tokens but the model's context is 2048"):
        tiny_hf.generate([chat("hi"), chat("word " * 3000)], SamplingParams(max_new_tokens=2))
