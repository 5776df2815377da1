"""The benchmark's pairs: real sentences (triples.tsv) and, for every direction with a
Japanese or Chinese side, a good translation and three defective ones made from it.

- good: the hand-written (or real) text of the target language, as it is;
- added: a sentence of another triple, in the target language, appended (even rows) or put
  in front (odd rows): content the source never had, every entity string kept;
- dropped: the longest clause of the translation that holds no entity string removed (rows
  whose translation has no such clause of at least a fifth of the text are left out);
- swapped: another triple's translation with its entity strings replaced by this record's:
  the entities are all there (as far as the other sentence has places for them), the content
  is another sentence's.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import regex

HERE = Path(__file__).parent
LANGS = ("ja", "en", "zh")
DIRECTIONS = [("ja", "en"), ("en", "ja"), ("zh", "en"), ("en", "zh"), ("ja", "zh"), ("zh", "ja")]
KINDS = ("good", "added", "dropped", "swapped")
CLAUSE = {"en": regex.compile(r"(?<=,|;)\s+"), "ja": regex.compile(r"(?<=、|，)"),
          "zh": regex.compile(r"(?<=，|、|；)")}
END = {"en": ".", "ja": "。", "zh": "。"}


@dataclass
class Side:
    text: str
    entities: list[str]


@dataclass
class Triple:
    id: str
    origin: str
    where: str
    sides: dict[str, Side]


@dataclass
class Pair:
    triple: str
    origin: str
    src: str
    tgt: str
    kind: str
    source: Side
    target: Side


def load_triples(path: Path = HERE / "triples.tsv") -> list[Triple]:
    rows = [r for r in csv.reader(path.open(encoding="utf-8"), delimiter="\t",
                                  quoting=csv.QUOTE_NONE)
            if r and not r[0].startswith("#")]
    out = []
    for r in rows:
        sides = {}
        for k, lang in enumerate(LANGS):
            text, ents = r[3 + 2 * k], r[4 + 2 * k]
            sides[lang] = Side(text, [e for e in ents.split(";") if e])
        out.append(Triple(r[0], r[1], r[2], sides))
    return out


def _joined(a: str, b: str, lang: str) -> str:
    return f"{a} {b}" if lang == "en" else a + b


def added(t: Side, other: Side, lang: str, front: bool) -> Side:
    extra = other.text if regex.search(r"[.。!?！？]$", other.text) else other.text + END[lang]
    base = t.text if regex.search(r"[.。!?！？\"”」]$", t.text) else t.text + END[lang]
    return Side(_joined(extra, base, lang) if front else _joined(base, extra, lang), t.entities)


def dropped(t: Side, lang: str) -> Side | None:
    pieces = CLAUSE[lang].split(t.text)
    if len(pieces) < 2:
        return None
    free = [i for i, p in enumerate(pieces)
            if not any(e in p for e in t.entities) and len(p) >= len(t.text) / 5]
    # Entity strings cut by the split (a comma inside a name) must survive whole.
    free = [i for i in free if all(e in "".join(pieces[:i] + pieces[i + 1:])
                                   for e in t.entities)]
    if not free:
        return None
    i = max(free, key=lambda k: len(pieces[k]))
    rest = pieces[:i] + pieces[i + 1:]
    if i == len(pieces) - 1:  # the last clause went: the one before it now ends the sentence
        rest[-1] = regex.sub(r"[,;、，；]\s*$", "", rest[-1]) + END[lang]
    text = ("" if lang != "en" else "").join(rest)
    if lang == "en":
        text = " ".join(p.strip() for p in rest)
        if i == 0:
            text = text[:1].upper() + text[1:]
    return Side(text, t.entities)


def swapped(t: Side, other: Side) -> Side:
    text = other.text
    for theirs, ours in zip(other.entities, t.entities):
        text = text.replace(theirs, ours)
    return Side(text, t.entities)


def build_pairs(triples: list[Triple]) -> list[Pair]:
    pairs = []
    n = len(triples)
    for src, tgt in DIRECTIONS:
        for i, tr in enumerate(triples):
            s, t = tr.sides[src], tr.sides[tgt]

            made = [("good", t),
                    ("added", added(t, triples[(i + 7) % n].sides[tgt], tgt, i % 2 == 1)),
                    ("dropped", dropped(t, tgt)),
                    ("swapped", swapped(t, triples[(i + 13) % n].sides[tgt]))]
            pairs += [Pair(tr.id, tr.origin, src, tgt, kind, s, target)
                      for kind, target in made if target is not None]
    return pairs
