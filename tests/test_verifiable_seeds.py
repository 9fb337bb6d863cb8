"""configs/data/verifiable_seeds.jsonl: what the seeded script makes, well-formed, disjoint from evaluation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from musc_ecd import checkers
from musc_ecd.constraints.typed import TYPE_IDS, compatible, from_ifeval
from musc_ecd.evaluation.evaluate import own_eval_set
from musc_ecd.store import read_jsonl

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "configs" / "data" / "verifiable_seeds.jsonl"
SEED_FILES = [SEEDS, REPO / "configs" / "data" / "seeds.jsonl"]  # every training seed file the project ships
TASKS = REPO / "configs" / "data" / "base_tasks.jsonl"
IFEVAL_INPUT = REPO.parent / "shared" / "data" / "ifeval" / "input_data.jsonl"
IFBENCH_INPUT = REPO.parent / "shared" / "data" / "ifbench" / "IFBench_test.jsonl"
BENCHMARK_PROMPTS = {"IFEval": (IFEVAL_INPUT, 541), "IFBench": (IFBENCH_INPUT, 300)}
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


def _tokens(text: str) -> list[str]:
    return text.lower().split()


def _words(text: str) -> list[str]:
    """Case- and punctuation-insensitive words: a copy with its commas or quotes changed still matches."""
    return re.findall(r"[a-z0-9]+(?:'[a-z0-9]+)*", text.lower())


def _windows(text: str, split=_tokens) -> set[str]:
    words = split(text)
    return {" ".join(words[i:i + WINDOW]) for i in range(len(words) - WINDOW + 1)}


def _assert_disjoint(seeds: list[dict], prompts: list[str], name: str, split=_tokens) -> None:
    tasks = read_jsonl(TASKS)
    lowered = [" ".join(p.lower().split()) for p in prompts]
    shared_tasks = [t["id"] for t in tasks if any(" ".join(t["task"].lower().split()) in p for p in lowered)]
    assert not shared_tasks, f"base tasks found in {name}: {shared_tasks[:5]}"
    theirs = set().union(*(_windows(p, split) for p in prompts))
    shared = {w for row in seeds for w in _windows(row["instruction"], split) & theirs}
    assert not shared, f"{len(shared)} {WINDOW}-word windows shared with {name}, e.g. {sorted(shared)[:3]}"


def _benchmark_prompts(name: str) -> list[str]:
    path, count = BENCHMARK_PROMPTS[name]
    if not path.is_file():
        pytest.skip(f"{name}'s prompts are not at {path} (they live beside the repo in ../shared)")
    prompts = [row["prompt"] for row in read_jsonl(path)]
    assert len(prompts) == count
    return prompts


@pytest.mark.parametrize("benchmark", list(BENCHMARK_PROMPTS))
@pytest.mark.parametrize("seed_file", SEED_FILES, ids=lambda p: p.name)
def test_no_seed_shares_a_ten_word_run_with_a_benchmark_prompt(seed_file, benchmark):
    _assert_disjoint(read_jsonl(seed_file), _benchmark_prompts(benchmark), benchmark, split=_words)


def _assert_no_ifbench_ids(seeds: list[dict]) -> None:
    used = {i for row in seeds for i in row.get("instruction_id_list") or []}
    ifbench = used & set(checkers.registry("IFBench"))
    assert not ifbench, f"seeds use IFBench's instruction ids {sorted(ifbench)}"
    assert used <= set(checkers.registry("IFEval")), sorted(used)  # typed seeds use IFEval's ids only


@pytest.mark.parametrize("seed_file", SEED_FILES, ids=lambda p: p.name)
def test_no_seed_uses_an_ifbench_instruction_id(seed_file):
    _assert_no_ifbench_ids(read_jsonl(seed_file))


def test_the_benchmark_checks_can_fail():
    prompt = _benchmark_prompts("IFBench")[0]
    copied = {"instruction": "Tell me. " + prompt[:200].replace(",", ";").replace("'", '"').upper()}
    with pytest.raises(AssertionError, match="windows shared with IFBench"):
        _assert_disjoint([copied], [prompt], "IFBench", split=_words)
    with pytest.raises(AssertionError, match=r"IFBench's instruction ids \['count:numbers'\]"):
        _assert_no_ifbench_ids([{"instruction_id_list": ["punctuation:no_comma", "count:numbers"]}])


def test_disjoint_from_the_own_evaluation_set(seeds):
    prompts = [r["prompt"] for r in read_jsonl(own_eval_set())]
    _assert_disjoint(seeds, prompts, "eval_set.jsonl")
    # Punctuation-blind, the two share only the wording of typed constraints (the own set phrases IFEval's
    # constraints as the seeds do: '"My answer is yes.", "My answer is no." or ...'), which both inherit from
    # IFEval's checkers; the task text — what contamination would copy — must not match even so.
    tasks = [{"instruction": row["base_instruction"]} for row in seeds]
    _assert_disjoint(tasks, prompts, "eval_set.jsonl", split=_words)


def test_the_disjointness_check_can_fail(seeds):
    row = seeds[0]
    with pytest.raises(AssertionError, match="windows shared"):
        _assert_disjoint(seeds[:1], ["Preamble. " + row["instruction"][40:]], "a copy")
