"""How fast `check` pairs a whole file with gaps, and how many pairs it gets right.

The 5,343 stockmark sentences (labels through the scnm table) against a candidate that
leaves out every 7th record: without ids (paired by position; once with the source texts,
once with blank texts, the worst case where only labels tell records apart), and with
stockmark's curid (ids that repeat: paired within each article). Prints seconds and how
many pairs are right.

    python bench/pairing.py [path to stockmark ner.json]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mmtrans import formats
from mmtrans.labels import load_tables
from mmtrans.pairing import pair
from mmtrans.records import Record

DEFAULT = Path(__file__).resolve().parent.parent / "tests" / "data" / \
    "stockmark-ner-wikipedia" / "ner.json"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    sources = [r for r in formats.read(path) if isinstance(r, Record)]
    table = load_tables(["scnm"], "ja", "en")
    expected = [table.translate(r) for r in sources]
    kept = [i for i in range(len(sources)) if i % 7 != 3]
    variants = (("no ids (by position), texts as in the source", True, False),
                ("no ids (by position), texts blank: labels alone", True, True),
                ("curid (repeating ids)", False, False))
    for name, strip_ids, blank in variants:
        targets = [expected[i] for i in kept]
        if strip_ids:
            targets = [Record(r.id, "" if blank else r.text, r.task, r.label, r.mentions,
                              meta={}) for r in targets]
        started = time.perf_counter()
        pairs = pair(expected, targets)
        seconds = time.perf_counter() - started
        right = sum(p.target is not None and p.source == kept[p.target] for p in pairs)
        left_out = sum(p.target is None for p in pairs)
        print(f"{name}: {len(sources)} sources, {len(targets)} candidates: "
              f"{seconds:.2f} s, {right} pairs right, {left_out} named as left out "
              f"(of {len(sources) - len(kept)})")


if __name__ == "__main__":
    main()
