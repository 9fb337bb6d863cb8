"""The run store: resumable, kill-safe JSONL artifacts in a run directory.

Layout of one stage's directory (a command's ``run_dir``):

    NAME.parts/meta.json        what made these parts (config fingerprint); checked on resume
    NAME.parts/shard-00000.jsonl  items done by the first session, one line each (with all their records)
    NAME.parts/shard-00001.jsonl  ... of the next session after a resume
    NAME.jsonl                   the finished artifact, in input order (written atomically)
    rejects.jsonl, summary.json  rejected items with reasons; counts by reason
    manifest.json                written last: its presence means the stage finished

Durability: each item is *one line* holding its key and all its records, accepted and rejected
(``{"items", "accepted", "rejected"}``); a commit writes its items' lines, flushes and fsyncs. An item
is done exactly when the line naming it is durable, so an item with both kinds of records (some ECD
rounds kept, others rejected) can never be half-stored. A kill can leave only the last line torn;
opening the store truncates a torn tail, so its items are simply redone. Every record carries a
stable ``id`` (and, when an item yields several records, the ``item_id`` they share); resume skips
items already stored, so nothing is duplicated or lost, and the finished artifact is ordered by the
input's items, so it equals an uninterrupted run's.

The store knows items by the key its caller gives them; the item stages (``musc_ecd.stage``) key an item
by its id *and its content* (``ID@CONTENT``), so an item whose input changed is a new one and its old
records are simply not part of the artifact any more. A line names its key; its records are that item's
(they name the item by its id). Lines of older stores named bare ids, and their records are read as such.
The parts are kept after finishing: extending a run to more items (a larger ``data.limit``) reuses
them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from musc_ecd.errors import DataError, RunDirConflictError

log = logging.getLogger(__name__)

REJECTS = "rejects"


def _dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, fsync and rename: readers never see half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # per process: two writers never share a temporary
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def write_jsonl_atomic(path: Path, records: Iterable[dict]) -> None:
    write_atomic(path, "".join(_dumps(r) + "\n" for r in records))


def read_jsonl(path: str | Path) -> list[dict]:
    """Every record of a JSONL file (blank lines skipped); a bad line is a ``DataError`` naming it."""
    records = []
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}:{line_no}: not valid UTF-8 (byte {exc.start})") from None
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{line_no}: invalid JSON ({exc.msg})") from None
    return records


class DirectoryLock:
    """An exclusive, non-blocking lock on one stage of a run directory (released at process death too)."""

    def __init__(self, directory: Path, name: str):
        directory.mkdir(parents=True, exist_ok=True)
        self._handle = open(directory / f".{name}.lock", "w")
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.close()
            raise RunDirConflictError(f"{directory} is in use by another musc-ecd process") from None

    def release(self) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class Journal:
    """Append-only sharded JSONL of *commits*; see the module docstring.

    Each line is one item — ``{"items": [key], "accepted": [...], "rejected": [...]}`` — so an item's
    records (an ECD seed's kept rounds and its rejected ones, an APC prompt's pairs and rejects) become
    durable together or not at all: a kill can only tear the last line, which is dropped on the next
    start, and its item is redone. A commit writes its items' lines at once and fsyncs once.
    """

    def __init__(self, parts_dir: Path, fingerprint: str, legacy: Collection[str] = ()):
        self.parts_dir = parts_dir
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self._check_fingerprint(fingerprint, legacy)
        # item key -> (accepted by record id, rejected by record id), in the order items were first stored
        self.items: dict[str, tuple[dict[str, dict], dict[str, dict]]] = {}
        self.repaired_lines = 0
        for shard in sorted(self.parts_dir.glob("shard-*.jsonl")):
            self._load_shard(shard)
        self._shard_path = self.parts_dir / f"shard-{len(list(self.parts_dir.glob('shard-*.jsonl'))):05d}.jsonl"
        self._handle = None

    def _check_fingerprint(self, fingerprint: str, legacy: Collection[str]) -> None:
        meta_path = self.parts_dir / "meta.json"
        if meta_path.is_file():
            stored = json.loads(meta_path.read_text()).get("fingerprint")
            if stored == fingerprint:
                return
            if stored not in legacy:
                raise RunDirConflictError(
                    f"{self.parts_dir.parent} holds results made with a different config "
                    f"(fingerprint {stored}, now {fingerprint}); use another run_dir or delete this one"
                )
            # The same config under the key an older musc-ecd computed for it: re-keyed, not redone.
            log.info("%s: re-keyed from the older fingerprint %s to %s", self.parts_dir, stored, fingerprint)
        write_atomic(meta_path, json.dumps({"fingerprint": fingerprint}) + "\n")

    def _load_shard(self, shard: Path) -> None:
        data = shard.read_bytes()
        good_end = data.rfind(b"\n") + 1  # everything after the last newline is a torn write
        for line_no, line in enumerate(data[:good_end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                # Only the tail can be torn; a bad line inside a shard means outside tampering.
                raise RunDirConflictError(f"{shard}:{line_no} is not valid JSON; the run store is damaged") from None
            if isinstance(entry, dict) and "items" in entry:
                self._apply(entry["items"], entry.get("accepted", []), entry.get("rejected", []))
            else:  # a run directory from before item lines: a shard of bare accepted records
                self._apply_legacy(entry, rejected=False)
        if good_end < len(data):
            self.repaired_lines += 1
            log.warning("%s: dropping a torn last line (%d bytes) left by an interrupted write; its items are redone",
                        shard, len(data) - good_end)
            with open(shard, "r+b") as handle:
                handle.truncate(good_end)
                os.fsync(handle.fileno())

    def _apply(self, keys: Sequence[str], accepted: Sequence[dict], rejected: Sequence[dict]) -> None:
        for key in keys:
            self.items.setdefault(key, ({}, {}))
        for side, records in enumerate((accepted, rejected)):
            for record in records:
                # A line of one key holds that item's records; an older line may name several bare ids.
                key = keys[0] if len(keys) == 1 else item_id(record)
                self.items.setdefault(key, ({}, {}))[side].setdefault(record["id"], record)

    def _apply_legacy(self, record: dict, rejected: bool) -> None:
        self._apply([item_id(record)], [] if rejected else [record], [record] if rejected else [])

    def load_legacy_rejects(self, parts_dir: Path) -> None:
        """Rejects of a run directory written before item lines (kept in their own ``rejects.parts``)."""
        for shard in sorted(parts_dir.glob("shard-*.jsonl")):
            data = shard.read_bytes()
            for line in data[: data.rfind(b"\n") + 1].splitlines():
                if line.strip():
                    self._apply_legacy(json.loads(line), rejected=True)

    def commit(self, by_key: Mapping[str, tuple[list[dict], list[dict]]]) -> int:
        """Durably append the items of ``by_key`` (key -> its accepted and rejected records) not stored yet,
        one line each; return how many."""
        fresh = {key: records for key, records in by_key.items() if key not in self.items}
        if not fresh:
            return 0
        lines = [{"items": [key], "accepted": accepted, "rejected": rejected}
                 for key, (accepted, rejected) in fresh.items()]
        if self._handle is None:
            self._handle = open(self._shard_path, "a", encoding="utf-8")
        # One line per item: an item's records are durable together or not at all.
        self._handle.write("".join(_dumps(line) + "\n" for line in lines))
        self._handle.flush()
        os.fsync(self._handle.fileno())  # a commit is durable once this returns
        for line in lines:
            self._apply(line["items"], line["accepted"], line["rejected"])
        return len(fresh)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class StageStore:
    """Accepted and rejected records of one stage, resumable, finished into an artifact + manifest.

    Items are named by *keys* (``musc_ecd.stage`` gives ``ID@CONTENT``); a record names its item by id
    (``item_id``), and ``commit`` maps ids to keys where they differ. ``legacy`` lists fingerprints an older
    musc-ecd computed for this very config: parts made under one are re-keyed and kept.

    Use as a context manager; it holds an exclusive lock on the directory so that two processes
    cannot interleave writes into one run.
    """

    def __init__(self, stage_dir: str | Path, artifact: str, fingerprint: str, legacy: Collection[str] = ()):
        self.stage_dir = Path(stage_dir)
        self.artifact = artifact
        self.fingerprint = fingerprint
        self._lock = DirectoryLock(self.stage_dir, artifact)
        try:
            self.journal = Journal(self.stage_dir / f"{artifact}.parts", fingerprint, legacy)
            if (self.stage_dir / f"{REJECTS}.parts").is_dir():
                self.journal.load_legacy_rejects(self.stage_dir / f"{REJECTS}.parts")
        except BaseException:
            self._lock.release()
            raise

    # -- paths
    @property
    def artifact_path(self) -> Path:
        return self.stage_dir / f"{self.artifact}.jsonl"

    @property
    def manifest_path(self) -> Path:
        return self.stage_dir / "manifest.json"

    @property
    def repaired_lines(self) -> int:
        return self.journal.repaired_lines

    # -- state
    def done_ids(self) -> set[str]:
        """Keys of the *items* already handled: those of every durable commit."""
        return set(self.journal.items)

    def item_records(self, key: str) -> tuple[list[dict], list[dict]]:
        """(accepted, rejected) records of one stored item, in the order they were made."""
        accepted, rejected = self.journal.items.get(key, ({}, {}))
        return list(accepted.values()), list(rejected.values())

    def records(self, keys: Iterable[str] | None = None) -> tuple[list[dict], list[dict]]:
        """(accepted, rejected) records of the items ``keys`` (default: all) in that order; an item's records
        in the order they were made."""
        accepted: list[dict] = []
        rejected: list[dict] = []
        for key in self.journal.items if keys is None else keys:
            item_accepted, item_rejected = self.item_records(key)
            accepted += item_accepted
            rejected += item_rejected
        return accepted, rejected

    def is_complete(self, keys: Sequence[str]) -> bool:
        """True when a manifest for exactly these items and this config exists."""
        if not self.manifest_path.is_file() or not self.artifact_path.is_file():
            return False
        manifest = json.loads(self.manifest_path.read_text())
        return manifest.get("fingerprint") == self.fingerprint and manifest.get("items_sha256") == _ids_hash(keys)

    def commit(self, accepted: Sequence[dict] = (), rejected: Sequence[dict] = (),
               items: Sequence[str] | None = None, keys: Mapping[str, str] | None = None) -> int:
        """Make ``items`` (keys; default: the items the records belong to) done, with their records, as one
        unit; items already done are skipped. ``keys`` maps a record's item id to its item's key where they
        differ. Returns the number of items newly done."""
        keys = keys or {}

        def key_of(record: dict) -> str:
            return keys.get(item_id(record), item_id(record))

        if items is None:
            items = [key_of(r) for r in (*accepted, *rejected)]
        by_key: dict[str, tuple[list[dict], list[dict]]] = {key: ([], []) for key in items}
        for side, records in enumerate((accepted, rejected)):
            for record in records:
                if key_of(record) not in by_key:  # a record of an item this commit does not finish would be lost
                    raise ValueError(f"records of items not in this commit: {key_of(record)}")
                by_key[key_of(record)][side].append(record)
        return self.journal.commit(by_key)

    def finalise(self, keys: Sequence[str], summary_extra: dict | None = None) -> dict:
        """Write the artifact (in ``keys`` order), rejects, summary, and last the manifest."""
        self.manifest_path.unlink(missing_ok=True)  # from here until the end the stage is unfinished
        wanted = list(keys)
        missing = [key for key in wanted if key not in self.journal.items]
        if missing:
            raise RuntimeError(
                f"cannot finalise {self.artifact}: {len(missing)} items have no result, e.g. {missing[0]}"
            )
        accepted, rejected = self.records(wanted)
        write_jsonl_atomic(self.artifact_path, accepted)
        write_jsonl_atomic(self.stage_dir / f"{REJECTS}.jsonl", rejected)
        summary = {
            "artifact": self.artifact_path.name,
            "items": len(wanted),
            "accepted": len(accepted),
            "rejected": len(rejected),
            "rejected_by_reason": dict(sorted(Counter(r.get("reason", "unknown") for r in rejected).items())),
        }
        summary.update(summary_extra or {})
        write_atomic(self.stage_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        manifest = {
            "artifact": self.artifact_path.name,
            "records": len(accepted),
            "rejected": len(rejected),
            "fingerprint": self.fingerprint,
            "items_sha256": _ids_hash(wanted),
            "artifact_sha256": hashlib.sha256(self.artifact_path.read_bytes()).hexdigest(),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        write_atomic(self.manifest_path, json.dumps(manifest, indent=2) + "\n")
        return summary

    def close(self) -> None:
        self.journal.close()
        self._lock.release()

    def __enter__(self) -> StageStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def file_sha256(path: Path) -> str:
    """Content hash of an artifact a stage reads: what keys that stage's output besides its config."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def retire(path: Path, reason: str) -> Path:
    """Move a stale output (made from an input that has since changed) aside, keeping it, not deleting it."""
    target = path.with_name(f"{path.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
    path.rename(target)
    log.warning("%s is stale (%s); moved to %s and redoing it", path, reason, target.name)
    return target


def item_id(record: dict) -> str:
    """The item a record belongs to: its ``item_id`` when an item yields several records, else its ``id``."""
    return record.get("item_id", record["id"])


def _ids_hash(item_ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(item_ids).encode()).hexdigest()
