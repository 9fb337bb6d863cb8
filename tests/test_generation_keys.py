"""Every ``generation`` key a method's pairs depend on acts in every step and keys the pairs; every other one is
refused where ``generate``/``run`` load the config, and left out of the pairs' key (issue #20, item 4)."""

from __future__ import annotations

import json

import pytest
from helpers import write_jsonl
from test_apc import responders
from test_ecd import _self_based
from test_musc_coarse import scripted_policy
from test_musc_fine import policy as fine_policy

from musc_ecd.cli import main
from musc_ecd.config import load_config
from musc_ecd.errors import ConfigError
from musc_ecd.fingerprints import generate_share_key, pairs_fingerprint
from musc_ecd.items import load_items
from musc_ecd.methods.sampling import SAMPLING_KEYS, check_generation_keys, read_keys, step_params, unread_keys
from musc_ecd.models.roles import ModelRoles
from musc_ecd.registry import METHODS, get_method


def _coarse():
    generator = scripted_policy()
    return ModelRoles.of(generator), [generator]


def _fine():
    generator = fine_policy()
    return ModelRoles.of(generator), [generator]


def _ecd():
    generator = _self_based()
    return ModelRoles.of(generator), [generator]


def _apc():
    generators = responders(2)
    return ModelRoles.of(generators[0], responders=generators), generators


CASES = {  # method: (its overrides, its scripted models, the generation keys it reads)
    "musc_coarse": ([], _coarse, ("top_p",)),
    "musc_fine": ([], _fine, ("top_p",)),
    "musc": ([], _coarse, ("top_p",)),
    "ecd": (["ecd.rounds=2"], _ecd, ("top_p",)),
    "apc": (["model.responders=[m0,m1]"], _apc, ("temperature", "top_p", "max_new_tokens", "stop")),
}
SET_AWAY = {"n": 3, "temperature": 0.35, "top_p": 0.85, "max_new_tokens": 77, "stop": ["<END>"]}


def _config(method: str, *overrides: str):
    return load_config(None, [f"method={method}", *CASES[method][0], *overrides])


def _override(key: str) -> str:
    return f"generation.{key}={json.dumps(SET_AWAY[key])}"


def _params_used(cfg, tmp_path) -> list:
    """Every ``SamplingParams`` the method's steps passed to a model while building pairs for three seeds."""
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"id": f"s{i}", "instruction": f"Write about topic {i}.",
                                                    "prompt": f"Write about topic {i}."} for i in range(3)])
    models, generators = CASES[cfg.method][1]()
    get_method(cfg.method).build(models, cfg)(load_items(seeds, prompt_field="instruction", id_field="id"))
    return [params for generator in generators for _, params in generator.calls]


def test_every_registered_method_declares_the_generation_keys_it_reads():
    assert set(CASES) == set(METHODS)
    for method, (_, _, reads) in CASES.items():
        cfg = _config(method)
        assert read_keys(cfg) == reads
        assert set(read_keys(cfg)) | set(unread_keys(cfg)) == set(SAMPLING_KEYS)


@pytest.mark.parametrize("method", list(CASES))
def test_a_key_the_method_reads_keys_its_pairs_and_is_used_by_every_step(method, tmp_path):
    base = _config(method)
    default_params = _params_used(base, tmp_path)
    assert default_params
    for key in CASES[method][2]:
        changed = _config(method, _override(key))
        assert pairs_fingerprint(changed) != pairs_fingerprint(base), key
        assert generate_share_key(changed) != generate_share_key(base), key
        expected = tuple(SET_AWAY[key]) if key == "stop" else SET_AWAY[key]
        used = _params_used(changed, tmp_path)
        assert len(used) == len(default_params) and all(getattr(p, key) == expected for p in used), key
        assert all(getattr(p, key) != expected for p in default_params), key
        check_generation_keys(changed, "generate")  # read: accepted


@pytest.mark.parametrize("method", list(CASES))
def test_a_key_the_method_does_not_read_is_refused_and_left_out_of_its_pairs_key(method):
    base = _config(method)
    unread = [key for key in SAMPLING_KEYS if key not in CASES[method][2]]
    assert unread
    for key in unread:
        cfg = _config(method, _override(key))
        assert pairs_fingerprint(cfg) == pairs_fingerprint(base), key
        # (a shared entry's name keeps every generation key, so the entries older sweeps made stay found; a key
        # the method does not read cannot differ there anyway: generate refuses it)
        with pytest.raises(ConfigError, match=rf"^config error: generation\.{key}=.* does nothing for "
                                              rf"method={method}: .*; leave generation\.{key} at its default"):
            check_generation_keys(cfg, "generate")


def test_the_refusal_names_what_to_set_instead_and_comes_before_anything_is_written(tmp_path, capsys):
    config = tmp_path / "musc.yaml"
    config.write_text(f"method: musc\nrun_dir: {tmp_path / 'run'}\ndata:\n  seeds: seeds.jsonl\n")
    assert main(["generate", str(config), "generation.max_new_tokens=64"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "generation.max_new_tokens=64 does nothing for method=musc" in error
    assert "musc.respond_max_tokens" in error and "musc_fine.respond_max_tokens" in error
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_run_also_evaluates_so_it_takes_the_keys_evaluation_reads():
    stop = _config("musc", "generation.stop=[END]")
    check_generation_keys(stop, "run")  # the evaluation's answers stop there
    with pytest.raises(ConfigError, match="generation.stop"):
        check_generation_keys(stop, "generate")
    with pytest.raises(ConfigError, match=r"generation.temperature=0.7 does nothing for method=musc"):
        check_generation_keys(_config("musc", "generation.temperature=0.7"), "run")


def test_apc_reads_temperature_and_budget_unless_given_per_responder():
    per_responder = _config("apc", "apc.temperatures=[0.0,1.0]", "apc.max_new_tokens=[64,32]")
    assert read_keys(per_responder) == ("top_p", "stop")
    with pytest.raises(ConfigError, match="generation.temperature=0.35 does nothing for method=apc: apc.temperatures"):
        check_generation_keys(_config("apc", "apc.temperatures=[0.0,1.0]", _override("temperature")), "generate")


def test_a_step_that_sets_a_key_its_method_reads_is_a_programming_error():
    cfg = _config("ecd")
    with pytest.raises(ValueError, match="exactly the generation keys the method does not read"):
        step_params(cfg, unread_keys(cfg), n=1, temperature=0.1, max_new_tokens=8, stop=(), top_p=0.5)
    with pytest.raises(ValueError, match="exactly the generation keys the method does not read"):
        step_params(cfg, unread_keys(cfg), n=1, temperature=0.1, max_new_tokens=8)
