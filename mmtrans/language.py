"""langdetect's `detect_langs`, giving the same answers several times faster.

The `language` check runs langdetect on every record translated into a language not told apart
by its script, and langdetect was the client's largest cost per record: about 6 ms for an
English sentence, most of it in a Python loop over its 55 languages for each of the up to
7 x 1,000 n-grams it draws. This is the same algorithm on the same profiles, seed and random
draws, with each step over the 55 languages one numpy operation instead of a Python loop, and
each character's normalisation looked up once. Every multiplication, addition and division
is the same IEEE operation element by element, and the one sum is Python's own `sum` over
the same floats in the same order, so the probabilities are the same to the last bit
(tests/test_client_cost.py compares both on real data, tests/test_language.py on the texts
langdetect's cleaning changes). langdetect seeds its generator afresh for every text, so its
draws are read from one stream of the generator's words drawn once per process, each trial's
n-grams drawn ahead and multiplied in with one operation for the five between two
normalisations.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
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
        #: langdetect's settings and its sorting of the answer (its seed is read per text).
        self._detector = self.factory.create()
        self._positions: dict[str, list[int]] = {}
        self.index: dict[str, int] = {}
        self.table = np.zeros((0, len(self.langlist)))

    def detector(self) -> Detector:
        """A detector as `DetectorFactory.create()` makes it now (the seed may change)."""
        self._detector.seed = self.factory.seed
        return self._detector

    def positions(self, language: str) -> list[int]:
        """Where the profiles of `language` (by the part of their code before any "-") are
        in `langlist`."""
        found = self._positions.get(language)
        if found is None:
            found = self._positions[language] = [
                i for i, name in enumerate(self.langlist) if name.split("-")[0] == language]
        return found

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
#: The table rows of the n-grams of each word met so far (with its ending space, if any).
_WORD_ROWS: dict[str, list[int]] = {}
_WORDS_KEPT = 5_000  # about 1 MB at most (200 bytes a word); cleared when full


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


def _ngram_rows(text: str, profiles: _Profiles) -> list[int]:
    """The table row of each n-gram Detector._extract_ngrams finds in `text`, in order. Its
    state starts afresh after every space, so a text's n-grams are those of its words in
    turn, each scanned with the space that ends it (the last word may have none): scanned
    once per word, not once per text, and looked up in the table once per word."""
    words = text.translate(_NORMALISED).split(" ")
    last = len(words) - 1
    result: list[int] = []
    for n, word in enumerate(words):
        if not word:
            continue
        if n < last:
            word += " "
        found = _WORD_ROWS.get(word)
        if found is None:
            if len(_WORD_ROWS) >= _WORDS_KEPT:
                _WORD_ROWS.clear()
            found = _WORD_ROWS[word] = profiles.rows(_scan(word, profiles.known))
        result += found
    return result


_LATIN = re.compile("[A-z]")  # langdetect's 'A' <= ch <= 'z', brackets and all
_NOT_LATIN = re.compile("[\u0300-\U0010ffff]")


def _cleaned(text: str, max_length: int) -> str:
    """Detector.append(text) then Detector.cleaning_text(), as one fresh detector's text
    after them: URLs and mail addresses blanked, Vietnamese normalised, cut at `max_length`
    (the detector's max_text_length; append also makes runs of spaces one, after the cut:
    a space after a space makes no n-gram, so that is left out here); and, where letters of
    other scripts are more than twice the Latin ones, the Latin letters removed. (langdetect
    means to count only letters at or above U+0300 outside Latin Extended Additional, but it
    compares a block number with a block name, so it counts every one.)"""
    text = Detector.MAIL_RE.sub(" ", Detector.URL_RE.sub(" ", text))
    text = NGram.normalize_vi(text)[:max_length]
    if not text.isascii() and len(_LATIN.findall(text)) * 2 < len(_NOT_LATIN.findall(text)):
        text = _LATIN.sub("", text)
    return text


_COUNTS_KEPT = 512  # choices kept for this many n-gram counts: about 6 MB at most
_TWO_TO_53 = 1.0 / 9007199254740992.0


class _Stream:
    """The 32-bit words `random.Random(seed)` gives in turn, drawn ahead once per process
    (and grown by doubling when a text needs more): langdetect seeds its generator afresh
    for every text, so every text's trials read the same words, and reading them from a
    list replaces a Python call per draw by a slice. `random.getrandbits(k)` for k <= 32 is
    the next word's top k bits, `random.random()` two words' bits as CPython makes them,
    and `gauss` the formula of the random module, cached second value and all."""

    def __init__(self, seed: int | None) -> None:
        self.generator = random.Random(seed)
        self.words = np.zeros(0, dtype=np.uint32)
        #: Held while the stream grows or a choice is scanned (the review app checks in
        #: threads).
        self.lock = threading.Lock()
        self.grow(4096)
        self._choices: dict[int, _Choices] = {}

    def choices(self, count: int) -> _Choices:
        """The choices from `count` n-grams, kept for the texts to come with as many (the
        same draws: the stream is the same for every text)."""
        found = self._choices.get(count)
        if found is None:
            with self.lock:
                if len(self._choices) >= _COUNTS_KEPT:
                    self._choices.clear()
                found = self._choices.setdefault(count, _Choices(self, count))
        return found

    def grow(self, size: int) -> None:
        """Draw words until there are `size` (under `lock`, or before the stream is shared)."""
        more = size - len(self.words)
        if more > 0:
            drawn = self.generator.getrandbits(32 * more).to_bytes(4 * more, "little")
            self.words = np.concatenate([self.words, np.frombuffer(drawn, dtype="<u4")])

    def uniform(self, pos: int) -> float:
        """random.random() from the words at `pos` and `pos + 1`."""
        a, b = int(self.words[pos]) >> 5, int(self.words[pos + 1]) >> 6
        return (a * 67108864.0 + b) * _TWO_TO_53

    def gauss_pair(self, pos: int) -> tuple[float, float]:
        """What two calls of random.gauss(0.0, 1.0) return when the first finds no cached
        value, from the 4 words at `pos` (the second call reads none)."""
        if pos + 4 > len(self.words):
            with self.lock:
                self.grow(2 * (pos + 4))
        x2pi = self.uniform(pos) * math.tau
        g2rad = math.sqrt(-2.0 * math.log(1.0 - self.uniform(pos + 2)))
        return 0.0 + math.cos(x2pi) * g2rad * 1.0, 0.0 + math.sin(x2pi) * g2rad * 1.0


class _Choices:
    """What `random.choice` of a list of `count` items gives, word by word of a stream:
    `_randbelow` takes a word's top `count.bit_length()` bits, and again with the next word
    while they are `count` or more. Found for the first words at once, more when asked."""

    def __init__(self, stream: _Stream, count: int) -> None:
        self.stream, self.count = stream, count
        self.shift = np.uint32(32 - count.bit_length())
        self.scanned = 0
        #: The choices found, and the stream position just after the word of each (one
        #: tuple, replaced whole: a thread reading it never sees half of a scan).
        self.found = (np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.intp))

    def take(self, pos: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next `n` choices read from stream position `pos`, and the position after each."""
        values, ends = self.found
        first = int(ends.searchsorted(pos, side="right"))
        while len(ends) < first + n:
            with self.stream.lock:
                if self.found[1] is ends:
                    self._scan(max(512, self.scanned))
            values, ends = self.found
            first = int(ends.searchsorted(pos, side="right"))
        return values[first:first + n], ends[first:first + n]

    def _scan(self, size: int) -> None:
        stream = self.stream
        stream.grow(self.scanned + size)
        top = stream.words[self.scanned:self.scanned + size] >> self.shift
        accepted = np.flatnonzero(top < self.count)
        values, ends = top[accepted], accepted + (self.scanned + 1)
        if self.scanned:
            values = np.concatenate([self.found[0], values])
            ends = np.concatenate([self.found[1], ends])
        self.found = values, ends
        self.scanned += size


