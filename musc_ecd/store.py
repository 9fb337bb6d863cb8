"""The run store: resumable, kill-safe JSONL artifacts in a run directory.

Layout of one stage's directory (a command's ``run_dir``):

    NAME.parts/meta.json        what made these parts (config fingerprint); checked on resume
    NAME.parts/shard-00000.jsonl  accepted records, appended by the first session
    NAME.parts/shard-00001.jsonl  ... by the next session after a resume
    rejects.parts/...            rejected items, same mechanism
    NAME.jsonl                   the finished artifact, in input order (written atomically)
    rejects.jsonl, summary.json  rejected items with reasons; counts by reason
    manifest.json                written last: its presence means the stage finished

Durability: a commit writes a batch of whole lines, flushes and fsyncs. A kill can leave only the
last line of a shard torn; opening the store truncates a torn tail, so that item is simply redone.
Every record carries a stable ``id`` (and, when an item yields several records, the ``item_id`` they
share); resume skips items already stored, so nothing is duplicated or
lost, and the finished artifact is ordered by the input's ids, so it equals an uninterrupted run's.
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
from collections.abc import Iterable, Sequence
from pathlib import Path

from musc_ecd.errors import DataError, RunDirConflictError

log = logging.getLogger(__name__)

REJECTS = "rejects"


def _dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=False)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, fsync and rename: readers never see half."""
    tmp = path.with_name(f".{path.name}.tmp")
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
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
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


class ShardedJsonl:
    """Append-only sharded JSONL of records keyed by ``id``; see the module docstring."""

    def __init__(self, parts_dir: Path, fingerprint: str):
        self.parts_dir = parts_dir
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self._check_fingerprint(fingerprint)
        self.records: dict[str, dict] = {}
        self.repaired_lines = 0
        for shard in sorted(self.parts_dir.glob("shard-*.jsonl")):
            self._load_shard(shard)
        self._shard_path = self.parts_dir / f"shard-{len(list(self.parts_dir.glob('shard-*.jsonl'))):05d}.jsonl"
        self._handle = None

    def _check_fingerprint(self, fingerprint: str) -> None:
        meta_path = self.parts_dir / "meta.json"
        if meta_path.is_file():
            stored = json.loads(meta_path.read_text()).get("fingerprint")
            if stored != fingerprint:
                raise RunDirConflictError(
                    f"{self.parts_dir.parent} holds results made with a different config "
                    f"(fingerprint {stored}, now {fingerprint}); use another run_dir or delete this one"
                )
        else:
            write_atomic(meta_path, json.dumps({"fingerprint": fingerprint}) + "\n")

    def _load_shard(self, shard: Path) -> None:
        data = shard.read_bytes()
        good_end = data.rfind(b"\n") + 1  # everything after the last newline is a torn write
        for line_no, line in enumerate(data[:good_end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                # Only the tail can be torn; a bad line inside a shard means outside tampering.
                raise RunDirConflictError(f"{shard}:{line_no} is not valid JSON; the run store is damaged") from None
            self.records.setdefault(record["id"], record)
        if good_end < len(data):
            self.repaired_lines += 1
            log.warning("%s: dropping a torn last line (%d bytes) left by an interrupted write",
                        shard, len(data) - good_end)
            with open(shard, "r+b") as handle:
                handle.truncate(good_end)
                os.fsync(handle.fileno())

    def commit(self, records: Sequence[dict]) -> int:
        """Durably append the records whose id is not stored yet; return how many were new."""
        fresh = [r for r in records if r["id"] not in self.records]
        if not fresh:
            return 0
        if self._handle is None:
            self._handle = open(self._shard_path, "a", encoding="utf-8")
        self._handle.write("".join(_dumps(r) + "\n" for r in fresh))
        self._handle.flush()
        os.fsync(self._handle.fileno())  # a commit is durable once this returns
        for record in fresh:
            self.records[record["id"]] = record
        return len(fresh)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class StageStore:
    """Accepted and rejected records of one stage, resumable, finished into an artifact + manifest.

    Use as a context manager; it holds an exclusive lock on the directory so that two processes
    cannot interleave writes into one run.
    """

    def __init__(self, stage_dir: str | Path, artifact: str, fingerprint: str):
        self.stage_dir = Path(stage_dir)
        self.artifact = artifact
        self.fingerprint = fingerprint
        self._lock = DirectoryLock(self.stage_dir, artifact)
        self.accepted = ShardedJsonl(self.stage_dir / f"{artifact}.parts", fingerprint)
        self.rejected = ShardedJsonl(self.stage_dir / f"{REJECTS}.parts", fingerprint)

    # -- paths
    @property
    def artifact_path(self) -> Path:
        return self.stage_dir / f"{self.artifact}.jsonl"

    @property
    def manifest_path(self) -> Path:
        return self.stage_dir / "manifest.json"

    # -- state
    def done_ids(self) -> set[str]:
        """Ids of the *items* already handled (a record's ``item_id``, else its ``id``)."""
        return {item_id(r) for r in self.accepted.records.values()} | {
            item_id(r) for r in self.rejected.records.values()}

    def is_complete(self, item_ids: Sequence[str]) -> bool:
        """True when a manifest for exactly these items and this config exists."""
        if not self.manifest_path.is_file() or not self.artifact_path.is_file():
            return False
        manifest = json.loads(self.manifest_path.read_text())
        return manifest.get("fingerprint") == self.fingerprint and manifest.get("items_sha256") == _ids_hash(item_ids)

    def commit(self, accepted: Sequence[dict] = (), rejected: Sequence[dict] = ()) -> None:
        # Rejects first: if the kill falls between the two, an item is at worst redone, never lost.
        self.rejected.commit(rejected)
        self.accepted.commit(accepted)

    def finalise(self, item_ids: Sequence[str], summary_extra: dict | None = None) -> dict:
        """Write the artifact (in ``item_ids`` order), rejects, summary, and last the manifest."""
        self.manifest_path.unlink(missing_ok=True)  # from here until the end the stage is unfinished
        wanted = list(item_ids)
        done = self.done_ids()
        missing = [i for i in wanted if i not in done]
        if missing:
            raise RuntimeError(
                f"cannot finalise {self.artifact}: {len(missing)} items have no result, e.g. {missing[0]}"
            )
        accepted = _in_item_order(self.accepted.records.values(), wanted)
        rejected = _in_item_order(self.rejected.records.values(), wanted)
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
        self.accepted.close()
        self.rejected.close()
        self._lock.release()

    def __enter__(self) -> StageStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def item_id(record: dict) -> str:
    """The item a record belongs to: its ``item_id`` when an item yields several records, else its ``id``."""
    return record.get("item_id", record["id"])


def _in_item_order(records: Iterable[dict], item_ids: Sequence[str]) -> list[dict]:
    """Records grouped by item in input order; an item's records keep the order they were made in."""
    by_item: dict[str, list[dict]] = {}
    for record in records:
        by_item.setdefault(item_id(record), []).append(record)
    return [record for item in item_ids for record in by_item.get(item, [])]


def _ids_hash(item_ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(item_ids).encode()).hexdigest()
