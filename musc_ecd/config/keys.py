"""Serialisation: the resolved config as YAML (``RUN_DIR/config.yaml``, from which a run repeats) or a plain dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from musc_ecd.config.schema import Config
from musc_ecd.store import write_atomic


def to_yaml(cfg: Config) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def to_dict(cfg: Config) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(cfg))  # type: ignore[return-value]


def save_config(cfg: Config, run_dir: Path) -> Path:
    """Write the resolved config to ``run_dir/config.yaml`` (atomically; every distributed rank writes it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / "config.yaml"
    write_atomic(target, to_yaml(cfg))
    return target


