"""The lines ``musc-ecd run`` prints under its tables, from a run directory's files."""

from __future__ import annotations

import json

from musc_ecd.run_summary import format_run_summary


def _run_dir(tmp_path, audit: dict | None):
    (tmp_path / "generate").mkdir()
    (tmp_path / "generate" / "summary.json").write_text(json.dumps(
        {"accepted": 20, **({"label_accuracy": audit} if audit else {})}))
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "metrics.jsonl").write_text(
        "\n".join(json.dumps(row) for row in [{"step": 1, "loss": 0.6931}, {"step": 1, "lr": 1e-4},
                                               {"step": 10, "loss": 0.2512}]) + "\n")
    (tmp_path / "status.json").write_text(json.dumps(
        {"state": "done", "stages": {"generate": {"state": "done", "seconds": 181.2},
                                     "train": {"state": "done", "seconds": 58.9}}}))
    return tmp_path


def test_summary_names_the_audit_the_loss_and_the_stage_times(tmp_path):
    audit = {"pairs": 20, "with_constraints": 20, "chosen_better": 1.0, "tied": 0.0, "reversed": 0.0}
    text = format_run_summary(_run_dir(tmp_path, audit))
    assert "20 of 20 pairs carry typed constraints" in text and "more of them in 100.0%" in text
    assert "fewer in 0.0%" in text
    assert "0.6931 at step 1 -> 0.2512 at step 10" in text
    assert "generate 181 s, train 59 s (total 4.0 min)" in text


def test_summary_says_when_there_is_nothing_to_audit(tmp_path):
    text = format_run_summary(_run_dir(tmp_path, None))
    assert "20 pairs, none with typed constraints to audit" in text
