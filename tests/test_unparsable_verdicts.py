"""A judge filter that cannot decide does not pass (issue #20, item 7): MuSC coarse's and ECD's model-judge filters
follow ``*.unparsable_verdict`` (drop by default, or keep) for a pair whose verdicts are unparsable and none says
"No", count it either way in the summary, and the judge-health warning fires past ``*.judge_warning_share``."""

from __future__ import annotations

from helpers import write_jsonl
from test_ecd import _self_based
from test_musc_coarse import scripted_policy
from test_musc_fine import policy as fine_policy

from musc_ecd.config import load_config
from musc_ecd.items import load_items
from musc_ecd.methods import ecd, musc, musc_coarse, musc_fine
from musc_ecd.models.roles import ModelRoles
from musc_ecd.models.scripted import ScriptedGenerator

UNSURE = "Analysis: it is hard to say."


def _items(tmp_path, prompts):
    path = write_jsonl(tmp_path / "seeds.jsonl", [{"id": f"s{i}", "instruction": p} for i, p in enumerate(prompts)])
    return load_items(path, prompt_field="instruction", id_field="id")


def _coarse(tmp_path, verdict: str, *config):
    cfg = load_config(None, ["method=musc_coarse", "seed=3", "musc.self_judge_filter=true", *config])
    builder = musc_coarse.build(ModelRoles.of(scripted_policy({("check one constraint", ""): verdict})), cfg)
    pairs, rejects = builder(_items(tmp_path, ["Write about a.", "Write about b."]))
    return pairs, rejects, musc_coarse.summarize(pairs, rejects, cfg)


def test_musc_coarse_drops_a_pair_its_judge_cannot_decide_by_default_and_counts_it(tmp_path):
    pairs, rejects, summary = _coarse(tmp_path, UNSURE)
    assert pairs == [] and [(r["stage"], r["reason"]) for r in rejects] == [("filter", "unparsable_verdict")] * 2
    assert summary["unparsable_verdict"] == {"kept": 0, "dropped": 2}
    assert rejects[0]["judge"] == {"yes": 0, "no": 0, "unparsable": 1}


def test_musc_coarse_keeps_undecided_pairs_when_told_and_counts_them(tmp_path):
    pairs, rejects, summary = _coarse(tmp_path, UNSURE, "musc.unparsable_verdict=keep")
    assert len(pairs) == 2 and rejects == []
    assert summary["unparsable_verdict"] == {"kept": 2, "dropped": 0}


def test_a_no_verdict_decides_and_is_not_counted_as_undecided(tmp_path):
    pairs, rejects, summary = _coarse(tmp_path, "Analysis: it misses it.\nAnswer: No")
    assert len(pairs) == 2 and rejects == [] and summary["unparsable_verdict"] == {"kept": 0, "dropped": 0}


def test_the_judge_health_warning_threshold_is_a_setting(tmp_path):
    *_, default = _coarse(tmp_path, UNSURE)
    *_, lenient = _coarse(tmp_path, UNSURE, "musc.judge_warning_share=1.0")
    assert default["judge_filter"]["unparsable_share"] == 1.0 and "warning" in default["judge_filter"]
    assert "warning" not in lenient["judge_filter"]


def _ecd_judge_unsure_in_round_2():
    def respond(request, index, params):
        unsure = "Constraint: Mention the word w2." in request[-1]["content"]
        return UNSURE if unsure else "Analysis: looked.\nAnswer: No"
    return _self_based(check=ScriptedGenerator(respond))


def test_ecd_drops_a_hard_pair_its_judge_cannot_decide_and_the_chain_goes_on(tmp_path):
    cfg = load_config(None, ["method=ecd"])
    pairs, rejects = ecd.build(ModelRoles.of(_ecd_judge_unsure_in_round_2()), cfg)(_items(tmp_path, ["Write a note."]))
    assert [p["meta"]["round"] for p in pairs] == [1, 3]
    assert [(r["id"], r["stage"], r["reason"]) for r in rejects] == [("s0#r2", "judge", "unparsable_verdict")]
    summary = ecd.summarize(pairs, rejects, cfg)
    assert summary["unparsable_verdict"] == {"kept": 0, "dropped": 1}
    assert summary["yield_per_stage"]["round_3"] == 1
    assert summary["judge"]["unparsable"] == 1 and "warning" not in summary["judge"]  # 1 of 3: under one half
    strict = load_config(None, ["method=ecd", "ecd.judge_warning_share=0.3"])
    assert "1 of 3 judge verdicts were unparsable" in ecd.summarize(pairs, rejects, strict)["judge"]["warning"]


def test_ecd_keeps_undecided_hard_pairs_when_told(tmp_path):
    cfg = load_config(None, ["method=ecd", "ecd.unparsable_verdict=keep"])
    pairs, rejects = ecd.build(ModelRoles.of(_ecd_judge_unsure_in_round_2()), cfg)(_items(tmp_path, ["Write a note."]))
    assert [p["meta"]["round"] for p in pairs] == [1, 2, 3] and rejects == []
    assert ecd.summarize(pairs, rejects, cfg)["unparsable_verdict"] == {"kept": 1, "dropped": 0}


def test_musc_fine_and_the_full_method_warn_past_their_own_thresholds(tmp_path):
    cfg = load_config(None, ["method=musc_fine"])
    builder = musc_fine.build(ModelRoles.of(fine_policy(judge=lambda content: UNSURE)), cfg)
    pairs, rejects = builder(_items(tmp_path, ["Write about rain in three lines."]))
    assert "warning" in musc_fine.summarize(pairs, rejects, cfg)["judge"]
    lenient = load_config(None, ["method=musc_fine", "musc_fine.judge_warning_share=1.0"])
    assert "warning" not in musc_fine.summarize(pairs, rejects, lenient)["judge"]
    both = load_config(None, ["method=musc", "musc_fine.judge_warning_share=1.0"])  # musc's own share still 0.5
    assert "warning" in musc.summarize(pairs, rejects, both)["judge"]
    assert "warning" not in musc.summarize(pairs, rejects, load_config(None, [
        "method=musc", "musc_fine.judge_warning_share=1.0", "musc.judge_warning_share=1.0"]))["judge"]
