"""Where OpenVINO's exporter lives: optimum-intel pins an older transformers than the project's, so it runs from an
environment of its own, which ``scripts/env.sh`` builds beside the project's (a leaf module: the backend table
asks it whether the OpenVINO backend is usable without importing any engine)."""

from __future__ import annotations

from pathlib import Path

from musc_ecd.errors import BackendUnavailableError

OPENVINO_EXPORT_VENV = ".venv-openvino-export"
"""The exporter's environment, beside the project's (``scripts/env.sh`` builds both)."""
EXPORTER_PACKAGES = ("optimum_intel", "optimum", "transformers", "openvino", "openvino_tokenizers", "nncf", "torch")
"""The exporter environment's packages whose versions key an export."""


def openvino_exporter(configured: str | None) -> Path:
    """The ``optimum-cli`` that exports models for OpenVINO: ``generation.openvino.exporter``, else
    ``$MUSC_ECD_OPENVINO_EXPORTER``, else the one in ``.venv-openvino-export`` beside this Python's environment."""
    import os
    import sys

    candidates = [Path(p) for p in (configured, os.environ.get("MUSC_ECD_OPENVINO_EXPORTER")) if p]
    candidates.append(Path(sys.prefix).parent / OPENVINO_EXPORT_VENV / "bin" / "optimum-cli")
    for candidate in candidates[:1] if configured else candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise BackendUnavailableError(
        f"the OpenVINO backend needs optimum-intel's exporter (its own environment: it pins an older transformers); "
        f"not found at {', '.join(str(c) for c in candidates)}. Build it with scripts/env.sh, point "
        "generation.openvino.exporter or $MUSC_ECD_OPENVINO_EXPORTER at an optimum-cli, or use generation.backend=ct2"
    )


def exporter_versions(exporter: Path) -> str:
    """The versions of the exporter environment's packages, read from their install records (no import)."""
    site_packages = sorted(exporter.resolve().parent.parent.glob("lib/python*/site-packages"))
    records = sorted(record.name.removesuffix(".dist-info") for folder in site_packages
                     for package in EXPORTER_PACKAGES for record in folder.glob(f"{package}-*.dist-info"))
    return ",".join(records) or str(exporter)
