"""What every config-taking command does first: load the config, save it into the run directory, and log
there (the console gets one line per message; tracebacks go to the log file only)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from musc_ecd import __version__
from musc_ecd.config import load_config, save_config
from musc_ecd.layout import RunLayout
from musc_ecd.methods.sampling import PAIR_COMMANDS, check_generation_keys

log = logging.getLogger("musc_ecd")


def prepare(config: str | Path | None, overrides: list[str], command: str):
    """(the typed config, its run directory), with ``RUN_DIR/config.yaml`` written and logging set up.

    A command that builds pairs refuses a ``generation`` key its method does not read, before anything is written."""
    cfg = load_config(config, overrides)
    if command in PAIR_COMMANDS:
        check_generation_keys(cfg, command)
    run_dir = Path(cfg.run_dir)
    save_config(cfg, run_dir)
    log_to(RunLayout(run_dir).log, banner=f"musc-ecd {__version__} {command} {config} {overrides}")
    return cfg, run_dir


def log_to(path: Path, banner: str) -> None:
    root = logging.getLogger("musc_ecd")
    root.setLevel(logging.INFO)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers = [file_handler]
    log.info(banner)  # into the log file only: the console is for progress and results
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(_ConsoleFormatter("[musc-ecd] %(message)s"))
    root.handlers.append(console)


class _ConsoleFormatter(logging.Formatter):
    """One line per message on the console; tracebacks go to the log file only."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return super().format(record)
