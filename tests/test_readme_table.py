"""`musc-ecd report --readme FILE`: the report's table kept between two marker lines of a write-up."""

from __future__ import annotations

import pytest

from musc_ecd.errors import DataError
from musc_ecd.evaluation.readme_table import END, START, table_in, write_table


def test_the_table_replaces_what_lies_between_the_markers_and_nothing_else(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Results\n\nBefore.\n\n{START}\n| old | table |\n{END}\n\nAfter: *not run yet*.\n")
    assert write_table(readme, "| run | score |\n|---|---|\n| a | 0.5 |") is True
    assert readme.read_text() == (f"# Results\n\nBefore.\n\n{START}\n| run | score |\n|---|---|\n| a | 0.5 |\n{END}\n"
                                  "\nAfter: *not run yet*.\n")
    assert table_in(readme) == "| run | score |\n|---|---|\n| a | 0.5 |"
    assert write_table(readme, "| run | score |\n|---|---|\n| a | 0.5 |\n") is False  # already current


@pytest.mark.parametrize("text", ["no markers at all\n", f"{START}\nonly the start\n", f"{END}\n{START}\n",
                                  f"{START}\n{END}\n{START}\n{END}\n"])
def test_a_readme_without_exactly_one_pair_of_markers_is_refused_with_the_lines_to_add(tmp_path, text):
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(DataError, match="needs exactly one pair of marker lines") as error:
        write_table(readme, "| t |")
    assert START in str(error.value) and END in str(error.value)
    assert readme.read_text() == text  # untouched


def test_a_missing_or_undecodable_readme_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="cannot read it"):
        table_in(tmp_path / "absent.md")
    (tmp_path / "latin1.md").write_bytes(b"caf\xe9\n")
    with pytest.raises(DataError, match="cannot read it"):
        table_in(tmp_path / "latin1.md")
