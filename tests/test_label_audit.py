"""Label audits: exact shares on a hand-built artifact, a foreign one, and the ``musc-ecd audit`` command."""

from __future__ import annotations

import json

import pytest
from helpers import write_jsonl

from musc_ecd.cli import main
from musc_ecd.errors import DataError
from musc_ecd.label_audit import META_FIELD, audit_file, format_audit, judge_pair, label_accuracy
from musc_ecd.records import message_text


def conversation(prompt: str, chosen: str, rejected: str, constraints: list[dict] | None) -> dict:
    record = {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}],
              "chosen": [{"role": "assistant", "content": chosen}],
              "rejected": [{"role": "assistant", "content": rejected}], "meta": {"method": "hand"}}
    if constraints is not None:
        record["meta"][META_FIELD] = constraints
    return record


NO_COMMA = {"id": "punctuation:no_comma", "kwargs": {}}
LOWER = {"id": "change_case:english_lowercase", "kwargs": {}}
TITLE = {"id": "detectable_format:title", "kwargs": {}}

PAIRS = [
    # chosen passes both, rejected neither -> better
    conversation("Describe the harbour in lowercase and without commas.", "the sea is calm today and the boats are out",
                 "The sea is calm, and the boats are out.", [NO_COMMA, LOWER]),
    # both have a title -> tied
    conversation("Give it a title in << >>.", "<<Tides>>\nThe tide turns twice a day.", "<<Tides>>\nThe tide turns.",
                 [TITLE]),
    # plain strings, IFEval columns: chosen is too long, rejected short -> reversed
    {"prompt": "Answer in fewer than 5 words: what is a tide?", "chosen": "This answer has far too many words in it.",
     "rejected": "Sea level change.", "instruction_id_list": ["length_constraints:number_words"],
     "kwargs": [{"num_words": 5, "relation": "less than"}]},
    # no typed constraints: counted in pairs only
    conversation("Tell me about tides.", "Tides are caused by the moon.", "Tides happen.", None),
    # plain, two constraints: 2 vs 0 -> better
    {"prompt": "No commas; end with Happy planning!", "chosen": "Pack light. Happy planning!",
     "rejected": "Pack light, friend.", "instruction_id_list": ["punctuation:no_comma", "startend:end_checker"],
     "kwargs": [{}, {"end_phrase": "Happy planning!"}]},
]


def test_shares_and_means_by_hand():
    summary = label_accuracy(PAIRS)
    assert (summary["pairs"], summary["with_constraints"]) == (5, 4)
    assert (summary["chosen_better"], summary["tied"], summary["reversed"]) == (0.5, 0.25, 0.25)
    assert summary["chosen_mean_passed"] == 1.25  # (2 + 1 + 0 + 2) / 4
    assert summary["rejected_mean_passed"] == 0.5  # (0 + 1 + 1 + 0) / 4
    assert summary["mean_constraints"] == 1.5
    by = summary["by_constraint"]
    assert by["punctuation:no_comma"] == {"pairs": 2, "chosen_better": 1.0, "tied": 0.0, "reversed": 0.0,
                                          "chosen_mean_passed": 1.0, "rejected_mean_passed": 0.0}
    assert by["detectable_format:title"]["tied"] == 1.0
    assert by["length_constraints:number_words"]["reversed"] == 1.0
    assert set(by) == {"punctuation:no_comma", "change_case:english_lowercase", "detectable_format:title",
                       "length_constraints:number_words", "startend:end_checker"}
    # per builder: the "hand" pairs (better, tied, and one without constraints) apart from the unnamed ones
    methods = summary["by_method"]
    assert methods["hand"] == {"pairs": 3, "with_constraints": 2, "chosen_better": 0.5, "tied": 0.5,
                               "reversed": 0.0, "chosen_mean_passed": 1.5, "rejected_mean_passed": 0.5}
    assert (methods["unnamed"]["with_constraints"], methods["unnamed"]["reversed"]) == (2, 0.5)
    table = format_audit(summary)
    assert "made by hand" in table and "made by unnamed" in table
    one_builder = label_accuracy(PAIRS[:2])
    assert "made by" not in format_audit(one_builder)  # one builder: its row would repeat the overall one