_streams: dict[int, _Stream] = {}


def _stream(seed: int | None) -> _Stream:
    """The stream of `seed`, drawn once per process; a new one each time without a seed
    (langdetect then reseeds from the system at every text)."""
    if seed is None:
        return _Stream(None)
    with _lock:
        if seed not in _streams:
            _streams[seed] = _Stream(seed)
        return _streams[seed]


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
    detector = profiles.detector()
    cleaned = _cleaned(text, detector.max_text_length)
    drawn = np.array(_ngram_rows(cleaned, profiles), dtype=np.intp)
    count = len(drawn)
    if not count:
        raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
    languages = len(detector.langlist)
    sought = profiles.positions(sure_of[0]) if sure_of is not None else []
    table = profiles.table
    stream = _stream(detector.seed)
    choices = stream.choices(count)
    langprob = np.zeros(languages)
    trials = detector.n_trial
    pos, cached = 0, None  # the stream's position; random.gauss's cached value
    # buffer[0]: the probabilities so far; then one row per n-gram drawn ahead, each
    # `weight + its probabilities` (langdetect's factor), multiplied into the row before.
    buffer = np.empty((1 + _DRAWN_AHEAD, languages))
    for _ in range(trials):
        if cached is None:
            gauss, cached = stream.gauss_pair(pos)
            pos += 4
        else:
            gauss, cached = cached, None
        alpha = detector.alpha + gauss * Detector.ALPHA_WIDTH
        weight = alpha / Detector.BASE_FREQ
        # langdetect multiplies in one n-gram at a time and normalises after the first and
        # then after every fifth, stopping once one language passes CONV_THRESHOLD or
        # ITERATION_LIMIT n-grams are drawn: the same, five at a time. The five products
        # are one product along the rows (a reduction along a strided axis multiplies row by
        # row, in order: the same multiplications in the same order), and the
        # largest probability is the largest before the division divided (division by a
        # positive number keeps the order, rounding included). The n-grams a trial will
        # draw do not depend on the probabilities, only where it stops does: they are
        # drawn ahead, and the stream goes on after the last one the trial used.
        buffer[0] = 1.0 / languages
        i, row = 0, 0  # the n-grams drawn; buffer's row of the probabilities so far
        steps = 1  # n-grams to multiply in before the next normalisation
        picks, ends = choices.take(pos, _DRAWN_AHEAD)
        np.add(table[drawn[picks]], weight, out=buffer[1:])
        while True:
            if row + steps > _DRAWN_AHEAD:  # the n-grams drawn ahead are used up
                buffer[0] = buffer[row]
                pos = int(ends[row - 1])
                picks, ends = choices.take(pos, _DRAWN_AHEAD)
                np.add(table[drawn[picks]], weight, out=buffer[1:])
                row = 0
            np.multiply.reduce(buffer[row:row + steps + 1], axis=0, out=buffer[row + steps])
            row += steps
            i += steps
            prob = buffer[row]
            values = prob.tolist()
            total = sum(values)
            prob /= total
            if max(values) / total > Detector.CONV_THRESHOLD or i > Detector.ITERATION_LIMIT:
                break
            steps = _BETWEEN_CHECKS
        pos = int(ends[row - 1])
        langprob += prob / trials
        if sought and max(langprob[i] for i in sought) >= sure_of[1]:  # type: ignore[index]
            return None
    return detector._sort_probability(langprob.tolist())


_DRAWN_AHEAD = 1 + 5 * 8  # a trial of English text stops after about 26 n-grams
_BETWEEN_CHECKS = 5  # n-grams drawn between two normalisations, as in langdetect

