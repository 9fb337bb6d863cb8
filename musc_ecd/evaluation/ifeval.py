"""Scoring an IFEval-format set (IFEval, IFBench, the own set), offline, with the official metric definitions.

Each instruction's checker is chosen by its id from IFEval's 25 or IFBench's 58 (``musc_ecd.checkers``,
the official implementations from ``if-verifiable``, Apache-2.0); this module loops over prompts, decides
each instruction on the response and its loose variants, and aggregates. On IFEval's released GPT-4
responses it agrees with the official scorer (prompt-level strict 0.7689 …) but for one deliberate
difference listed in ``checkers.verdict``.

Metrics (METHODS.md, Evaluation):
- ``prompt_level_strict_acc``: share of prompts whose every instruction passes on the response;
- ``inst_level_strict_acc``: share of all instruction instances that pass;
- ``*_loose_acc``: the same, where an instruction passes if any of 8 variants of the response passes
  (first line removed, last line removed, both; each also with ``*`` stripped);
plus accuracy per instruction type and per number of instructions in the prompt. A benchmark whose paper
reports one metric first names it in ``headline`` (IFBench: prompt-level loose, ``sets.HEADLINE_METRICS``).

A prompt with an instruction whose checker cannot run offline (``checkers.UNAVAILABLE_OFFLINE``) is left
out whole, so that both levels are over the same prompts, and counted with the reason under ``excluded``.
An empty response fails all its instructions (the library would drop them from the instruction-level
count); an unknown instruction id is an error; ``<think>`` blocks are not stripped.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from musc_ecd import checkers
from musc_ecd.errors import DataError
from musc_ecd.evaluation.sets import HEADLINE_METRICS
from musc_ecd.store import read_jsonl

log = logging.getLogger(__name__)

METRICS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")


@dataclass(frozen=True)
class PromptResult:
    key: str
    prompt: str
    instruction_ids: tuple[str, ...]
    strict: tuple[bool, ...]
    loose: tuple[bool, ...]

    def to_json(self) -> dict:
        return {"key": self.key, "prompt": self.prompt, "instruction_id_list": list(self.instruction_ids),
                "strict": list(self.strict), "loose": list(self.loose)}

    @classmethod
    def from_json(cls, row: dict) -> PromptResult:
        return cls(str(row["key"]), row["prompt"], tuple(row["instruction_id_list"]), tuple(row["strict"]),
                   tuple(row["loose"]))


def load_inputs(path: str | Path) -> list[dict]:
    """IFEval-format rows (``key``, ``prompt``, ``instruction_id_list``, ``kwargs``): IFEval's ``input_data.jsonl``,
    IFBench's ``IFBench_test.jsonl``, the own set; every id must be IFEval's or IFBench's."""
    rows = _read_jsonl(path, "input")
    for line_no, row in enumerate(rows, start=1):
        missing = [k for k in ("prompt", "instruction_id_list", "kwargs") if k not in row]
        if missing:
            raise DataError(f"{path}:{line_no}: input row without {', '.join(missing)}")
        if len(row["instruction_id_list"]) != len(row["kwargs"]):
            raise DataError(f"{path}:{line_no}: instruction_id_list and kwargs differ in length")
        unknown = [i for i in row["instruction_id_list"] if not checkers.is_known(i)]
        if unknown:
            raise DataError(f"{path}:{line_no}: unknown instruction id(s) {unknown}")
    return rows


def match_responses(inputs: list[dict], responses: list[dict], source: str = "responses") -> list[str]:
    """The response text for each input, matched by prompt text; a missing or extra one is an error."""
    by_prompt: dict[str, str] = {}
    for line_no, row in enumerate(responses, start=1):
        if "prompt" not in row or "response" not in row:
            raise DataError(f"{source}:{line_no}: a response row needs 'prompt' and 'response'")
        if row["prompt"] in by_prompt:
            raise DataError(f"{source}:{line_no}: a second response for the same prompt: {row['prompt'][:80]!r}")
        by_prompt[row["prompt"]] = row["response"] or ""
    wanted = {row["prompt"] for row in inputs}
    missing = [row["prompt"] for row in inputs if row["prompt"] not in by_prompt]
    extra = [prompt for prompt in by_prompt if prompt not in wanted]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} prompt(s) have no response, e.g. {missing[0][:80]!r}")
        if extra:
            parts.append(f"{len(extra)} response(s) match no prompt, e.g. {extra[0][:80]!r}")
        raise DataError(f"{source}: " + "; ".join(parts))
    return [by_prompt[row["prompt"]] for row in inputs]


def score(inputs: list[dict], responses: list[str]) -> list[PromptResult]:
    """Strict and loose verdicts for every instruction of every prompt (``CheckerUnavailableError`` for an
    instruction that cannot be checked here: ``score_files`` leaves those prompts out first)."""
    results = []
    for row, response in zip(inputs, responses, strict=True):
        variants = checkers.loose_variants(response)
        strict, loose = [], []
        for instruction_id, kwargs in zip(row["instruction_id_list"], row["kwargs"], strict=True):
            checker = checkers.build_checker(instruction_id, kwargs, row["prompt"])  # built once for the 9 texts
            strict.append(checkers.decide(checker, instruction_id, response) is True)
            loose.append(any(checkers.decide(checker, instruction_id, v) is True for v in variants))
        results.append(PromptResult(str(row.get("key", len(results))), row["prompt"],
                                    tuple(row["instruction_id_list"]), tuple(strict), tuple(loose)))
    return results


