"""The report's table kept inside a README, between two marker lines, so that a write-up shows exactly what
``musc-ecd report`` prints from the committed results and cannot drift from it (``--readme``)."""

from __future__ import annotations

from pathlib import Path

from musc_ecd.errors import DataError
from musc_ecd.store import write_atomic

START = "<!-- musc-ecd report: table, written by `musc-ecd report RUNS_DIR --readme THIS_FILE` -->"
END = "<!-- /musc-ecd report: table -->"


def _split(path: Path) -> tuple[str, str, str]:
    """The text before the table block (through START), the block, and the rest (from END)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"--readme {path}: cannot read it ({exc})") from None
    starts, ends = text.count(START), text.count(END)
    if starts != 1 or ends != 1 or text.index(START) > text.index(END):
        raise DataError(f"--readme {path}: needs exactly one pair of marker lines, this one and then this one, "
                        f"where the table goes (found {starts} and {ends}):\n{START}\n{END}")
    head, rest = text.split(START)
    block, tail = rest.split(END)
    return head + START, block, END + tail


def table_in(path: Path) -> str:
    """The table a README holds between the markers, without the surrounding blank lines."""
    return _split(path)[1].strip("\n")


def write_table(path: Path, table: str) -> bool:
    """Put ``table`` between the README's markers; True when the file changed."""
    head, block, tail = _split(path)
    new = "\n" + table.strip("\n") + "\n"
    if block == new:
        return False
    write_atomic(path, head + new + tail)
    return True
