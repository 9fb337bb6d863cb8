"""What a review found untidy stays tidy: the data model split by concern, exporting what is used; names that
say what they hold; help and docstrings that name what the code does."""

from __future__ import annotations

import ast
from pathlib import Path

import musc_ecd
from musc_ecd.layout import RunLayout

ROOT = Path(musc_ecd.__file__).parent
TESTS = Path(__file__).resolve().parent


def _trees(paths):
    for path in paths:
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def test_records_is_split_by_concern_and_exports_exactly_what_other_modules_import():
    import musc_ecd.records as records

    modules = sorted((ROOT / "records").glob("*.py"))
    assert len(modules) >= 5 and all(len(p.read_text().splitlines()) <= 250 for p in modules)
    imported = set()
    for path, tree in _trees([*ROOT.rglob("*.py"), *TESTS.glob("*.py")]):
        if path.parent == ROOT / "records":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "musc_ecd.records":
                imported.update(alias.name for alias in node.names)
    assert imported == set(records.__all__)  # every name used is there; none kept that nobody needs


def test_the_scheme_picked_for_a_pair_is_named_so():
    from musc_ecd import weighting

    names = {node.id for _, tree in _trees([Path(weighting.__file__)]) for node in ast.walk(tree)
             if isinstance(node, ast.Name)}
    assert "chosen_scheme" not in names and "pair_scheme" in names  # "chosen" is a side of a pair here


def test_the_weights_stage_docstring_names_where_the_pairs_are():
    from musc_ecd import weighting

    pairs = RunLayout(Path("RUN_DIR")).generate / "pairs.jsonl"
    assert f"Reads ``{pairs}``" in weighting.__doc__


def test_run_help_names_the_weights_stage(capsys):
    from musc_ecd.cli import build_parser

    parser = build_parser()
    try:
        parser.parse_args(["--help"])
    except SystemExit:
        pass
    assert "generate -> weights (when train.weights is set) -> train" in " ".join(capsys.readouterr().out.split())
