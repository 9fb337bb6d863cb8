"""configs/data/verifiable_seeds.jsonl: what the seeded script makes, well-formed, disjoint from evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from musc_ecd.constraints.typed import TYPE_IDS, compatible, from_ifeval
from musc_ecd.evaluation.evaluate import own_eval_set
from musc_ecd.store import read_jsonl

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "configs" / "data" / "verifiable_seeds.jsonl"
TASKS = REPO / "configs" / "data" / "base_tasks.jsonl"
IFEVAL_INPUT = REPO.parent / "shared" / "data" / "ifeval" / "input_data.jsonl"
WINDOW = 10


@pytest.fixture(scope="module")
def seeds() -> list[dict]:
    return read_jsonl(SEEDS)


def test_the_file_is_what_the_script_makes(tmp_path):
    out = tmp_path / "seeds.jsonl"
    again = tmp_path / "again.jsonl"
    for path in (out, again):
        done = subprocess.run([sys.executable, str(REPO / "scripts" / "make_verifiable_seeds.py"), "--out", str(path)],
                              capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 0, done.stderr
    assert out.read_bytes() == again.read_bytes() == SEEDS.read_bytes()
    other = tmp_path / "other.jsonl"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_verifiable_seeds.py"), "--out", str(other),
                    "--seed", "15", "--rows", "50"], check=True, capture_output=True, cwd=REPO)
    assert len(read_jsonl(other)) == 50 and read_jsonl(other)[0] != read_jsonl(SEEDS)[0]


def test_rows_tasks_and_typed_constraints(seeds):
    tasks = {t["id"]: t for t in read_jsonl(TASKS)}
    assert len(seeds) >= 600 and len({r["id"] for r in seeds}) == len(seeds)
    assert len({r["task_id"] for r in seeds}) >= 300 and len({t["task"] for t in tasks.values()}) == len(tasks)
    assert len({t["domain"] for t in tasks.values()}) >= 12
    assert sum(2 <= len(t["requirements"]) <= 5 for t in tasks.values()) > len(tasks) / 2
    kinds = set()
    for row in seeds:
        assert set(row) >= {"id", "instruction", "task_id", "untyped_requirements", "instruction_id_list", "kwargs"}
        constraints = from_ifeval(row["instruction_id_list"], row["kwargs"])  # every id known, kwargs valid
        assert 1 <= len(constraints) <= 4
        assert compatible(constraints), row["id"]
        task = tasks[row["task_id"]]
        assert row["instruction"].startswith(task["task"].rstrip("."))
        assert all(r.rstrip(".") in row["instruction"] for r in row["untyped_requirements"])
        kinds.update(row["instruction_id_list"])
    assert kinds == set(TYPE_IDS)


def test_repeat_prompt_repeats_exactly_the_text_before_it(seeds):
    rows = [r for r in seeds if "combination:repeat_prompt" in r["instruction_id_list"]]
    assert rows
    for row in rows:
        assert row["instruction_id_list"][-1] == "combination:repeat_prompt"
        request = row["kwargs"][-1]["prompt_to_repeat"]
        assert row["instruction"].startswith(request) and len(row["instruction"]) > len(request)


def _windows(text: str) -> set[str]:
    words = text.lower().split()
    return {" ".join(words[i:i + WINDOW]) for i in range(len(words) - WINDOW + 1)}


def _assert_disjoint(seeds: list[dict], prompts: list[str], name: str) -> None:
    tasks = read_jsonl(TASKS)
    lowered = [" ".join(p.lower().split()) for p in prompts]
    shared_tasks = [t["id"] for t in tasks if any(" ".join(t["task"].lower().split()) in p for p in lowered)]
    assert not shared_tasks, f"base tasks found in {name}: {shared_tasks[:5]}"
    theirs = set().union(*(_windows(p) for p in prompts))
    shared = {w for row in seeds for w in _windows(row["instruction"]) & theirs}
    assert not shared, f"{len(shared)} {WINDOW}-word windows shared with {name}, e.g. {sorted(shared)[:3]}"


@pytest.mark.skipif(not IFEVAL_INPUT.is_file(),
                    reason=f"IFEval's 541 prompts are not at {IFEVAL_INPUT} (they live beside the repo in ../shared)")
def test_disjoint_from_ifeval(seeds):
    prompts = [json.loads(line)["prompt"] for line in IFEVAL_INPUT.read_text().splitlines() if line.strip()]
    assert len(prompts) == 541
    _assert_disjoint(seeds, prompts, "IFEval")


def test_disjoint_from_the_own_evaluation_set(seeds):
    _assert_disjoint(seeds, [r["prompt"] for r in read_jsonl(own_eval_set())], "eval_set.jsonl")


def test_the_disjointness_check_can_fail(seeds):
    row = seeds[0]
    with pytest.raises(AssertionError, match="windows shared"):
        _assert_disjoint(seeds[:1], ["Preamble. " + row["instruction"][40:]], "a copy")
