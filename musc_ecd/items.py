"""Input items: prompts or seed instructions read from JSONL, CSV or a local ``datasets`` directory.

A file's columns are mapped by ``data.prompt_field`` / ``data.id_field``. A malformed line never
stops a run and is never dropped silently: it becomes a ``Reject`` (``musc_ecd.records``) with its line
number and reason, and is counted in the summary.

A stage stores its work per item under a *key*, ``ID@CONTENT`` (``entry_key``): the item's id with a hash
of what it holds. An edited seed (its text, its typed constraints, any column) is therefore a new item,
built again, while its id stays what the pairs are named by.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from musc_ecd.errors import DataError
from musc_ecd.records import Reject


@dataclass(frozen=True)
class Item:
    id: str
    prompt: str
    line: int
    """1-based line (JSONL), row (CSV, after the header) or row index (datasets)."""
    fields: dict = field(default_factory=dict, compare=False)
    """The whole input row, kept for provenance (e.g. IFEval's instruction ids and kwargs)."""


def prompt_id(text: str) -> str:
    """Stable id of an item without an id column: a hash of its text."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def content_hash(value) -> str:
    """12 hex digits of the sha256 of ``value`` as canonical JSON: the ``CONTENT`` part of a key."""
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def entry_key(entry: Item | Reject) -> str:
    """``ID@CONTENT``, the store's key of a loaded entry: an item by its prompt and its whole input row (a
    generator may read any column: typed constraints, a seed answer), a load reject by its reason."""
    content = {"prompt": entry.prompt, "row": entry.fields} if isinstance(entry, Item) else entry.to_json()
    return f"{entry.id}@{content_hash(content)}"


def prompt_key(entry: Item | Reject) -> str:
    """``ID@CONTENT`` of an entry whose output depends on its prompt text alone (``respond``'s answers)."""
    return f"{entry.id}@{content_hash(entry.prompt)}" if isinstance(entry, Item) else entry_key(entry)


_KEY = re.compile(r"(.*)@[0-9a-f]{12}", re.DOTALL)


def key_id(key: str) -> str:
    """The id of an ``ID@CONTENT`` key; a bare id (a run store from before keys held content) is its own id."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else key


def load_items(
    path: str | Path, prompt_field: str = "prompt", id_field: str | None = None, limit: int | None = None
) -> list[Item | Reject]:
    """Items and rejects in input order; at most ``limit`` valid items."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file '{path}' does not exist")
    entries: list[Item | Reject] = []
    seen: set[str] = set()
    valid = 0
    fields_seen: set[str] = set()
    rows = _read_rows(path) if limit != 0 else iter(())
    for line, row in rows:
        if isinstance(row, dict):
            fields_seen.update(map(str, row))
        entry = _to_item(line, row, prompt_field, id_field, seen)
        if isinstance(entry, Item):
            seen.add(entry.id)
            valid += 1
        entries.append(entry)
        if limit is not None and valid >= limit:
            break  # read no further: data.limit=N reads the first N items, not the whole file
    if not entries:
        raise DataError(f"data file '{path}' holds no items")
    _check_fields_exist(path, entries, prompt_field, id_field, fields_seen)
    return entries


def _check_fields_exist(path: Path, entries: list, prompt_field: str, id_field: str | None, fields: set[str]) -> None:
    """A field that *no* row has is a mapping mistake, not noisy data: one clear error instead of N rejects."""
    if any(isinstance(e, Item) for e in entries) or not fields:
        return
    for name, key in ((prompt_field, "data.prompt_field"), (id_field, "data.id_field")):
        if name is not None and name not in fields:
            raise DataError(f"data file '{path}': no row has the field '{name}' ({key}); the rows have: "
                            f"{', '.join(sorted(fields))}")


def _read_rows(path: Path):
    """Yield (line number, row dict or an error string) for every record of the file."""
    if path.is_dir():
        yield from _read_datasets_dir(path)
    elif path.suffix == ".csv":
        # Undecodable bytes are kept as surrogates so one bad row becomes a reject, not a crash of the file.
        with open(path, newline="", encoding="utf-8", errors="surrogateescape") as handle:
            for line_no, row in enumerate(csv.DictReader(handle), start=2):
                bad = any(_has_surrogates(v) for v in (*row.keys(), *row.values()) if isinstance(v, str))
                yield line_no, (NOT_UTF8 if bad else row)
    elif path.suffix in (".jsonl", ".json"):
        with open(path, "rb") as handle:
            for line_no, raw in enumerate(handle, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield line_no, f"{NOT_UTF8}: byte {exc.start} (0x{raw[exc.start]:02x})"
                    continue
                if not text.strip():
                    continue
                try:
                    yield line_no, json.loads(text)
                except json.JSONDecodeError as exc:
                    yield line_no, f"invalid JSON: {exc.msg} at column {exc.colno}"
    else:
        raise DataError(f"data file '{path}': unsupported format (use .jsonl, .csv or a datasets directory)")


NOT_UTF8 = "not valid UTF-8"


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _read_datasets_dir(path: Path):
    try:
        from datasets import load_from_disk

        dataset = load_from_disk(str(path))
    except Exception as exc:
        raise DataError(f"'{path}' is not a dataset saved with datasets' save_to_disk: {exc}") from None
    if hasattr(dataset, "keys"):  # a DatasetDict: take the train split, else the only one
        splits = list(dataset.keys())
        dataset = dataset["train"] if "train" in splits else dataset[splits[0]]
    yield from enumerate(dataset)


def _to_item(line: int, row, prompt_field: str, id_field: str | None, seen: set[str]) -> Item | Reject:
    fallback_id = f"line-{line}"
    if isinstance(row, str):
        reason = "invalid_utf8" if row.startswith(NOT_UTF8) else "invalid_json"
        return Reject(fallback_id, "load", reason, row, line)
    if not isinstance(row, dict):
        return Reject(fallback_id, "load", "not_an_object", f"a {type(row).__name__}, not an object", line)
    if prompt_field not in row:
        return Reject(fallback_id, "load", "missing_field", f"no '{prompt_field}' field (data.prompt_field)", line)
    prompt = row[prompt_field]
    if not isinstance(prompt, str) or not prompt.strip():
        return Reject(fallback_id, "load", "empty_prompt", f"'{prompt_field}' is empty or not text", line)
    if id_field is not None:
        if row.get(id_field) in (None, ""):
            return Reject(fallback_id, "load", "missing_field", f"no '{id_field}' field (data.id_field)", line)
        item_id = str(row[id_field])
    else:
        item_id = prompt_id(prompt)
    if item_id in seen:
        return Reject(fallback_id, "load", "duplicate_id", f"id {item_id} already used by an earlier item", line)
    return Item(item_id, prompt, line, dict(row))