def split_checkable(inputs: list[dict]) -> tuple[list[dict], list[dict]]:
    """(prompts every instruction of which can be checked here, prompts left out): see the module docstring."""
    kept, left_out = [], []
    for row in inputs:
        (left_out if any(i in checkers.UNAVAILABLE_OFFLINE for i in row["instruction_id_list"]) else kept).append(row)
    return kept, left_out


def exclusions(left_out: list[dict]) -> dict:
    """What ``split_checkable`` left out, counted: prompts, their instructions (by type) and why."""
    by_type: dict[str, int] = defaultdict(int)
    for row in left_out:
        for instruction_id in row["instruction_id_list"]:
            by_type[instruction_id] += 1
    return {
        "prompts": len(left_out),
        "instructions": sum(by_type.values()),
        "reasons": {i: checkers.UNAVAILABLE_OFFLINE[i] for i in sorted(by_type) if i in checkers.UNAVAILABLE_OFFLINE},
        "rule": "a prompt is left out whole when any of its instructions cannot be checked offline",
        "by_instruction_type": dict(sorted(by_type.items())),
        "keys": [str(row.get("key", "")) for row in left_out],
    }


def aggregate(results: list[PromptResult]) -> dict:
    """The four official metrics, per-type and per-count accuracies."""
    if not results:
        raise DataError("nothing to score: no prompts")
    instructions = sum(len(r.strict) for r in results)
    metrics = {
        "prompt_level_strict_acc": sum(all(r.strict) for r in results) / len(results),
        "inst_level_strict_acc": sum(sum(r.strict) for r in results) / instructions,
        "prompt_level_loose_acc": sum(all(r.loose) for r in results) / len(results),
        "inst_level_loose_acc": sum(sum(r.loose) for r in results) / instructions,
    }
    by_type: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    by_count: dict[int, list[PromptResult]] = defaultdict(list)
    for r in results:
        for instruction_id, strict_ok, loose_ok in zip(r.instruction_ids, r.strict, r.loose, strict=True):
            by_type[instruction_id].append((strict_ok, loose_ok))
        by_count[len(r.strict)].append(r)
    return {
        "metrics": {k: round(v, 6) for k, v in metrics.items()},
        "num_prompts": len(results),
        "num_instructions": instructions,
        "by_instruction_type": {
            t: {"count": len(v), "strict_acc": round(sum(ok for ok, _ in v) / len(v), 6),
                "loose_acc": round(sum(ok for _, ok in v) / len(v), 6)}
            for t, v in sorted(by_type.items())
        },
        "by_num_instructions": {
            str(n): {"prompts": len(rs), "prompt_level_strict_acc": round(sum(all(r.strict) for r in rs) / len(rs), 6),
                     "prompt_level_loose_acc": round(sum(all(r.loose) for r in rs) / len(rs), 6)}
            for n, rs in sorted(by_count.items())
        },
    }


def score_files(input_path: str | Path, responses_path: str | Path) -> dict:
    """Score an ``input_response_data`` file against an IFEval-format input; results + per-prompt verdicts."""
    inputs = load_inputs(input_path)
    responses = match_responses(inputs, _read_jsonl(responses_path, "responses"), str(responses_path))
    kept, left_out = split_checkable(inputs)
    answers = dict(zip((row["prompt"] for row in inputs), responses, strict=True))
    results = score(kept, [answers[row["prompt"]] for row in kept])
    scored = {**aggregate(results), "benchmark": benchmark_of_set(inputs)}
    headline = HEADLINE_METRICS.get(scored["benchmark"])
    if headline:
        scored["headline"] = {"metric": headline, "value": scored["metrics"][headline],
                              "what": f"{scored['benchmark']}'s headline metric"}
    if left_out:
        log.warning("%d of %d prompts left out: their instructions cannot be checked offline (%s)", len(left_out),
                    len(inputs), ", ".join(sorted({i for r in left_out for i in r["instruction_id_list"]
                                                   if i in checkers.UNAVAILABLE_OFFLINE})))
    return {**scored, "excluded": exclusions(left_out), "input": str(input_path), "responses": str(responses_path),
            "per_prompt": [r.to_json() for r in results]}


def format_results(results: dict) -> str:
    """The metrics as printed by ``evaluate`` and ``ifeval-score``: the headline one marked, exclusions counted."""
    headline = (results.get("headline") or {}).get("metric")
    lines = [f"{name:<26}{value:.4f}" + (f"  ({results['benchmark']} headline)" if name == headline else "")
             for name, value in results["metrics"].items()]
    excluded = results.get("excluded") or {}
    if excluded.get("prompts"):
        lines.append(f"left out: {excluded['prompts']} prompts ({excluded['instructions']} instructions) whose "
                     "checkers cannot run offline:")
        lines += [f"  {instruction_id}: {reason}" for instruction_id, reason in excluded["reasons"].items()]
    return "\n".join(lines)


def benchmark_of_set(inputs: list[dict]) -> str:
    """``IFEval``, ``IFBench``, or both joined by ``+`` when a file mixes their ids."""
    found = {checkers.benchmark_of(i) for row in inputs for i in row["instruction_id_list"]}
    return "+".join(b for b in checkers.BENCHMARKS if b in found)


# ----------------------------------------------------------------------------------------------

def _read_jsonl(path: str | Path, what: str) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file '{path}' does not exist")
    return read_jsonl(path)
