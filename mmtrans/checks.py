"""Checks on a translated record: each a pure function returning a list of Problems.

`run_checks` runs them all on the model's parsed output against the expected record (the
source with its labels already translated) and returns the record, repaired where a
normalised match allowed it, with its problems and notes.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any

import regex
from langdetect import DetectorFactory, LangDetectException

from .language import guess_languages
from .numerals import numbers_in as numbers_in  # the scripted server keeps these
from .numerals import source_numbers, stated_values
from .records import Record, locate_mentions, map_anchored
from .scripts import (
    ENGLISH_RUN,
    HAN,
    KANA,
    LATIN_RUN,
    LETTER,
    is_spaced,
    language_name,
    simplified_only_hanzi,
    source_residue,
)

CODES = ("format", "count_mismatch", "label_changed", "residual_source", "anchored", "language",
         "numbers", "fidelity")
#: Fewer letters than this left after removing anchored strings: the language check abstains.
MIN_LETTERS_FOR_LANGDETECT = 20
#: The language check passes a text whose target language langdetect puts on top or gives
#: at least this probability.
TGT_PROBABILITY = 0.3

DetectorFactory.seed = 0  # langdetect is random unless seeded


@dataclass
class Problem:
    code: str
    message: str
    where: str = ""
    #: The part a reviewer should look at, when a check knows it (fidelity):
    #: {"side": "target" | "source", "start": int, "end": int}, in characters of that text.
    span: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"code": self.code, "message": self.message, "where": self.where}
        if self.span is not None:
            d["span"] = self.span
        return d


@dataclass
class CheckResult:
    record: Record
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# -- structure ---------------------------------------------------------------------------

def _sizes(record: Record) -> dict[str, int]:
    """The length of every list in the record that holds annotations, by where it lies."""
    sizes = {name: len(getattr(record, name)) for name in ("mentions", "relations", "events")}
    for i, e in enumerate(record.events):
        sizes[f"events[{i}].arguments"] = len(e.arguments)
    return sizes


def _mismatched(expected: Record, target: Record) -> list[str]:
    """The lists whose length differs (an event's arguments only where the events match)."""
    want, got = _sizes(expected), _sizes(target)
    return [where for where in want if where in got and want[where] != got[where]]


def check_counts(expected: Record, target: Record) -> list[Problem]:
    """Same number of mentions, relations and events, and of arguments in each event."""
    want, got = _sizes(expected), _sizes(target)
    problems = []
    for where in _mismatched(expected, target):
        what = "arguments" if where.endswith("arguments") else where
        problems.append(Problem("count_mismatch",
                                f"expected {want[where]} {what}, got {got[where]}", where))
    return problems


def check_labels(expected: Record, target: Record) -> list[Problem]:
    """Labels are translated by the tables, never by the model: any change is a defect.
    Labels inside a list whose length changed are left to `count_mismatch`."""
    skip = tuple(f"{where}[" for where in _mismatched(expected, target))
    got = dict(target.labels())
    return [
        Problem("label_changed", f"label {w!r} came back as {got[where]!r}", where)
        for where, w in expected.labels()
        if where in got and not where.startswith(skip) and got[where] != w
    ]


# -- numbers -----------------------------------------------------------------------------

def check_numbers(expected: Record, target: Record, tgt: str | None = None) -> list[Problem]:
    """Every number of two or more digits in the source (years, counts, model numbers)
    occurs in the translation, as that number (2019 is not in 20190), whatever its digit
    width or thousands separator; in the target language `tgt`, also as a numeral in words
    (twenty-five, 二十五, 二〇一五), a month by name (12月: December) or, for a Japanese era
    year, its Gregorian year (平成27年: 2015). See `numerals`."""
    wanted = source_numbers(expected.text)
    if not wanted:
        return []
    digits = set(numbers_in(target.text))
    if all(n in digits for n, _ in wanted):
        return []  # the common case, without reading words and names
    have = stated_values(target.text, tgt)
    missing = list(dict.fromkeys(n for n, ways in wanted if not ways & have))
    if not missing:
        return []
    return [Problem("numbers", f"number(s) of the source missing in the translation: "
                               f"{', '.join(missing)}", "text")]


# -- scripts and language ----------------------------------------------------------------

def check_residual_source(target: Record, src: str, tgt: str) -> list[Problem]:
    """Source script left in the translation. From English into Chinese or Japanese, runs of
    three or more lower-case English words outside the annotated strings (a conservative
    test: names and codes such as IBM or System/360 are never flagged)."""
    problems = []
    if src == "en" and tgt in ("zh", "ja"):
        runs = ENGLISH_RUN.findall(_without_anchored(target))
        if runs:
            problems.append(Problem("residual_source", f"untranslated English remains: "
                                    f"{'; '.join(runs)[:80]!r}", "text"))
    pattern = source_residue(src, tgt)
    if pattern is None:
        return problems
    for where, s in [("text", target.text), *target.anchored()]:
        found = pattern.findall(s)
        if found and (where == "text" or s not in target.text):
            chars = "".join(dict.fromkeys(found))
            problems.append(Problem(
                "residual_source",
                f"{len(found)} character(s) of the {language_name(src)} source remain: "
                f"{chars[:30]}",
                where,
            ))
    return problems


def _without_anchored(record: Record) -> str:
    text = record.text
    for _, s in sorted(record.anchored(), key=lambda x: -len(x[1])):
        if s:
            text = text.replace(s, " ")
    return text


def check_language(target: Record, tgt: str) -> list[Problem]:
    """Is the text in `tgt`? Judged without the anchored strings (names stay in Latin script
    in any language); by script for Chinese and Japanese, by langdetect otherwise."""
    rest = _without_anchored(target)
    if tgt in ("zh", "ja"):
        # Latin runs are names and codes (IBM, System/360) in any CJK sentence: judge the rest,
        # unless nothing else is there and the Latin is a sentence of its own.
        all_letters = len(LETTER.findall(rest))
        letters = LETTER.findall(LATIN_RUN.sub(" ", rest))
        han = sum(1 for c in letters if HAN.match(c))
        kana = sum(1 for c in letters if KANA.match(c))
        if not letters:
            ok = all_letters < MIN_LETTERS_FOR_LANGDETECT  # a few Latin letters: a name
        elif tgt == "zh":
            ok = han / len(letters) >= 0.6 and kana == 0
        else:
            # Japanese written only in kanji is still Japanese (見出し, 法令名); Chinese shows
            # itself by characters that Japanese does not have.
            simplified = sum(1 for c in letters if c in simplified_only_hanzi())
            ok = (han + kana) / len(letters) >= 0.6 and (kana > 0 or simplified == 0)
        if ok:
            return []
        return [Problem("language", f"text is not {language_name(tgt)}: {han} Han and {kana} "
                                    f"kana among {len(letters)} non-Latin letters", "text")]
    if len(LETTER.findall(rest)) < MIN_LETTERS_FOR_LANGDETECT:
        return []
    try:
        # None: `tgt` is sure to reach TGT_PROBABILITY before langdetect's trials are all done.
        guesses = guess_languages(rest, sure_of=(tgt, TGT_PROBABILITY))
    except LangDetectException:
        return []
    if guesses is None:
        return []
    top = guesses[0]
    probability = next((g.prob for g in guesses if g.lang.split("-")[0] == tgt), 0.0)
    if top.lang.split("-")[0] == tgt or probability >= TGT_PROBABILITY:
        return []
    return [Problem("language", f"text looks like {top.lang} ({top.prob:.2f}), "
                                f"not {language_name(tgt)}", "text")]


# -- anchored strings --------------------------------------------------------------------

def _normalise_with_map(text: str) -> tuple[str, list[int]]:
    """NFKC and whitespace-collapsed `text`, and for each of its characters the index of the
    original character it came from."""
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        for n in unicodedata.normalize("NFKC", ch):
            if n.isspace():
                if not out or out[-1] == " ":
                    continue
                n = " "
            out.append(n)
            origin.append(i)
    return "".join(out), origin


def normalise(s: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", s).split())


_WORD_CHAR = regex.compile(r"[\p{L}\p{N}]")


def _search(haystack: str, needle: str, spaced: bool) -> tuple[int, int] | None:
    """The first occurrence of `needle`; where words are spaced, the first not glued to a
    letter or digit on either side. (str.find and one compiled class, not a pattern compiled
    per string: this runs for every anchored string of every record.)"""
    i = haystack.find(needle)
    while spaced and i >= 0:
        end = i + len(needle)
        if not ((i > 0 and _WORD_CHAR.match(haystack[i - 1]))
                or (end < len(haystack) and _WORD_CHAR.match(haystack[end]))):
            break
        i = haystack.find(needle, i + 1)
    return (i, i + len(needle)) if i >= 0 else None


def find_anchor(text: str, s: str, spaced: bool) -> tuple[str | None, bool]:
    """(the spelling of `s` in `text`, exact?) or (None, False) when it does not occur."""
    if not s.strip():
        return None, False
    if _search(text, s, spaced):
        return s, True
    norm, origin = _normalise_with_map(text)
    span = _search(norm, normalise(s), spaced)
    if span is None:
        return None, False
    start, end = origin[span[0]], origin[span[1] - 1] + 1
    return text[start:end], False


def check_anchored(target: Record, tgt: str) -> CheckResult:
    """Every anchored string must occur in the text (at word boundaries where words are
    spaced). A string found only after NFKC and whitespace normalisation is replaced by the
    text's own spelling and noted, not flagged."""
    spaced = is_spaced(tgt)
    problems: list[Problem] = []
    notes: list[str] = []

    def repair(where: str, s: str) -> str:
        found, exact = find_anchor(target.text, s, spaced)
        if found is None:
            problems.append(Problem("anchored", f"{s!r} does not occur in the translated text",
                                    where))
            return s
        if not exact:
            notes.append(f"{where}: {s!r} matched {found!r} after normalisation; repaired")
        return found

    repaired = map_anchored(target, repair)
    return CheckResult(locate_mentions(repaired, spaced), problems, notes)


# -- all together ------------------------------------------------------------------------

def run_checks(expected: Record, target: Record, src: str, tgt: str) -> CheckResult:
    """All checks but `format` (which belongs to parsing the model's reply)."""
    anchored = check_anchored(target, tgt)
    record = anchored.record
    problems = [
        *check_counts(expected, record),
        *check_labels(expected, record),
        *check_residual_source(record, src, tgt),
        *anchored.problems,
        *check_language(record, tgt),
        *check_numbers(expected, record, tgt),
    ]
    return CheckResult(replace(record, id=expected.id), problems, anchored.notes)
