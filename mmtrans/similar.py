"""`mmtrans labels similar`: a hard-negative dictionary to start from, for a person to edit.

IEPile asks about labels that are easy to confuse with the ones a text holds (its hard
negatives). For a translated label set no such list exists; this proposes one from two
signals: lexical similarity (shared characters and words: `組織関係-解散` and `組織関係-解雇`)
and co-occurrence similarity (two labels that appear beside the same other labels, cosine
of their co-occurrence counts). The result is in IEPile's form, task -> dataset -> label ->
similar labels, which `export --as iepile-instruction --hard-negatives` reads.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import regex

from . import formats
from .formats import Reject
from .records import Record
from .schema_batches import asked_labels, iepile_task, positives

Dictionary = dict[str, dict[str, dict[str, list[str]]]]


def _pieces(label: str) -> set[str]:
    """Characters, character pairs and words of a label, lower-cased."""
    text = label.lower()
    chars = [c for c in text if not c.isspace() and not regex.match(r"\p{P}", c)]
    words = {w for w in regex.split(r"[\s\p{P}_]+", text) if len(w) > 1}
    return set(chars) | {a + b for a, b in zip(chars, chars[1:])} | words


def lexical(a: str, b: str) -> float:
    """Jaccard similarity of the labels' characters, character pairs and words."""
    pa, pb = _pieces(a), _pieces(b)
    return len(pa & pb) / len(pa | pb) if pa | pb else 0.0


def cooccurrence(records: Iterable[Record], task: str) -> dict[str, Counter[str]]:
    """For each label, how often each other label a record holds (and, for events, each of
    its roles) goes with it. Labels only asked about (a schema batch, drawn at random) say
    nothing about similarity: they join with an empty vector."""
    vectors: dict[str, Counter[str]] = {}
    for record in records:
        held = positives(record, task)
        for label in asked_labels(record, task):
            vectors.setdefault(label, Counter())
        for label in held:
            vector = vectors.setdefault(label, Counter())
            vector.update(x for x in held if x != label)
            vector.update(f"role:{a.role}" for e in record.events if e.type == label
                          for a in e.arguments)
    return vectors


def cosine(a: Counter[str], b: Counter[str], skip: set[str]) -> float:
    keys = (set(a) & set(b)) - skip
    dot = sum(a[k] * b[k] for k in keys)
    na = math.sqrt(sum(v * v for k, v in a.items() if k not in skip))
    nb = math.sqrt(sum(v * v for k, v in b.items() if k not in skip))
    return dot / (na * nb) if na and nb else 0.0


def similar_labels(records: list[Record], task: str, top: int = 5,
                   threshold: float = 0.2) -> dict[str, list[str]]:
    """Each label's `top` most similar labels (mean of lexical and co-occurrence similarity,
    lexical alone for a label no record holds; at least `threshold`), most similar first."""
    vectors = cooccurrence(records, task)
    labels = sorted(vectors)
    out: dict[str, list[str]] = {}
    for label in labels:
        scored = []
        for other in labels:
            if other == label:
                continue
            score = lexical(label, other)
            if vectors[label] and vectors[other]:  # else co-occurrence knows nothing
                score = (score + cosine(vectors[label], vectors[other], {label, other})) / 2
            if score >= threshold:
                scored.append((-score, other))
        out[label] = [other for _, other in sorted(scored)[:top]]
    return out


def propose(paths: list[str | Path], top: int = 5, threshold: float = 0.2) -> Dictionary:
    """The proposed dictionary for the labels of every input file, by task and dataset."""
    result: Dictionary = {}
    for path in paths:
        by_task: dict[str, list[Record]] = {}
        for item in formats.read(path):
            if not isinstance(item, Reject):
                by_task.setdefault(iepile_task(item), []).append(item)
        for task, records in sorted(by_task.items()):
            result.setdefault(task, {})[Path(path).name] = similar_labels(records, task, top,
                                                                          threshold)
    return result
