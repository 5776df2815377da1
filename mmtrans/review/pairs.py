"""Which translated mention renders which source mention, when the model dropped or added one.

The model answers the annotated strings in the order it was given them, with labels that the
tables fixed before it saw them. So the source mentions and the translated ones are aligned as
two sequences: a pair needs the same label, order is kept, and among alignments pairing as
many as possible the one whose strings sit at the same relative place in their texts (and
share characters: names, digits, kanji) wins. With equal counts and labels this is pairing by
position; with one missing, the missing one shows as missing instead of shifting every colour
after it onto the wrong string.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..records import Mention


@dataclass
class Pair:
    source: int | None  # index among the source's mentions; None: added by the translation
    target: int | None  # index among the translation's mentions; None: missing

    def to_dict(self) -> dict[str, int | None]:
        return {"source": self.source, "target": self.target}


def _place(m: Mention, text: str) -> float | None:
    return m.start / max(len(text), 1) if m.start is not None else None


def _likeness(a: Mention, a_text: str, b: Mention, b_text: str) -> float:
    """In [0, 1]: how alike two mentions of the same label are (place in text, characters)."""
    pa, pb = _place(a, a_text), _place(b, b_text)
    place = 1 - abs(pa - pb) if pa is not None and pb is not None else 0.5
    sa, sb = set(a.text), set(b.text)
    chars = len(sa & sb) / len(sa | sb) if sa | sb else 0.0
    return (place + chars) / 2


def pair_mentions(source: list[Mention], source_text: str, labels: list[str],
                  target: list[Mention], target_text: str) -> list[Pair]:
    """Source mentions (with `labels`, their translated labels) against the translation's,
    in source order; a translated mention paired with none comes after the pair before it."""
    n, m = len(source), len(target)
    # best[i][j]: (pairs, likeness) of aligning source[i:] with target[j:].
    best = [[(0, 0.0)] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            options = [best[i + 1][j], best[i][j + 1]]
            if labels[i] == target[j].label:
                pairs, like = best[i + 1][j + 1]
                options.append((pairs + 1, like + _likeness(source[i], source_text,
                                                           target[j], target_text)))
            best[i][j] = max(options)
    out: list[Pair] = []
    i = j = 0
    while i < n or j < m:
        if i < n and j < m and labels[i] == target[j].label:
            pairs, like = best[i + 1][j + 1]
            taken = (pairs + 1, like + _likeness(source[i], source_text, target[j],
                                                 target_text))
            if taken == best[i][j]:
                out.append(Pair(i, j))
                i, j = i + 1, j + 1
                continue
        if i < n and (j >= m or best[i + 1][j] == best[i][j]):
            out.append(Pair(i, None))
            i += 1
        else:
            out.append(Pair(None, j))
            j += 1
    return out
