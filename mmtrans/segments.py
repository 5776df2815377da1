"""Sentences and clauses of a text, with their character ranges, for the fidelity check.

Rules, not a model: sentence ends (。！？ and .!? before a capital in spaced languages, not
after an abbreviation or an initial), then clause marks (、，；： and , ; :). A mark inside an
annotated string ("San Diego, California", "Co., Ltd.") or between digits (1,000) never
splits, and a piece too short to carry content of its own joins its neighbour.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import regex

from .scripts import is_spaced

#: Where a sentence ends: after its closing mark and any closing quote or bracket.
CJK_SENTENCE_END = regex.compile(r"[。！？!?]+[」』”’）)]*")
SPACED_SENTENCE_END = regex.compile(r"[.!?]+[\"”’)\]]*(?=\s+[\"“(\[]?[\p{Lu}\p{N}])")
CJK_CLAUSE_MARK = regex.compile(r"[、，,；;：:…]+")
SPACED_CLAUSE_MARK = regex.compile(r"(?:[,;:]|\.\.\.|…|\s[-–—]\s)(?=\s)")
#: A word before a full stop that does not end a sentence.
ABBREVIATION = regex.compile(
    r"(?:\b\p{Lu}|\b(?:Mr|Mrs|Ms|Dr|Prof|St|Co|Corp|Inc|Ltd|Jr|Sr|vs|etc|No|Vol|Fig|"
    r"e\.g|i\.e|U\.S|Ph\.D|approx))\.$")
#: Fewer content characters than this (letters and digits; a CJK character counts as two):
#: the piece joins a neighbour.
MIN_CLAUSE_WEIGHT = 8


@dataclass(frozen=True)
class Segment:
    """A clause of a text: its range, its sentence's index (from 0) and its words."""

    start: int
    end: int
    sentence: int
    text: str


def _weight(text: str) -> int:
    return sum(2 if ord(c) > 0x2E80 else 1 for c in text if c.isalnum())


def _protected(text: str, keep: Iterable[str]) -> list[tuple[int, int]]:
    spans = []
    for s in keep:
        if not s:
            continue
        i = text.find(s)
        while i >= 0:
            spans.append((i, i + len(s)))
            i = text.find(s, i + 1)
    return spans


def _inside(pos: int, spans: list[tuple[int, int]]) -> bool:
    return any(a < pos < b for a, b in spans)


def _cuts(text: str, pattern: regex.Pattern[str], spans: list[tuple[int, int]],
          spaced_sentences: bool = False) -> list[int]:
    cuts = []
    for m in pattern.finditer(text):
        end = m.end()
        if _inside(m.start(), spans) or _inside(end, spans):
            continue
        if m.start() > 0 and text[m.start() - 1].isdigit() and end < len(text) \
                and text[end:end + 1].isdigit():
            continue  # 1,000 and 3.5 are one number
        if spaced_sentences and m.group().startswith(".") and ABBREVIATION.search(
                text[max(0, m.start() - 8):m.start() + 1]):
            continue
        cuts.append(end)
    return cuts


def _pieces(text: str, start: int, end: int, cuts: list[int]) -> list[tuple[int, int]]:
    bounds = [start, *[c for c in cuts if start < c < end], end]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if text[a:b].strip()]


def _merge_short(text: str, pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Pieces too light to stand alone join the next piece (the last joins the one before)."""
    out: list[tuple[int, int]] = []
    carry: int | None = None
    for a, b in pieces:
        a = carry if carry is not None else a
        carry = None
        if _weight(text[a:b]) < MIN_CLAUSE_WEIGHT:
            carry = a
            continue
        out.append((a, b))
    if carry is not None:
        if out:
            out[-1] = (out[-1][0], pieces[-1][1])
        else:
            out.append((carry, pieces[-1][1]))
    return out


def _stripped(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def sentences(text: str, lang: str, keep: Iterable[str] = ()) -> list[tuple[int, int]]:
    """The character ranges of the sentences of `text`."""
    spans = _protected(text, keep)
    spaced = is_spaced(lang)
    pattern = SPACED_SENTENCE_END if spaced else CJK_SENTENCE_END
    if spaced:
        # A CJK sentence mark inside an English text still ends a sentence (and vice versa).
        cuts = sorted({*_cuts(text, pattern, spans, True), *_cuts(text, CJK_SENTENCE_END, spans)})
    else:
        cuts = sorted({*_cuts(text, pattern, spans), *_cuts(text, SPACED_SENTENCE_END, spans,
                                                            True)})
    found = [_stripped(text, a, b) for a, b in _merge_short(text, _pieces(text, 0, len(text),
                                                                           cuts))]
    return found or [(0, len(text))]


def segments(text: str, lang: str, keep: Iterable[str] = ()) -> list[Segment]:
    """The clauses of `text`, sentence by sentence, never cutting a string of `keep`."""
    keep = list(keep)
    spans = _protected(text, keep)
    pattern = SPACED_CLAUSE_MARK if is_spaced(lang) else CJK_CLAUSE_MARK
    cuts = _cuts(text, pattern, spans)
    out = []
    for k, (a, b) in enumerate(sentences(text, lang, keep)):
        for ca, cb in _merge_short(text, _pieces(text, a, b, cuts)):
            ca, cb = _stripped(text, ca, cb)
            out.append(Segment(ca, cb, k, text[ca:cb]))
    return out


__all__ = ["Segment", "segments", "sentences"]
