"""The loop every item-wise stage shares: load items, skip what is done, work in durable chunks, finish.

A stage supplies ``process(items) -> (accepted records, rejected records)`` (one batched model call per
step inside, for all items of the chunk) and ``describe(accepted, rejected) -> dict`` for the summary.
Chunks are ``store.commit_every`` items; after each, results are committed (fsync), so a kill loses at
most one chunk and a rerun does only what is missing.

Items are stored under their *key*, ``ID@CONTENT`` (``musc_ecd.items.entry_key`` unless the stage says
otherwise): an item whose input changed since it was built has a new key and is built again, and its old
records are not part of the artifact. The summary counts them (``items_changed``), and the items an older
store kept under their bare id whose content cannot be verified, built again too (``items_unverified``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from musc_ecd.items import Item, entry_key, key_id
from musc_ecd.records import Reject
from musc_ecd.store import StageStore, write_atomic

log = logging.getLogger(__name__)

Process = Callable[[list[Item]], tuple[list[dict], list[dict]]]
Describe = Callable[[list[dict], list[dict]], dict]
Resummarise = Callable[[dict, list[dict], list[dict]], dict]
"""``resummarise(summary, accepted, rejected)``: a finished stage's summary under the current config: a setting
that keys no artifact (a warning threshold) can still change what its summary says."""
Keyer = Callable[[Item | Reject], str]
Verify = Callable[[Item, list[dict], list[dict]], bool]
"""``verify(item, accepted, rejected)``: were these records, kept under the item's bare id by an older store,
made from the item as it is now?"""


@dataclass
class _Plan:
    """What a session has to do: the entries not done under their key, and why they are not."""

    pending: list[tuple[Item | Reject, str]]
    changed: int  # done before under another key: their input changed
    unverified: int  # done under their bare id by an older store, content unknown
    rekeyed: list[tuple[Item | Reject, str]]  # done under their bare id, and verified to be the same


def run_item_stage(run_dir: Path, artifact: str, fingerprint: str, entries: Sequence[Item | Reject],
                   make_process: Callable[[], Process], describe: Describe, chunk_size: int,
                   label: str, key: Keyer = entry_key, verify: Verify | None = None,
                   legacy_fingerprints: Sequence[str] = (), resummarise: Resummarise | None = None) -> dict:
    """Run (or resume, or skip) one stage over ``entries``; return its summary.

    ``key`` names an entry in the store; ``verify`` tells whether an older store's records of an item are
    still valid (None: they cannot be told, and the item is built again); ``legacy_fingerprints`` are keys an
    older musc-ecd gave this config; ``resummarise`` brings a finished stage's summary up to date. ``make_process``
    is called only when there is work left, so a finished stage loads no model.
    """
    keyed = [(entry, key(entry)) for entry in entries]
    keys = [k for _, k in keyed]
    with StageStore(run_dir, artifact, fingerprint, legacy_fingerprints) as store:
        if store.is_complete(keys):
            log.info("%s for these %d items is complete in %s; nothing to do", label, len(keys), run_dir)
            summary = json.loads((run_dir / "summary.json").read_text())
            if resummarise is None:
                return summary
            updated = resummarise(summary, *store.records(keys))
            if updated != summary:
                write_atomic(run_dir / "summary.json", json.dumps(updated, indent=2) + "\n")
            return updated
        plan = _plan(store, keyed, verify)
        for entry, k in plan.rekeyed:  # the same content, stored under its bare id: kept under its key
            store.commit(*store.item_records(entry.id), items=[k], keys={entry.id: k})
        load_rejects = [(e, k) for e, k in plan.pending if isinstance(e, Reject)]
        store.commit(rejected=[e.to_json() for e, _ in load_rejects], items=[k for _, k in load_rejects],
                     keys={e.id: k for e, k in load_rejects})
        pending = [(e, k) for e, k in plan.pending if isinstance(e, Item)]
        log.info("%d items: %d already done, %d to do (%d changed since they were built%s)", len(keys),
                 len(keys) - len(plan.pending), len(pending), plan.changed,
                 f"; {plan.unverified} kept by an older store that cannot be verified" if plan.unverified else "")
        if pending:
            process = make_process()
            started = time.perf_counter()
            with tqdm(total=len(pending), desc=label, unit="item") as progress:
                for start in range(0, len(pending), chunk_size):
                    chunk = pending[start : start + chunk_size]
                    accepted, rejected = process([item for item, _ in chunk])
                    # Every item of the chunk is done with this commit, even one that produced no record.
                    store.commit(accepted=accepted, rejected=rejected, items=[k for _, k in chunk],
                                 keys={item.id: k for item, k in chunk})
                    progress.update(len(chunk))
            log.info("%s: %d items in %.1f s", label, len(pending), time.perf_counter() - started)
        accepted, rejected = store.records(keys)
        extra = {**describe(accepted, rejected), "items_changed": plan.changed, "items_unverified": plan.unverified}
        summary = store.finalise(keys, extra)
    log.info("wrote %s (%d accepted, %d rejected)", store.artifact_path, summary["accepted"], summary["rejected"])
    return summary


def _plan(store: StageStore, keyed: list[tuple[Item | Reject, str]], verify: Verify | None) -> _Plan:
    done = store.done_ids()
    built_before = {key_id(k) for k in done if key_id(k) != k}  # ids stored under a content key
    plan = _Plan([], 0, 0, [])
    for entry, k in keyed:
        if k in done:
            continue
        if key_id(k) in built_before:
            plan.changed += 1
        elif entry.id in done and k != entry.id:  # only an older store's line, under the bare id
            if _same(store, entry, verify):
                plan.rekeyed.append((entry, k))
                continue
            plan.unverified += 1
        plan.pending.append((entry, k))
    return plan


def _same(store: StageStore, entry: Item | Reject, verify: Verify | None) -> bool:
    """Whether an older store's records of ``entry`` (under its bare id) were made from it as it is now."""
    accepted, rejected = store.item_records(entry.id)
    if isinstance(entry, Reject):  # a load reject is its own content
        return not accepted and rejected == [entry.to_json()]
    return verify is not None and verify(entry, accepted, rejected)
