"""Models by spec, and the generation backends behind one ``Generator`` interface."""

from musc_ecd.models.generator import (
    Chat,
    Completion,
    Generator,
    SamplingParams,
    create_generator,
    params_from_config,
)
from musc_ecd.models.loading import load_model, resolve_model_path

__all__ = [
    "Chat",
    "Completion",
    "Generator",
    "SamplingParams",
    "create_generator",
    "load_model",
    "params_from_config",
    "resolve_model_path",
]
