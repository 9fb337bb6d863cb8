"""Instruction evolution (ECD, METHODS.md §2 steps 2 and 5): the taxonomy, the request, the parser and
the filters that decide whether an evolution failed.

The taxonomy has five top-level categories, each with finer operations; every operation is its own
prompt template (``prompts/evolve_<category>_<operation>.txt``), a few-shot chat whose demonstrations
add exactly one requirement. Sampling is two-level and uniform: a category, then an operation in it,
so a category with more operations is not drawn more often.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from musc_ecd.prompts import load_template

TAXONOMY: dict[str, tuple[str, ...]] = {
    "content": ("concretize", "deepen", "mention"),
    "style": ("tone", "audience"),
    "format": ("length", "structure", "forbidden", "wrapper"),
    "reasoning": ("steps", "justify"),
    "breadth": ("subtask", "scope"),
}


@dataclass(frozen=True)
class Operation:
    category: str
    name: str

    @property
    def template(self) -> str:
        return f"evolve_{self.category}_{self.name}"

    def __str__(self) -> str:
        return f"{self.category}/{self.name}"


@dataclass(frozen=True)
class Evolution:
    instruction: str
    new_requirements: tuple[str, ...]

    def to_json(self) -> dict:
        return asdict(self) | {"new_requirements": list(self.new_requirements)}


def all_operations() -> list[Operation]:
    return [Operation(category, name) for category, names in TAXONOMY.items() for name in names]


def sample_operation(rng: random.Random, categories: Sequence[str], avoid: Sequence[Operation] = ()) -> Operation:
    """A category uniformly from ``categories``, then an operation in it, preferring ones not in ``avoid``
    (a chain should not add a second length limit while other operations are left)."""
    category = rng.choice(list(categories))
    names = TAXONOMY[category]
    fresh = [n for n in names if Operation(category, n) not in avoid]
    return Operation(category, rng.choice(fresh or list(names)))


def evolve_request(operation: Operation, instruction: str) -> list[dict]:
    return load_template(operation.template).chat(instruction=instruction)


# Markdown bold around a label ("**New requirement:**") is common in small models' output.
_REQUIREMENT = re.compile(r"^\s*\**\s*new requirements?\s*\**\s*:\s*\**\s*(.*)$", re.IGNORECASE)
_EVOLVED = re.compile(r"^\s*\**\s*evolved instruction\s*\**\s*:\s*\**\s*(.*)$", re.IGNORECASE)
# Words of our templates inside an evolved instruction mean the model echoed the prompt.
_LEAK = re.compile(r"###|new requirement|evolved instruction|^\s*instruction\s*:|\$instruction|"
                   r"\btask:\s*evolve", re.IGNORECASE | re.MULTILINE)
_WORD = re.compile(r"[a-z0-9']+")
_STOPWORDS = frozenset("a an the and or of to in on for with by at is are be it this that your you as its".split())


def parse_evolution(text: str, previous: str | None = None) -> tuple[Evolution | None, str]:
    """(evolution, "") or (None, reason). Format: ``New requirement: …`` line(s), then ``Evolved
    instruction: …`` (which may continue until a blank line).

    With ``previous`` (compose = append) only the requirements are read and the evolved instruction is
    ``previous`` followed by them: the task cannot drift, whatever the evolver wrote as its rewrite.
    """
    requirements: list[str] = []
    instruction_lines: list[str] | None = None
    for line in text.strip().splitlines():
        if instruction_lines is not None:
            if not line.strip() or _REQUIREMENT.match(line):
                break
            instruction_lines.append(line)
        elif (match := _EVOLVED.match(line)) is not None:
            instruction_lines = [match.group(1)]
        elif (match := _REQUIREMENT.match(line)) is not None and match.group(1).strip():
            requirements.append(match.group(1).strip())
    if not requirements:
        return None, "evolve_no_requirement"
    if len(requirements) > 2:
        return None, "evolve_too_many_requirements"
    if previous is not None:
        return Evolution(append_requirements(previous, requirements), tuple(requirements)), ""
    if instruction_lines is None:
        return None, "evolve_unparsable"
    instruction = "\n".join(instruction_lines).strip().strip('"').strip()
    if not instruction:
        return None, "evolve_empty"
    return Evolution(instruction, tuple(requirements)), ""


def append_requirements(previous: str, requirements: list[str]) -> str:
    sentences = [r.strip().strip('"').strip() for r in requirements]
    sentences = [r if r.endswith((".", "!", "?")) else f"{r}." for r in sentences]
    base = previous.rstrip()
    base = base if base.endswith((".", "!", "?", '"', "'")) else f"{base}."
    return " ".join([base, *sentences])


def check_evolution(previous: str, evolution: Evolution, max_growth_words: int, min_overlap: float) -> str:
    """The reason an evolution failed, or "" when it is usable (METHODS.md §2 step 5)."""
    if _normalise(evolution.instruction) == _normalise(previous):
        return "evolve_unchanged"
    if _LEAK.search(evolution.instruction) or any(_LEAK.search(r) for r in evolution.new_requirements):
        return "evolve_leak"
    growth = len(evolution.instruction.split()) - len(previous.split())
    if growth > max_growth_words:
        return "evolve_runaway"
    if content_overlap(previous, evolution.instruction) < min_overlap:
        return "evolve_drift"
    added = " ".join(evolution.new_requirements)
    if content_overlap(added, evolution.instruction) < min_overlap:
        return "evolve_requirement_missing"  # the rewrite claims a requirement it does not contain
    if all(content_overlap(r, previous) == 1.0 for r in evolution.new_requirements):
        return "evolve_nothing_new"  # every "new" requirement was already there
    return ""


def content_overlap(previous: str, evolved: str) -> float:
    """Share of ``previous``'s content words still present in ``evolved`` (1.0 when it has none)."""
    before = _content_words(previous)
    return len(before & _content_words(evolved)) / len(before) if before else 1.0


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def _normalise(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")
