"""How often the review page pairs a record's mentions right when the model dropped or
relabelled one, on the real stockmark sentences.

For each of the 5,343 sentences a stand-in translation is built: every mention becomes a
made-up English name (a Latin or digit name such as AIRDO stays as it is, as translations
keep it), numbers and Latin words between them stay, and every other character becomes one to
four filler signs, so the text grows unevenly, as a
translation does. Then (a) for every label with two or more mentions, each of them in turn is
dropped from the answer (its string stays in the text, as models do), and (b) each mention in
turn gets another label. A case is right when every pair is: the dropped one missing and the
others paired with their own (or an equal string); the relabelled one paired with its own.
Prints the share right for the pairing in this tree and, given `--old FILE` (a pairs.py, e.g.
from `git show main:mmtrans/review/pairs.py`), for that one, with os.getloadavg().

    python bench/mention_pairs.py [--old /tmp/old_pairs.py] [path to stockmark ner.json]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
import types
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import regex

from mmtrans import formats
from mmtrans.records import Mention, Record
from mmtrans.review.pairs import pair_mentions
from mmtrans.testing import name_for

DEFAULT = Path(__file__).resolve().parent.parent / "tests" / "data" / \
    "stockmark-ner-wikipedia" / "ner.json"
KEPT = regex.compile(r"([\p{Latin}\p{N}]+)")
LATIN = regex.compile(r"^[\p{Latin}\p{N} .&-]+$")
Pairer = Callable[..., list]


def stand_in(record: Record) -> tuple[str, list[Mention]]:
    """A made-up translation of the record's text and its mentions, placed."""
    out, mentions, k = [], [], 0
    spans = sorted((m.start, m.end, i) for i, m in enumerate(record.mentions)
                   if m.start is not None)
    placed: dict[int, Mention] = {}
    length = 0
    for start, end, i in spans:
        if start < k:
            continue  # nested: left out of the stand-in
        filler = _filler(record.text[k:start])
        out.append(filler)
        length += len(filler)
        s = record.mentions[i].text
        name = s if LATIN.match(s) else name_for(s, "en")
        out.append(name)
        placed[i] = Mention(record.mentions[i].label, name, length, length + len(name))
        length += len(name)
        k = end
    out.append(_filler(record.text[k:]))
    mentions = [placed[i] for i in sorted(placed)]
    return "".join(out), mentions


def _filler(text: str) -> str:
    """Text between mentions: numbers and Latin words kept, as a translation keeps them, and
    each other character one to four filler signs."""
    return "".join(part if KEPT.fullmatch(part) else "".join(
        "~" * (1 + hashlib.sha256(ch.encode()).digest()[0] % 4) for ch in part)
        for part in KEPT.split(text) if part)


def cases(records: list[Record]):
    """(kind, source mentions, source text, labels, target mentions, target text, right)."""
    for r in records:
        text, target = stand_in(r)
        if len(target) != len(r.mentions) or len(target) < 2:
            continue
        source, labels = r.mentions, [m.label for m in r.mentions]
        by_label: dict[str, list[int]] = defaultdict(list)
        for i, m in enumerate(source):
            by_label[m.label].append(i)
        for same in by_label.values():
            if len(same) < 2:
                continue
            for dropped in same:
                kept = [i for i in range(len(source)) if i != dropped]
                right = [(i, kept.index(i) if i in kept else None) for i in range(len(source))]
                yield ("dropped", source, r.text, labels, [target[i] for i in kept], text,
                       right)
        for i in range(len(source)):
            relabelled = list(target)
            relabelled[i] = Mention("Other", target[i].text, target[i].start, target[i].end)
            yield ("relabelled", source, r.text, labels, relabelled, text,
                   [(k, k) for k in range(len(source))])


def _strings(pairs: list[tuple[int, int | None]], target: list[Mention]) -> list:
    """What each source mention is shown with: of two equal strings either is right."""
    return [(i, None if j is None else target[j].text) for i, j in pairs]


def load_old(path: Path) -> Pairer:
    code = path.read_text(encoding="utf-8").replace("from ..records import",
                                                    "from mmtrans.records import")
    module = types.ModuleType("old_pairs")
    sys.modules["old_pairs"] = module  # dataclasses look their module up
    exec(compile(code, str(path), "exec"), module.__dict__)
    return module.pair_mentions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--old", type=Path)
    args = parser.parse_args()
    records = [r for r in formats.read(args.path) if isinstance(r, Record)]
    pairers: dict[str, Pairer] = {"this tree": pair_mentions}
    if args.old:
        pairers["old"] = load_old(args.old)
    all_cases = list(cases(records))
    for name, pair in pairers.items():
        started = time.perf_counter()
        right: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for kind, source, source_text, labels, target, target_text, want in all_cases:
            got = [(p.source, p.target) for p in pair(source, source_text, labels, target,
                                                     target_text) if p.source is not None]
            right[kind][0] += _strings(got, target) == _strings(want, target)
            right[kind][1] += 1
        seconds = time.perf_counter() - started
        figures = ", ".join(f"{kind}: {ok}/{n} right ({ok / n:.1%})"
                            for kind, (ok, n) in right.items())
        print(f"{name}: {figures}; {seconds:.1f} s; load {os.getloadavg()}")


if __name__ == "__main__":
    main()
