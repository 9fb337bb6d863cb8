"""The evaluation sets ``eval.sets`` names: where each one's prompts are, its label, its headline metric.

    own       the project's own complex-instruction set, shipped with the package (IFEval's 25 checkers)
    ifeval    IFEval's 541 prompts, ``eval.ifeval_path``
    ifbench   IFBench's 300 test prompts, ``eval.ifbench_path`` (58 checkers IFEval does not have)

Every set is one IFEval-format JSONL file, scored by the same scorer, which picks each instruction's
checker from its id (``evaluation.ifeval``). Adding a set: its name in ``config.choices.EVAL_SETS``, its
file's key in ``config.evaluation.EvalConfig`` (``set_path``) and an entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from musc_ecd.errors import ConfigError

HEADLINE_METRICS = {"IFBench": "prompt_level_loose_acc"}
"""The metric a benchmark's paper reports as its result (IFBench, Pyatkin et al. 2025: prompt-level loose)."""


@dataclass(frozen=True)
class EvalSet:
    name: str
    label: str
    """How tables name it."""
    benchmark: str
    """Whose checkers score it (``checkers.BENCHMARKS``)."""

    @property
    def headline(self) -> str | None:
        return HEADLINE_METRICS.get(self.benchmark)


SETS = {
    "own": EvalSet("own", "own", "IFEval"),
    "ifeval": EvalSet("ifeval", "IFEval", "IFEval"),
    "ifbench": EvalSet("ifbench", "IFBench", "IFBench"),
}


def own_eval_set() -> Path:
    """The project's own complex-instruction set (IFEval format), shipped with the package."""
    return Path(str(resources.files("musc_ecd.data").joinpath("eval_set.jsonl")))


def set_source(options, name: str) -> Path:
    """The prompt file of set ``name`` under the ``eval`` options (``EvalConfig``)."""
    if name not in SETS:
        raise ConfigError(f"unknown evaluation set '{name}' (use one of {', '.join(SETS)})")
    path = options.set_path(name)
    if name != "own" and path is None:
        raise ConfigError(f"evaluation set '{name}' needs eval.{name}_path")
    return Path(path) if path is not None else own_eval_set()


def label(name: str) -> str:
    return SETS[name].label if name in SETS else name


def headline_metric(name: str) -> str | None:
    """The set's headline metric, or None when its benchmark reports all four alike."""
    return SETS[name].headline if name in SETS else None
