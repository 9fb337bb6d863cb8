"""Degenerate repetition: an answer (or instruction) that loops, as a whole or at its end.

Small models loop: "Mmmmmm…", one line pasted five times, or a reasonable answer that runs on into "haha haha
haha …". zlib measures it: English prose compresses to about 0.45–0.6 of its size, a loop far below. The
measure is zlib's bytes per *character*, not per byte: in UTF-8 a Telugu or Devanagari character takes three
bytes that share their lead bytes, so per byte sound prose in those scripts looked like a loop (4 of IFEval's
GPT-4 reference answers did); for ASCII text the two are the same.

The whole text is measured, and so are its last 120, 240 and 480 characters, so a looping *tail* is caught
although the sound part before it keeps the whole text's ratio normal. The windows double so that a loop of a
short unit fills the first and one of a sentence or two the larger ones. Of IFEval's 541 GPT-4 answers
(``data/ifeval/input_response_data_gpt4_20231107.jsonl``) none is degenerate: the lowest whole-text ratio is
0.26 (a JSON rubric), the lowest tail window 0.34.
"""

from __future__ import annotations

import zlib

DEGENERATE_RATIO = 0.25
"""A text of 80+ characters (or a tail window of it) that zlib compresses below this many bytes per character."""
MIN_CHARS = 80
TAIL_WINDOWS = (120, 240, 480)
"""The ends measured besides the whole text, in characters."""


def compression_ratio(text: str) -> float:
    """zlib's compressed bytes per character of ``text``."""
    return len(zlib.compress(text.encode(), 9)) / len(text)


def is_degenerate(text: str) -> bool:
    """Repetition that makes an answer worthless as ``chosen`` (a looping ``rejected`` answer is kept: its label
    is still right): the whole text, or one of its tail windows, compresses below ``DEGENERATE_RATIO``."""
    if len(text) < MIN_CHARS:
        return False
    windows = [text] + [text[-size:] for size in TAIL_WINDOWS if size < len(text)]
    return any(compression_ratio(window) < DEGENERATE_RATIO for window in windows)
