"""Supervised fine-tuning on a pairs artifact's best answers (TRL's ``SFTTrainer``).

Two uses (METHODS.md §2 step 6 and §3):

- ``train.loss=[sft]``: the whole training is SFT — APC's baseline "SFT on the best answer".
- ``train.sft_first=true``: an SFT phase before the preference phase (ECD's "DPO optionally after SFT on
  (I^k, R^k)"), for any method; the preference phase then starts from, and is referenced against, the SFT
  model (a LoRA adapter is merged into its base first).

The SFT set is, in order of preference: the method's own ``sft.jsonl`` beside the generated pairs (APC
writes one conversation per prompt with the strongest non-empty answer) — so each prompt's best answer
is trained on once, not every pair's ``chosen`` (mid-rank answers, rank 0 counted R−1 times) — or else
each distinct (prompt, chosen) of the pairs, once.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from musc_ecd.errors import DataError
from musc_ecd.store import read_jsonl

log = logging.getLogger(__name__)

SFT_FILE = "sft.jsonl"


def sft_source(pairs_path: Path, generated: Path | None) -> Path:
    """Where the SFT set comes from: an ``sft.jsonl`` beside the generated (or given) pairs, else the pairs."""
    for directory in dict.fromkeys(p.parent for p in (generated, pairs_path) if p is not None):
        if (directory / SFT_FILE).is_file():
            return directory / SFT_FILE
    return pairs_path


def sft_rows(source: Path) -> list[dict]:
    """TRL's conversational prompt-completion rows: ``{"prompt": [messages], "completion": [assistant]}``."""
    if not source.is_file():
        raise DataError(f"no SFT data at {source}")
    rows, seen = [], set()
    for index, record in enumerate(read_jsonl(source)):
        if "messages" in record:  # sft.jsonl: the conversation, the last turn being the target answer
            messages = record["messages"]
            if not messages or messages[-1].get("role") != "assistant":
                raise DataError(f"{source}: row {index} does not end with an assistant turn")
            prompt, completion = messages[:-1], messages[-1:]
        else:
            prompt, completion = record.get("prompt"), record.get("chosen")
            if not prompt or not completion:
                raise DataError(f"{source}: pair {index} has no prompt or chosen")
            prompt = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            completion = completion if isinstance(completion, list) else [{"role": "assistant", "content": completion}]
        key = json.dumps([prompt, completion], sort_keys=True)
        if key not in seen and completion[-1].get("content"):
            seen.add(key)
            rows.append({"prompt": prompt, "completion": completion})
    if not rows:
        raise DataError(f"{source} holds no SFT examples")
    return rows
