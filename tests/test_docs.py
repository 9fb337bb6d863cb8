"""The docs name only what exists: config keys in the schema, ``musc-ecd`` commands in the CLI, links to files.

A key renamed in the schema, a command dropped from the CLI or a page moved leaves a line in the docs that
fails only when a reader types or follows it. These tests read every Markdown file of the project's docs
(README.md, ARCHITECTURE.md, docs/, the READMEs of benchmarks/ and experiments/) and check, in its code
(inline spans and fenced blocks other than Python):

- every dotted name whose first part is a config section (``train.beta``, ``generation.vllm.max_model_len``...) is a
  key of the schema, found by walking the resolved default config (``musc_ecd.config.to_dict``);
- every ``musc-ecd COMMAND`` (or ``-m musc_ecd COMMAND``) is a subcommand of the CLI's parser;

and, in its prose, that every relative link resolves to an existing file (and heading, for ``#anchors``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOC_FILES = [README, REPO / "ARCHITECTURE.md", *sorted((REPO / "docs").glob("*.md")),
             *sorted((REPO / "benchmarks").glob("README.md")), *sorted((REPO / "experiments").rglob("README.md"))]
DOC_PAGES = ("commands", "configuration", "run-directories", "methods", "training", "evaluation",
             "sweeps-and-reports", "backends", "benchmarks")
"""The reference pages the README sends a reader to (issue #20, item 14)."""
README_MAX_LINES = 200

WRONG_ON_PURPOSE = {"model.polcy"}
"""Keys the docs misspell on purpose: the configuration page shows the error a misspelled key gives."""
FILE_SUFFIXES = {"py", "txt", "yaml", "yml", "json", "jsonl", "md", "png", "csv", "html", "sh", "log"}
"""``musc.py`` or ``eval.yaml`` in a span is a file, not a key of the ``musc`` or ``eval`` section."""

FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.S | re.M)
INLINE = re.compile(r"(`+)(.+?)\1", re.S)
COMMAND = re.compile(r"(?:\bmusc-ecd|-m[ \t]+musc_ecd)[ \t]+([a-z][\w-]*)")  # COMMAND, CONFIG: placeholders
LINK = re.compile(r"\[[^\]]*\]\(\s*([^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def _default_config() -> dict:
    from musc_ecd.config import Config, to_dict

    return to_dict(Config())


def _sections(tree: dict) -> list[str]:
    return sorted((name for name, value in tree.items() if isinstance(value, dict)), key=len, reverse=True)


def _key_pattern(sections: list[str]) -> re.Pattern:
    # Not part of a longer name or path (``musc_ecd.methods.ecd``, ``configs/musc.yaml``, ``model.stale-DATE``).
    return re.compile(rf"(?<![\w./-])((?:{'|'.join(map(re.escape, sections))})(?:\.[A-Za-z_]\w*)+)(?![\w/-])")


def _blank(match: re.Match) -> str:
    return re.sub(r"[^\n]", " ", match.group(0))


def code_and_prose(text: str) -> tuple[list[tuple[int, str]], str]:
    """(line number, code) for every fenced block (Python ones left out) and inline span; and the prose:
    the text with all code blanked out (line numbers kept)."""
    code: list[tuple[int, str]] = []
    for block in FENCE.finditer(text):
        if block.group(2).lower() not in ("python", "py"):
            code.append((text.count("\n", 0, block.start(3)) + 1, block.group(3)))
    prose = FENCE.sub(_blank, text)
    for span in INLINE.finditer(prose):
        code.append((prose.count("\n", 0, span.start()) + 1, span.group(2)))
    return code, INLINE.sub(_blank, prose)


def anchors(text: str) -> set[str]:
    """The anchors of a Markdown file's headings (outside fenced blocks, where ``#`` starts a comment)."""
    return {_slug(heading) for heading in HEADING.findall(FENCE.sub(_blank, text))}


def unknown_keys(text: str, tree: dict | None = None) -> list[tuple[int, str]]:
    """(line, key) for every config key the text's code names that the schema does not have."""
    tree = tree if tree is not None else _default_config()
    pattern = _key_pattern(_sections(tree))
    found = []
    for line, code in code_and_prose(text)[0]:
        for match in pattern.finditer(code):
            key = match.group(1)
            if key.rsplit(".", 1)[1] in FILE_SUFFIXES or key in WRONG_ON_PURPOSE:
                continue
            node: object = tree
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    found.append((line + code.count("\n", 0, match.start()), key))
                    break
                node = node[part]
    return sorted(found)


def cli_commands() -> set[str]:
    from musc_ecd.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return set(subparsers.choices)


def unknown_commands(text: str, commands: set[str]) -> list[tuple[int, str]]:
    return sorted((line + code.count("\n", 0, match.start()), match.group(1))
                  for line, code in code_and_prose(text)[0] for match in COMMAND.finditer(code)
                  if match.group(1) not in commands)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation (backticks included) dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def broken_links(path: Path) -> list[tuple[int, str]]:
    """(line, target) for every relative link in the file's prose that names no existing file or heading."""
    prose = code_and_prose(path.read_text())[1]
    broken = []
    for match in LINK.finditer(prose):
        target = match.group(1)
        if re.match(r"[a-z][\w+.-]*:", target):  # https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        ok = resolved.exists()
        if ok and anchor and resolved.suffix == ".md":
            ok = anchor in anchors(resolved.read_text())
        if not ok:
            broken.append((prose.count("\n", 0, match.start()) + 1, target))
    return broken


def _where(path: Path, found: list[tuple[int, str]]) -> list[str]:
    return [f"{path.relative_to(REPO)}:{line}: {name}" for line, name in found]


# -- the checks work ------------------------------------------------------------------------------------------

def test_a_wrong_key_is_found_and_right_ones_pass():
    text = ("Set `train.betta=0.2` and `generation.vllm.gpu_memory_utilization=0.4`;\n"
            "```bash\nmusc-ecd train CONFIG train.beta=0.2 musc_fine.sampels=4\n```\n"
            "Files are not keys: `configs/musc.yaml`, `musc.py`, `musc_ecd.methods.ecd.summarize`, "
            "`model.stale-DATE/`.\n```python\neval.nothing = 1\n```\n"
            "1. a list item\n\n   ```\n   eval.nothin=1\n   ```\n")
    assert unknown_keys(text) == [(1, "train.betta"), (3, "musc_fine.sampels"), (12, "eval.nothin")]


def test_a_wrong_command_is_found():
    text = "`musc-ecd generat CONFIG`, `musc-ecd run CONFIG` and\n```\naccelerate launch -m musc_ecd trian C\n```\n"
    assert unknown_commands(text, cli_commands()) == [(1, "generat"), (3, "trian")]


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "page.md").write_text("# A page\n\n## What it says\n\n### `musc-ecd audit`\n\n"
                                      "```bash\n# not a heading\n```\n")
    doc = tmp_path / "doc.md"
    doc.write_text("[ok](page.md) [ok](page.md#what-it-says) [web](https://example.org/x) [ok](#a-doc)\n"
                   "[gone](nope.md) [bad anchor](page.md#nothing) `[in code](nope2.md)` [ok](page.md#musc-ecd-audit)\n"
                   "[comment](page.md#not-a-heading)\n\n# A doc\n")
    assert broken_links(doc) == [(2, "nope.md"), (2, "page.md#nothing"), (3, "page.md#not-a-heading")]


# -- the docs ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_name_only_existing_config_keys(path):
    assert not (found := unknown_keys(path.read_text())), "keys not in the schema:\n" + "\n".join(_where(path, found))


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_name_only_existing_commands(path):
    found = unknown_commands(path.read_text(), cli_commands())
    assert not found, "not a musc-ecd command:\n" + "\n".join(_where(path, found))


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_links_resolve(path):
    assert not (found := broken_links(path)), "broken links:\n" + "\n".join(_where(path, found))


def test_readme_is_short_and_points_to_every_reference_page():
    text = README.read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    assert "## What the main command prints" in text
    for page in DOC_PAGES:
        assert f"(docs/{page}.md)" in text, f"README links docs/{page}.md"
        assert (REPO / "docs" / f"{page}.md").is_file()
