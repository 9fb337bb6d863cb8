"""Loading prompts: every malformed line becomes a reject with its line number, nothing is lost."""

from __future__ import annotations

import pytest
from helpers import write_jsonl

from musc_ecd.errors import DataError
from musc_ecd.items import Item, Reject, load_items, prompt_id


def test_jsonl_with_every_kind_of_bad_line(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [
        {"prompt": "first"},
        "{not json",
        [1, 2],
        {"text": "wrong field"},
        {"prompt": "   "},
        {"prompt": "first"},
        {"prompt": "second", "extra": 1},
    ])
    entries = load_items(path)
    kinds = [(e.reason, e.line) if isinstance(e, Reject) else ("item", e.line) for e in entries]
    assert kinds == [("item", 1), ("invalid_json", 2), ("not_an_object", 3), ("missing_field", 4),
                     ("empty_prompt", 5), ("duplicate_id", 6), ("item", 7)]
    assert entries[0].id == prompt_id("first") and entries[-1].fields["extra"] == 1


def test_id_field_and_limit(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"key": i, "q": f"p{i}"} for i in range(5)] + [{"q": "no key"}])
    entries = load_items(path, prompt_field="q", id_field="key", limit=3)
    assert [e.id for e in entries] == ["0", "1", "2"] and all(isinstance(e, Item) for e in entries)
    tail = load_items(path, prompt_field="q", id_field="key")
    assert isinstance(tail[-1], Reject) and tail[-1].reason == "missing_field"


def test_csv_and_datasets_dir(tmp_path):
    csv_path = tmp_path / "p.csv"
    csv_path.write_text('prompt,key\n"Write, briefly",a\n,b\n')
    entries = load_items(csv_path, id_field="key")
    assert entries[0] == Item("a", "Write, briefly", 2) and entries[1].reason == "empty_prompt"

    from datasets import Dataset

    Dataset.from_dict({"prompt": ["x", "y"]}).save_to_disk(str(tmp_path / "ds"))
    assert [e.prompt for e in load_items(tmp_path / "ds")] == ["x", "y"]


def test_unusable_files_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_items(tmp_path / "nope.jsonl")
    (tmp_path / "p.txt").write_text("hello")
    with pytest.raises(DataError, match="unsupported format"):
        load_items(tmp_path / "p.txt")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no items"):
        load_items(tmp_path / "empty.jsonl")
