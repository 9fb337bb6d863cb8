"""Where every artifact of a run lives: one object names them all.

``musc-ecd generate``, ``weights``, ``train``, ``evaluate`` and ``run`` all write this layout into
``run_dir``, so any command can pick up what another one left, and ``show-pair`` and ``report`` open
paths from here rather than guessing::

    RUN_DIR/config.yaml, log.txt      the resolved config (a run repeats from it alone) and the log
    RUN_DIR/generate/                 pairs.jsonl, rejects.jsonl, summary.json, manifest.json, extras (sft.jsonl)
    RUN_DIR/weights/                  the pairs with token weights (when train.weights is set)
    RUN_DIR/model/                    the trained adapter (or full model) and its manifest
    RUN_DIR/train/                    checkpoints, metrics.jsonl, the SFT phase
    RUN_DIR/eval/NAME/                answers and results.json; ``run`` names them SET/base and SET/trained
    RUN_DIR/status.json               ``run``'s progress: stage, state, per-stage wall time
    RUN_DIR/report.json, report.md    the comparisons and the rendered report; plots/*.png

``generate`` writes into a *stage directory* (``RUN_DIR/generate``), which ``run`` may replace by a link to
a shared one (``share_dir``); every reader goes through the link. Run directories made before this layout
(``generate`` writing ``RUN_DIR/pairs.jsonl``) are still read: ``pairs`` falls back to that file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PAIRS = "pairs.jsonl"
SUMMARY = "summary.json"


@dataclass(frozen=True)
class RunLayout:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # -- the run itself
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def log(self) -> Path:
        return self.root / "log.txt"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    # -- generate
    @property
    def generate(self) -> Path:
        """The generate stage's directory (possibly a link into ``share_dir``)."""
        return self.root / "generate"

    @property
    def pairs(self) -> Path:
        """The generated pairs; in a run directory of the older layout, ``RUN_DIR/pairs.jsonl``."""
        current, legacy = self.generate / PAIRS, self.root / PAIRS
        return legacy if not current.is_file() and legacy.is_file() else current

    @property
    def generate_summary(self) -> Path:
        return self.pairs.parent / SUMMARY

    def extra(self, name: str) -> Path:
        """A method's extra artifact beside the pairs (APC's ``sft.jsonl``)."""
        return self.pairs.parent / name

    # -- weights and training
    @property
    def weights(self) -> Path:
        return self.root / "weights"

    @property
    def weighted_pairs(self) -> Path:
        return self.weights / PAIRS

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def metrics(self) -> Path:
        return self.train / "metrics.jsonl"

    def pairs_source(self, cfg) -> Path:
        """The pairs training starts from: ``train.pairs`` if set, else this run's generated pairs."""
        return Path(cfg.train.pairs) if cfg.train.pairs else self.pairs

    def shown_pairs(self) -> Path:
        """The pairs ``show-pair`` displays: weighted when the run has them (what the loss sees)."""
        return self.weighted_pairs if self.weighted_pairs.is_file() else self.pairs

    # -- evaluation and report
    def eval_dir(self, name: str) -> Path:
        return self.root / "eval" / name

    def eval_side(self, set_name: str, side: str) -> Path:
        """``run``'s evaluation of one set by one side (``base`` / ``trained``)."""
        return self.eval_dir(f"{set_name}/{side}")

    def eval_results(self, set_name: str, side: str) -> Path:
        return self.eval_side(set_name, side) / "results.json"

    @property
    def report_json(self) -> Path:
        return self.root / "report.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def plots(self) -> Path:
        return self.root / "plots"
