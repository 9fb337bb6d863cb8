"""Instruction text for every typed constraint and its typed inverse, a few phrasings each.

Written for this project; each phrasing says what the checker tests and no more (where the checker is
looser or stricter than everyday English, the text says so: e.g. a "word" is matched anywhere, case
ignored; a bullet is any line starting with ``*`` or ``-``). ``rng`` picks the phrasing, so the same
seed gives the same text.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from musc_ecd.constraints.typed.registry import language_names
from musc_ecd.constraints.typed.vocabulary import CONSTRAINED_OPTIONS

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


def _quoted(words) -> str:
    items = [f'"{w}"' for w in words]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _either(words) -> str:
    items = [f'"{w}"' for w in words]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _ordinal(n: int) -> str:
    return ORDINALS[n - 1] if 1 <= n <= len(ORDINALS) else f"number {n}"


def _times(n: int) -> str:
    return "once" if n == 1 else "twice" if n == 2 else f"{n} times"


# Each entry: kwargs -> the phrasings (all equivalent for the checker); one is drawn.
Phrasings = Callable[[dict], tuple[str, ...]]


def _keyword_frequency(k: dict) -> tuple[str, ...]:
    word, n = k["keyword"], k["frequency"]
    if k["relation"] == "at least":
        return (f'Use the word "{word}" at least {_times(n)}.',
                f'The word "{word}" should come up {n} or more times in your answer.')
    if n == 1:
        return (f'Never use the word "{word}".', f'Keep the word "{word}" out of your answer entirely.')
    return (f'Use the word "{word}" fewer than {n} times.', f'Mention "{word}" at most {_times(n - 1)}.')


def _letter_frequency(k: dict) -> tuple[str, ...]:
    letter, n = k["letter"], k["let_frequency"]
    cases = "counting upper and lower case alike"
    if k["let_relation"] == "at least":
        return (f'The letter "{letter}" must appear at least {n} times in your answer, {cases}.',
                f'Write so that the letter "{letter}" occurs {n} or more times ({cases}).')
    return (f'Use the letter "{letter}" fewer than {n} times in your answer, {cases}.',
            f'The letter "{letter}" may occur at most {n - 1} times ({cases}).')


def _sentences(k: dict) -> tuple[str, ...]:
    n = k["num_sentences"]
    if k["relation"] == "at least":
        return (f"Write at least {n} sentences.", f"Your answer should run to {n} sentences or more.")
    return (f"Keep your answer under {n} sentences.", f"Use fewer than {n} sentences in total.")


def _words(k: dict) -> tuple[str, ...]:
    n = k["num_words"]
    if k["relation"] == "at least":
        return (f"Your answer must be at least {n} words long.", f"Write no fewer than {n} words.")
    return (f"Keep your answer under {n} words.", f"Use fewer than {n} words in total.")


def _paragraphs(k: dict) -> tuple[str, ...]:
    n = k["num_paragraphs"]
    if n == 1:
        return ("Write one single paragraph and do not use the *** divider anywhere.",)
    return (f"Give exactly {n} paragraphs and put the markdown divider *** on its own line between "
            "consecutive paragraphs (nowhere else).",
            f"Split your answer into exactly {n} paragraphs, separated from each other by a line holding "
            "only ***.")


def _first_word(k: dict) -> tuple[str, ...]:
    n, nth, word = k["num_paragraphs"], k["nth_paragraph"], k["first_word"]
    return (f'Write exactly {n} paragraphs separated by blank lines, and start paragraph {nth} with the word '
            f'"{word}".',
            f"Your answer should have exactly {n} paragraphs, each separated from the next by one empty line; "
            f'the {_ordinal(nth)} paragraph must begin with the word "{word}".')


def _placeholders(k: dict) -> tuple[str, ...]:
    n = k["num_placeholders"]
    return (f"Include at least {n} placeholder{'s' if n > 1 else ''} in square brackets, like [name] or [date].",
            f"Leave {n} or more blanks for the reader to fill in, each written in square brackets such as "
            "[city].")


def _postscript(k: dict) -> tuple[str, ...]:
    marker = k["postscript_marker"]
    stop = "" if marker.endswith(".") else "."
    return (f"End with a postscript that begins with {marker}{stop}",
            f"After the main answer, add a short note starting with {marker}{stop}")


def _bullets(k: dict) -> tuple[str, ...]:
    n = k["num_bullets"]
    if n == 0:
        return ("Do not use bullet points: no line of your answer may begin with * or -.",)
    return (f"Include exactly {n} markdown bullet points, each a line starting with * (no other line may start "
            "with * or -).",
            f"Present exactly {n} points as a markdown list using * at the start of each line; no other lines "
            "should begin with * or -.")


def _highlights(k: dict) -> tuple[str, ...]:
    n = k["num_highlights"]
    return (f"Highlight at least {n} part{'s' if n > 1 else ''} of your answer with markdown asterisks, "
            "for example *a key point*.",
            f"Mark {n} or more phrases in italics or bold with asterisks (*like this*).")


def _sections(k: dict) -> tuple[str, ...]:
    marker, n = k["section_spliter"], k["num_sections"]
    return (f'Organise your answer into at least {n} sections, each opening with a heading "{marker} 1", '
            f'"{marker} 2" and so on.',
            f'Divide the response into {n} or more parts and label each with "{marker}" followed by its number '
            f'(e.g. "{marker} 1").')


def _end(k: dict) -> tuple[str, ...]:
    phrase = k["end_phrase"]
    return (f'Finish with the exact phrase "{phrase}" and write nothing after it.',
            f'The very last words of your answer must be "{phrase}".')


def _capital_words(k: dict) -> tuple[str, ...]:
    n = k["capital_frequency"]
    note = "single capitals such as the word I count too"
    if k["capital_relation"] == "at least":
        return (f"Include at least {n} words that are fully capitalised (ALL CAPS).",
                f"Put {n} or more words in ALL CAPS for emphasis.")
    return (f"Use fewer than {n} words written entirely in capital letters ({note}).",
            f"At most {n - 1} words of your answer may be in all capital letters ({note}).")


def _language(k: dict) -> tuple[str, ...]:
    name = language_names()[k["language"]]
    return (f"Write your entire answer in {name}, and in no other language.", f"Respond only in {name}.")


POSITIVE: dict[str, Phrasings] = {
    "keywords:existence": lambda k: (f"Make sure the word{'s' if len(k['keywords']) > 1 else ''} "
                                     f"{_quoted(k['keywords'])} appear{'' if len(k['keywords']) > 1 else 's'} "
                                     "in your answer.",
                                     f"Work {_quoted(k['keywords'])} into your response."),
    "keywords:frequency": _keyword_frequency,
    "keywords:forbidden_words": lambda k: (f"Do not use {_either(k['forbidden_words'])} anywhere in your answer.",
                                           f"Avoid the word{'s' if len(k['forbidden_words']) > 1 else ''} "
                                           f"{_quoted(k['forbidden_words'])} completely."),
    "keywords:letter_frequency": _letter_frequency,
    "language:response_language": _language,
    "length_constraints:number_sentences": _sentences,
    "length_constraints:number_paragraphs": _paragraphs,
    "length_constraints:number_words": _words,
    "length_constraints:nth_paragraph_first_word": _first_word,
    "detectable_content:number_placeholders": _placeholders,
    "detectable_content:postscript": _postscript,
    "detectable_format:number_bullet_lists": _bullets,
    "detectable_format:constrained_response": lambda k: (
        f"Your answer must contain one of these exact sentences: {_either(CONSTRAINED_OPTIONS)}",
        f"Include, word for word, one of the verdicts {_either(CONSTRAINED_OPTIONS)}"),
    "detectable_format:number_highlighted_sections": _highlights,
    "detectable_format:multiple_sections": _sections,
    "detectable_format:json_format": lambda k: (
        "Return your entire answer as valid JSON; a ```json code fence around it is allowed.",
        "Format the whole response as one JSON value (you may wrap it in markdown code fences)."),
    "detectable_format:title": lambda k: ("Give your answer a title in double angle brackets, such as <<Notes "
                                          "From the Field>>.",
                                          "Include a title wrapped in double angle brackets, like "
                                          "<<A Plan in Three Steps>>."),
    "combination:two_responses": lambda k: (
        "Write two different answers and separate them with six asterisks (******); use ****** nowhere else.",
        "Give two distinct versions of your answer, divided by a line of six asterisks: ******."),
    "combination:repeat_prompt": lambda k: (
        "Before answering, repeat the request above word for word (everything before this sentence), then "
        "give your answer.",
        "Begin by copying the request above exactly as written, up to this sentence, and only then answer it."),
    "startend:end_checker": _end,
    "change_case:capital_word_frequency": _capital_words,
    "change_case:english_capital": lambda k: ("Write your whole answer in English, using capital letters only.",
                                              "Respond in English and in ALL CAPS throughout."),
    "change_case:english_lowercase": lambda k: (
        "Write your entire answer in English and in lowercase only; no capital letters at all.",
        "Respond in English using only lowercase letters."),
    "punctuation:no_comma": lambda k: ("Do not use a single comma in your answer.", "Avoid commas entirely."),
    "startend:quotation": lambda k: ('Wrap your whole answer in double quotation marks: begin with " and end '
                                     'with ".',
                                     "Put the entire response inside one pair of double quotation marks."),
}


def _inverse_fewer(noun_many: str, noun_one: str, n: int, how: str) -> tuple[str, ...]:
    if n <= 1:
        return (f"Do not use any {noun_one} {how}.",)
    return (f"Use fewer than {n} {noun_many} {how}.",)


# Typed inverses: the text of "not the original", for kinds whose opposite no checker expresses.
INVERSE: dict[str, Phrasings] = {
    "language:response_language": lambda k: (
        f"Do not write your answer in {language_names()[k['language']]}.",),
    "length_constraints:nth_paragraph_first_word": lambda k: (
        f"Do not write exactly {k['num_paragraphs']} blank-line-separated paragraphs with paragraph "
        f"{k['nth_paragraph']} starting with the word \"{k['first_word']}\".",),
    "detectable_content:number_placeholders": lambda k: _inverse_fewer(
        "placeholders", "placeholders", k["num_placeholders"], "in square brackets (such as [name])"),
    "detectable_content:postscript": lambda k: (
        f"Do not add a postscript: {k['postscript_marker']} must not appear anywhere in your answer.",),
    "detectable_format:constrained_response": lambda k: (
        f"Do not use any of the sentences {_either(CONSTRAINED_OPTIONS)}",),
    "detectable_format:number_highlighted_sections": lambda k: _inverse_fewer(
        "highlighted phrases", "highlighting", k["num_highlights"], "with asterisks (no *text* or **text**)"),
    "detectable_format:multiple_sections": lambda k: (
        f"Do not split your answer into {k['num_sections']} or more sections headed \"{k['section_spliter']} 1\", "
        f"\"{k['section_spliter']} 2\" and so on.",),
    "detectable_format:json_format": lambda k: ("Answer in plain prose, not in JSON.",),
    "detectable_format:title": lambda k: ("Do not give your answer a title in double angle brackets (<< >>).",),
    "combination:two_responses": lambda k: ("Give a single answer; do not split it into two responses "
                                            "separated by ******.",),
    "combination:repeat_prompt": lambda k: ("Do not begin by restating the request; start directly with your "
                                            "answer.",),
    "startend:end_checker": lambda k: (f'Do not end your answer with the phrase "{k["end_phrase"]}".',),
    "punctuation:no_comma": lambda k: ("Use at least one comma in your answer.",),
    "startend:quotation": lambda k: ("Do not wrap your whole answer in double quotation marks.",),
}


def describe(instruction_id: str, kwargs: dict, negated: bool, rng: random.Random) -> str:
    table = INVERSE if negated else POSITIVE
    return rng.choice(table[instruction_id](kwargs))
