"""`musc-ecd respond` end to end on the tiny model: output format, rejects, resume after SIGKILL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import PROMPTS, sigkill_after_lines, subprocess_env, write_jsonl

from musc_ecd.cli import main
from musc_ecd.store import read_jsonl

TINY_CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml")


def _prompts(tmp_path: Path, count: int) -> Path:
    rows = [{"key": i, "prompt": f"{PROMPTS[i % len(PROMPTS)]} (variant {i})"} for i in range(count)]
    return write_jsonl(tmp_path / "prompts.jsonl", rows)


def test_respond_writes_ifeval_format_and_rejects(tmp_path, capsys):
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "hi"}, "{broken", {"prompt": "Write a poem."}])
    run_dir = tmp_path / "run"
    assert main(["respond", TINY_CONFIG, f"run_dir={run_dir}", f"data.prompts={prompts}"]) == 0
    rows = read_jsonl(run_dir / "responses.jsonl")
    assert [r["prompt"] for r in rows] == ["hi", "Write a poem."]
    assert all(isinstance(r["response"], str) and r["finish_reason"] in ("stop", "length") for r in rows)
    rejects = read_jsonl(run_dir / "rejects.jsonl")
    assert rejects == [{"id": "line-2", "stage": "load", "reason": "invalid_json",
                        "detail": rejects[0]["detail"], "line": 2}]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["accepted"] == 2 and summary["rejected_by_reason"] == {"invalid_json": 1}
    assert (run_dir / "config.yaml").is_file() and (run_dir / "log.txt").is_file()

    # a finished run is skipped: the store is not touched again
    before = (run_dir / "manifest.json").read_text()
    assert main(["respond", str(run_dir / "config.yaml")]) == 0
    assert (run_dir / "manifest.json").read_text() == before
    assert "nothing to do" in (run_dir / "log.txt").read_text()


def test_extending_the_limit_answers_only_new_items(tmp_path):
    prompts = _prompts(tmp_path, 6)
    run_dir = tmp_path / "run"
    args = ["respond", TINY_CONFIG, f"run_dir={run_dir}", f"data.prompts={prompts}", "data.id_field=key"]
    assert main([*args, "data.limit=3"]) == 0
    first = read_jsonl(run_dir / "responses.jsonl")
    assert main([*args, "data.limit=6"]) == 0
    second = read_jsonl(run_dir / "responses.jsonl")
    assert second[:3] == first and len(second) == 6
    assert "3 already done, 3 to do" in (run_dir / "log.txt").read_text()


def test_sigkill_then_rerun_writes_only_the_missing(tmp_path):
    prompts = _prompts(tmp_path, 40)
    common = ["generation.max_new_tokens=48", "generation.batch_size=2", "store.commit_every=2",
              f"data.prompts={prompts}", "data.id_field=key"]
    env = subprocess_env()
    command = [sys.executable, "-m", "musc_ecd", "respond", TINY_CONFIG]

    clean = tmp_path / "clean"
    subprocess.run([*command, *common, f"run_dir={clean}"], check=True, env=env, timeout=300,
                   capture_output=True)

    killed = tmp_path / "killed"
    shard = killed / "responses.parts" / "shard-00000.jsonl"
    answered = sigkill_after_lines([*command, *common, f"run_dir={killed}"], shard, 4)
    assert 4 <= answered < 40, "the kill must land half-way"

    subprocess.run([*command, *common, f"run_dir={killed}"], check=True, env=env, timeout=300, capture_output=True)
    assert f"{answered} already done, {40 - answered} to do" in (killed / "log.txt").read_text()
    assert (killed / "responses.jsonl").read_bytes() == (clean / "responses.jsonl").read_bytes()
