"""The method registry: each method declares itself once (``SPEC``), and generate, the share key and the
report read only that; a new method is its module plus one registry line (``reverse``, ARCHITECTURE.md)."""

from __future__ import annotations

import importlib

import pytest
from helpers import write_jsonl

from musc_ecd import registry
from musc_ecd.config import load_config
from musc_ecd.errors import ConfigError
from musc_ecd.evaluation.runs import roles
from musc_ecd.fingerprints import generate_share_key, pairs_fingerprint
from musc_ecd.generate import generate
from musc_ecd.layout import RunLayout
from musc_ecd.store import read_jsonl

TINY = ["model.policy=tiny", "model.dtype=float32", "generation.backend=hf", "musc.decompose_max_tokens=24",
        "musc.recombine_max_tokens=16", "musc.rewrite_max_tokens=8", "musc.respond_max_tokens=12"]


@pytest.fixture
def with_reverse(monkeypatch):
    monkeypatch.setitem(registry.METHODS, "reverse", "reverse_method")  # the one registry line


def test_every_registered_method_declares_itself_under_its_name():
    for name, module in registry.METHODS.items():
        spec = registry.get_method(name)
        assert spec is importlib.import_module(module).SPEC and spec.name == name
        assert callable(spec.build) and callable(spec.roles) and callable(spec.summarize)
        assert all(section in load_config(None).__dataclass_fields__ for section in spec.sections)
    assert [extra.name for extra in registry.get_method("apc").extras] == ["sft.jsonl"]


def test_an_unknown_method_fails_at_load_with_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'musc_fine'"):
        load_config(None, ["method=musc_fin"])


def test_the_pairs_key_follows_the_declared_sections():
    base = load_config(None, ["method=musc_coarse"])
    ecd_option = load_config(None, ["method=musc_coarse", "ecd.rounds=5"])
    own_option = load_config(None, ["method=musc_coarse", "musc.drop_ratio=0.5"])
    assert pairs_fingerprint(base) == pairs_fingerprint(ecd_option) != pairs_fingerprint(own_option)
    assert generate_share_key(base) == generate_share_key(ecd_option) != generate_share_key(own_option)


def test_a_method_added_with_one_registry_line_runs_end_to_end(with_reverse, tmp_path):
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [
        {"id": f"s{i}", "prompt": f"Write a short note about topic {i}. Use exactly three sentences. "
                                  "Mention a colour. End with a question."} for i in range(4)])
    common = [*TINY, f"data.seeds={seeds}", "data.id_field=id"]
    coarse = load_config(None, [*common, "method=musc_coarse", f"run_dir={tmp_path / 'coarse'}"])
    flipped = load_config(None, [*common, "method=reverse", f"run_dir={tmp_path / 'reverse'}"])
    generate(coarse, tmp_path / "coarse")
    summary = generate(flipped, tmp_path / "reverse")
    assert summary["method"] == "reverse"
    made = {p["id"]: p for p in read_jsonl(RunLayout(tmp_path / "coarse").pairs)}
    swapped = read_jsonl(RunLayout(tmp_path / "reverse").pairs)
    assert swapped and len(swapped) == len(made)
    for pair in swapped:  # the same builder on the same seeds, each label flipped
        assert pair["chosen"] == made[pair["id"]]["rejected"] and pair["rejected"] == made[pair["id"]]["chosen"]
        assert pair["meta"]["method"] == "reverse" and pair["meta"]["reversed_from"] == "musc_coarse"
    assert roles({"method": "reverse", "model": {"policy": "tiny"}}) == "self"  # the report reads its declaration
    with pytest.raises(ConfigError, match="model.teacher is set but method=reverse never calls a teacher"):
        generate(load_config(None, [*common, "method=reverse", "model.teacher=tiny2"]), tmp_path / "refused")
