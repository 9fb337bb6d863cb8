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


def test_a_line_that_is_not_utf8_is_a_reject_with_its_number(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"prompt": "first"}\n{"prompt": "caf\xe9"}\n{"prompt": "third"}\n')
    entries = load_items(path)
    assert [(e.reason, e.line) if isinstance(e, Reject) else ("item", e.line) for e in entries] == [
        ("item", 1), ("invalid_utf8", 2), ("item", 3)]
    assert "byte" in entries[1].detail


def test_a_csv_row_that_is_not_utf8_is_a_reject(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"prompt\nfine\ncaf\xe9\nalso fine\n")
    entries = load_items(path)
    assert [getattr(e, "reason", "item") for e in entries] == ["item", "invalid_utf8", "item"]
    assert entries[1].line == 3


def test_a_field_no_row_has_is_one_clear_error(tmp_path):
    path = write_jsonl(tmp_path / "ifeval.jsonl", [{"key": i, "prompt": f"p{i}", "kwargs": []} for i in range(4)])
    with pytest.raises(DataError, match=r"no row has the field 'instruction' \(data.prompt_field\); "
                                        r"the rows have: key, kwargs, prompt"):
        load_items(path, prompt_field="instruction")
    with pytest.raises(DataError, match=r"no row has the field 'uid' \(data.id_field\)"):
        load_items(path, id_field="uid")


def test_limit_reads_only_the_first_items(tmp_path):
    """Lines after the N-th item are never read: a broken tail cannot matter to data.limit=N."""
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'{"prompt": "a"}\n{"prompt": "b"}\n\xff\xfe garbage\n{not json\n')
    entries = load_items(path, limit=2)
    assert [e.prompt for e in entries] == ["a", "b"]

    def reads(limit):
        from musc_ecd import items

        count = 0
        real = items._read_rows

        def counting(p):
            nonlocal count
            for row in real(p):
                count += 1
                yield row
        items._read_rows = counting
        try:
            load_items(path, limit=limit)
        finally:
            items._read_rows = real
        return count
    assert reads(1) == 1 and reads(2) == 2


def test_the_cli_exits_2_with_one_line_when_no_row_has_the_field(tmp_path, capsys):
    from musc_ecd.cli import main

    path = write_jsonl(tmp_path / "input_data.jsonl", [{"key": 1, "prompt": "p", "instruction_id_list": []}])
    code = main(["respond", "configs/tiny.yaml", f"data.prompts={path}", "data.prompt_field=instruction",
                 f"run_dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no row has the field 'instruction'" in err[0]
    assert "instruction_id_list, key, prompt" in err[0]
