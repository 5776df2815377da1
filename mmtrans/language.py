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

from functools import lru_cache

import numpy as np
from langdetect import detector_factory
from langdetect.detector import Detector
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.language import Language
from langdetect.utils.ngram import NGram


def _factory() -> detector_factory.DetectorFactory:
    detector_factory.init_factory()
    return detector_factory._factory


@lru_cache(maxsize=4096)
def _normalized(ch: str) -> str:
    return NGram.normalize(ch)


def _ngrams(text: str, known: dict[str, list[float]]) -> list[str]:
    """Detector._extract_ngrams, with NGram.add_char inlined."""
    result: list[str] = []
    grams, capitalword = " ", False
    for ch in text:
        ch = _normalized(ch)
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


def detect_langs(text: str) -> list[Language]:
    """What `langdetect.detect_langs(text)` returns, under the same `DetectorFactory.seed`."""
    factory = _factory()
    detector = factory.create()
    detector.append(text)
    detector.cleaning_text()
    known = factory.word_lang_prob_map
    ngrams = _ngrams(detector.text, known)
    if not ngrams:
        raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
    languages = len(detector.langlist)
    langprob = np.zeros(languages)
    random = detector.random
    random.seed(detector.seed)
    trials = detector.n_trial
    for _ in range(trials):
        prob = np.full(languages, 1.0 / languages)
        alpha = detector.alpha + random.gauss(0.0, 1.0) * Detector.ALPHA_WIDTH
        weight = alpha / Detector.BASE_FREQ
        i = 0
        while True:
            prob *= weight + _vector(random.choice(ngrams), known)
            if i % 5 == 0:
                prob /= sum(prob.tolist())
                if prob.max() > Detector.CONV_THRESHOLD or i >= Detector.ITERATION_LIMIT:
                    break
            i += 1
        langprob += prob / trials
    return detector._sort_probability(langprob.tolist())


_VECTORS: dict[str, np.ndarray] = {}


def _vector(word: str, known: dict[str, list[float]]) -> np.ndarray:
    """An n-gram's probabilities in every language, as an array (made once per n-gram)."""
    vector = _VECTORS.get(word)
    if vector is None:
        vector = _VECTORS[word] = np.array(known[word], dtype=np.float64)
    return vector
