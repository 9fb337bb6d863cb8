"""The whole configuration: one dataclass per section, composed; every command reads the sections it needs."""

from __future__ import annotations

from dataclasses import dataclass, field

from musc_ecd.config.data import DataConfig, StoreConfig
from musc_ecd.config.evaluation import EvalConfig
from musc_ecd.config.methods import ApcConfig, EcdConfig, MuscCoarseConfig, MuscFineConfig
from musc_ecd.config.models import GenerationConfig, ModelConfig
from musc_ecd.config.training import TrainConfig


@dataclass
class Config:
    """The whole configuration; every command reads the sections it needs."""

    run_dir: str = "runs/default"
    """Where artifacts, logs and the resolved config go. Rerunning with the same run_dir resumes."""
    share_dir: str | None = None
    """Where runs put the artifacts they can share, keyed by the config that determines them: the generated
    pairs (``generate-<hash>``) and the base model's evaluations (``eval-base-<hash>``); the run directory
    links to them. None = everything inside run_dir. ``musc-ecd sweep`` sets RUNS_DIR/_shared."""
    seed: int = 0
    """Run seed; per-item seeds are derived from it, the item id and the stage."""
    method: str = "musc_coarse"
    """Pair builder for ``generate``: musc_coarse, musc_fine, musc (both, in one artifact), ecd, apc."""
    model: ModelConfig = field(default_factory=ModelConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    data: DataConfig = field(default_factory=DataConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    musc: MuscCoarseConfig = field(default_factory=MuscCoarseConfig)
    musc_fine: MuscFineConfig = field(default_factory=MuscFineConfig)
    ecd: EcdConfig = field(default_factory=EcdConfig)
    apc: ApcConfig = field(default_factory=ApcConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


