"""Which translated mention (relation, event, argument) renders which source one, when the
model dropped, added or relabelled one.

The model answers the annotated strings in the order it was given them, with labels the
tables fixed before it saw them. So the two sides are aligned as sequences: order is kept, a
pair of the same (translated) label counts one, and among alignments pairing as many as
possible the one whose strings sit at the same place wins. "The same place" is not the same
share of the text: a translation grows unevenly (日本航空 is 4 characters, Japan Airlines
14), so a source offset is carried over by the strings both texts spell alike (numbers,
Latin names such as AIRDO), and a string kept verbatim (AIRDO = AIRDO) is the strongest tie.
Two items of different labels at the same place are one relabelled item (法人名 → Other
Organization Name), shown as one row, not as one missing and one added.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import regex

from ..records import Event, Mention, Relation, occurrences

#: Strings both texts spell alike carry a source offset over to the translation.
_ANCHOR = regex.compile(r"[\p{Latin}\p{N}]{2,}(?:[._-][\p{Latin}\p{N}]+)*")
#: A pair of different labels needs at least this likeness to count as one relabelled item.
RELABEL_LIKENESS = 0.3


@dataclass
class Pair:
    source: int | None  # index among the source's items; None: added by the translation
    target: int | None  # index among the translation's items; None: missing

    def to_dict(self) -> dict[str, int | None]:
        return {"source": self.source, "target": self.target}


class Places:
    """Carries an offset in the source text to where it most likely lies in the translation:
    piecewise linear between the strings that occur once in each text, in the same order."""

    def __init__(self, source_text: str, target_text: str):
        self.source_length, self.target_length = max(len(source_text), 1), max(len(target_text), 1)
        once_s = _once(source_text)
        once_t = _once(target_text)
        shared = sorted((once_s[w], once_t[w]) for w in once_s.keys() & once_t.keys())
        kept = _increasing(shared)
        self.points = [(0, 0), *kept, (self.source_length, self.target_length)]
        self.xs = [s for s, _ in self.points]

    def carry(self, start: int) -> float:
        """The source offset `start` as a share of the translation's length."""
        k = min(max(bisect.bisect_right(self.xs, start) - 1, 0), len(self.points) - 2)
        (s0, t0), (s1, t1) = self.points[k], self.points[k + 1]
        t = t0 + (t1 - t0) * (start - s0) / (s1 - s0) if s1 > s0 else t0
        return t / self.target_length

    def closeness(self, source_start: int | None, target_start: int | None) -> float:
        """In [0, 1]: 1 where the translated string starts where the source one is carried."""
        if source_start is None or target_start is None:
            return 0.5
        return 1 - min(1.0, abs(self.carry(source_start) - target_start / self.target_length))


def _once(text: str) -> dict[str, int]:
    found = [(m.group(), m.start()) for m in _ANCHOR.finditer(text)]
    counts = Counter(w for w, _ in found)
    return {w: i for w, i in found if counts[w] == 1}


