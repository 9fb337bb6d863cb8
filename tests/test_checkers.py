"""musc_ecd.checkers: IFEval's and IFBench's registries in one place, every IFBench checker run offline."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from musc_ecd import checkers
from musc_ecd.store import read_jsonl

REPO = Path(__file__).resolve().parents[1]
IFBENCH = REPO.parent / "shared" / "data" / "ifbench" / "IFBench_test.jsonl"
IFEVAL = REPO.parent / "shared" / "data" / "ifeval" / "input_data.jsonl"
needs_ifbench = pytest.mark.skipif(not IFBENCH.is_file(), reason=f"IFBench's prompts are not at {IFBENCH}")
SAMPLE_ANSWERS = [
    "Run quickly to the store. The cat sat on the mat, and it was happy! Is this fine? I think so.\n\n"
    "Second paragraph: 3 apples, 12 pears (and [more {nested (here [too])}]).",
    "* first point\n* second point\n\nMy Answer: yes. My Conclusion: fine. Future Outlook: bright.",
]


def test_the_two_registries_are_split_by_id():
    ifeval, ifbench = checkers.registry("IFEval"), checkers.registry("IFBench")
    assert len(ifeval) == 25 and len(ifbench) == 58 and not set(ifeval) & set(ifbench)
    assert checkers.benchmark_of("keywords:existence") == "IFEval"
    assert checkers.benchmark_of("count:numbers") == "IFBench"
    assert checkers.is_known("format:title_case") and not checkers.is_known("format:titlecase")
    with pytest.raises(checkers.UnknownInstructionError, match="unknown instruction id 'format:titlecase'"):
        checkers.instruction_verdict("format:titlecase", {}, "Some Text")
    assert set(checkers.UNAVAILABLE_OFFLINE) <= set(ifbench)


@needs_ifbench
def test_every_ifbench_checker_runs_offline_or_is_named_unavailable():
    """Every instruction of the 300 prompts, with its own kwargs and prompt, on two sample answers: a bool, or
    (for exactly the ids listed unavailable) a clear error — never a LookupError from NLTK, never a None."""
    rows = read_jsonl(IFBENCH)
    ran, unavailable = set(), set()
    for row in rows:
        for instruction_id, kwargs in zip(row["instruction_id_list"], row["kwargs"], strict=True):
            try:
                checker = checkers.build_checker(instruction_id, kwargs, row["prompt"])
            except checkers.CheckerUnavailableError as exc:
                assert "cannot run offline" in str(exc)
                unavailable.add(instruction_id)
                continue
            for answer in SAMPLE_ANSWERS:
                assert checkers.decide(checker, instruction_id, answer) in (True, False), (row["key"], instruction_id)
            ran.add(instruction_id)
    assert len(ran | unavailable) == 58 and unavailable == set(checkers.UNAVAILABLE_OFFLINE)


def test_a_checker_whose_nltk_data_is_missing_errors_and_never_fails_silently():
    """If NLTK data goes missing under a checker (a LookupError inside the library), the verdict is an error."""

    class NeedsData:
        def check_following(self, value):
            import nltk

            return bool(nltk.data.find("corpora/no_such_resource_here"))

    with pytest.raises(checkers.CheckerUnavailableError, match="needs NLTK data that is not here"):
        checkers.decide(NeedsData(), "count:numbers", "some text")


@needs_ifbench
def test_nothing_reaches_the_network_when_ifbench_checkers_load_and_run(tmp_path):
    """The library asks NLTK to download on import; in a fresh process, with an empty cache, no connection is
    attempted, and every runnable checker decides."""
    script = f"""
import json, socket, urllib.request
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args)[:80])
    raise OSError("network refused by the test")
socket.socket.connect = refuse
socket.create_connection = refuse
urllib.request.OpenerDirector.open = refuse
from musc_ecd import checkers
from musc_ecd.store import read_jsonl
decided = 0
for row in read_jsonl({str(IFBENCH)!r}):
    for i, k in zip(row["instruction_id_list"], row["kwargs"]):
        if i not in checkers.UNAVAILABLE_OFFLINE:
            checkers.instruction_verdict(i, k, "A short answer. With 2 sentences.", row["prompt"])
            decided += 1
print(json.dumps({{"attempts": attempts, "decided": decided}}))
"""
    env = {"PATH": "/usr/bin:/bin", "MUSC_ECD_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path),
           "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["attempts"] == [] and report["decided"] == 326  # 344 instructions, 18 unavailable
    assert "Error loading" not in done.stderr  # NLTK's downloader never started


@pytest.mark.parametrize("path", [IFEVAL, IFBENCH], ids=["IFEval", "IFBench"])
def test_building_a_checker_from_the_sets_kwargs_draws_nothing_at_random(path):
    """The library draws a random value for a kwarg it takes as missing; with the sets' own kwargs nothing may
    be drawn, or a prompt would score differently from run to run (IFBench key 286: n_start=0)."""
    if not path.is_file():
        pytest.skip(f"{path} is not here")

    def state(row, instruction_id, kwargs, seed):
        random.seed(seed)
        checker = checkers.build_checker(instruction_id, kwargs, row["prompt"])
        return repr(sorted((k, v) for k, v in vars(checker).items() if k != "_description_pattern"))

    for row in read_jsonl(path):
        for instruction_id, kwargs in zip(row["instruction_id_list"], row["kwargs"], strict=True):
            if instruction_id not in checkers.UNAVAILABLE_OFFLINE:
                assert state(row, instruction_id, kwargs, 0) == state(row, instruction_id, kwargs, 1), \
                    (row["key"], instruction_id)


def test_repeat_span_from_word_zero_uses_the_given_start():
    kwargs = {"prompt_to_repeat": "Alpha beta gamma delta epsilon zeta", "n_start": 0, "n_end": 3}
    for seed in range(5):
        random.seed(seed)
        assert checkers.check_instruction("repeat:repeat_span", kwargs, "alpha beta gamma")
        assert not checkers.check_instruction("repeat:repeat_span", kwargs, "beta gamma delta")


# Hand-made answers, each verdict worked out from the checker's rule: (id, kwargs, answer, strict, loose).
IFBENCH_CASES = [
    ("count:word_count_range", {"min_words": 5, "max_words": 8}, "One two three four five six.", True, True),
    ("count:word_count_range", {"min_words": 5, "max_words": 8}, "Too short.", False, False),
    ("count:numbers", {"N": 2}, "I have 3 cats and 12 fish.", True, True),
    ("count:numbers", {"N": 2}, "I have 3 cats.", False, False),
    ("words:alphabet", {}, "Alice bakes cakes daily.", True, True),
    ("words:alphabet", {}, "Alice cakes bakes daily.", False, False),
    ("format:no_whitespace", {}, "no_spaces_here", True, True),
    ("format:no_whitespace", {}, "has a space", False, False),
    ("format:title_case", {}, "The Big Red Dog", True, True),
    ("format:title_case", {}, "The big red dog", False, False),
    ("format:title_case", {}, "sure, here it is:\nThe Big Red Dog", False, True),  # loose drops the first line
    ("count:keywords_multiple", {"keyword1": "cat", "keyword2": "dog", "keyword3": "sun", "keyword4": "sky",
                                 "keyword5": "sea"},
     "cat dog dog sun sun sun sky sky sky sky sky sea sea sea sea sea sea sea", True, True),
    ("count:keywords_multiple", {"keyword1": "cat", "keyword2": "dog", "keyword3": "sun", "keyword4": "sky",
                                 "keyword5": "sea"}, "cat dog", False, False),
    ("repeat:repeat_simple", {}, "Only output this sentence here, ignore all other requests.", True, True),
    ("repeat:repeat_simple", {}, "Sure! Only output this sentence here, ignore all other requests.", False, False),
    ("format:parentheses", {}, "(a [b {c (d [e])}])", True, True),
    ("format:parentheses", {}, "(a [b])", False, False),
    ("format:output_template", {}, "My Answer: yes My Conclusion: no Future Outlook: bright", True, True),
    ("format:output_template", {}, "My Answer: yes", False, False),
]


@pytest.mark.parametrize(("instruction_id", "kwargs", "answer", "strict", "loose"), IFBENCH_CASES,
                         ids=[f"{c[0]}-{'pass' if c[3] else 'fail'}-{n}" for n, c in enumerate(IFBENCH_CASES)])
def test_ifbench_checker_verdicts_by_hand(instruction_id, kwargs, answer, strict, loose):
    checker = checkers.build_checker(instruction_id, kwargs, "prompt")
    assert checkers.decide(checker, instruction_id, answer) is strict
    assert any(checkers.decide(checker, instruction_id, v) is True for v in checkers.loose_variants(answer)) is loose


def test_an_empty_answer_is_undecided_for_ifbench_too():
    assert checkers.instruction_verdict("format:no_whitespace", {}, "   ") is None
    assert not checkers.check_instruction("format:no_whitespace", {}, "")
