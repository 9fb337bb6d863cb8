"""IFEval scoring: every checker on hand-written cases, the four metrics by hand, the official file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_jsonl

from musc_ecd.cli import main
from musc_ecd.errors import DataError
from musc_ecd.evaluation.compare import format_comparison, paired_bootstrap, prompt_flips
from musc_ecd.evaluation.evaluate import own_eval_set
from musc_ecd.evaluation.ifeval import PromptResult, aggregate, load_inputs, match_responses, score, score_files
from musc_ecd.store import read_jsonl

HERE = Path(__file__).resolve().parent
IFEVAL = HERE.parents[1] / "shared" / "data" / "ifeval"
CASES = read_jsonl(HERE / "data" / "ifeval_cases.jsonl")
ALL_TYPES = {i for row in read_jsonl(IFEVAL / "input_data.jsonl") for i in row["instruction_id_list"]}


def test_cases_cover_every_type_passing_and_failing():
    assert len(ALL_TYPES) == 25
    for verdict in (True, False):
        assert {c["instruction_id"] for c in CASES if c["strict"] is verdict} == ALL_TYPES
    assert sum(1 for c in CASES if not c["strict"] and c["loose"]) >= 8


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_checker_verdicts_strict_and_loose(case):
    row = {"key": case["case"], "prompt": case["prompt"], "instruction_id_list": [case["instruction_id"]],
           "kwargs": [case["kwargs"]]}
    (result,) = score([row], [case["response"]])
    assert result.strict == (case["strict"],)
    assert result.loose == (case["loose"],)


def _rows():
    return [
        {"key": 1, "prompt": "p1", "instruction_id_list": ["punctuation:no_comma", "change_case:english_lowercase"],
         "kwargs": [{}, {}]},
        {"key": 2, "prompt": "p2", "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
         "kwargs": [{}, {"relation": "at least", "num_words": 5}]},
        {"key": 3, "prompt": "p3", "instruction_id_list": ["change_case:english_capital"], "kwargs": [{}]},
    ]


def test_four_metrics_by_hand():
    # p1 passes both; p2 fails no_comma only because of its first line (loose passes); p3 fails
    responses = ["the weather is lovely today and we will walk to the park",
                 "Sure, here it is.\nwe will walk to the park today", "the weather is lovely today"]
    report = aggregate(score(_rows(), responses))
    assert report["metrics"] == {
        "prompt_level_strict_acc": pytest.approx(1 / 3, abs=1e-6),  # p1
        "inst_level_strict_acc": pytest.approx(3 / 5, abs=1e-6),    # 2 + 1 + 0 of 5
        "prompt_level_loose_acc": pytest.approx(2 / 3, abs=1e-6),   # p1, p2
        "inst_level_loose_acc": pytest.approx(4 / 5, abs=1e-6),     # 2 + 2 + 0 of 5
    }
    assert report["by_instruction_type"]["punctuation:no_comma"] == {"count": 2, "strict_acc": 0.5, "loose_acc": 1.0}
    assert report["by_num_instructions"]["1"]["prompts"] == 1


def test_empty_response_fails_every_instruction():
    (result,) = score(_rows()[:1], [""])
    assert result.strict == (False, False) and result.loose == (False, False)


def test_missing_and_extra_responses_are_clear_errors():
    rows = _rows()
    with pytest.raises(DataError, match=r"1 prompt\(s\) have no response, e.g. 'p3'"):
        match_responses(rows, [{"prompt": "p1", "response": "x"}, {"prompt": "p2", "response": "y"}])
    with pytest.raises(DataError, match=r"1 response\(s\) match no prompt, e.g. 'p9'"):
        match_responses(rows, [{"prompt": p, "response": "x"} for p in ("p1", "p2", "p3", "p9")])
    with pytest.raises(DataError, match="second response"):
        match_responses(rows, [{"prompt": "p1", "response": "x"}] * 2)


def test_official_gpt4_file_matches_the_official_scorer(tmp_path):
    """IFEval's released numbers for these responses, within the documented letter_frequency fix."""
    results = score_files(IFEVAL / "input_data.jsonl", IFEVAL / "input_response_data_gpt4_20231107.jsonl")
    assert (results["num_prompts"], results["num_instructions"]) == (541, 834)
    official = {"prompt_level_strict_acc": 416 / 541, "inst_level_strict_acc": 697 / 834,
                "prompt_level_loose_acc": 430 / 541, "inst_level_loose_acc": 713 / 834}
    one_item = {"prompt_level_strict_acc": 1 / 541, "inst_level_strict_acc": 1 / 834,
                "prompt_level_loose_acc": 1 / 541, "inst_level_loose_acc": 1 / 834}
    for name, value in official.items():  # keys 1122 and 1129: '#' and '!' counted literally (both pass)
        assert results["metrics"][name] == pytest.approx(value + one_item[name], abs=1e-6), name


