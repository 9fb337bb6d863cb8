"""Schema of the ``eval`` section: which sets are answered and scored, and how."""

from __future__ import annotations

from dataclasses import dataclass

from musc_ecd.config.choices import EVAL_SETS
from musc_ecd.config.validate import check


@dataclass
class EvalConfig:
    """``musc-ecd evaluate``: answer an IFEval-format set with a model and score it."""

    ifeval_path: str | None = None
    """IFEval's ``input_data.jsonl`` (e.g. ../shared/data/ifeval/input_data.jsonl); None = the project's own
    complex-instruction set shipped with the package (same format, same scorer)."""
    ifbench_path: str | None = None
    """IFBench's ``IFBench_test.jsonl`` (e.g. ../shared/data/ifbench/IFBench_test.jsonl), for the ``ifbench`` set;
    scored with IFBench's own checkers, headline metric prompt-level loose accuracy."""
    adapter: str | None = None
    """A trained adapter or full model directory (e.g. RUN_DIR/model); None = the base ``model.policy``."""
    name: str | None = None
    """Results go to RUN_DIR/eval/NAME; None = "trained" with an adapter, else "base"."""
    limit: int | None = None
    """Only the first N prompts (a quick look; full sets for reported numbers)."""
    max_new_tokens: int = 512
    temperature: float = 0.0
    sets: list[str] | None = None
    """Sets ``run`` evaluates base and trained on, each compared with a paired bootstrap: ``own`` (the shipped
    set), ``ifeval`` (``eval.ifeval_path``), ``ifbench`` (``eval.ifbench_path``). ``evaluate`` answers the one set
    named when there is one. None = IFEval if ifeval_path is set, else own."""
    base_only: bool = False
    """``run`` evaluates the base model on ``sets`` and stops: no pairs, no training. A sweep's untrained row
    (``base``), whose answers other runs with the same policy and decoding share (``share_dir``)."""

    def __post_init__(self) -> None:
        sets = self.sets or []
        check(all(s in EVAL_SETS for s in sets) and len(set(sets)) == len(sets), "eval.sets", self.sets,
              f"null or a list of distinct names from {', '.join(EVAL_SETS)}")
        check("ifeval" not in sets or self.ifeval_path is not None, "eval.sets", self.sets,
              "'ifeval' only together with eval.ifeval_path (IFEval's input_data.jsonl)")
        check("ifbench" not in sets or self.ifbench_path is not None, "eval.sets", self.sets,
              "'ifbench' only together with eval.ifbench_path (IFBench's IFBench_test.jsonl)")

    def set_names(self) -> list[str]:
        """The evaluation sets ``run`` uses (see ``sets``)."""
        return list(self.sets) if self.sets else ["ifeval" if self.ifeval_path else "own"]

    def set_path(self, name: str) -> str | None:
        """The configured prompt file of evaluation set ``name`` (None for the shipped ``own`` set)."""
        return {"ifeval": self.ifeval_path, "ifbench": self.ifbench_path}.get(name)


