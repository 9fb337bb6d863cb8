"""Several pair builders sharing one model, their calls issued together.

MuSC runs two builders over one chunk of seeds (coarse and fine), each a sequence of batched calls:
decompose, rewrite, recombine, respond / decompose, sample, judge, correct. Run one after the other, every
call waits for its own longest answer while the engine has little else to do: on a CPU with a small model
the wall time is mostly these sequential rounds. Run in two threads behind a ``Rendezvous``, each builder's
call waits until every builder still working has made its next call, and the calls go to the backend as one
``generate_many`` — with vLLM, one continuous batch over both builders' requests, each with its own params.

Results do not change: every sample's seed depends only on (run seed, request, sample index), never on its
batch mates, and a backend without ``generate_many`` (hf) runs the gathered calls one after the other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from musc_ecd.models.generator import Chat, Completion, Generator, SamplingParams

Call = tuple[Sequence[Chat], SamplingParams]


def generate_many(generator: Generator, calls: Sequence[Call]) -> list[list[list[Completion]]]:
    """The results of ``calls``, in one engine run where the backend can (``generate_many``), else in turn."""
    if hasattr(generator, "generate_many"):
        return generator.generate_many(calls)
    return [generator.generate(requests, params) for requests, params in calls]


class Rendezvous:
    """A ``Generator`` for several threads: a call returns once every active party has called (or left)."""

    def __init__(self, generator: Generator):
        self.inner = generator
        self.name = generator.name
        self._cond = threading.Condition()
        self._active = 0
        self._waiting: list[dict] = []

    def generate(self, requests: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]:
        if not self._active:  # no parties: a plain call (e.g. a builder used on its own)
            return self.inner.generate(requests, params)
        slot: dict = {"call": (requests, params), "done": False}
        with self._cond:
            self._waiting.append(slot)
            self._flush_if_all_waiting()
            while not slot["done"]:
                self._cond.wait()
        if "error" in slot:
            raise slot["error"]
        return slot["result"]

    def run(self, jobs: Sequence[Callable[[], object]]) -> list[object]:
        """Run ``jobs`` (each calling ``generate`` on this object) in threads, their calls gathered; return
        their results in order. An exception in a job is raised here, after every job has ended."""
        if len(jobs) == 1:
            return [jobs[0]()]
        results: list[object] = [None] * len(jobs)
        errors: list[BaseException] = []

        def party(index: int) -> None:
            try:
                results[index] = jobs[index]()
            except BaseException as exc:  # re-raised in the calling thread below
                errors.append(exc)
            finally:
                self._leave()

        with self._cond:
            self._active = len(jobs)
        threads = [threading.Thread(target=party, args=(i,), daemon=True) for i in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results

    def _leave(self) -> None:
        with self._cond:
            self._active -= 1
            self._flush_if_all_waiting()

    def _flush_if_all_waiting(self) -> None:
        """Under the lock: when every active party waits, issue their calls as one (the others sleep)."""
        if not self._waiting or len(self._waiting) < self._active:
            return
        batch, self._waiting = self._waiting, []
        try:
            outputs = generate_many(self.inner, [slot["call"] for slot in batch])
        except BaseException as exc:
            for slot in batch:
                slot["error"] = exc
        else:
            for slot, output in zip(batch, outputs, strict=True):
                slot["result"] = output
        for slot in batch:
            slot["done"] = True
        self._cond.notify_all()
