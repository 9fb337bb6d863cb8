"""Config errors fail early with one specific line; the saved config repeats the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from musc_ecd.cli import main
from musc_ecd.config import Config, load_config, save_config
from musc_ecd.errors import ConfigError
from musc_ecd.fingerprints import sections_fingerprint as fingerprint

REPO = Path(__file__).resolve().parents[1]


def test_defaults_and_overrides():
    cfg = load_config(None, ["model.policy=tiny", "generation.n=3", "generation.stop=[a,b]", "data.limit=5"])
    assert isinstance(cfg, Config)
    assert cfg.model.policy == "tiny" and cfg.generation.n == 3 and cfg.generation.stop == ["a", "b"]
    assert cfg.data.limit == 5 and cfg.model.trust_remote_code is False
    assert cfg.model.role("judge") == "tiny"  # unset roles fall back to the policy


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.polcy=x", ["unknown key 'model.polcy'", "command line 'model.polcy=x'", "did you mean 'model.policy'"]),
        ("nonsense=1", ["unknown key 'nonsense'", "allowed keys at the top level", "run_dir"]),
        ("generation.n=abc", ["bad value for 'generation.n'", "could not be converted to Integer", "int"]),
        ("generation.backend=tpu", ["'generation.backend'", "expected one of", "vllm"]),
        ("generation.top_p=1.5", ["generation.top_p=1.5", "(0, 1]"]),
        ("generation.temperature=-1", ["generation.temperature", ">= 0"]),
        ("model.dtype=int8", ["'model.dtype'", "bfloat16"]),
        ("seed", ["not of the form key=value"]),
    ],
)
def test_bad_overrides_name_key_source_and_allowed(override, expected):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message


def test_error_in_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("generation:\n  batchsize: 4\n")
    with pytest.raises(ConfigError, match=r"unknown key 'generation.batchsize' \(from file '.*bad.yaml'\).*batch_size"):
        load_config(path)
    path.write_text("model: [1, 2\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_command_line_overrides_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 3\nmodel:\n  policy: tiny\n")
    cfg = load_config(path, ["seed=4"])
    assert cfg.seed == 4 and cfg.model.policy == "tiny"


def test_saved_config_alone_repeats_the_run(tmp_path):
    cfg = load_config(None, ["model.policy=tiny", "generation.stop=[x]", f"run_dir={tmp_path}", "data.limit=2"])
    saved = save_config(cfg, tmp_path)
    assert load_config(saved) == cfg


def test_fingerprint_ignores_how_much_but_not_what():
    base = load_config(None, [])
    assert fingerprint(base, ("model", "data")) == fingerprint(load_config(None, ["data.limit=3"]), ("model", "data"))
    assert fingerprint(base, ("model",)) != fingerprint(load_config(None, ["model.policy=tiny"]), ("model",))


def test_cli_config_error_is_one_line_exit_2(capsys, tmp_path):
    code = main(["respond", str(REPO / "configs" / "quickstart.yaml"), f"run_dir={tmp_path}", "generation.nn=2"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "generation.nn" in err and "Traceback" not in err


def test_unknown_model_offline_exits_2_without_traceback(tmp_path):
    """Acceptance: `musc-ecd respond CONFIG model.policy=no/such-model` → exit 2, one line."""
    result = subprocess.run(
        [sys.executable, "-m", "musc_ecd", "respond", str(REPO / "configs" / "quickstart.yaml"),
         "model.policy=no/such-model", f"run_dir={tmp_path}",
         f"data.prompts={REPO / 'configs/data/prompts_sample.jsonl'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 2, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("musc-ecd: error:")]
    assert len(error_lines) == 1 and "no/such-model" in error_lines[0] and "model.policy=" in error_lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("value", "expected"), [("off", "off"), ("on", "on"), ("auto", "auto"), ("false", "off")])
def test_prefix_sharing_accepts_bare_on_and_off(value, expected):
    from musc_ecd.config import load_config

    assert load_config(None, [f"train.prefix_sharing={value}"]).train.prefix_sharing == expected


def test_every_list_of_choices_is_defined_once_and_the_schema_derives_from_it():
    """The schema's Literals and the registries acting on a choice come from config.choices."""
    import typing

    from musc_ecd.config import choices
    from musc_ecd.config.methods import EcdConfig
    from musc_ecd.config.training import TrainConfig
    from musc_ecd.constraints.evolve import TAXONOMY
    from musc_ecd.training.curriculum import CURRICULA
    from musc_ecd.weights import SCHEMES

    hints = typing.get_type_hints(TrainConfig)
    assert typing.get_args(hints["curriculum"]) == choices.CURRICULA == CURRICULA
    assert typing.get_args(hints["weights"]) == ("none", *choices.WEIGHT_SCHEMES) and SCHEMES == choices.WEIGHT_SCHEMES
    assert set(typing.get_args(hints["weights_fallback"])) == {"none", "uniform", "edit", "pmi", "entropy"}
    assert tuple(TAXONOMY) == choices.EVOLUTION_CATEGORIES
    assert typing.get_args(typing.get_type_hints(EcdConfig)["compose"]) == choices.ECD_COMPOSE
    from musc_ecd.models.backend_choice import BACKEND_MODULES

    assert choices.BACKENDS == ("auto", *BACKEND_MODULES)  # auto picks one of the registered backends
    with pytest.raises(ConfigError, match=r"train.curriculum.*expected one of \['random', 'easy_to_hard', 'staged'\]"):
        load_config(None, ["train.curriculum=hardest_first"])