def _increasing(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest run of `points` (sorted by source offset) whose target offsets increase."""
    if not points:
        return []
    best = [1] * len(points)
    before = [-1] * len(points)
    for i, (_, t) in enumerate(points):
        for j in range(i):
            if points[j][1] < t and best[j] + 1 > best[i]:
                best[i], before[i] = best[j] + 1, j
    i = max(range(len(points)), key=best.__getitem__)
    out = []
    while i >= 0:
        out.append(points[i])
        i = before[i]
    return out[::-1]


def string_likeness(a: str, b: str, target_text: str = "") -> float:
    """In [0, 1]: 1 for the same string, else the characters they share (names, digits); 0
    when `a` is kept verbatim elsewhere in the translation (that is where it went)."""
    if a == b and a:
        return 1.0
    if len(a) > 1 and a in target_text:
        return 0.0
    sa, sb = set(a) - {" "}, set(b) - {" "}
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


def item_likeness(places: Places, target_text: str, a: str, a_start: int | None, b: str,
                  b_start: int | None) -> float:
    """In [0, 1]: how alike a source string and a translated one are, by place and spelling."""
    return (places.closeness(a_start, b_start) + string_likeness(a, b, target_text)) / 2


def align(n: int, m: int, same_label: Callable[[int, int], bool],
          likeness: Callable[[int, int], float]) -> list[Pair]:
    """Order-keeping pairing of n source items with m translated ones: most same-label pairs
    first, then the most likeness; two items of different labels pair as one relabelled item
    when they are alike enough and neither has a same-label partner in the alignment. A
    translated item paired with none comes right after the pair before it."""
    def gain(i: int, j: int) -> tuple[int, float] | None:
        like = likeness(i, j)
        if same_label(i, j):
            return 1, like
        return (0, like) if like >= RELABEL_LIKENESS else None

    # best[i][j]: (same-label pairs, relabelled pairs, likeness) of source[i:] with target[j:].
    best = [[(0, 0, 0.0)] * (m + 1) for _ in range(n + 1)]
    taken: dict[tuple[int, int], tuple[int, int, float]] = {}
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            options = [best[i + 1][j], best[i][j + 1]]
            g = gain(i, j)
            if g is not None:
                same, relabelled, like = best[i + 1][j + 1]
                taken[i, j] = (same + g[0], relabelled + (1 - g[0]), like + g[1])
                options.append(taken[i, j])
            best[i][j] = max(options)
    out: list[Pair] = []
    i = j = 0
    while i < n or j < m:
        if i < n and j < m and taken.get((i, j)) == best[i][j]:
            out.append(Pair(i, j))
            i, j = i + 1, j + 1
        elif i < n and (j >= m or best[i + 1][j] == best[i][j]):
            out.append(Pair(i, None))
            i += 1
        else:
            out.append(Pair(None, j))
            j += 1
    return out


def pair_mentions(source: list[Mention], source_text: str, labels: list[str],
                  target: list[Mention], target_text: str) -> list[Pair]:
    """Source mentions (with `labels`, their translated labels) against the translation's,
    in source order."""
    places = Places(source_text, target_text)
    return align(len(source), len(target), lambda i, j: labels[i] == target[j].label,
                 lambda i, j: item_likeness(places, target_text, source[i].text, source[i].start,
                                            target[j].text, target[j].start))


def first_place(text: str, s: str) -> int | None:
    """Where `s` first occurs in `text` (None: nowhere, or empty)."""
    found = occurrences(text, s) if s else []
    return found[0] if found else None


def _strings_likeness(places: Places, source_text: str, target_text: str,
                      a: Sequence[str], b: Sequence[str]) -> float:
    """Mean likeness of the strings of two items, string for string (place and spelling)."""
    scores = [item_likeness(places, target_text, x, first_place(source_text, x), y,
                            first_place(target_text, y)) for x, y in zip(a, b)]
    return sum(scores) / len(scores) if scores else 0.0


def pair_relations(source: list[Relation], source_text: str, names: list[str],
                   target: list[Relation], target_text: str) -> list[Pair]:
    """Source relations (with `names`, their translated relation names) against the
    translation's: by name, order, and where their head and tail lie."""
    places = Places(source_text, target_text)
    return align(len(source), len(target), lambda i, j: names[i] == target[j].relation,
                 lambda i, j: _strings_likeness(places, source_text, target_text,
                                                (source[i].head, source[i].tail),
                                                (target[j].head, target[j].tail)))


@dataclass
class EventPair:
    source: int | None
    target: int | None
    arguments: list[Pair]

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, "target": self.target,
                "arguments": [a.to_dict() for a in self.arguments]}


def pair_events(source: list[Event], source_text: str, expected: list[Event],
                target: list[Event], target_text: str) -> list[EventPair]:
    """Source events (`expected`: the same with translated type and roles) against the
    translation's, by type, order and where trigger and arguments lie; within each pair of
    events, the arguments by role, order and place."""
    places = Places(source_text, target_text)

    def strings(e: Event) -> list[str]:
        return [e.trigger, *(a.text for a in e.arguments)]

    def args(i: int | None, j: int | None) -> list[Pair]:
        a = source[i].arguments if i is not None else []
        b = target[j].arguments if j is not None else []
        roles = [x.role for x in expected[i].arguments] if i is not None else []
        return align(len(a), len(b), lambda x, y: roles[x] == b[y].role,
                     lambda x, y: _strings_likeness(places, source_text, target_text,
                                                    [a[x].text], [b[y].text]))

    events = align(len(source), len(target), lambda i, j: expected[i].type == target[j].type,
                   lambda i, j: _strings_likeness(places, source_text, target_text,
                                                  strings(source[i]), strings(target[j])))
    return [EventPair(p.source, p.target, args(p.source, p.target)) for p in events]
