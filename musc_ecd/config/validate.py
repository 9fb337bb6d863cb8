"""The schema's value checks: one line naming the key, the value and what is allowed."""

from __future__ import annotations

from typing import Any

from musc_ecd.errors import ConfigError


def check(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise a one-line ``ConfigError`` unless ``ok``; run from the sections' ``__post_init__``."""
    if not ok:
        raise ConfigError(f"config error: {key}={value!r} is not allowed; expected {allowed}")
