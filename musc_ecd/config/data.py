"""Schema of the ``data`` and ``store`` sections: input items and how often results are made durable."""

from __future__ import annotations

from dataclasses import dataclass

from musc_ecd.config.validate import check


@dataclass
class DataConfig:
    """Input items. Field names map a file's columns onto what musc-ecd reads."""

    seeds: str | None = None
    """Seed instructions for pair builders (JSONL, CSV or a local ``datasets`` directory)."""
    prompts: str | None = None
    """Prompts for ``respond``; unset = ``seeds``."""
    prompt_field: str = "prompt"
    """Column holding the instruction / prompt text."""
    id_field: str | None = None
    """Column holding a stable item id; None = a hash of the prompt text."""
    limit: int | None = None
    """Use only the first N items (after malformed lines are set aside)."""

    def __post_init__(self) -> None:
        check(self.limit is None or self.limit >= 0, "data.limit", self.limit, "an integer >= 0 or null")


@dataclass
class StoreConfig:
    commit_every: int = 32
    """Items generated between durable commits (write + fsync); a kill loses at most this many."""

    def __post_init__(self) -> None:
        check(self.commit_every >= 1, "store.commit_every", self.commit_every, "an integer >= 1")


