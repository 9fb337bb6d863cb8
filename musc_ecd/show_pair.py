"""``musc-ecd show-pair RUN_DIR --index I``: what the loss sees, token by token.

Writes ``RUN_DIR/show-pair-I.html`` — prompt, chosen and rejected, every completion token shaded by its
weight (white = 0, deep orange = w_max), and beside them the constraints the pair is about (corrupted
ones for MuSC coarse pairs, violated ones for fine pairs) — and prints the same to a terminal with
background colours. Tokens are exactly the trainer's (``pair_completion_token_ids``); a pair without weight
columns is shown with weight 1 everywhere.
"""

from __future__ import annotations

import html
from pathlib import Path

from musc_ecd.config import load_config
from musc_ecd.errors import DataError
from musc_ecd.layout import RunLayout
from musc_ecd.records import MuscCoarseProvenance, MuscFineProvenance, Pair
from musc_ecd.store import read_jsonl, write_atomic


def show_pair(run_dir: Path, index: int) -> tuple[Path, str]:
    """(path of the HTML page, the terminal rendering)."""
    from musc_ecd.models.loading import load_model
    from musc_ecd.tokens import pair_completion_token_ids

    layout = RunLayout(run_dir)
    source = layout.shown_pairs()
    if not source.is_file():
        raise DataError(f"no pairs in {run_dir} (no {source.relative_to(run_dir)}); run `musc-ecd generate` first")
    pairs = read_jsonl(source)
    if not 0 <= index < len(pairs):
        raise DataError(f"--index {index} is out of range: {source} holds {len(pairs)} pairs")
    pair = pairs[index]
    cfg = load_config(layout.config)
    _, tokenizer = load_model(cfg.model.policy, device="cpu")
    w_max = cfg.train.w_max
    sides = {}
    token_ids = pair_completion_token_ids(tokenizer, pair["prompt"], pair["chosen"], pair["rejected"])
    for side, ids in zip(("chosen", "rejected"), token_ids, strict=True):
        weights = pair.get(f"{side}_weights") or [1.0] * len(ids)
        sides[side] = [(tokenizer.decode([token]), weight) for token, weight in zip(ids, weights, strict=True)]
    parsed = Pair.from_json(pair)
    notes, prompt = _constraint_notes(parsed), parsed.prompt
    page = _html(pair, prompt, sides, notes, w_max, source)
    target = layout.root / f"show-pair-{index}.html"
    write_atomic(target, page)
    return target, _terminal(prompt, sides, notes, w_max)


def _constraint_notes(pair: Pair) -> list[str]:
    provenance, notes = pair.provenance, []
    if isinstance(provenance, MuscCoarseProvenance):
        notes += [f"{c.operator}: {c.original}" + (f" → {c.new}" if c.new else "") for c in provenance.corruptions]
    if isinstance(provenance, MuscFineProvenance):
        notes += [f"violated: {c}" for c in provenance.violated_constraints]
    if pair.weights is not None:
        notes.append(f"weights: {pair.weights.scheme}")
    return notes


def _shade(weight: float, w_max: float) -> str:
    level = max(0.0, min(1.0, weight / w_max))
    return f"rgba(255, 120, 0, {level:.2f})"


def _html(pair: dict, prompt: str, sides: dict, notes: list[str], w_max: float, source: Path) -> str:
    def tokens(side: str) -> str:
        return "".join(f'<span title="w={w:.3f}" style="background:{_shade(w, w_max)}">{html.escape(t)}</span>'
                       for t, w in sides[side])

    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes) or "<li>(none recorded)</li>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>pair {html.escape(str(pair.get('id', '')))}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} .row{{display:flex;gap:2em}}
.col{{flex:1}} pre{{white-space:pre-wrap;font-family:monospace;border:1px solid #ccc;padding:1em}}</style></head>
<body><h1>Pair {html.escape(str(pair.get('id', '')))}</h1>
<p>from {html.escape(str(source))}; shading: token weight from 0 (white) to {w_max} (orange); hover for values.</p>
<h2>Prompt</h2><pre>{html.escape(prompt)}</pre>
<h2>Constraints this pair is about</h2><ul>{items}</ul>
<div class="row"><div class="col"><h2>Chosen</h2><pre>{tokens('chosen')}</pre></div>
<div class="col"><h2>Rejected</h2><pre>{tokens('rejected')}</pre></div></div>
</body></html>
"""


def _terminal(prompt: str, sides: dict, notes: list[str], w_max: float) -> str:
    palette = [231, 230, 229, 223, 222, 216, 215, 209, 208]  # 256-colour backgrounds, light to deep orange

    def colour(text: str, weight: float) -> str:
        shade = palette[round(max(0.0, min(1.0, weight / w_max)) * (len(palette) - 1))]
        return f"\033[48;5;{shade}m\033[38;5;16m{text}\033[0m"

    lines = ["PROMPT", prompt, "", "CONSTRAINTS", *(f"  - {n}" for n in notes)]
    for side in ("chosen", "rejected"):
        lines += ["", side.upper(), "".join(colour(t, w) for t, w in sides[side])]
    return "\n".join(lines)
