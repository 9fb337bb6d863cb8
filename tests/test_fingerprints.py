"""Each artifact is keyed by what changes it and nothing else: one table (``KEYED_BY``) for every config key,
held to the schema and to the fingerprints; and on the tiny model, a new β retrains without new weights, a new
report_to retrains nothing; run directories keyed by the older hashes are recognised."""

from __future__ import annotations

import copy
import functools
import json
import types
import typing
from pathlib import Path
from typing import Literal

import pytest

from musc_ecd.cli import main
from musc_ecd.config import Config, load_config, to_dict
from musc_ecd.fingerprints import (
    ANSWERS,
    ARTIFACTS,
    BASE_EVAL_SHARE,
    GENERATE_SHARE,
    KEYED_BY,
    MODEL,
    PAIRS,
    WARNING_THRESHOLDS,
    WEIGHTS,
    answers_fingerprint,
    as_resolved,
    base_eval_share_key,
    digest,
    generate_share_key,
    keyed_by,
    keyed_tree,
    legacy_fingerprints,
    model_fingerprint,
    pairs_fingerprint,
    schema_keys,
    weights_fingerprint,
)
from musc_ecd.registry import get_method

REPO = Path(__file__).resolve().parents[1]

FINGERPRINT_OF = {
    PAIRS: pairs_fingerprint,
    GENERATE_SHARE: generate_share_key,
    WEIGHTS: weights_fingerprint,
    MODEL: model_fingerprint,
    ANSWERS: lambda cfg: answers_fingerprint(cfg, cfg.data.prompts or cfg.data.seeds),
    BASE_EVAL_SHARE: lambda cfg: tuple(base_eval_share_key(cfg, s) for s in ("own", "ifeval", "ifbench")),
}
METHOD_OF_SECTION = {"musc": "musc_coarse", "musc_fine": "musc_fine", "ecd": "ecd", "apc": "apc"}
# Every condition in the table holds: sampled decoding (the seed keys answers), a pairwise weight scheme with a
# fallback (which is edit: its option counts) and a model-based scheme (the dtype counts).
WHERE_EVERY_KEY_COUNTS = ["generation.temperature=0.7", "eval.temperature=0.7", "eval.ifeval_path=ifeval.jsonl",
                          "eval.ifbench_path=ifbench.jsonl",
                          "train.weights=kl", "train.weights_fallback=edit", "data.seeds=seeds.jsonl"]


def test_every_config_key_is_in_exactly_one_row_of_the_table():
    found = list(schema_keys())
    assert len(found) == len(set(found)) > 100
    for key in found:
        row = keyed_by(key)  # raises for a key no row names
        assert row.artifacts or row.why, key  # a key that keys nothing says why
        assert set(row.artifacts) <= set(ARTIFACTS)
    for row_key in KEYED_BY:  # no stale row: each names a key (or a section) of the schema
        assert any(key == row_key or key.startswith(row_key.removesuffix("*")) for key in found), row_key


def test_a_new_config_key_in_no_row_fails():
    with pytest.raises(KeyError, match="no row of musc_ecd.fingerprints.KEYED_BY"):
        keyed_by("train.a_new_option")


