"""langdetect's `detect_langs`, giving the same answers several times faster.

The `language` check runs langdetect on every record translated into a language not told apart
by its script, and langdetect was the client's largest cost per record: about 6 ms for an
English sentence, most of it in a Python loop over its 55 languages for each of the up to
7 x 1,000 n-grams it draws. This is the same algorithm on the same profiles, seed and random
draws, with each step over the 55 languages one numpy operation instead of a Python loop, and
each character's normalisation looked up once. Every multiplication, addition and division
is the same IEEE operation element by element, and the one sum is Python's own `sum` over
the same floats in the same order, so the probabilities are the same to the last bit
(tests/test_checks.py compares both on real data).
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np
from langdetect import detector_factory
from langdetect.detector import Detector
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.language import Language
from langdetect.utils.ngram import NGram


class _Profiles:
    """langdetect's 55 language profiles, read as langdetect reads them (same files, same
    order) but kept as they are, one frequency table per language: an n-gram's
    probabilities in every language are worked out when a text first has it (langdetect
    works out all 184,000 at start, 0.3 s to a second of the first answer's time) and
    kept as one row of one array (grown by doubling) for the n-grams met so far."""

    def __init__(self) -> None:
        directory = detector_factory.PROFILES_DIRECTORY
        self.langlist: list[str] = []
        self.freqs: list[dict[str, int]] = []
        self.n_words: list[list[int]] = []
        for filename in os.listdir(directory):
            path = os.path.join(directory, filename)
            if filename.startswith(".") or not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8") as f:
                profile = json.load(f)
            self.langlist.append(profile["name"])
            self.freqs.append(profile["freq"])
            self.n_words.append(profile["n_words"])
        #: Every n-gram of any profile (the n-grams langdetect draws from).
        self.known: dict[str, None] = dict.fromkeys(w for f in self.freqs for w in f)
        self.factory = detector_factory.DetectorFactory()
        self.factory.langlist = self.langlist
        self.factory.word_lang_prob_map = self.known
        self.index: dict[str, int] = {}
        self.table = np.zeros((0, len(self.langlist)))

    def _probabilities(self, word: str) -> list[float]:
        """DetectorFactory.add_profile's probabilities of `word`, language by language."""
        length = len(word)
        if not 1 <= length <= 3:
            return [0.0] * len(self.langlist)
        return [1.0 * freq[word] / n_words[length - 1] if word in freq else 0.0
                for freq, n_words in zip(self.freqs, self.n_words)]

    def rows(self, words: list[str]) -> list[int]:
        """The row of each of `words` in `table`."""
        index = self.index
        new = [w for w in dict.fromkeys(words) if w not in index]
        if new:
            start = len(index)
            if start + len(new) > len(self.table):
                grown = np.zeros((max(1024, 2 * (start + len(new))), len(self.langlist)))
                grown[:start] = self.table[:start]
                self.table = grown
            self.table[start:start + len(new)] = [self._probabilities(w) for w in new]
            for n, w in enumerate(new, start):
                index[w] = n
        return [index[w] for w in words]


_lock = threading.Lock()
_loaded: list[_Profiles] = []


def _profiles() -> _Profiles:
    with _lock:
        if not _loaded:
            _loaded.append(_Profiles())
        return _loaded[0]


class _Normalised(dict[int, str]):
    """NGram.normalize of each character, by code point, worked out when first met: a table
    for `str.translate` (NGram.normalize maps one character to one character)."""

    def __missing__(self, code: int) -> str:
        value = self[code] = NGram.normalize(chr(code))
        return value


_NORMALISED = _Normalised()
#: The n-grams of each word met so far (with its ending space, if it has one).
_WORD_NGRAMS: dict[str, list[str]] = {}
_WORDS_KEPT = 5_000  # about 4 MB at most (800 bytes a word); cleared when full


def _scan(text: str, known: dict[str, None]) -> list[str]:
    """Detector._extract_ngrams over normalised `text`, with NGram.add_char inlined."""
    result: list[str] = []
    grams, capitalword = " ", False
    for ch in text:
        last_char = grams[-1]
        if last_char == " ":
            grams, capitalword = " ", False
            if ch == " ":
                continue
        elif len(grams) >= NGram.N_GRAM:
            grams = grams[1:]
        grams += ch
        if ch.isupper():
            if last_char.isupper():
                capitalword = True
        else:
            capitalword = False
        if capitalword:
            continue
        for n in (1, 2, 3):
            if len(grams) < n:
                break
            w = grams[-n:]
            if w and w != " " and w in known:
                result.append(w)
    return result


def _ngrams(text: str, known: dict[str, None]) -> list[str]:
    """Detector._extract_ngrams. Its state starts afresh after every space, so a text's
    n-grams are those of its words in turn, each scanned with the space that ends it (the
    last word may have none): scanned once per word, not once per text."""
    words = text.translate(_NORMALISED).split(" ")
    last = len(words) - 1
    result: list[str] = []
    for n, word in enumerate(words):
        if not word:
            continue
        if n < last:
            word += " "
        found = _WORD_NGRAMS.get(word)
        if found is None:
            if len(_WORD_NGRAMS) >= _WORDS_KEPT:
                _WORD_NGRAMS.clear()
            found = _WORD_NGRAMS[word] = _scan(word, known)
        result += found
    return result


def detect_langs(text: str) -> list[Language]:
    """What `langdetect.detect_langs(text)` returns, under the same `DetectorFactory.seed`."""
    guesses = guess_languages(text)
    assert guesses is not None  # only a `sure_of` can end the trials early
    return guesses


def guess_languages(text: str, sure_of: tuple[str, float] | None = None
                    ) -> list[Language] | None:
    """`detect_langs(text)`, or None as soon as the trials so far make it certain that
    language `sure_of[0]` (by the part of its code before any "-", as the `language` check
    reads them) will be given at least probability `sure_of[1]`: each trial adds its share
    (a probability over the number of trials, never negative) to the final figures, so once
    the shares added reach the bound the remaining trials cannot take it back. A text in the
    language sought is decided after 3 of langdetect's 7 trials at a bound of 0.3, and a
    text that is not is given the same answer as `detect_langs`."""
    profiles = _profiles()
    detector = profiles.factory.create()
    detector.append(text)
    detector.cleaning_text()
    ngrams = _ngrams(detector.text, profiles.known)
    if not ngrams:
        raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
    languages = len(detector.langlist)
    sought = [i for i, name in enumerate(detector.langlist)
              if sure_of is not None and name.split("-")[0] == sure_of[0]]
    drawn = profiles.rows(ngrams)
    table = profiles.table
    langprob = np.zeros(languages)
    random = detector.random
    random.seed(detector.seed)
    below, count = random._randbelow, len(ngrams)  # what random.choice(ngrams) draws
    trials = detector.n_trial
    block = np.empty((_BETWEEN_CHECKS + 1, languages))
    for _ in range(trials):
        prob = np.full(languages, 1.0 / languages)
        alpha = detector.alpha + random.gauss(0.0, 1.0) * Detector.ALPHA_WIDTH
        weight = alpha / Detector.BASE_FREQ
        # langdetect multiplies in one n-gram at a time and normalises after the first and
        # then after every fifth, stopping once one language passes CONV_THRESHOLD or
        # ITERATION_LIMIT n-grams are drawn: the same, five at a time. The five products
        # are one running product (the same multiplications in the same order), and the
        # largest probability is the largest before the division divided (division by a
        # positive number keeps the order, rounding included).
        prob *= weight + table[drawn[below(count)]]
        i = 0
        while True:
            values = prob.tolist()
            total = sum(values)
            prob /= total
            if max(values) / total > Detector.CONV_THRESHOLD or i >= Detector.ITERATION_LIMIT:
                break
            block[0] = prob
            np.add(table[[drawn[below(count)] for _ in range(_BETWEEN_CHECKS)]], weight,
                   out=block[1:])
            np.multiply.accumulate(block, axis=0, out=block)
            prob = block[-1].copy()
            i += _BETWEEN_CHECKS
        langprob += prob / trials
        if sought and max(langprob[i] for i in sought) >= sure_of[1]:  # type: ignore[index]
            return None
    return detector._sort_probability(langprob.tolist())


_BETWEEN_CHECKS = 5  # n-grams drawn between two normalisations, as in langdetect

