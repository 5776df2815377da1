"""Which translated record belongs to which source record, for `mmtrans check`.

A candidate file need not hold every source record in order: an export without
`--include-flagged` leaves flagged ones out. So records pair by the dataset's own id
(`meta["id"]`) where it names one record on each side; where ids repeat (stockmark's `curid`
names an article, IEPile's test files repeat theirs) or are missing, they pair in order within
each id group, and a source record whose translated labels cannot match the candidate is taken
as left out, not as a failure of the next one.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import regex

from .records import Record

#: Above this many candidate pairings a block of records that differ is paired in order.
_MAX_BLOCK = 250_000
#: Records of the agreeing stretches on each side that the weighing of a gap may reassign.
_MARGIN = 3
_TOKEN = regex.compile(r"[A-Za-z0-9]{2,}")


@dataclass(frozen=True)
class Pair:
    """Indexes into the source and the candidate records; None on the side that has none."""

    source: int | None
    target: int | None


def own_id(record: Record) -> str | None:
    """The dataset's own id as a comparable key (ids are any JSON value), or None."""
    value = record.meta.get("id")
    return None if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


def signature(record: Record) -> Hashable:
    """What a faithful translation keeps once labels went through the table: the task, the
    text label, the labels of its mentions, relations and events, and the schema."""
    return (record.task, record.label,
            tuple(sorted(m.label for m in record.mentions)),
            tuple(sorted(r.relation for r in record.relations)),
            tuple(sorted(e.type for e in record.events)),
            tuple(sorted(record.schema)))


def by_position(sources: Sequence[Record], targets: Sequence[Record]) -> bool:
    """True when the two sides do not both carry ids, so only order can pair them."""
    return not (any(own_id(r) for r in sources) and any(own_id(r) for r in targets))


def pair(expected: Sequence[Record], targets: Sequence[Record]) -> list[Pair]:
    """Pair each candidate with the source record it translates. `expected` are the source
    records with their labels already translated. Every index of both sides occurs once."""
    if by_position(expected, targets):
        return align(range(len(expected)), range(len(targets)), expected, targets)
    source_ids = [own_id(r) for r in expected]
    target_ids = [own_id(r) for r in targets]
    counts_s, counts_t = Counter(source_ids), Counter(target_ids)
    groups_s: dict[str | None, list[int]] = defaultdict(list)
    groups_t: dict[str | None, list[int]] = defaultdict(list)
    pairs = []
    target_of = {k: i for i, k in enumerate(target_ids) if k is not None and counts_t[k] == 1}
    for i, key in enumerate(source_ids):
        if key is not None and counts_s[key] == 1 and key in target_of:
            pairs.append(Pair(i, target_of[key]))
        else:
            groups_s[key].append(i)
    for j, key in enumerate(target_ids):
        if key is None or counts_s[key] != 1 or counts_t[key] != 1:
            groups_t[key].append(j)
    for key in {**groups_s, **groups_t}:
        pairs += align(groups_s.get(key, []), groups_t.get(key, []), expected, targets)
    return pairs


def align(source_ix: Sequence[int], target_ix: Sequence[int], expected: Sequence[Record],
          targets: Sequence[Record]) -> list[Pair]:
    """Order-preserving pairing of two runs of records that maximises their likeness. Long
    runs (whole files paired by position) first find the stretches whose signatures agree
    one to one, and weigh only the stretches in between, each with `_MARGIN` records of its
    neighbours on either side (which of several alike records is the one left out)."""
    if len(source_ix) * len(target_ix) <= _MAX_BLOCK:
        return _best_in_order(source_ix, target_ix, expected, targets)
    a = [signature(expected[i]) for i in source_ix]
    b = [signature(targets[j]) for j in target_ix]
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    pairs: list[Pair] = []
    window_s: list[int] = []
    window_t: list[int] = []
    for n, (op, s0, s1, t0, t1) in enumerate(ops):
        if op != "equal":
            window_s += source_ix[s0:s1]
            window_t += target_ix[t0:t1]
            continue
        head = min(max(_MARGIN, _run(a, s0, s1, 1)), s1 - s0) if n > 0 else 0
        tail = min(max(_MARGIN, _run(a, s1 - 1, s0 - 1, -1)), s1 - s0 - head) \
            if n < len(ops) - 1 else 0
        window_s += source_ix[s0:s0 + head]
        window_t += target_ix[t0:t0 + head]
        pairs += _best_in_order(window_s, window_t, expected, targets)
        pairs += [Pair(source_ix[k], target_ix[t0 + k - s0])
                  for k in range(s0 + head, s1 - tail)]
        window_s, window_t = list(source_ix[s1 - tail:s1]), list(target_ix[t1 - tail:t1])
    return pairs + _best_in_order(window_s, window_t, expected, targets)


