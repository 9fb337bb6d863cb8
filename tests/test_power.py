"""``musc-ecd power``: the smallest difference the report's paired bootstrap detects, against known cases."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from musc_ecd.cli import main
from musc_ecd.evaluation.ifeval import PromptResult
from musc_ecd.evaluation.power import base_results, minimum_detectable, observed_churn


def prompts(count: int, seed: int = 0, pass_share: float = 0.5) -> list[PromptResult]:
    """``count`` prompts of 1–3 instructions, each passed with ``pass_share``."""
    rng = np.random.default_rng(seed)
    results = []
    for index in range(count):
        verdicts = tuple(bool(x) for x in rng.random(int(rng.integers(1, 4))) < pass_share)
        results.append(PromptResult(str(index), f"prompt {index}", ("punctuation:no_comma",) * len(verdicts),
                                    verdicts, verdicts))
    return results


@pytest.mark.parametrize("count", [200, 541])
def test_without_churn_six_expected_changes_are_the_least_detectable(count):
    """An interval excludes 0 once 4 prompts changed ((1 − 4/N)^N < 2.5% of resamples miss them all); 4 or more
    happen in 80% of experiments when about 6 are expected (Poisson: 0.85 at 6, 0.73 at 5)."""
    results = prompts(count)
    for increase in (True, False):
        assert minimum_detectable(results, "prompt_level_strict_acc", 0.0, increase=increase) == 6 / count


def test_with_churn_it_matches_the_normal_approximation_and_shrinks_with_more_prompts():
    def approximation(n: int, churn: float) -> float:  # d = 2.8·sqrt((churn + d)/n), by fixed point
        d = 0.05
        for _ in range(50):
            d = (1.96 + 0.84) * math.sqrt((churn + d) / n)
        return d

    small, large = prompts(200), prompts(800, seed=1)
    mdd_small = minimum_detectable(small, "prompt_level_strict_acc", 0.1)
    mdd_large = minimum_detectable(large, "prompt_level_strict_acc", 0.1)
    assert mdd_large < mdd_small
    assert mdd_small == pytest.approx(approximation(200, 0.1), rel=0.2)
    assert mdd_large == pytest.approx(approximation(800, 0.1), rel=0.2)
    assert minimum_detectable(small, "prompt_level_strict_acc", 0.2) > mdd_small  # more churn, less power
    # instructions are more units than prompts: a smaller difference is seen at the instruction level
    assert minimum_detectable(small, "inst_level_strict_acc", 0.1) < mdd_small


def test_no_room_is_unreachable():
    everything_passes = prompts(50, pass_share=1.0)
    assert minimum_detectable(everything_passes, "prompt_level_strict_acc", increase=True) is None
    assert minimum_detectable(everything_passes, "prompt_level_strict_acc", increase=False) == 6 / 50


def test_observed_churn_by_hand():
    base = [PromptResult(str(i), "p", ("a",), (ok,), (ok,)) for i, ok in enumerate([True, True, False, False])]
    trained = [PromptResult(str(i), "p", ("a",), (ok,), (ok,)) for i, ok in enumerate([False, True, True, True])]
    # 3 changed, net +1: two of them cancel
    assert observed_churn(base, trained, "prompt_level_strict_acc") == pytest.approx(2 / 4)


def _write_base(run_dir: Path, set_name: str, results: list[PromptResult]) -> None:
    target = run_dir / "eval" / set_name / "base"
    target.mkdir(parents=True)
    (target / "results.json").write_text(json.dumps({"per_prompt": [r.to_json() for r in results]}))


def test_cli_reads_a_directory_of_runs_and_states_each_set(tmp_path, capsys):
    base_run = tmp_path / "base"
    (tmp_path / "base").mkdir()
    (base_run / "config.yaml").write_text("eval: {base_only: true}\n")
    _write_base(base_run, "ifeval", prompts(120))
    _write_base(base_run, "own", prompts(60, seed=2))
    assert sorted(base_results(tmp_path)) == ["ifeval", "own"]
    out_json = tmp_path / "power.json"
    assert main(["power", str(tmp_path), "--churn", "0", "0.1", "--metric", "prompt_level_strict_acc",
                 "--simulations", "50", "--resamples", "500", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "ifeval" in out and "own" in out and "prompt_level_strict_acc" in out and "80%" in out
    rows = json.loads(out_json.read_text())["rows"]
    assert [(r["set"], r["churn"]) for r in rows] == [("ifeval", 0.0), ("ifeval", 0.1), ("own", 0.0), ("own", 0.1)]
    assert rows[0]["prompts"] == 120 and rows[1]["increase"] > rows[0]["increase"]
    # one results.json: its set is the folder above `base`
    assert list(base_results(base_run / "eval" / "own" / "base" / "results.json")) == ["own"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["power", str(tmp_path / "missing")]) == 2
    assert main(["power", str(tmp_path), "--power", "1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("musc-ecd: error:") for line in err)
