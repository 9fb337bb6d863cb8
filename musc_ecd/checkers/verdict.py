"""One verdict on one instruction: the function every check in the project goes through — IFEval and
IFBench scoring (``evaluation.ifeval``), the typed constraints (``constraints.typed``) and label audits.

Differences from the library's own loop, on purpose:

- An empty response follows nothing: undecided (None), which is not a pass, and a typed inverse does not
  pass on it either.
- A response in which ``langdetect`` finds no language (only digits or symbols) is undecided for the three
  IFEval checkers that detect a language (the reference counts it as a pass).
- ``keywords:letter_frequency`` with a kwarg ``letter`` outside a–z: the reference swaps it for a *random*
  letter, so two of IFEval's 541 prompts (keys 1122, 1129) would score differently from run to run; here the
  literal character is counted, which is what the prompt asks.
- ``repeat:repeat_span`` with ``n_start`` (or ``n_end``) 0: the reference takes 0 for "not given" and draws a
  random index (IFBench key 286 asks for the span from word 0 to 7); here the given index is used.
- An unknown instruction id is an error, and so is a checker that cannot run offline
  (``registry.UNAVAILABLE_OFFLINE``): neither is ever counted as a pass or a fail.
"""

from __future__ import annotations

from musc_ecd.checkers.registry import CheckerUnavailableError, checker_class

LANGUAGE_DETECTING = frozenset({"language:response_language", "change_case:english_capital",
                                "change_case:english_lowercase"})
"""The checkers whose verdict rests on ``langdetect``."""

LITERAL_KWARGS = {"repeat:repeat_span": ("n_start", "n_end")}
"""Kwargs the reference re-draws at random when they are falsy (0); set back to the given value."""


def check_instruction(instruction_id: str, kwargs: dict | None, response: str, prompt: str = "") -> bool:
    """Whether ``response`` follows one instruction (strict). Undecided is not a pass."""
    return instruction_verdict(instruction_id, kwargs, response, prompt) is True


def instruction_verdict(instruction_id: str, kwargs: dict | None, response: str, prompt: str = "") -> bool | None:
    """True or False from the library's checker, or None when it cannot decide (see the module docstring)."""
    return decide(build_checker(instruction_id, kwargs, prompt), instruction_id, response)


def build_checker(instruction_id: str, kwargs: dict | None, prompt: str):
    """The library's checker for one instruction, built from its kwargs (None values left out) and, where it
    asks for it, the prompt. Build it once to decide several texts (the loose variants)."""
    checker = checker_class(instruction_id)(instruction_id)
    given = {k: v for k, v in (kwargs or {}).items() if v is not None}
    checker.build_description(**given)
    if instruction_id == "keywords:letter_frequency" and given.get("letter"):
        checker._letter = given["letter"].strip().lower()
    for name in LITERAL_KWARGS.get(instruction_id, ()):
        if name in given:
            setattr(checker, f"_{name}", given[name])
    arguments = checker.get_instruction_args()
    if arguments and "prompt" in arguments:
        checker.build_description(prompt=prompt)
    return checker


def decide(checker, instruction_id: str, response: str) -> bool | None:
    """The one place a verdict is made, with a checker from ``build_checker``."""
    if not response.strip():
        return None  # an empty answer follows nothing, and its typed inverse must not pass on it either
    try:
        passed = bool(checker.check_following(response))
    except LookupError as exc:  # NLTK data missing: say so, never a silent fail
        resource = next((line.strip() for line in str(exc).splitlines() if "Resource" in line), str(exc))
        raise CheckerUnavailableError(f"the checker '{instruction_id}' needs NLTK data that is not here "
                                      f"({resource})") from None
    if passed and instruction_id in LANGUAGE_DETECTING and not _language_detectable(response):
        return None
    return passed


def _language_detectable(text: str) -> bool:
    """Whether ``langdetect`` finds any feature in ``text`` (else it raises, and the checker says "pass")."""
    import langdetect
    from langdetect.detector import Detector

    # Fast path for the common case: the detector drops URLs and e-mail addresses, then builds its features
    # from letters; ASCII letters are in every language profile, so any left means it can decide.
    letters = [c for c in Detector.MAIL_RE.sub(" ", Detector.URL_RE.sub(" ", text)) if c.isalpha()]
    if not letters:
        return False
    if all(c.isascii() for c in letters):
        return True
    try:
        langdetect.detect(text)
    except langdetect.LangDetectException:
        return False
    return True
