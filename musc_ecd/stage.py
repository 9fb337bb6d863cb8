"""The loop every item-wise stage shares: load items, skip what is done, work in durable chunks, finish.

A stage supplies ``process(items) -> (accepted records, rejected records)`` (one batched model call per
step inside, for all items of the chunk) and ``describe(accepted, rejected) -> dict`` for the summary.
Chunks are ``store.commit_every`` items; after each, results are committed (fsync), so a kill loses at
most one chunk and a rerun does only what is missing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from musc_ecd.items import Item, Reject
from musc_ecd.store import StageStore

log = logging.getLogger(__name__)

Process = Callable[[list[Item]], tuple[list[dict], list[dict]]]
Describe = Callable[[list[dict], list[dict]], dict]


def run_item_stage(run_dir: Path, artifact: str, fingerprint: str, entries: Sequence[Item | Reject],
                   make_process: Callable[[], Process], describe: Describe, chunk_size: int,
                   label: str) -> dict:
    """Run (or resume, or skip) one stage over ``entries``; return its summary.

    ``make_process`` is called only when there is work left, so a finished stage loads no model.
    """
    item_ids = [entry.id for entry in entries]
    with StageStore(run_dir, artifact, fingerprint) as store:
        if store.is_complete(item_ids):
            log.info("%s for these %d items is complete in %s; nothing to do", label, len(item_ids), run_dir)
            return json.loads((run_dir / "summary.json").read_text())
        done = store.done_ids()
        load_rejects = [e.to_json() for e in entries if isinstance(e, Reject) and e.id not in done]
        store.commit(rejected=load_rejects)
        pending = [e for e in entries if isinstance(e, Item) and e.id not in done]
        log.info("%d items: %d already done, %d to do", len(item_ids), len(done & set(item_ids)), len(pending))
        if pending:
            process = make_process()
            started = time.perf_counter()
            with tqdm(total=len(pending), desc=label, unit="item") as progress:
                for start in range(0, len(pending), chunk_size):
                    chunk = pending[start : start + chunk_size]
                    accepted, rejected = process(chunk)
                    # Every item of the chunk is done with this commit, even one that produced no record.
                    store.commit(accepted=accepted, rejected=rejected, items=[item.id for item in chunk])
                    progress.update(len(chunk))
            log.info("%s: %d items in %.1f s", label, len(pending), time.perf_counter() - started)
        accepted, rejected = store.records(item_ids)
        summary = store.finalise(item_ids, describe(accepted, rejected))
    log.info("wrote %s (%d accepted, %d rejected)", store.artifact_path, summary["accepted"], summary["rejected"])
    return summary
