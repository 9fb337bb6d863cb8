"""The run store: durable commits, torn-tail repair, resume, conflicts, and a real SIGKILL."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from datasets import load_dataset
from helpers import sigkill_after_lines, subprocess_env

from musc_ecd.errors import RunDirConflictError
from musc_ecd.store import StageStore, read_jsonl


def _records(ids):
    return [{"id": i, "value": i * 2} for i in ids]


def test_commit_finalise_in_input_order(tmp_path):
    with StageStore(tmp_path, "pairs", "fp") as store:
        store.commit(accepted=_records(["b", "a"]), rejected=[{"id": "c", "reason": "empty"}])
        assert store.done_ids() == {"a", "b", "c"}
        assert not store.is_complete(["a", "b", "c"])
        summary = store.finalise(["a", "b", "c"])
        assert store.is_complete(["a", "b", "c"]) and not store.is_complete(["a", "b"])
    assert [r["id"] for r in read_jsonl(tmp_path / "pairs.jsonl")] == ["a", "b"]
    assert read_jsonl(tmp_path / "rejects.jsonl") == [{"id": "c", "reason": "empty"}]
    assert summary["rejected_by_reason"] == {"empty": 1} and summary["accepted"] == 2
    assert json.loads((tmp_path / "manifest.json").read_text())["records"] == 2
    assert load_dataset("json", data_files=str(tmp_path / "pairs.jsonl"), split="train")["id"] == ["a", "b"]


def test_resume_skips_done_and_never_duplicates(tmp_path):
    with StageStore(tmp_path, "pairs", "fp") as store:
        store.commit(accepted=_records(["a", "b"]))
    with StageStore(tmp_path, "pairs", "fp") as store:
        assert store.done_ids() == {"a", "b"}
        assert store.accepted.commit(_records(["b", "c"])) == 1  # b is already stored
        store.finalise(["a", "b", "c"])
    assert [r["id"] for r in read_jsonl(tmp_path / "pairs.jsonl")] == ["a", "b", "c"]
    assert len(list((tmp_path / "pairs.parts").glob("shard-*.jsonl"))) == 2  # one shard per session


def test_torn_last_line_is_dropped_and_redone(tmp_path):
    with StageStore(tmp_path, "pairs", "fp") as store:
        store.commit(accepted=_records(["a", "b"]))
    shard = next((tmp_path / "pairs.parts").glob("shard-*.jsonl"))
    with open(shard, "a") as handle:
        handle.write('{"id": "c", "val')  # what a kill in the middle of a write leaves
    with StageStore(tmp_path, "pairs", "fp") as store:
        assert store.done_ids() == {"a", "b"}
        assert store.accepted.repaired_lines == 1
    assert shard.read_text().endswith("}\n")


def test_different_config_is_refused(tmp_path):
    with StageStore(tmp_path, "pairs", "fp1") as store:
        store.commit(accepted=_records(["a"]))
    with pytest.raises(RunDirConflictError, match="different config"):
        StageStore(tmp_path, "pairs", "fp2")


def test_second_writer_is_refused(tmp_path):
    with StageStore(tmp_path, "pairs", "fp"):
        with pytest.raises(RunDirConflictError, match="in use"):
            StageStore(tmp_path, "pairs", "fp")


def test_finalise_refuses_missing_items(tmp_path):
    with StageStore(tmp_path, "pairs", "fp") as store:
        store.commit(accepted=_records(["a"]))
        with pytest.raises(RuntimeError, match="1 items have no result"):
            store.finalise(["a", "b"])
    assert not (tmp_path / "manifest.json").exists()


WRITER = textwrap.dedent(
    """
    import sys, time
    from musc_ecd.store import StageStore
    run_dir, total, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    with StageStore(run_dir, "items", "fp") as store:
        for i in range(total):
            if f"item-{i:04d}" in store.done_ids():
                continue
            # a record big enough that a kill can land in the middle of writing it
            store.commit(accepted=[{"id": f"item-{i:04d}", "payload": "x" * 20000 * (1 + i % 3)}])
            time.sleep(pause)
        store.finalise([f"item-{i:04d}" for i in range(total)])
    """
)


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = subprocess_env()
    total = 60

    clean = tmp_path / "clean"
    subprocess.run([sys.executable, str(script), str(clean), str(total), "0"], check=True, env=env, timeout=60)

    killed = tmp_path / "killed"
    shard = killed / "items.parts" / "shard-00000.jsonl"
    done_before = sigkill_after_lines([sys.executable, str(script), str(killed), str(total), "0.01"], shard, 20)
    assert not (killed / "manifest.json").exists()
    assert 20 <= done_before < total

    subprocess.run([sys.executable, str(script), str(killed), str(total), "0"], check=True, env=env, timeout=60)
    assert (killed / "items.jsonl").read_bytes() == (clean / "items.jsonl").read_bytes()
    resumed = sum(p.read_bytes().count(b"\n") for p in (killed / "items.parts").glob("shard-*.jsonl"))
    assert resumed == total  # none written twice, none lost
