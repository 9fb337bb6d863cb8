"""Verifiable seeds: a base task with its own untyped requirements plus 1–4 typed constraints in the text.

Each row carries its typed constraints in IFEval's columns (``instruction_id_list`` / ``kwargs``), so
MuSC can decompose and corrupt them as data and every pair built from it can be audited by code.
Constraints are drawn only in combinations ``compatibility`` admits; ``combination:repeat_prompt`` is
rendered last, with the text before it as the request to repeat. Each row has its own generator, seeded
from (seed, row index), so the file is a pure function of the tasks and the seed.

A base task is a JSON object: ``id``, ``domain``, ``task`` (one sentence), ``requirements`` (untyped,
free text, e.g. "Mention two trade-offs") and ``keywords`` (single lowercase words the task is about,
from which keyword, banned-word and first-word constraints are drawn).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from musc_ecd.constraints.typed import vocabulary as vocab
from musc_ecd.constraints.typed.compatibility import ALONE, ONLY_WITH, compatible
from musc_ecd.constraints.typed.constraint import TypedConstraint, to_ifeval
from musc_ecd.constraints.typed.registry import TYPE_IDS
from musc_ecd.errors import DataError

REPEAT = "combination:repeat_prompt"
COUNT_WEIGHTS = {1: 2, 2: 4, 3: 3, 4: 1}  # how many typed constraints a seed gets
# Kinds that allow few or no companions would crowd out the others at equal weight.
KIND_WEIGHTS = {i: (2 if i == ALONE or i in ONLY_WITH else 4) for i in TYPE_IDS}
ATTEMPTS = 60


def _relation(rng: random.Random) -> str:
    return rng.choice(("at least", "less than"))


def draw_kwargs(instruction_id: str, keywords: Sequence[str], rng: random.Random) -> dict:
    """Kwargs for one constraint on a task with these keywords (values in ranges an answer can meet)."""
    r = _relation(rng)
    if instruction_id == "keywords:existence":
        return {"keywords": sorted(rng.sample(list(keywords), rng.randint(1, min(2, len(keywords)))))}
    if instruction_id == "keywords:frequency":
        return {"keyword": rng.choice(keywords), "relation": r,
                "frequency": rng.randint(2, 4) if r == "at least" else rng.randint(2, 3)}
    if instruction_id == "keywords:forbidden_words":
        return {"forbidden_words": sorted(rng.sample(list(keywords), rng.randint(1, min(2, len(keywords)))))}
    if instruction_id == "keywords:letter_frequency":
        if r == "at least":
            return {"letter": rng.choice(vocab.COMMON_LETTERS), "let_frequency": rng.randint(5, 25), "let_relation": r}
        return {"letter": rng.choice(vocab.RARE_LETTERS), "let_frequency": rng.randint(2, 6), "let_relation": r}
    if instruction_id == "language:response_language":
        return {"language": rng.choice(vocab.LANGUAGES)}
    if instruction_id == "length_constraints:number_sentences":
        return {"num_sentences": rng.randint(3, 12) if r == "at least" else rng.randint(3, 10), "relation": r}
    if instruction_id == "length_constraints:number_paragraphs":
        return {"num_paragraphs": rng.randint(2, 5)}
    if instruction_id == "length_constraints:number_words":
        # even "at least" bounds, so that negating twice (N → N/2 → N) gives the constraint back
        return {"num_words": rng.randrange(80, 401, 20) if r == "at least" else rng.randrange(40, 201, 10),
                "relation": r}
    if instruction_id == "length_constraints:nth_paragraph_first_word":
        n = rng.randint(2, 5)
        return {"num_paragraphs": n, "nth_paragraph": rng.randint(1, n), "first_word": rng.choice(keywords)}
    if instruction_id == "detectable_content:number_placeholders":
        return {"num_placeholders": rng.randint(1, 4)}
    if instruction_id == "detectable_content:postscript":
        return {"postscript_marker": rng.choice(vocab.POSTSCRIPT_MARKERS)}
    if instruction_id == "detectable_format:number_bullet_lists":
        return {"num_bullets": rng.randint(2, 6)}
    if instruction_id == "detectable_format:number_highlighted_sections":
        return {"num_highlights": rng.randint(1, 4)}
    if instruction_id == "detectable_format:multiple_sections":
        return {"section_spliter": rng.choice(vocab.SECTION_SPLITTERS), "num_sections": rng.randint(2, 4)}
    if instruction_id == "startend:end_checker":
        return {"end_phrase": rng.choice(vocab.END_PHRASES)}
    if instruction_id == "change_case:capital_word_frequency":
        return {"capital_frequency": rng.randint(2, 8) if r == "at least" else rng.randint(3, 6),
                "capital_relation": r}
    if instruction_id == REPEAT:
        return {"prompt_to_repeat": "(set when the seed is rendered)"}
    return {}


def _draw_constraints(task: dict, rng: random.Random) -> list[TypedConstraint]:
    wanted = rng.choices(list(COUNT_WEIGHTS), weights=list(COUNT_WEIGHTS.values()))[0]
    chosen: list[TypedConstraint] = []
    ids, weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())
    for _ in range(ATTEMPTS):
        if len(chosen) == wanted:
            break
        instruction_id = rng.choices(ids, weights=weights)[0]
        candidate = TypedConstraint(instruction_id, draw_kwargs(instruction_id, task["keywords"], rng))
        if compatible([*chosen, candidate]):
            chosen.append(candidate)
    return chosen


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text[-1] in ".!?" else text + "."


def render(task: dict, constraints: list[TypedConstraint],
           rng: random.Random) -> tuple[str, list[TypedConstraint], list[str]]:
    """The instruction text, the constraints it states (a repeat-the-request one filled in, last) and each
    constraint's sentence in the text (in the same order), so a method can tell the typed part from the rest."""
    others = [c for c in constraints if c.id != REPEAT]
    rng.shuffle(others)
    texts = [c.describe(rng) for c in others]
    text = " ".join([base_instruction(task), *texts])
    if len(others) == len(constraints):
        return text, others, texts
    repeat = TypedConstraint(REPEAT, {"prompt_to_repeat": text})
    sentence = repeat.describe(rng)
    return f"{text} {sentence}", [*others, repeat], [*texts, sentence]