def test_pair_verdicts_and_message_selection():
    verdict = judge_pair(PAIRS[0])
    assert verdict.chosen == (True, True) and verdict.rejected == (False, False) and verdict.outcome == "chosen_better"
    assert judge_pair(PAIRS[3]) is None
    turns = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
             {"role": "user", "content": "second"}]
    assert message_text(turns, "user") == "second" and message_text("plain", "user") == "plain"
    with pytest.raises(ValueError, match="no assistant message"):
        message_text(turns[:1], "assistant")


def test_nothing_to_audit_gives_no_shares():
    summary = label_accuracy([PAIRS[3]])
    assert summary["with_constraints"] == 0 and summary["chosen_better"] is None
    assert "nothing to audit" in format_audit(summary)


def test_an_artifact_this_project_did_not_make(tmp_path):
    """IFEval columns at top level, plain strings, extra columns of its own; no meta at all."""
    rows = [{"key": 7, "source": "elsewhere", "prompt": "Write about rain. Wrap it in double quotes.",
             "chosen": '"Rain taps on the roof."', "rejected": "Rain taps on the roof.",
             "instruction_id_list": ["startend:quotation"], "kwargs": [{"end_phrase": None}]},
            {"key": 8, "source": "elsewhere", "prompt": "Use at least 3 sentences. Write in English capitals.",
             "chosen": "IT RAINS. THE ROOF IS WET. WE STAY IN.", "rejected": "It rains.",
             "instruction_id_list": ["length_constraints:number_sentences", "change_case:english_capital"],
             "kwargs": [{"num_sentences": 3, "relation": "at least"}, {}]}]
    summary = audit_file(write_jsonl(tmp_path / "foreign.jsonl", rows))
    assert (summary["pairs"], summary["with_constraints"], summary["chosen_better"]) == (2, 2, 1.0)
    assert summary["chosen_mean_passed"] == 1.5 and summary["rejected_mean_passed"] == 0.0


def test_cli_json_and_table(tmp_path, capsys):
    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    assert main(["audit", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {k: printed[k] for k in ("pairs", "with_constraints", "chosen_better", "tied", "reversed")} == {
        "pairs": 5, "with_constraints": 4, "chosen_better": 0.5, "tied": 0.25, "reversed": 0.25}
    assert printed["chosen_mean_passed"] == 1.25 and printed["rejected_mean_passed"] == 0.5
    assert main(["audit", str(path)]) == 0
    table = capsys.readouterr().out
    assert table.startswith("5 pairs, 4 with typed constraints")
    assert "50.0%" in table and "punctuation:no_comma" in table


@pytest.mark.parametrize(("content", "message"), [
    (b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n\xff\xfe not text\n', ":2: not UTF-8 text"),
    (b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": \n', ":2: invalid JSON"),
    (b'[1, 2]\n', ":1: a JSON list, not an object"),
    (b'{"prompt": "p", "chosen": "a"}\n', ":1: no 'rejected' field"),
    (b'{"prompt": "p", "chosen": "a", "rejected": "b", "instruction_id_list": ["punctuation:no_coma"], '
     b'"kwargs": [{}]}\n', ":1: unknown constraint id 'punctuation:no_coma'; did you mean punctuation:no_comma?"),
])
def test_bad_lines_are_one_line_errors_with_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match="bad.jsonl" + message.replace("?", r"\?").replace("[", r"\[")):
        audit_file(path)
    assert main(["audit", str(path), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["audit", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_audit_into_a_pipe_closed_early_is_not_a_traceback(tmp_path):
    """`musc-ecd audit PAIRS | head -3`: the reader closing the pipe ends the command quietly (``true`` closes
    it before the audit writes a byte, so the write always meets a closed pipe)."""
    import subprocess
    import sys

    from helpers import subprocess_env

    path = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    command = f"{sys.executable} -m musc_ecd audit {path} | true"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr
