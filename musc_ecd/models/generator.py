"""The one generation interface every method uses; backends hide batching, padding, templates, seeds.

A request is a chat: a list of ``{"role", "content"}`` messages. ``Generator.generate(requests,
params)`` returns, for each request, ``params.n`` ``Completion`` s. Semantics shared by all backends:

- The chat template of the model's tokenizer is applied with the generation prompt appended, and the
  resulting token ids (not text) are what the model sees; both backends use ``encode_chat``.
- ``temperature == 0`` is greedy. Otherwise each of the ``n`` samples of a request gets its own
  random stream, seeded from ``(params.seed, the request's content, the sample index)``. A sample
  therefore does not depend on which other requests share its batch, or on whether an interrupted
  run resumed: the same request with the same seed gives the same text on the same backend.
- ``stop``: the text ends *before* the first stop string; ``finish_reason == "stop"``. The end-of-
  sequence token also gives ``"stop"``; running out of ``max_new_tokens`` gives ``"length"``.
- ``token_ids`` are the generated ids up to (excluding) the end-of-sequence token, or the token in
  which a stop string completed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from musc_ecd.errors import BackendUnavailableError, ConfigError, PromptTooLongError

Message = dict[str, str]
Chat = list[Message]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
            "stop": list(self.stop),
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Completion:
    text: str
    token_ids: tuple[int, ...]
    finish_reason: FinishReason
    meta: dict = field(default_factory=dict, compare=False)


@runtime_checkable
class Generator(Protocol):
    """Anything that answers chats. ``name`` identifies the model in provenance."""

    name: str

    def generate(self, requests: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]: ...


def sample_seed(base_seed: int, request: Chat, sample_index: int) -> int:
    """The seed of one sample: a stable hash of (run seed, request content, sample index)."""
    blob = json.dumps([base_seed, request, sample_index], sort_keys=True, ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop string, and whether one occurred."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def tokens_before_stop(tokenizer, ids: Sequence[int], stop: Sequence[str]) -> int:
    """Number of leading tokens whose decoded text does not yet contain a stop string."""
    for count in range(1, len(ids) + 1):
        _, stopped = cut_at_stop(tokenizer.decode(ids[:count], skip_special_tokens=True), stop)
        if stopped:
            return count - 1
    return len(ids)


def make_completion(tokenizer, ids: Sequence[int], ended_by_eos: bool, params: SamplingParams) -> Completion:
    """The one place both backends turn generated ids (EOS removed) into a ``Completion``.

    Text is decoded here from the ids, not taken from the backend, so a truncated multi-byte
    character or a stop string is handled identically whichever backend generated the ids.
    """
    ids = list(ids)
    text = tokenizer.decode(ids, skip_special_tokens=True)
    finish: FinishReason = "stop" if ended_by_eos else "length"
    if params.stop:
        text, stopped = cut_at_stop(text, params.stop)
        if stopped:
            finish = "stop"
            ids = ids[: tokens_before_stop(tokenizer, ids, params.stop)]
    return Completion(text=text, token_ids=tuple(ids), finish_reason=finish)


def engine_completion(tokenizer, ids: Sequence[int], eos_ids: Sequence[int], params: SamplingParams) -> Completion:
    """A ``Completion`` from the ids an engine generated for one row, its end token kept when one ended it. As in
    hf, the end-of-sequence token counts against ``max_new_tokens``; the contract's ids exclude it."""
    ids = list(ids)[: params.max_new_tokens]
    ended_by_eos = bool(ids) and ids[-1] in eos_ids
    return make_completion(tokenizer, ids[:-1] if ended_by_eos else ids, ended_by_eos, params)


def progress_bar(show: bool, total: int, description: str):
    """A tqdm bar over ``total`` sequences, or None when hidden or there is nothing to do."""
    if not show or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="seq", leave=False)


def eos_ids(configured, tokenizer) -> list[int]:
    """The ids that end generation: the model's generation config's ``eos_token_id`` (an id, a list, or None)
    and the tokenizer's; every backend stops on the same set."""
    ids: set[int] = {configured} if isinstance(configured, int) else set(configured or ())
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


def encode_chat(tokenizer, chat: Chat) -> list[int]:
    """Token ids of a chat with the generation prompt, exactly as the model will see them.

    Rendered to text, then tokenized without extra special tokens: the template already contains
    them, and this is the path TRL takes too, so prompts here and in training agree.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"model '{tokenizer.name_or_path}' has no chat template; musc-ecd sends chats, so use an "
            "instruct/chat model or a tokenizer directory that defines chat_template"
        )
    text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def check_prompt_fits(prompt_lengths: Sequence[int], context: int | None, setting: str) -> None:
    """A prompt that leaves no room to generate is a clear error, not a crash deep inside the backend."""
    if context is None:
        return
    for index, length in enumerate(prompt_lengths):
        if length >= context:
            raise PromptTooLongError(
                f"request {index} has {length} prompt tokens but the model's context is {context} tokens; "
                f"raise {setting} (if the model allows) or shorten the prompt"
            )


def encode_requests(tokenizer, requests: Sequence[Chat], context: int | None,
                    setting: str = "the model (max_position_embeddings)") -> list[list[int]]:
    """Every backend's first step: the requests checked, encoded by ``encode_chat``, each checked to fit."""
    validate_requests(requests)
    encoded = [encode_chat(tokenizer, chat) for chat in requests]
    check_prompt_fits([len(ids) for ids in encoded], context, setting)
    return encoded


def validate_requests(requests: Sequence[Chat]) -> None:
    for i, chat in enumerate(requests):
        if not isinstance(chat, list) or not chat:
            raise ValueError(f"request {i} must be a non-empty list of messages, got {type(chat).__name__}")
        for message in chat:
            if not isinstance(message, dict) or "role" not in message or "content" not in message:
                raise ValueError(f"request {i} has a message without 'role'/'content': {message!r}")


def create_generator(model_spec: str, cfg) -> Generator:
    """Build the configured backend for ``model_spec`` (``auto``: ``backend_choice``'s table). ``cfg`` is the
    whole ``Config``. The only place that knows which backends exist; callers see a ``Generator``."""
    from musc_ecd.models.backend_choice import BACKEND_MODULES, resolve_backend

    backend = resolve_backend(cfg.generation.backend)
    module_name, class_name = BACKEND_MODULES[backend].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # engines are imported when the backend is built, not here
        raise BackendUnavailableError(f"generation backend '{backend}' cannot be imported: {exc}") from None
    return getattr(module, class_name).from_config(model_spec, cfg)


def params_from_config(cfg, **overrides) -> SamplingParams:
    """Sampling params from ``cfg.generation`` and the run seed, with per-stage overrides."""
    gen = cfg.generation
    values = dict(
        n=gen.n,
        temperature=gen.temperature,
        top_p=gen.top_p,
        max_new_tokens=gen.max_new_tokens,
        stop=tuple(gen.stop),
        seed=cfg.seed,
    )
    values.update(overrides)
    return SamplingParams(**values)