def _run(signatures: Sequence[Hashable], start: int, stop: int, step: int) -> int:
    """How many records from `start` towards `stop` share the signature of the one at
    `start`: a gap next to such a run may lie anywhere in it."""
    k = start
    while k != stop and signatures[k] == signatures[start]:
        k += step
    return abs(k - start)


def _best_in_order(source_ix: Sequence[int], target_ix: Sequence[int],
                   expected: Sequence[Record], targets: Sequence[Record]) -> list[Pair]:
    """Order-preserving one-to-one pairing of two runs that maximises the summed likeness;
    all of the shorter run is paired, the rest of the longer one is left over. Between
    records nothing tells apart, the earlier one is taken."""
    n, m = len(source_ix), len(target_ix)
    if n * m > _MAX_BLOCK or not n or not m:
        return _zip(source_ix, target_ix)
    ratio = (sum(len(targets[j].text) for j in target_ix) / m) / \
        max(1.0, sum(len(expected[i].text) for i in source_ix) / n)
    score = [[likeness(expected[i], targets[j], ratio) for j in target_ix] for i in source_ix]
    # best[i][j]: the best total for sources[i:] and targets[j:]; only the longer side skips.
    skip_sources = n >= m
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            take = score[i][j] + best[i + 1][j + 1]
            if skip_sources and n - i > m - j:
                best[i][j] = max(take, best[i + 1][j])
            elif not skip_sources and m - j > n - i:
                best[i][j] = max(take, best[i][j + 1])
            else:
                best[i][j] = take
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if score[i][j] + best[i + 1][j + 1] >= best[i][j]:
            pairs.append(Pair(source_ix[i], target_ix[j]))
            i, j = i + 1, j + 1
        elif skip_sources:
            pairs.append(Pair(source_ix[i], None))
            i += 1
        else:
            pairs.append(Pair(None, target_ix[j]))
            j += 1
    pairs += [Pair(source_ix[k], None) for k in range(i, n)]
    pairs += [Pair(None, target_ix[k]) for k in range(j, m)]
    return pairs


def _zip(source_ix: Sequence[int], target_ix: Sequence[int]) -> list[Pair]:
    n = min(len(source_ix), len(target_ix))
    return ([Pair(source_ix[k], target_ix[k]) for k in range(n)]
            + [Pair(i, None) for i in source_ix[n:]] + [Pair(None, j) for j in target_ix[n:]])


def likeness(expected: Record, target: Record, ratio: float = 1.0) -> float:
    """How alike a candidate is to a source record whose labels were translated: above all
    the same signature, then shared task, text label, labels, Latin words and numbers (which
    survive translation), and a length near the usual ratio of translated to source text."""
    expected_length, length = len(expected.text) * ratio, len(target.text)
    return (4.0 * (signature(expected) == signature(target))
            + (expected.task == target.task) + (expected.label == target.label)
            + _overlap([x for _, x in expected.labels()], [x for _, x in target.labels()])
            + _overlap(_TOKEN.findall(expected.text), _TOKEN.findall(target.text))
            + min(expected_length, length) / max(expected_length, length, 1.0))


def _overlap(a: list[str], b: list[str]) -> float:
    """Shared share of two multisets (0 when both are empty: nothing to tell them by)."""
    if not a and not b:
        return 0.0
    ca, cb = Counter(a), Counter(b)
    return sum((ca & cb).values()) / max(sum(ca.values()), sum(cb.values()))
