"""A scripted ``Generator`` for tests: answers come from a function of the request, no model at all.

Method tests use it to drive every branch (unparsable output, empty answers, ...) deterministically,
and it records every call so tests can assert that a stage made one batched call, not one per item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from musc_ecd.models.generator import Chat, Completion, SamplingParams, cut_at_stop, validate_requests

Responder = Callable[[Chat, int, SamplingParams], str]
"""(request, sample index, params) → the text to return."""


class ScriptedGenerator:
    def __init__(self, respond: Responder, name: str = "scripted"):
        self.respond = respond
        self.name = name
        self.calls: list[tuple[list[Chat], SamplingParams]] = []

    def generate(self, requests: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]:
        validate_requests(requests)
        self.calls.append((list(requests), params))
        results = []
        for chat in requests:
            samples = []
            for index in range(params.n):
                text, stopped = cut_at_stop(self.respond(chat, index, params), params.stop)
                words = text.split()
                finish = "stop" if stopped or len(words) <= params.max_new_tokens else "length"
                text = text if finish == "stop" else " ".join(words[: params.max_new_tokens])
                # One "token" per word: enough for code that counts tokens.
                samples.append(Completion(text, tuple(range(min(len(words), params.max_new_tokens))), finish))
            results.append(samples)
        return results
