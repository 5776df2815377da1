"""mmtrans.language reads langdetect's random draws from a stream drawn ahead: the same words,
the same choices, the same Gaussian values, so the same answers as langdetect to the last bit,
also on the texts its cleaning changes and on trials longer than the n-grams drawn ahead."""

from __future__ import annotations

import random

import pytest
from langdetect import DetectorFactory
from langdetect import detect_langs as langdetect_langs

from mmtrans import language

from .conftest import language_answers as answers


def test_the_stream_holds_the_words_random_gives_and_grows_on_them():
    stream = language._Stream(7)
    stream.grow(10_000)  # past the words drawn at first
    expected = random.Random(7)
    assert stream.words.tolist() == [expected.getrandbits(32) for _ in range(10_000)]


def test_the_streams_uniform_and_gauss_values_are_randoms_own():
    stream, expected = language._Stream(0), random.Random(0)
    pos = 0
    for _ in range(200):
        first, second = stream.gauss_pair(pos)
        assert (first, second) == (expected.gauss(0.0, 1.0), expected.gauss(0.0, 1.0))
        pos += 4
        assert stream.uniform(pos) == expected.random()
        pos += 2


@pytest.mark.parametrize("count", [1, 2, 3, 5, 64, 100, 1000, 4097])
def test_choices_are_what_random_choice_draws_between_gauss_calls(count):
    """langdetect's order: a Gaussian value (4 words every second trial), then choices."""
    stream, expected = language._Stream(0), random.Random(0)
    items = list(range(count))
    choices = stream.choices(count)
    pos, cached = 0, None
    for trial in range(40):
        expected.gauss(0.0, 1.0)
        if cached is None:
            _, cached = stream.gauss_pair(pos)
            pos += 4
        else:
            cached = None
        n = 1 + 37 * trial % 300  # some trials longer than the first scan
        picks, ends = choices.take(pos, n)
        assert picks.tolist() == [expected.choice(items) for _ in range(n)]
        pos = int(ends[-1])


EDGE_TEXTS = [
    "Visit https://example.com/a?b=c&d=e or write to someone@example.org about it today.",
    "  Leading spaces,   runs of   spaces,\tand a tab in an English sentence of some length.",
    "Tiếng Việt có dấu: Việt Nam là một quốc gia ở Đông Nam Á, thủ đô là Hà Nội.",
    # Vietnamese with combining marks, which langdetect composes first.
    "Tie\u0302\u0301ng Vie\u0323\u0302t vie\u0302\u0301t ba\u0306\u0300ng"
    " da\u0302\u0301u to\u0302\u0309 ho\u031b\u0323p.",
    "東京都に本社を置くIBM Japanは、System/360の後継機を1970年に発表した。",
    "北京是中华人民共和国的首都 and a few English words in it",
    "Ein deutscher Satz, der etwas länger ist, damit langdetect genug zu lesen hat.",
    "x",
    "1234 5678 !!!",
    "A" * 30,
    # Few Latin letters among many of another script: langdetect drops the Latin ones.
    "東京都に本社を置く会社が新しい計算機を千九百七十年に発表したと新聞は伝えた。IBMの話",
    # Past langdetect's 10,000 characters: it reads the first 10 letters of the sentence.
    " " * 9_990 + "Ein deutscher Satz über Zahlen, an English sentence after it",
]


@pytest.mark.parametrize("drawn_ahead", [6, 11, language._DRAWN_AHEAD])
def test_answers_are_langdetects_on_cleaned_texts_and_long_trials(monkeypatch, drawn_ahead):
    """With fewer n-grams drawn ahead than a trial uses, the trial goes on from the stream
    where its last n-gram was read."""
    DetectorFactory.seed = 0
    monkeypatch.setattr(language, "_DRAWN_AHEAD", drawn_ahead)
    # Two languages half and half: trials that take long to settle.
    mixed = [f"{a} {b}" for a in EDGE_TEXTS[:7] for b in EDGE_TEXTS[:7] if a != b]
    texts = EDGE_TEXTS + mixed
    assert answers(language.detect_langs, texts) == answers(langdetect_langs, texts)


def test_a_changed_seed_is_followed():
    DetectorFactory.seed = 3
    try:
        texts = EDGE_TEXTS[:7]
        assert answers(language.detect_langs, texts) == answers(langdetect_langs, texts)
    finally:
        DetectorFactory.seed = 0
