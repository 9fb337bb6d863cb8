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
        assert store.commit(accepted=_records(["b", "c"])) == 1  # b is already stored
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
        assert store.repaired_lines == 1
    assert shard.read_text().endswith("}\n")


def _item_records(item: str, kept: int, dropped: int) -> tuple[list[dict], list[dict]]:
    """What an ECD seed yields: some rounds kept as pairs, others rejected, all sharing the item id."""
    accepted = [{"id": f"{item}#r{k}", "item_id": item, "pair": k} for k in range(1, kept + 1)]
    rejected = [{"id": f"{item}#r{k}", "item_id": item, "reason": "drift"} for k in range(kept + 1, kept + dropped + 1)]
    return accepted, rejected


def test_a_kill_inside_commit_loses_no_pair_of_an_item_with_rejects(tmp_path, monkeypatch):
    """The process dies while an item with both kinds of records is being committed, just before its
    accepted pair is serialised (the old store had already fsynced the item's rejects by then, so the item
    counted as done and its pair was never written). On resume every item's pairs are present, none twice."""
    import musc_ecd.store as store_module

    items = [f"seed-{i}" for i in range(4)]
    real_dumps = store_module._dumps

    def dies_at_the_pair_of_seed_1(record):
        text = real_dumps(record)
        if '"seed-1#r1"' in text and '"pair"' in text:
            raise KeyboardInterrupt  # the kill
        return text

    with StageStore(tmp_path, "pairs", "fp") as store:
        store.commit(*_item_records(items[0], kept=2, dropped=1))
        monkeypatch.setattr(store_module, "_dumps", dies_at_the_pair_of_seed_1)
        with pytest.raises(KeyboardInterrupt):
            store.commit(*_item_records(items[1], kept=1, dropped=2))
    monkeypatch.undo()
    with StageStore(tmp_path, "pairs", "fp") as store:
        assert store.done_ids() == {items[0]}  # the interrupted commit finished nothing
        for item in items[1:]:
            if item not in store.done_ids():
                store.commit(*_item_records(item, kept=1, dropped=2))
        store.finalise(items)
    pairs = read_jsonl(tmp_path / "pairs.jsonl")
    assert [p["id"] for p in pairs] == ["seed-0#r1", "seed-0#r2", "seed-1#r1", "seed-2#r1", "seed-3#r1"]
    rejects = read_jsonl(tmp_path / "rejects.jsonl")
    assert len(rejects) == 1 + 2 * 3 and len({(r["item_id"], r["id"]) for r in rejects}) == len(rejects)


def test_a_torn_line_redoes_only_its_item(tmp_path):
    """Half of the last item's line reached the disk: that item is redone, its commit mates are kept."""
    with StageStore(tmp_path, "pairs", "fp") as store:
        store.commit(*_item_records("seed-0", kept=1, dropped=1))
        store.commit(*[a + b for a, b in zip(_item_records("seed-1", 1, 1), _item_records("seed-2", 2, 0),
                                             strict=True)])
    shard = next((tmp_path / "pairs.parts").glob("shard-*.jsonl"))
    data = shard.read_bytes()
    shard.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 1 + 40])  # the last commit, torn
    with StageStore(tmp_path, "pairs", "fp") as store:
        assert store.done_ids() == {"seed-0", "seed-1"} and store.repaired_lines == 1


def test_commit_with_records_of_another_item_is_an_error(tmp_path):
    with StageStore(tmp_path, "pairs", "fp") as store:
        with pytest.raises(ValueError, match="not in this commit"):
            store.commit(accepted=_records(["a"]), items=["b"])


def test_an_item_without_records_is_done_once_committed(tmp_path):
    with StageStore(tmp_path, "pairs", "fp") as store:
        store.commit(items=["a"])
    with StageStore(tmp_path, "pairs", "fp") as store:
        assert store.done_ids() == {"a"}


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


def test_a_run_directory_in_the_old_layout_still_resumes(tmp_path):
    """Before item lines: accepted records in NAME.parts, rejects in rejects.parts, one bare record a line."""
    (tmp_path / "pairs.parts").mkdir()
    (tmp_path / "rejects.parts").mkdir()
    for name in ("pairs.parts", "rejects.parts"):
        (tmp_path / name / "meta.json").write_text(json.dumps({"fingerprint": "fp"}))
    (tmp_path / "pairs.parts" / "shard-00000.jsonl").write_text(
        json.dumps({"id": "a", "prompt": "p", "chosen": "c", "rejected": "r"}) + "\n")
    (tmp_path / "rejects.parts" / "shard-00000.jsonl").write_text(json.dumps({"id": "b", "reason": "empty"}) + "\n")
    with StageStore(tmp_path, "pairs", "fp") as store:
        assert store.done_ids() == {"a", "b"}
        store.commit(accepted=_records(["c"]))
        store.finalise(["a", "b", "c"])
    assert [r["id"] for r in read_jsonl(tmp_path / "pairs.jsonl")] == ["a", "c"]
    assert read_jsonl(tmp_path / "rejects.jsonl") == [{"id": "b", "reason": "empty"}]