def test_cli_score_and_missing_response_exit_2(tmp_path, capsys):
    inputs = write_jsonl(tmp_path / "in.jsonl", _rows())
    responses = write_jsonl(tmp_path / "r.jsonl", [
        {"prompt": "p1", "response": "the weather is lovely today and we will walk to the park"},
        {"prompt": "p2", "response": "we will walk to the park today"},
        {"prompt": "p3", "response": "THE WEATHER IS LOVELY TODAY AND WE WILL WALK TO THE PARK"}])
    assert main(["ifeval-score", "--input", str(inputs), "--responses", str(responses),
                 "--out", str(tmp_path / "res.json")]) == 0
    assert json.loads((tmp_path / "res.json").read_text())["metrics"]["prompt_level_strict_acc"] == 1.0
    write_jsonl(responses, [{"prompt": "p1", "response": "x"}])
    assert main(["ifeval-score", "--input", str(inputs), "--responses", str(responses),
                 "--out", str(tmp_path / "res.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "have no response" in err


def _results(passes: list[bool]) -> list[PromptResult]:
    return [PromptResult(str(i), f"p{i}", ("punctuation:no_comma",), (ok,), (ok,)) for i, ok in enumerate(passes)]


def test_bootstrap_interval_covers_zero_for_identical_runs():
    import random

    rng = random.Random(0)
    run = _results([rng.random() < 0.6 for _ in range(200)])
    report = paired_bootstrap(run, run, resamples=2000)
    for metric in report.values():
        assert metric["diff"] == 0 and metric["ci95"][0] <= 0 <= metric["ci95"][1] and not metric["excludes_zero"]
    assert "*" not in format_comparison(report, "a", "b")  # no star, and no legend for one


def test_bootstrap_interval_excludes_zero_for_a_clear_difference():
    import random

    rng = random.Random(1)
    a = _results([rng.random() < 0.3 for _ in range(200)])
    b = _results([rng.random() < 0.8 for _ in range(200)])
    report = paired_bootstrap(a, b, resamples=2000)
    strict = report["prompt_level_strict_acc"]
    assert strict["diff"] > 0.3 and strict["ci95"][0] > 0 and strict["excludes_zero"]
    text = format_comparison(report, "a", "b")
    assert text.splitlines()[1].endswith("  *") and text.endswith("* the interval excludes 0")


def test_compare_counts_the_prompts_that_flipped_and_the_answers_that_did_not_change(tmp_path, capsys):
    """The net difference hides the churn: two prompts up and one down nets one. Answers are compared where each
    results.json has its responses.jsonl beside it."""
    verdicts = {"a": [True, True, False, False, True], "b": [True, False, True, True, True]}
    for side, passes in verdicts.items():
        (tmp_path / side).mkdir()
        rows = [r.to_json() for r in _results(passes)]
        (tmp_path / side / "results.json").write_text(json.dumps({"per_prompt": rows}))
    assert prompt_flips(_results(verdicts["a"]), _results(verdicts["b"])) == {"up": 2, "down": 1, "prompts": 5}
    paths = [str(tmp_path / side / "results.json") for side in verdicts]
    assert main(["compare", *paths, "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "2 prompts pass in B only, 1 in A only, of 5 (churn 60.0%)" in out and "identical" not in out
    for side, texts in {"a": ["x", "y", "z", "w", "v"], "b": ["x", "y", "Z", "w", "V"]}.items():
        write_jsonl(tmp_path / side / "responses.jsonl",
                    [{"id": str(i), "prompt": f"p{i}", "response": text} for i, text in enumerate(texts)])
    assert main(["compare", *paths, "--resamples", "200"]) == 0
    assert "answers: 3 of 5 identical in A and B" in capsys.readouterr().out
    write_jsonl(tmp_path / "b" / "responses.jsonl", [{"prompt": "p0", "response": "x"}])
    assert main(["compare", *paths, "--resamples", "200"]) == 2
    assert "a row without 'id'" in capsys.readouterr().err


def test_bootstrap_refuses_different_prompt_sets():
    with pytest.raises(DataError, match="same prompts"):
        paired_bootstrap(_results([True, False]), _results([True]))


def test_own_eval_set_is_well_formed():
    rows = load_inputs(own_eval_set())
    assert len(rows) >= 150 and len({r["key"] for r in rows}) == len(rows)
    assert all(2 <= len(r["instruction_id_list"]) <= 6 for r in rows)
    assert {i for r in rows for i in r["instruction_id_list"]} == ALL_TYPES
    ifeval_prompts = {r["prompt"] for r in read_jsonl(IFEVAL / "input_data.jsonl")}
    assert not ifeval_prompts & {r["prompt"] for r in rows}


def test_every_own_set_item_can_be_fully_satisfied():
    """Hand-built witness answers pass every constraint: no item of the own set is contradictory."""
    results = score_files(own_eval_set(), HERE / "data" / "eval_set_witness.jsonl")
    assert all(value == 1.0 for value in results["metrics"].values())
