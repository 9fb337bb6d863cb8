"""Instruction checkers for IFEval's and IFBench's ids: which checker, its kwargs, strict and loose verdicts.

    benchmark_of(id) -> "IFEval" | "IFBench"       the registry an id belongs to (ids do not overlap)
    instruction_verdict(id, kwargs, response, prompt) -> True | False | None (undecided)
    check_instruction(...) -> bool                 strict pass; undecided is not a pass
    build_checker(id, kwargs, prompt) + decide(checker, id, text)   one checker for several texts
    loose_variants(response)                       the texts a loose verdict tries
    UNAVAILABLE_OFFLINE                            ids whose NLTK data is not here, with the reason

Below both data building (``constraints.typed`` checks its constraints here) and evaluation (scoring loops
over prompts here), so neither reaches into the other for a verdict.
"""

from musc_ecd.checkers.registry import (
    BENCHMARKS,
    UNAVAILABLE_OFFLINE,
    CheckerUnavailableError,
    UnknownInstructionError,
    benchmark_of,
    is_known,
    registry,
)
from musc_ecd.checkers.verdict import (
    LANGUAGE_DETECTING,
    build_checker,
    check_instruction,
    decide,
    instruction_verdict,
)


def loose_variants(response: str) -> list[str]:
    """The non-empty texts a loose verdict tries: the response, without its first line, last line or both,
    each also with ``*`` removed (the official definition, from the library)."""
    from if_verifiable.common import get_loose_transformations

    return [v for v in get_loose_transformations(response) if v.strip()]


__all__ = ["BENCHMARKS", "LANGUAGE_DETECTING", "UNAVAILABLE_OFFLINE", "CheckerUnavailableError",
           "UnknownInstructionError", "benchmark_of", "build_checker", "check_instruction", "decide",
           "instruction_verdict", "is_known", "loose_variants", "registry"]
