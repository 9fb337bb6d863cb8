"""`musc-ecd report`: the table (Markdown, CSV) and plots from hand-written run directories."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from musc_ecd.cli import main
from musc_ecd.evaluation.report import collect_runs, csv_columns, roles

METRICS = ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc")


def comparison(base: float, trained: float) -> dict:
    """The same numbers for all four metrics: base, trained, difference, an interval around it."""
    diff = round(trained - base, 6)
    return {m: {"a": base, "b": trained, "diff": diff, "ci95": [round(diff - 0.05, 6), round(diff + 0.05, 6)],
                "excludes_zero": diff - 0.05 > 0} for m in METRICS}


def write_run(directory: Path, *, config: str, report: dict | None, status: dict, metrics: list[dict] = (),
              summary: dict | None = None) -> Path:
    directory.mkdir(parents=True)
    (directory / "config.yaml").write_text(config)
    if report is not None:
        (directory / "report.json").write_text(json.dumps(report))
    (directory / "status.json").write_text(json.dumps(status))
    if metrics:
        (directory / "train").mkdir()
        (directory / "train" / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    if summary is not None:
        (directory / "generate").mkdir()
        (directory / "generate" / "summary.json").write_text(json.dumps(summary))
    return directory


SELF = """method: musc_coarse
model: {policy: tiny, teacher: null, responders: [], judge: null}
train: {loss: [sigmoid], loss_weights: null, weights: kl, curriculum: random}
"""
TEACHER = """method: ecd
model: {policy: tiny, teacher: big-model, responders: [], judge: tiny}
train: {loss: [hinge, sft], loss_weights: [1.0, 0.5], weights: none, curriculum: easy_to_hard}
"""
CURVE = [{"step": s, "loss": 0.7 - 0.1 * s, "rewards/margins": 0.2 * s, "rewards/accuracies": 0.25 * s}
         for s in (1, 2, 3)]
YIELD = {"items": 10, "accepted": 6, "yield_per_stage": {"seeds": 10, "decomposed": 9, "recombined": 6}}


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    write_run(tmp_path / "a-self", config=SELF, summary=YIELD, metrics=CURVE,
              report={"pairs": 6, "train_steps": 3, "comparisons": {"own": comparison(0.25, 0.375),
                                                                    "ifeval": comparison(0.5, 0.4)}},
              status={"status": "done", "stages": {"train": {"state": "done", "seconds": 12.5}}})
    write_run(tmp_path / "b-teacher", config=TEACHER, summary={**YIELD, "yield_per_stage": {"seeds": 10, "evolved": 4}},
              report={"pairs": 4, "generated_pairs": 9, "train_steps": 2,
                      "comparisons": {"own": comparison(0.25, 0.2)}},
              status={"status": "done", "stages": {}})
    write_run(tmp_path / "c-broken", config=SELF, report=None,
              status={"status": "failed", "stage": "train", "error": "RuntimeError: disk on fire"})
    (tmp_path / "_shared").mkdir()  # not a run
    (tmp_path / "_shared" / "config.yaml").write_text(SELF)
    return tmp_path


def test_roles_say_who_wrote_the_data():
    def cfg(method, teacher=None, judge=None, responders=(), **ecd):
        return {"method": method, "ecd": ecd, "model": {"policy": "p", "teacher": teacher, "judge": judge,
                                                         "responders": list(responders)}}

    assert roles(cfg("musc")) == roles(cfg("musc_coarse", teacher="p", judge="p")) == "self"
    assert roles(cfg("ecd", evolver="policy", responder="policy")) == "self"
    assert roles(cfg("ecd", teacher="t", evolver="policy", responder="policy")) == "self"  # named, unused
    assert roles(cfg("ecd", teacher="t")) == "teacher:t"
    # on CPU the teacher is the policy decoded differently: still a teacher run, and the column says so
    assert roles(cfg("ecd", teacher="p", evolver="teacher", responder="teacher")) == "teacher:p"
    assert roles(cfg("ecd", teacher="t", evolver="teacher", responder="policy")) == "teacher:t (evolver)"
    assert roles(cfg("ecd", teacher="t", judge="j")) == "teacher:t+judge:j"
    assert roles(cfg("apc", responders=["big", "p", "tiny"])) == "responders:big>p>tiny"
    # A named role the method never calls is not claimed (generate refuses such a config): MuSC calls no teacher.
    assert roles(cfg("musc_fine", teacher="t")) == "self"
    assert roles(cfg("musc_fine", judge="j")) == "judge:j"  # MuSC's judge is model.judge when named
    assert roles(cfg("musc_coarse", judge="j")) == "self"  # the coarse judge filter is off by default


def test_report_table_values(runs_dir, capsys):
    assert main(["report", str(runs_dir)]) == 0
    markdown = (runs_dir / "report.md").read_text()
    main_table = markdown.split("\n## ")[0]  # later sections (base model, compute) have rows per run too
    rows = {line.split(" | ")[0].lstrip("| "): line for line in main_table.splitlines()
            if line.startswith("| ") and not line.startswith("| run ")}
    assert set(rows) >= {"a-self", "b-teacher", "c-broken"} and "_shared" not in markdown
    header = next(line for line in markdown.splitlines() if line.startswith("| run |"))
    assert header.split(" | ")[:9] == ["| run", "status", "method", "roles", "loss", "weights", "curriculum",
                                       "model", "pairs"]
    assert "IFEval P-strict" in header and "own I-loose" in header and header.index("IFEval") < header.index("own")
    cells = [c.strip() for c in rows["a-self"].strip("| ").split(" | ")]
    assert cells[:9] == ["a-self", "done", "musc_coarse", "self", "sigmoid", "kl", "random", "tiny", "6"]
    assert cells[9] == "0.400 (-0.100 [-0.150, -0.050])"  # IFEval first
    assert cells[13] == "0.375 (+0.125 [+0.075, +0.175])" and cells[-1] == "12.5"
    cells = [c.strip() for c in rows["b-teacher"].strip("| ").split(" | ")]
    assert cells[3:7] == ["teacher:big-model", "hinge+sft (1, 0.5)", "none", "easy_to_hard"]
    assert cells[8] == "4 of 9"  # a pair budget trained on 4 of the 9 generated pairs
    assert cells[9:13] == ["–"] * 4 and cells[13].startswith("0.200 (-0.050") and cells[-1] == "–"
    cells = [c.strip() for c in rows["c-broken"].strip("| ").split(" | ")]
    assert cells[1] == "failed" and cells[9:] == ["–"] * 9
    assert "`c-broken`: stage 'train': RuntimeError: disk on fire" in markdown
    assert "| tiny | own | 0.250 | 0.250 | 0.250 | 0.250 |" in markdown  # the base model, once per set
    assert "3 runs: 2 done, 1 failed." in markdown


def test_report_csv_columns_and_numbers(runs_dir):
    assert main(["report", str(runs_dir)]) == 0
    with open(runs_dir / "report.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == csv_columns(["ifeval", "own"])
        rows = {row["run"]: row for row in reader}
    assert {"ifeval/inst_level_loose_acc/ci_high", "own/prompt_level_strict_acc/base"} <= set(rows["a-self"])
    a = rows["a-self"]
    assert float(a["own/prompt_level_strict_acc"]) == 0.375 and float(a["own/prompt_level_strict_acc/base"]) == 0.25
    assert float(a["ifeval/inst_level_loose_acc/diff"]) == pytest.approx(-0.1)
    assert float(a["ifeval/inst_level_loose_acc/ci_low"]) == pytest.approx(-0.15)
    assert a["train_seconds"] == "12.5" and a["roles"] == "self" and a["pairs"] == "6"
    assert rows["b-teacher"]["ifeval/prompt_level_strict_acc"] == ""  # missing: empty in the CSV
    assert (rows["b-teacher"]["pairs"], rows["b-teacher"]["generated_pairs"]) == ("4", "9")
    assert rows["c-broken"]["status"] == "failed" and "disk on fire" in rows["c-broken"]["error"]


def test_report_plots_are_valid_pngs(runs_dir):
    assert main(["report", str(runs_dir)]) == 0
    markdown = (runs_dir / "report.md").read_text()
    for name in ("metrics", "curves", "yield"):
        path = runs_dir / "plots" / f"{name}.png"
        assert f"![{name}](plots/{name}.png)" in markdown
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 150
            image.verify()


def test_report_reads_curves_and_yield(runs_dir):
    records = {r.name: r for r in collect_runs(runs_dir)}
    assert records["a-self"].curves["rewards/margins"] == [(1, 0.2), (2, 0.4), (3, pytest.approx(0.6))]
    assert records["b-teacher"].yield_per_stage == {"seeds": 10, "evolved": 4}
    assert records["c-broken"].curves == {} and records["c-broken"].comparisons == {}


def test_a_sweep_failure_without_a_run_directory_gets_a_row(runs_dir):
    (runs_dir / "sweep_status.json").write_text(json.dumps({"runs": {
        "d-never-started": {"status": "failed", "error": "exit code 2"}, "a-self": {"status": "done"}}}))
    records = {r.name: r for r in collect_runs(runs_dir)}
    assert records["d-never-started"].status == "failed" and records["d-never-started"].error == "exit code 2"


def test_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "is not a directory of runs" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no run directories" in capsys.readouterr().err


def test_label_accuracy_column_when_pairs_carry_typed_constraints(runs_dir):
    audit = {"pairs": 6, "with_constraints": 5, "chosen_better": 0.6, "tied": 0.4, "reversed": 0.0,
             "chosen_mean_passed": 1.8, "rejected_mean_passed": 1.0}
    summary = runs_dir / "a-self" / "generate" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "label_accuracy": audit}))
    assert main(["report", str(runs_dir)]) == 0
    markdown = (runs_dir / "report.md").read_text()
    header = next(line for line in markdown.splitlines() if line.startswith("| run |"))
    assert header.split(" | ")[9] == "labels better/tied/reversed"
    row = next(line for line in markdown.splitlines() if line.startswith("| a-self |"))
    assert row.split(" | ")[9] == "0.60/0.40/0.00 (n=5)"
    csv_row = next(line for line in (runs_dir / "report.csv").read_text().splitlines() if line.startswith("a-self"))
    assert ",5,0.6,0.4,0.0,1.8,1.0," in csv_row


def test_compute_counts_a_shared_stage_once_in_the_run_that_made_it(tmp_path):
    shared = tmp_path / "_shared" / "generate-k"
    shared.mkdir(parents=True)
    stages = {"maker": {"generate": {"seconds": 3000.0, "sessions": 2}, "train": {"seconds": 600.0},
                        "report": {"seconds": 0.1}},
              "reuser": {"generate": {"seconds": 2.0}, "train": {"seconds": 900.0}, "report": {"seconds": 0.1},
                         "evaluate-trained[own]": {"state": "running", "seconds": 50.0}}}  # killed: not counted
    for name, entries in stages.items():
        run = write_run(tmp_path / name, config=SELF, report={"pairs": 6, "train_steps": 3, "comparisons": {}},
                        status={"status": "done", "stages": {k: {"state": "done", **v}
                                                             for k, v in entries.items()}})
        (run / "generate").symlink_to(Path("..") / "_shared" / "generate-k")
    (tmp_path / "maker" / "machine.json").write_text(json.dumps(
        {"cpu": "AMD EPYC", "cpu_family_model": "25/1", "cpu_capability": "AVX2", "cores": 2}))
    assert main(["report", str(tmp_path)]) == 0
    compute = (tmp_path / "report.md").read_text().split("## Compute")[1]
    assert "| run | where | generate | train | total h |" in compute  # the report stage is not compute
    assert "| maker | AMD EPYC (family/model 25/1), 2 cores, AVX2 | 3,000 s (2 sessions) | 600 s | 1.00 |" in compute
    assert "| reuser | – | shared (maker) | 900 s | 0.25 |" in compute
    assert "| all | |  |  | 1.25 |" in compute


def test_report_readme_puts_the_printed_table_between_the_readme_markers(tmp_path, capsys):
    from musc_ecd.evaluation.readme_table import END, START, table_in

    write_run(tmp_path / "runs" / "a-self", config=SELF, report={"pairs": 6, "train_steps": 3, "comparisons": {}},
              status={"status": "done", "stages": {}})
    readme = tmp_path / "README.md"
    readme.write_text(f"# An experiment\n\n{START}\n{END}\n")
    assert main(["report", str(tmp_path / "runs"), "--readme", str(readme)]) == 0
    printed = capsys.readouterr().out
    assert table_in(readme).startswith("| run | status |") and table_in(readme) in printed
    assert f"-> {readme} (its table rewritten)" in printed
    assert main(["report", str(tmp_path / "runs"), "--readme", str(tmp_path / "absent.md")]) == 2
    assert "cannot read it" in capsys.readouterr().err
