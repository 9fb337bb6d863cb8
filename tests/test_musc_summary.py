"""The full MuSC method's summary (issue #20, item 13): each builder's yields over all of its seeds, rejected ones
included; and a fine item on which nothing was judged is not reported as having perfect answers."""

from __future__ import annotations

from helpers import write_jsonl
from test_musc_coarse import scripted_policy
from test_musc_fine import policy as fine_policy

from musc_ecd.config import load_config
from musc_ecd.items import load_items
from musc_ecd.methods import musc, musc_fine
from musc_ecd.models.roles import ModelRoles


def _items(tmp_path, prompts):
    path = write_jsonl(tmp_path / "seeds.jsonl", [{"id": f"s{i}", "instruction": p} for i, p in enumerate(prompts)])
    return load_items(path, prompt_field="instruction", id_field="id")


def test_each_builders_yields_count_its_rejected_seeds(tmp_path):
    # "FEW" decomposes into one constraint (a decompose reject); the fine builder's four samples are identical
    # and judged perfect (a select reject): every fine seed is rejected, coarse ones only at decompose.
    items = _items(tmp_path, [f"FEW {i}" if i % 2 else f"Write about topic {i}." for i in range(12)])
    cfg = load_config(None, ["method=musc", "seed=3"])
    pairs, rejects = musc.build(ModelRoles.of(scripted_policy()), cfg)(items)
    fine_ids = {i.id for i in items if musc.goes_to_fine(cfg.seed, i.id, cfg.musc_fine.share)}
    coarse_ids = {i.id for i in items} - fine_ids
    assert fine_ids and coarse_ids
    few = {i.id for i in items if i.prompt.startswith("FEW")}
    summary = musc.summarize(pairs, rejects, cfg)
    assert summary["coarse"]["yield_per_stage"] == {
        "seeds": len(coarse_ids), "decomposed": len(coarse_ids - few), "recombined": len(coarse_ids - few),
        "responded_and_filtered": len(coarse_ids - few)}
    assert summary["fine"]["yield_per_stage"] == {
        "seeds": len(fine_ids), "decomposed": len(fine_ids - few), "selected": 0, "corrected": 0, "kept": 0}
    assert summary["yield_per_stage"]["seeds"] == len(items)
    assert summary["pairs_by_granularity"] == {"coarse": len(coarse_ids - few), "fine": 0}


def test_an_item_nothing_was_judged_on_is_not_reported_as_all_answers_perfect(tmp_path):
    # checkers judge typed constraints only; this seed has none, and untyped ones are skipped
    cfg = load_config(None, ["method=musc_fine", "model.judge=checkers", "model.judge_untyped=skip"])
    pairs, rejects = musc_fine.build(ModelRoles.of(fine_policy()), cfg)(_items(tmp_path, ["Write about rain."]))
    assert pairs == [] and [(r["stage"], r["reason"]) for r in rejects] == [("select", "nothing_judged")]
    assert "model.judge_untyped=skip" in rejects[0]["detail"]
    judged = load_config(None, ["method=musc_fine"])  # the same answers judged by the model: all "Yes"
    everything_yes = fine_policy(judge=lambda content: "Analysis: fine.\nAnswer: Yes")
    _, rejects = musc_fine.build(ModelRoles.of(everything_yes), judged)(_items(tmp_path, ["Write about rain."]))
    assert [r["reason"] for r in rejects] == ["all_answers_perfect"]
