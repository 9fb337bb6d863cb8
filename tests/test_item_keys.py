"""Items are stored under their id *and content*: an edited seed is a new item, built again, and nothing else is."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from helpers import write_jsonl

from musc_ecd.config import load_config
from musc_ecd.generate import generate
from musc_ecd.items import entry_key, key_id, load_items, prompt_key
from musc_ecd.store import read_jsonl

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "musc_coarse.yaml")
TINY = ["model.policy=tiny", "model.dtype=float32", "musc.decompose_max_tokens=24", "musc.recombine_max_tokens=16",
        "musc.rewrite_max_tokens=8", "musc.respond_max_tokens=12", "store.commit_every=2"]


def _seeds(path: Path, edit: dict | None = None) -> Path:
    rows = read_jsonl(REPO / "configs" / "data" / "seeds.jsonl")[:3]
    rows[1].update(edit or {})
    return write_jsonl(path, rows)


def _built_items(monkeypatch) -> list[str]:
    """The ids of the items the MuSC coarse builder is asked to build, in order."""
    from musc_ecd.methods import musc_coarse

    built: list[str] = []
    original = musc_coarse.MuscCoarse.__call__

    def recording(self, items):
        built.extend(item.id for item in items)
        return original(self, items)

    monkeypatch.setattr(musc_coarse.MuscCoarse, "__call__", recording)
    return built


def _records_by_item(stage_dir: Path) -> dict[str, list[dict]]:
    by_item: dict[str, list[dict]] = {}
    for name in ("pairs.jsonl", "rejects.jsonl"):
        for record in read_jsonl(stage_dir / name):
            by_item.setdefault(record.get("item_id", record["id"]), []).append(record)
    return by_item


def test_an_edited_seed_is_rebuilt_and_nothing_else(tmp_path, monkeypatch):
    seeds = _seeds(tmp_path / "seeds.jsonl")
    cfg = load_config(CONFIG, [*TINY, f"data.seeds={seeds}", f"run_dir={tmp_path / 'run'}"])
    built = _built_items(monkeypatch)
    first = generate(cfg, tmp_path / "run")
    assert built == ["seed-0001", "seed-0002", "seed-0003"] and first["items_changed"] == 0

    edited = "Write a two-line poem about a heater. Use no commas. End with a question."
    _seeds(seeds, {"instruction": edited})
    built.clear()
    second = generate(cfg, tmp_path / "run")
    assert built == ["seed-0002"]  # exactly the edited item is rebuilt
    assert second["items_changed"] == 1 and second["items"] == 3
    by_item = _records_by_item(tmp_path / "run" / "generate")
    assert sorted(by_item) == ["seed-0001", "seed-0002", "seed-0003"]
    assert all(len(records) == 1 for records in by_item.values())  # the old records of seed-0002 are gone
    (record,) = by_item["seed-0002"]
    if "meta" in record:  # a pair records the instruction it was made from
        assert record["meta"]["source_instruction"] == edited
    assert json.loads((tmp_path / "run" / "generate" / "summary.json").read_text())["items_changed"] == 1

    built.clear()
    assert generate(cfg, tmp_path / "run") == second and built == []  # nothing changed: nothing to do


def test_typed_constraints_are_part_of_an_items_content(tmp_path):
    """Not only the text: a seed whose typed constraints (or any column a method may read) change is new."""
    row = {"id": "a", "instruction": "Write a haiku.", "instruction_id_list": ["punctuation:no_comma"],
           "kwargs": [{}]}
    before = load_items(write_jsonl(tmp_path / "a.jsonl", [row]), "instruction", "id")[0]
    retyped = {**row, "instruction_id_list": ["change_case:english_lowercase"]}
    after = load_items(write_jsonl(tmp_path / "b.jsonl", [retyped]), "instruction", "id")[0]
    assert before.id == after.id == "a" and entry_key(before) != entry_key(after)
    assert key_id(entry_key(before)) == "a" and prompt_key(before) == prompt_key(after)  # answers read the text only
    email = load_items(write_jsonl(tmp_path / "c.jsonl", [{**row, "id": "me@example.com"}]), "instruction", "id")[0]
    assert key_id(entry_key(email)) == "me@example.com"


def _to_bare_ids(parts: Path) -> None:
    """What a store written before keys held content looks like: every line, and the manifest's list of
    items, names the items by their bare ids."""
    bare = []
    for shard in parts.glob("shard-*.jsonl"):
        lines = [json.loads(line) for line in shard.read_text().splitlines()]
        bare += [key_id(k) for line in lines for k in line["items"]]
        shard.write_text("".join(json.dumps({**line, "items": [key_id(k) for k in line["items"]]}) + "\n"
                                 for line in lines))
    manifest_path = parts.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["items_sha256"] = hashlib.sha256("\n".join(bare).encode()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


def test_an_older_generate_store_is_rebuilt_and_counted(tmp_path, monkeypatch):
    """Bare ids say nothing of the content they were built from: those items are built again, and counted."""
    seeds = _seeds(tmp_path / "seeds.jsonl")
    cfg = load_config(CONFIG, [*TINY, f"data.seeds={seeds}", f"run_dir={tmp_path}"])
    built = _built_items(monkeypatch)
    first = generate(cfg, tmp_path)
    _to_bare_ids(tmp_path / "generate" / "pairs.parts")
    built.clear()
    second = generate(cfg, tmp_path)
    assert built == ["seed-0001", "seed-0002", "seed-0003"]
    assert second["items_unverified"] == 3 and second["items_changed"] == 0
    assert second["accepted"] == first["accepted"] and second["rejected"] == first["rejected"]


def test_an_older_respond_store_is_verified_and_kept(tmp_path, monkeypatch):
    """An answer records its prompt: one an older store kept under the bare id is checked and reused."""
    from musc_ecd import respond as respond_module

    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"p{i}", "prompt": f"Say {i}."} for i in range(3)] + ["{bad"])
    cfg = load_config(str(REPO / "configs" / "tiny.yaml"),
                      [f"data.prompts={prompts}", "data.id_field=id", f"run_dir={tmp_path}"])
    respond_module.respond(cfg, tmp_path)
    answers = (tmp_path / "responses.jsonl").read_bytes()
    _to_bare_ids(tmp_path / "responses.parts")
    def no_model(*args):
        raise AssertionError("a verified answer needs no model")

    monkeypatch.setattr(respond_module, "create_generator", no_model)
    summary = respond_module.respond(cfg, tmp_path)  # no model loads: every answer is verified
    assert summary["items_unverified"] == 0 and summary["rejected"] == 1
    assert (tmp_path / "responses.jsonl").read_bytes() == answers
    write_jsonl(prompts, [{"id": "p0", "prompt": "Say zero."}, {"id": "p1", "prompt": "Say 1."},
                          {"id": "p2", "prompt": "Say 2."}])
    monkeypatch.undo()
    assert respond_module.respond(cfg, tmp_path)["items_changed"] == 1
    assert read_jsonl(tmp_path / "responses.jsonl")[0]["prompt"] == "Say zero."
