"""Every YAML shipped in configs/ and experiments/ loads against the schema."""

from pathlib import Path

import pytest

from musc_ecd.config import load_config

REPO = Path(__file__).resolve().parents[1]
ACCELERATE = REPO / "configs" / "accelerate"
ALL_YAMLS = sorted(p for folder in ("configs", "experiments") for p in (REPO / folder).rglob("*.yaml")
                   if ACCELERATE not in p.parents and "results" not in p.relative_to(REPO).parts)
"""Configs people run; the resolved configs that `musc-ecd publish` copies into an experiment's results/ are
records of runs (with the run's paths and every key spelled out), not commands to run."""


def _is_sweep(path: Path) -> bool:
    import yaml

    spec = yaml.safe_load(path.read_text())
    return isinstance(spec, dict) and "base" in spec


SWEEPS = [p for p in ALL_YAMLS if _is_sweep(p)]  # `musc-ecd sweep` files: a base config plus axes
YAMLS = [p for p in ALL_YAMLS if p not in SWEEPS]


def test_there_are_configs():
    assert any(p.name == "quickstart.yaml" for p in YAMLS)


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(REPO)))
def test_config_loads(path):
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith("#"), "every config starts with the command that runs it"
    load_config(path)


@pytest.mark.parametrize("path", sorted(ACCELERATE.glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_config_is_valid_for_accelerate(path):
    from accelerate.commands.config.config_args import ClusterConfig

    assert path.read_text().startswith("# accelerate launch")
    config = ClusterConfig.from_yaml_file(str(path))
    assert config.mixed_precision == "bf16" and config.num_processes >= 2


def test_sweeps_load():
    """Every run of every shipped sweep resolves against the schema (nothing runs)."""
    from musc_ecd.sweep import load_sweep

    for path in SWEEPS:
        assert path.read_text().splitlines()[0].startswith("# musc-ecd sweep"), f"{path}: start with its command"
        assert load_sweep(path).runs
