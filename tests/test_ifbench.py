"""IFBench as an evaluation set: scored by its own checkers, headline metric named, exclusions counted, and
taken by ``evaluate``, ``run`` and ``report`` like the other sets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import write_jsonl
from test_pipeline import QUICKSTART, TINY

from musc_ecd.cli import main
from musc_ecd.evaluation.ifeval import load_inputs, score_files
from musc_ecd.store import read_jsonl

REPO = Path(__file__).resolve().parents[1]
IFBENCH = REPO.parent / "shared" / "data" / "ifbench" / "IFBench_test.jsonl"

# IFBench-format rows (kwargs carry the nulls IFBench's file has) and hand-made answers; verdicts by hand:
#   a  count:numbers N=2                         "3 ... 12": strict and loose pass
#   b  format:no_whitespace + count:numbers N=1  "Item 42": a space (fails in every variant); one number (passes)
#   c  format:title_case                          a lowercase first line fails strict; loose drops it and passes
#   d  ratio:stop_words                           its checker cannot run offline: the prompt is left out
ROWS = [
    {"key": "a", "prompt": "Say how many pets you have.", "instruction_id_list": ["count:numbers"],
     "kwargs": [{"N": 2, "keyword": None, "min_words": None}]},
    {"key": "b", "prompt": "Name an item.", "instruction_id_list": ["format:no_whitespace", "count:numbers"],
     "kwargs": [{"N": None}, {"N": 1, "keyword": None}]},
    {"key": "c", "prompt": "Name a dog.", "instruction_id_list": ["format:title_case"], "kwargs": [{"N": None}]},
    {"key": "d", "prompt": "Write about stop words.", "instruction_id_list": ["ratio:stop_words"],
     "kwargs": [{"percentage": 50, "N": None}]},
]
ANSWERS = {"a": "I have 3 cats and 12 fish.", "b": "Item 42", "c": "sure, here it is:\nThe Big Red Dog",
           "d": "Stop words are words such as the and of."}


@pytest.fixture
def answered(tmp_path) -> tuple[Path, Path]:
    inputs = write_jsonl(tmp_path / "ifbench.jsonl", ROWS)
    responses = write_jsonl(tmp_path / "responses.jsonl",
                            [{"prompt": r["prompt"], "response": ANSWERS[r["key"]]} for r in ROWS])
    return inputs, responses


def test_scoring_a_known_ifbench_answer_file(answered):
    results = score_files(*answered)
    assert results["benchmark"] == "IFBench"
    assert results["metrics"] == {"prompt_level_strict_acc": round(1 / 3, 6), "inst_level_strict_acc": 0.5,
                                  "prompt_level_loose_acc": round(2 / 3, 6), "inst_level_loose_acc": 0.75}
    assert results["headline"] == {"metric": "prompt_level_loose_acc", "value": round(2 / 3, 6),
                                   "what": "IFBench's headline metric"}
    assert results["num_prompts"] == 3 and results["num_instructions"] == 4
    verdicts = {r["key"]: (r["strict"], r["loose"]) for r in results["per_prompt"]}
    assert verdicts == {"a": ([True], [True]), "b": ([False, True], [False, True]), "c": ([False], [True])}
    excluded = results["excluded"]
    assert (excluded["prompts"], excluded["instructions"], excluded["keys"]) == (1, 1, ["d"])
    assert excluded["by_instruction_type"] == {"ratio:stop_words": 1}
    assert "stopword" in excluded["reasons"]["ratio:stop_words"]
    assert results["by_instruction_type"]["count:numbers"] == {"count": 2, "strict_acc": 1.0, "loose_acc": 1.0}


def test_ifeval_score_scores_an_ifbench_file_and_names_the_headline(answered, tmp_path, capsys):
    inputs, responses = answered
    out = tmp_path / "results.json"
    assert main(["ifeval-score", "--input", str(inputs), "--responses", str(responses), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "prompt_level_loose_acc    0.6667  (IFBench headline)" in printed
    assert "left out: 1 prompts (1 instructions)" in printed and "ratio:stop_words:" in printed
    assert json.loads(out.read_text()) == score_files(inputs, responses)


def test_an_ifeval_file_has_no_headline_and_nothing_left_out(tmp_path):
    row = {"key": 1, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
    results = score_files(write_jsonl(tmp_path / "in.jsonl", [row]),
                          write_jsonl(tmp_path / "r.jsonl", [{"prompt": "p", "response": "No commas here."}]))
    assert results["benchmark"] == "IFEval" and "headline" not in results
    assert results["excluded"]["prompts"] == 0 and results["metrics"]["prompt_level_strict_acc"] == 1.0


@pytest.mark.skipif(not IFBENCH.is_file(), reason=f"IFBench's prompts are not at {IFBENCH}")
def test_the_300_ifbench_prompts_load_and_score_with_18_left_out(tmp_path):
    rows = load_inputs(IFBENCH)
    assert len(rows) == 300 and len({i for r in rows for i in r["instruction_id_list"]}) == 58
    echo = write_jsonl(tmp_path / "echo.jsonl", [{"prompt": r["prompt"], "response": r["prompt"]} for r in rows])
    results = score_files(IFBENCH, echo)
    assert results["num_prompts"] == 282 and results["excluded"]["prompts"] == 18
    assert results["excluded"]["instructions"] == 24 and results["num_instructions"] == 320
    assert set(results["excluded"]["reasons"]) == {"ratio:stop_words", "words:start_verb"}


def test_the_ifbench_set_needs_its_file(tmp_path, capsys):
    assert main(["run", QUICKSTART, *TINY, f"run_dir={tmp_path}", "eval.sets=[ifbench]"]) == 2
    assert "'ifbench' only together with eval.ifbench_path" in capsys.readouterr().err


def test_evaluate_answers_the_ifbench_set(answered, tmp_path, capsys):
    inputs, _ = answered
    run_dir = tmp_path / "run"
    assert main(["evaluate", QUICKSTART, *TINY, "eval.sets=[ifbench]", f"eval.ifbench_path={inputs}",
                 f"run_dir={run_dir}"]) == 0
    results = json.loads((run_dir / "eval" / "base" / "results.json").read_text())
    assert results["set"] == "ifbench" and results["benchmark"] == "IFBench"
    assert results["num_prompts"] == 3 and results["excluded"]["keys"] == ["d"]
    assert results["headline"]["metric"] == "prompt_level_loose_acc"
    assert len(read_jsonl(run_dir / "eval" / "base" / "responses.jsonl")) == 4  # the left-out prompt answered too
    assert "(IFBench headline)" in capsys.readouterr().out


def test_run_and_report_take_ifbench_like_the_other_sets(answered, tmp_path, capsys):
    inputs, _ = answered
    run_dir = tmp_path / "runs" / "one"
    assert main(["run", QUICKSTART, *TINY, "eval.sets=[own,ifbench]", f"eval.ifbench_path={inputs}",
                 f"run_dir={run_dir}"]) == 0
    assert "prompt_level_loose_acc" in capsys.readouterr().out
    report = json.loads((run_dir / "report.json").read_text())
    assert list(report["comparisons"]) == ["own", "ifbench"]
    for side in ("base", "trained"):
        results = json.loads((run_dir / "eval" / "ifbench" / side / "results.json").read_text())
        assert results["num_prompts"] == 3 and results["excluded"]["prompts"] == 1
        assert [r["key"] for r in results["per_prompt"]] == ["a", "b", "c"]
    run_md = (run_dir / "report.md").read_text()
    assert "IFBench P-loose (headline)" in run_md and "## IFBench" in run_md
    assert "prompt_level_loose_acc" in run_md and "(headline) = the set's headline metric" in run_md
    assert "1 prompts (1 instructions) left out of every metric" in run_md and "`ratio:stop_words`" in run_md
    assert main(["report", str(tmp_path / "runs")]) == 0
    assert "IFBench P-loose (headline)" in (tmp_path / "runs" / "report.md").read_text()
    assert "ifbench/prompt_level_loose_acc/diff" in (tmp_path / "runs" / "report.csv").read_text()


def test_a_sweep_evaluates_ifbench_once_per_policy_and_reports_it(answered, tmp_path, capsys):
    import yaml

    inputs, _ = answered
    runs = tmp_path / "runs"
    spec = {"base": QUICKSTART, "overrides": [*TINY, "data.limit=3", "eval.sets=[ifbench]",
                                              f"eval.ifbench_path={inputs}"],
            "grid": {"train.beta": [0.1, 0.5]}, "runs_dir": str(runs)}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    assert main(["sweep", str(path)]) == 0
    assert len(list((runs / "_shared").glob("eval-base-*"))) == 1  # the base model answered IFBench once
    for name in ("beta-0.1", "beta-0.5"):
        assert list(json.loads((runs / name / "report.json").read_text())["comparisons"]) == ["ifbench"]
    assert main(["report", str(runs)]) == 0
    markdown = (runs / "report.md").read_text()
    assert "IFBench P-loose (headline)" in markdown and "| tiny | IFBench |" in markdown
