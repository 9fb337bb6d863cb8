"""Rules across config sections fail at load, before any model loads: not after the generate stage has run."""

from __future__ import annotations

from pathlib import Path

import pytest

from musc_ecd.cli import main
from musc_ecd.config import load_config
from musc_ecd.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
PAIRS = REPO / "configs" / "data" / "pairs_sample.jsonl"


@pytest.mark.parametrize("method", ["musc_fine", "apc", "musc"])
@pytest.mark.parametrize("scheme", ["kl", "bi_kl"])
def test_a_pairwise_scheme_on_pairs_without_a_corrupted_instruction_fails_at_load(method, scheme):
    responders = ["model.responders=[a,b]"] if method == "apc" else []
    with pytest.raises(ConfigError, match=f"train.weights={scheme} .* method={method} makes pairs without one"):
        load_config(None, [f"method={method}", *responders, f"train.weights={scheme}"])
    load_config(None, [f"method={method}", *responders, f"train.weights={scheme}", "train.weights_fallback=edit"])
    # pairs from a file are checked when the weights stage reads them
    load_config(None, [f"method={method}", *responders, f"train.weights={scheme}", f"train.pairs={PAIRS}"])


@pytest.mark.parametrize("overrides", [["method=musc_coarse"], ["method=ecd"], ["method=musc", "musc_fine.share=0"]])
def test_methods_whose_pairs_all_carry_one_take_a_pairwise_scheme(overrides):
    load_config(None, [*overrides, "train.weights=kl"])


def test_the_cli_refuses_before_the_generate_stage_runs(tmp_path, capsys):
    seeds = REPO / "configs" / "data" / "seeds.jsonl"
    code = main(["run", str(REPO / "configs" / "musc.yaml"), "model.policy=tiny", f"run_dir={tmp_path}",
                 f"data.seeds={seeds}", "train.weights=kl", "train.weights_fallback=none"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "train.weights_fallback" in err
    assert not (tmp_path / "generate").exists()


def test_ecd_judged_by_code_without_typed_requirements_fails_at_load():
    with pytest.raises(ConfigError, match="needs ecd.typed_format=true"):
        load_config(None, ["method=ecd", "model.judge=checkers"])
    load_config(None, ["method=ecd", "model.judge=checkers", "ecd.typed_format=true"])