def _other(value, hint):
    """A value of the schema's type ``hint`` that differs from ``value``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return next(choice for choice in args if choice != value)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in args if arg is not type(None)]
        if value is None:
            return _sample(options[0])
        return _other(value, next(option for option in options if _is_a(value, option)))
    if origin is list:
        return [*value, _sample(args[0])]
    if hint is bool:
        return not value
    if hint in (int, float):
        return value + 1
    if hint is str:
        return f"{value}-other"
    raise AssertionError(f"no other value for {hint}")


def _sample(hint):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return args[0]
    if origin is list:
        return []
    return {str: "x", int: 3, float: 0.5, bool: True}[hint]


def _is_a(value, hint) -> bool:
    origin = typing.get_origin(hint)
    return value in typing.get_args(hint) if origin is Literal else isinstance(value, origin or hint)


def _hint(key: str):
    owner = Config
    *path, name = key.split(".")
    for part in path:
        owner = typing.get_type_hints(owner)[part]
    return typing.get_type_hints(owner)[name]


def _at(cfg: Config, key: str):
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


@functools.cache
def _base(method: str) -> tuple[Config, dict[str, str]]:
    responders = "model.responders=[a,b]" if method == "apc" else "model.responders=[]"
    cfg = load_config(None, [f"method={method}", responders, *WHERE_EVERY_KEY_COUNTS])
    return cfg, {artifact: fingerprint(cfg) for artifact, fingerprint in FINGERPRINT_OF.items()}


def _changed(key: str) -> tuple[set[str], set[str]]:
    """The artifacts whose fingerprint a change of ``key`` moves, and those the table says it keys here."""
    cfg, fingerprints = _base(METHOD_OF_SECTION.get(key.split(".")[0], "musc_coarse"))
    other = copy.deepcopy(cfg)
    owner = other
    *path, name = key.split(".")
    for part in path:
        owner = getattr(owner, part)
    value = getattr(owner, name)
    setattr(owner, name, "ecd" if key == "method" else _other(value, _hint(key)))
    if _at(as_resolved(other), key) == _at(as_resolved(cfg), key):  # auto -> the very value it means here
        setattr(owner, name, next(choice for choice in typing.get_args(_hint(key))
                                  if choice not in (value, _at(as_resolved(cfg), key))))
    row = keyed_by(key)  # a condition may hold on either side of the change (ct2's compute_type: off auto)
    expected = {artifact for artifact in row.artifacts if row.applies(artifact, cfg) or row.applies(artifact, other)}
    return {artifact for artifact, fingerprint in FINGERPRINT_OF.items()
            if fingerprint(other) != fingerprints[artifact]}, expected


@pytest.mark.parametrize("key", list(schema_keys()))
def test_each_key_changes_exactly_the_artifacts_the_table_names(key):
    changed, expected = _changed(key)
    assert changed == expected


def test_weight_options_key_the_weights_only_where_the_scheme_uses_them():
    def weights(*overrides):
        return weights_fingerprint(load_config(None, list(overrides)))

    uniform = weights("train.weights=uniform")
    for unused in ("model.dtype=float32", "train.edit_low=0.3", "train.weights_fallback=edit", "seed=3",
                   "train.beta=0.2", "train.report_to=[tensorboard]", "model.judge_untyped=skip", "data.seeds=other"):
        assert weights("train.weights=uniform", unused) == uniform, unused
    assert weights("train.weights=uniform", "model.policy=tiny") != uniform  # its tokenizer cuts the tokens
    assert weights("train.weights=edit", "train.edit_low=0.3") != weights("train.weights=edit")
    assert weights("train.weights=pmi", "model.dtype=float32") != weights("train.weights=pmi")
    assert weights("train.weights=kl", "train.weights_fallback=edit", "train.edit_low=0.3") != \
        weights("train.weights=kl", "train.weights_fallback=edit")


def test_a_key_that_only_sets_a_warning_threshold_keys_no_artifacts_content():
    """``*.judge_warning_share`` says when the summary warns about the judge; the pairs are the same at any value.
    (A shared entry's name keeps it, as it keeps other keys, so the entries made before stay found.)"""
    assert set(WARNING_THRESHOLDS) == {key for key in schema_keys() if key.endswith("warning_share")}
    for key in WARNING_THRESHOLDS:
        section = key.partition(".")[0]
        method = METHOD_OF_SECTION[section]
        assert keyed_by(key).artifacts == {GENERATE_SHARE}, key
        base = load_config(None, [f"method={method}"])
        lenient = load_config(None, [f"method={method}", f"{key}=1.0"])
        assert pairs_fingerprint(lenient) == pairs_fingerprint(base), key


def test_the_generate_share_key_is_the_one_older_sweeps_named_their_entries_by():
    """A shared entry is found by its name: the key must not move, or a run's link would point elsewhere. It moved
    once, for ``auto`` alone: keyed by what ``auto`` means on the machine (the next test), it is the older name of
    the config with those values written out."""
    machine = ["model.dtype=float32", "generation.backend=hf", "train.precision=fp32"]
    for overrides in (machine, ["method=ecd", "ecd.rounds=5", *machine], ["method=musc", "data.limit=3", *machine],
                      []):  # ct2 at its default
        cfg = load_config(None, overrides)
        tree = to_dict(as_resolved(cfg))
        older = {name: tree[name] for name in ("seed", "method", "model", "generation", "data",
                                                *get_method(cfg.method).sections)}
        # ("ct2" and "openvino" did not exist then; at their defaults they are left out of the key)
        older["generation"] = {k: v for k, v in older["generation"].items()
                               if k not in ("batch_size", "vllm", "ct2", "openvino")}
        assert generate_share_key(cfg) == digest(older)


MACHINE_DECIDED = ("model.dtype", "generation.backend", "train.precision")
DECIDED_BY_HARDWARE = (PAIRS, GENERATE_SHARE, MODEL, ANSWERS, BASE_EVAL_SHARE)


def _keys_on(monkeypatch, bf16: bool, overrides: list[str]) -> dict:
    """Every key of the config ``overrides`` make, as a machine with (or without) native bf16 computes it."""
    monkeypatch.setattr("musc_ecd.models.precision.native_bf16", lambda device: bf16)
    cfg = load_config(None, ["model.responders=[]", *WHERE_EVERY_KEY_COUNTS, *overrides])
    return {artifact: fingerprint(cfg) for artifact, fingerprint in FINGERPRINT_OF.items()}


def test_auto_keys_what_it_means_on_the_machine_so_another_cpus_artifacts_are_never_reused(monkeypatch):
    """``auto`` makes transformers in bf16 on a CPU with native bf16 and fp32 (OpenVINO where usable) on an AVX2
    one: different answers, pairs and trained weights. A run resumed on the other machine, or a sweep's shared
    entries reused there, must not take one for the other; an explicit setting keys the same everywhere."""
    with_bf16, without = _keys_on(monkeypatch, True, []), _keys_on(monkeypatch, False, [])
    assert {artifact for artifact in ARTIFACTS if with_bf16[artifact] != without[artifact]} == \
        set(DECIDED_BY_HARDWARE) | {WEIGHTS}  # the weights too: kl reads the model's distributions, in its dtype
    assert with_bf16 == _keys_on(monkeypatch, True, ["model.dtype=bfloat16", "generation.backend=hf",
                                                     "train.precision=bf16"])
    explicit = ["model.dtype=float32", "generation.backend=ct2", "train.precision=fp32"]
    assert _keys_on(monkeypatch, True, explicit) == _keys_on(monkeypatch, False, explicit)
    for key in MACHINE_DECIDED:  # each of the three alone is enough to tell the machines apart
        pinned = [f"{other}={_at(as_resolved(load_config(None, [])), other)}"
                  for other in MACHINE_DECIDED if other != key]
        assert _keys_on(monkeypatch, True, pinned) != _keys_on(monkeypatch, False, pinned), key


# -- on the tiny model, one run directory -------------------------------------------------------------------

CONFIG = str(REPO / "configs" / "musc_coarse.yaml")
TINY = ["model.policy=tiny", "model.dtype=float32", "musc.decompose_max_tokens=24", "musc.recombine_max_tokens=16",
        "musc.rewrite_max_tokens=8", "musc.respond_max_tokens=12", "data.limit=4",
        f"data.seeds={REPO / 'configs' / 'data' / 'seeds.jsonl'}", "train.weights=uniform", "train.max_steps=1",
        "train.batch_size=1", "train.gradient_accumulation_steps=1", "train.precision=fp32"]


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def test_a_new_beta_retrains_on_the_same_weights_and_report_to_retrains_nothing(tmp_path, capsys):
    args = [CONFIG, *TINY, f"run_dir={tmp_path}"]
    assert main(["generate", *args]) == 0 and main(["weights", *args]) == 0 and main(["train", *args]) == 0
    weights, first = _manifest(tmp_path / "weights"), _manifest(tmp_path / "model")

    assert main(["train", *args, "train.beta=0.2"]) == 0, capsys.readouterr().err  # no weights stage asked for
    second = _manifest(tmp_path / "model")
    assert second["fingerprint"] != first["fingerprint"] and second["pairs_sha256"] == first["pairs_sha256"]
    assert len(list(tmp_path.glob("model.stale-*"))) == 1  # the β=0.1 model is kept aside, not deleted
    assert list(tmp_path.glob("train.stale-*")), "its checkpoints must not be resumed under another β"
    assert _manifest(tmp_path / "weights") == weights

    pytest.importorskip("tensorboard")
    assert main(["train", *args, "train.beta=0.2", "train.report_to=[tensorboard]"]) == 0
    assert _manifest(tmp_path / "model") == second and len(list(tmp_path.glob("model.stale-*"))) == 1
    assert main(["weights", *args, "train.beta=0.2"]) == 0 and _manifest(tmp_path / "weights") == weights


def test_a_run_directory_keyed_by_the_older_hashes_is_recognised(tmp_path):
    """Pairs, weights and model made before the keys followed the table: re-keyed, none made again."""
    args = [CONFIG, *TINY, f"run_dir={tmp_path}"]
    assert main(["generate", *args]) == 0 and main(["weights", *args]) == 0 and main(["train", *args]) == 0
    cfg = load_config(CONFIG, TINY)
    files = {tmp_path / "generate": (PAIRS, "pairs.parts"), tmp_path / "weights": (WEIGHTS, "pairs.parts"),
             tmp_path / "model": (MODEL, None)}
    before = {}
    for stage_dir, (artifact, parts) in files.items():
        older = legacy_fingerprints(cfg, artifact)[0]  # the whole sections' key
        for path in [stage_dir / "manifest.json", *([stage_dir / parts / "meta.json"] if parts else [])]:
            path.write_text(json.dumps({**json.loads(path.read_text()), "fingerprint": older}))
        before[stage_dir] = (stage_dir / ("pairs.jsonl" if parts else "adapter_model.safetensors")).read_bytes()

    assert main(["generate", *args]) == 0 and main(["weights", *args]) == 0 and main(["train", *args]) == 0
    for stage_dir, (artifact, parts) in files.items():
        assert (stage_dir / ("pairs.jsonl" if parts else "adapter_model.safetensors")).read_bytes() == \
            before[stage_dir]
        assert _manifest(stage_dir)["fingerprint"] != legacy_fingerprints(cfg, artifact)[0]  # re-keyed
    assert not list(tmp_path.glob("*.stale-*"))
    log = (tmp_path / "log.txt").read_text()
    assert "4 items: 4 already done, 0 to do" in log and "the trained model" in log and "nothing to do" in log


def test_a_new_warning_threshold_rebuilds_nothing_and_the_summary_warns_under_it(tmp_path):
    """The tiny model's judge gives no parsable verdict: past the default threshold the summary warns; a rerun with
    the threshold at 1 keeps the pairs (no refusal of the directory, nothing rebuilt) and no longer warns. A
    directory whose pairs were keyed with the threshold (as before it was left out) is recognised and re-keyed."""
    args = [CONFIG, *TINY, f"run_dir={tmp_path}", "musc.self_judge_filter=true", "musc.unparsable_verdict=keep"]
    generated = tmp_path / "generate"
    assert main(["generate", *args]) == 0
    built, pairs = _manifest(generated), (generated / "pairs.jsonl").read_bytes()
    summary = json.loads((generated / "summary.json").read_text())
    assert summary["judge_filter"]["unparsable_share"] > 0.5 and summary["judge_filter"]["warning"] in \
        summary["warnings"]

    assert main(["generate", *args, "musc.judge_warning_share=1.0"]) == 0
    assert _manifest(generated) == built and (generated / "pairs.jsonl").read_bytes() == pairs
    summary = json.loads((generated / "summary.json").read_text())
    assert "warning" not in summary["judge_filter"] and summary["warnings"] == []

    cfg = load_config(CONFIG, [*TINY, "musc.self_judge_filter=true", "musc.unparsable_verdict=keep"])
    keyed_with_threshold = keyed_tree(cfg, PAIRS)
    keyed_with_threshold["musc"]["judge_warning_share"] = cfg.musc.judge_warning_share
    for path in (generated / "manifest.json", generated / "pairs.parts" / "meta.json"):
        path.write_text(json.dumps({**json.loads(path.read_text()), "fingerprint": digest(keyed_with_threshold)}))
    assert main(["generate", *args]) == 0
    assert (generated / "pairs.jsonl").read_bytes() == pairs
    assert _manifest(generated)["fingerprint"] == pairs_fingerprint(cfg)
