"""The run report's per-constraint-type split: base vs trained strict accuracy, from the results files."""

from __future__ import annotations

import json
from pathlib import Path

from test_report import SELF, comparison, write_run

from musc_ecd.evaluation.report import constraint_type_table, render_run_report


def write_results(run_dir: Path, set_name: str, side: str, by_type: dict[str, tuple[int, float]]) -> None:
    target = run_dir / "eval" / set_name / side
    target.mkdir(parents=True)
    results = {"by_instruction_type": {t: {"count": n, "strict_acc": acc, "loose_acc": acc}
                                       for t, (n, acc) in by_type.items()}}
    (target / "results.json").write_text(json.dumps(results))


def test_table_rows_by_hand(tmp_path):
    comma, title = "punctuation:no_comma", "detectable_format:title"
    write_results(tmp_path, "own", "base", {comma: (8, 0.25), title: (4, 0.5)})
    write_results(tmp_path, "own", "trained", {comma: (8, 0.625), title: (4, 0.25)})
    table = constraint_type_table(tmp_path, ["own", "ifeval"]).splitlines()  # no ifeval results: no ifeval rows
    assert table[0] == "| set | constraint type | count | base | trained | trained − base |"
    assert table[2:] == ["| own | detectable_format:title | 4 | 0.500 | 0.250 | -0.250 |",
                         "| own | punctuation:no_comma | 8 | 0.250 | 0.625 | +0.375 |"]
    assert constraint_type_table(tmp_path / "nothing", ["own"]) == ""


def test_run_report_includes_the_split(tmp_path):
    run = write_run(tmp_path / "run", config=SELF, summary={"items": 2, "accepted": 2},
                    report={"pairs": 2, "train_steps": 1, "comparisons": {"own": comparison(0.25, 0.5)}},
                    status={"status": "done", "stages": {}})
    write_results(run, "own", "base", {"startend:quotation": (3, 0.0)})
    write_results(run, "own", "trained", {"startend:quotation": (3, 1.0)})
    markdown = render_run_report(run)
    assert "## By constraint type (instruction-level strict accuracy)" in markdown
    assert "| own | startend:quotation | 3 | 0.000 | 1.000 | +1.000 |" in markdown
