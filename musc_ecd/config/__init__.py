"""Structured configs: dataclasses with help text, merged with OmegaConf from one YAML plus overrides.

Every command takes ``CONFIG.yaml`` and ``key=value`` overrides (an OmegaConf dotlist). The schema is the
section dataclasses (one module per concern: ``models``, ``data``, ``methods``, ``training``, ``evaluation``,
composed in ``schema``), merged in OmegaConf's structured mode by ``loader``, so a misspelled key, a wrong
type or a value outside a ``Literal`` fails *before* any model loads, with one line that names the key,
where it came from (the YAML file or the command line) and what is allowed. ``choices`` holds every list of
allowed values once; ``keys`` writes the resolved config to ``RUN_DIR/config.yaml``, from which a run
repeats. What keys an artifact's fingerprint: ``musc_ecd.fingerprints``.
"""

from musc_ecd.config.choices import EVAL_SETS, EVOLUTION_CATEGORIES, LOSSES, REPORT_TO
from musc_ecd.config.data import DataConfig, StoreConfig
from musc_ecd.config.evaluation import EvalConfig
from musc_ecd.config.keys import save_config, to_dict, to_yaml
from musc_ecd.config.loader import from_dict, load_config
from musc_ecd.config.methods import ApcConfig, EcdConfig, MuscCoarseConfig, MuscFineConfig
from musc_ecd.config.models import CT2Config, GenerationConfig, ModelConfig, OpenVINOConfig, VLLMConfig
from musc_ecd.config.schema import Config
from musc_ecd.config.training import LoraSettings, TrainConfig

__all__ = [
    "EVAL_SETS", "EVOLUTION_CATEGORIES", "LOSSES", "REPORT_TO", "ApcConfig", "CT2Config", "Config", "DataConfig",
    "EcdConfig", "EvalConfig", "GenerationConfig", "LoraSettings", "ModelConfig", "MuscCoarseConfig",
    "MuscFineConfig", "OpenVINOConfig", "StoreConfig", "TrainConfig", "VLLMConfig", "from_dict", "load_config",
    "save_config", "to_dict", "to_yaml",
]
