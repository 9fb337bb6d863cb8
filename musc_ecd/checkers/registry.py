"""Which checker decides an instruction id: IFEval's 25 and IFBench's 58, both from ``if-verifiable``.

The two benchmarks' ids do not overlap (IFEval's are ``keywords:existence`` …, IFBench's ``count:numbers``
…), so an id alone chooses the registry; a file may hold either or both. The checkers are the library's
(Apache-2.0), the official implementations.
"""

from __future__ import annotations

from functools import cache

from musc_ecd.errors import DataError

BENCHMARKS = ("IFEval", "IFBench")

UNAVAILABLE_OFFLINE = {
    "ratio:stop_words": "needs NLTK's English stopword list (nltk_data corpora/stopwords), which NLTK would "
                        "download at run time and no checked package ships",
    "words:start_verb": "needs NLTK's English part-of-speech tagger (nltk_data "
                        "taggers/averaged_perceptron_tagger_eng), which NLTK would download at run time and no "
                        "checked package ships",
}
"""IFBench checkers that cannot run offline, with the reason. A prompt that carries one is excluded from
scoring and counted (``evaluation.ifeval.score_files``); asking one for a verdict is an error, never a
pass or a fail. Every other IFBench checker runs offline (tests/test_checkers.py runs each of them)."""


class UnknownInstructionError(DataError):
    """An instruction id that neither IFEval's nor IFBench's registry holds."""


class CheckerUnavailableError(DataError):
    """A checker that cannot run here (its NLTK data is not available offline)."""


@cache
def registry(benchmark: str) -> dict:
    """Instruction id -> checker class for one benchmark."""
    from musc_ecd.checkers import nltk_data

    nltk_data.prepare()
    if benchmark == "IFEval":
        from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT
    elif benchmark == "IFBench":
        with nltk_data.downloads_refused():  # its module asks NLTK for a download on import
            from if_verifiable.ifbench.instructions_registry import INSTRUCTION_DICT
    else:
        raise ValueError(f"unknown benchmark '{benchmark}' (use one of {BENCHMARKS})")
    return dict(INSTRUCTION_DICT)


def benchmark_of(instruction_id: str) -> str:
    """``IFEval`` or ``IFBench``: whose registry holds ``instruction_id``."""
    for benchmark in BENCHMARKS:
        if instruction_id in registry(benchmark):
            return benchmark
    raise UnknownInstructionError(f"unknown instruction id '{instruction_id}' (neither IFEval's nor IFBench's)")


def is_known(instruction_id: str) -> bool:
    return any(instruction_id in registry(b) for b in BENCHMARKS)


def checker_class(instruction_id: str):
    """The checker class for ``instruction_id``; an error for an unknown id or one that cannot run offline."""
    benchmark = benchmark_of(instruction_id)
    if instruction_id in UNAVAILABLE_OFFLINE:
        raise CheckerUnavailableError(f"the {benchmark} checker '{instruction_id}' cannot run offline: "
                                      f"it {UNAVAILABLE_OFFLINE[instruction_id]}")
    return registry(benchmark)[instruction_id]