def base_instruction(task: dict) -> str:
    """The task and its untyped requirements: what a method decomposes itself."""
    return " ".join([_sentence(task["task"]), *(_sentence(r) for r in task["requirements"])])


def build_seeds(tasks: Sequence[dict], seed: int, rows: int) -> list[dict]:
    """``rows`` seeds, cycling through ``tasks`` in a seeded order; deterministic in (tasks, seed, rows)."""
    if not tasks:
        raise DataError("no base tasks to build seeds from")
    for task in tasks:
        if not all(task.get(k) for k in ("id", "task", "keywords")) or not isinstance(task.get("requirements"), list):
            raise DataError(f"base task {task.get('id', '?')}: needs id, task, requirements (a list) and keywords")
    order_rng = random.Random(f"{seed}:order")
    order: list[dict] = []
    while len(order) < rows:
        batch = list(tasks)
        order_rng.shuffle(batch)
        order.extend(batch)
    seeds = []
    for index, task in enumerate(order[:rows]):
        rng = random.Random(f"{seed}:row:{index}")
        for _ in range(ATTEMPTS):
            text, constraints, texts = render(task, _draw_constraints(task, rng), rng)
            if constraints and compatible(constraints):  # the filled-in request can still clash (e.g. a comma)
                break
        else:
            raise DataError(f"base task {task['id']}: no compatible set of typed constraints found")
        seeds.append({"id": f"vseed-{index + 1:04d}", "instruction": text, "task_id": task["id"],
                      "domain": task.get("domain"), "base_instruction": base_instruction(task),
                      "untyped_requirements": list(task["requirements"]), **to_ifeval(constraints),
                      "typed_texts": texts})
    return seeds
