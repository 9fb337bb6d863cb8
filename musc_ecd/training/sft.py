"""Supervised fine-tuning on a pairs artifact's best answers (TRL's ``SFTTrainer``).

Two uses (METHODS.md §2 step 6 and §3):

- ``train.loss=[sft]``: the whole training is SFT — APC's baseline "SFT on the best answer".
- ``train.sft_first=true``: an SFT phase before the preference phase (ECD's "DPO optionally after SFT on
  (I^k, R^k)"), for any method; the preference phase then starts from, and is referenced against, the SFT
  model (a LoRA adapter is merged into its base first).

The SFT set is, in order of preference: the method's own ``sft.jsonl`` beside the generated pairs (APC
writes one conversation per prompt with the strongest non-empty answer) — so each prompt's best answer
is trained on once, not every pair's ``chosen`` (mid-rank answers, rank 0 counted R−1 times) — or else
each distinct (prompt, chosen) of the pairs, once. A pair budget (``train.max_pairs``) draws the records
first, the same subset a preference run on those pairs trains on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from musc_ecd.errors import DataError
from musc_ecd.store import read_jsonl
from musc_ecd.training.selection import budget_indices

log = logging.getLogger(__name__)

SFT_FILE = "sft.jsonl"


def sft_source(pairs_path: Path, generated: Path | None) -> Path:
    """Where the SFT set comes from: an ``sft.jsonl`` beside the generated (or given) pairs, else the pairs."""
    for directory in dict.fromkeys(p.parent for p in (generated, pairs_path) if p is not None):
        if (directory / SFT_FILE).is_file():
            return directory / SFT_FILE
    return pairs_path


@dataclass(frozen=True)
class SftSelection:
    """The SFT examples of a source under a pair budget: ``selected`` of its ``available`` records (pairs, or
    ``sft.jsonl`` rows) were drawn, and ``rows`` are their distinct (prompt, answer) examples."""

    rows: list[dict]
    selected: int
    available: int


def sft_rows(source: Path) -> list[dict]:
    """TRL's conversational prompt-completion rows: ``{"prompt": [messages], "completion": [assistant]}``."""
    return sft_selection(source, None, 0).rows


def sft_selection(source: Path, max_pairs: int | None, seed: int) -> SftSelection:
    """The SFT examples of ``source`` within the pair budget (``selection.budget_indices``: on a pairs file the
    very pairs a preference run with the same budget and seed trains on), each distinct example once."""
    if not source.is_file():
        raise DataError(f"no SFT data at {source}")
    records = read_jsonl(source)
    keep = budget_indices(len(records), max_pairs, seed)
    rows, seen = [], set()
    for index in keep:
        record = records[index]
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
    if len(keep) < len(records):
        log.info("pair budget: SFT on the answers of %d of %d records of %s (train.max_pairs)", len(keep),
                 len(records), source)
    return SftSelection(rows, len(keep), len(records))
