"""Builders in threads, their calls gathered: one backend call per round, the same results as in turn."""

from __future__ import annotations

import threading

import pytest

from musc_ecd.models.generator import SamplingParams
from musc_ecd.models.rendezvous import Rendezvous
from musc_ecd.models.scripted import ScriptedGenerator


class Batching(ScriptedGenerator):
    """A scripted backend that records how calls arrived: ``generate_many`` batches vs single calls."""

    def __init__(self):
        super().__init__(lambda chat, index, params: f"{chat[-1]['content']}@{params.temperature}")
        self.many: list[int] = []

    def generate_many(self, calls):
        self.many.append(len(calls))
        return [self.generate(requests, params) for requests, params in calls]


def _job(proxy, name, rounds, temperature):
    def job():
        return [proxy.generate([[{"role": "user", "content": f"{name}{r}"}]], SamplingParams(temperature=temperature))
                [0][0].text for r in range(rounds)]
    return job


def test_two_parties_share_each_round_and_keep_their_own_params():
    backend = Batching()
    proxy = Rendezvous(backend)
    coarse, fine = proxy.run([_job(proxy, "c", 3, 0.5), _job(proxy, "f", 2, 0.8)])
    assert coarse == ["c0@0.5", "c1@0.5", "c2@0.5"] and fine == ["f0@0.8", "f1@0.8"]
    assert backend.many == [2, 2, 1]  # two rounds together, then the longer party alone


def test_an_error_in_one_party_is_raised_after_both_end():
    backend = Batching()
    proxy = Rendezvous(backend)

    def broken():
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        proxy.run([_job(proxy, "c", 2, 0.0), broken])
    assert threading.active_count() >= 1 and backend.many == [1, 1]


def test_without_parties_it_is_a_plain_generator():
    backend = Batching()
    proxy = Rendezvous(backend)
    assert proxy.generate([[{"role": "user", "content": "x"}]], SamplingParams())[0][0].text == "x@0.0"
    assert backend.many == [] and proxy.name == backend.name


def test_musc_gives_the_same_pairs_as_its_builders_in_turn(tmp_path):
    """Full MuSC with the tiny model: the threaded, gathered run equals coarse then fine one after the other."""
    from helpers import write_jsonl

    from musc_ecd.config import load_config
    from musc_ecd.items import load_items
    from musc_ecd.methods import musc, musc_coarse, musc_fine
    from musc_ecd.models import load_model
    from musc_ecd.models.hf_backend import HFGenerator
    from musc_ecd.models.roles import ModelRoles

    model, tokenizer = load_model("tiny", dtype="float32", device="cpu")
    generator = HFGenerator(model, tokenizer, name="tiny", batch_size=4, show_progress=False)
    seeds = write_jsonl(tmp_path / "s.jsonl", [{"id": f"s{i}", "instruction": f"Write {i} lines. Be brief. No commas."}
                                               for i in range(6)])
    items = list(load_items(seeds, prompt_field="instruction", id_field="id"))
    cfg = load_config(None, ["method=musc", "musc.decompose_max_tokens=24", "musc.recombine_max_tokens=16",
                             "musc.rewrite_max_tokens=8", "musc.respond_max_tokens=12",
                             "musc_fine.respond_max_tokens=12", "musc_fine.judge_max_tokens=8",
                             "musc_fine.correct_max_tokens=12", "musc_fine.min_revision_kept=0"])
    together = musc.build(ModelRoles.of(generator), cfg)(items)
    fine_items = [i for i in items if musc.goes_to_fine(cfg.seed, i.id, cfg.musc_fine.share)]
    coarse_items = [i for i in items if i not in fine_items]
    assert fine_items and coarse_items
    alone = musc_coarse.MuscCoarse(generator, cfg)(coarse_items)
    fine_alone = musc_fine.MuscFine(generator, cfg)(fine_items)
    assert together == (alone[0] + fine_alone[0], alone[1] + fine_alone[1])
