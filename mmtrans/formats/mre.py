"""MRE-mix format (SCNM, SCPOS, TCREE, TCONER): JSON array or JSON Lines of {input, output}.

input:  `<text>/<task word>`
output: `<text label>/<task word>/:<label>;<string>:<label>;<string>...`

Strings contain `/` and `:` in real data (`System/360`, `Pi:Co`), so `input` splits on its
final `/<task word>`, `output` on the first `/<task word>/`, and the tuples on `:<label>;`
with labels from the known label set. Full-width `：` and `；` count as `:` and `;`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import regex

from ..labels import known_labels
from ..records import Mention, Record
from ._io import Item, Reject, iter_json_items, write_json_values

NAME = "mre"

#: Task word -> the slots of one tuple after its leading `:`, separated by `;`.
#: "label" slots go through the rule tables; "anchor" slots must occur in the text.
TASKS: dict[str, tuple[str, ...]] = {
    "NER": ("label", "anchor"),
    "Sentiment Relation Word": ("label", "anchor"),
    "Sentiment Adj and N": ("label", "anchor"),
    "Sentiment Adj": ("label", "anchor"),
    "Sentiment N": ("label", "anchor"),
}
# Longest first, so "Sentiment Adj and N" wins over "Sentiment Adj".
_TASK_WORDS = sorted(TASKS, key=len, reverse=True)
NONE_MARKERS = {"無い", "None", "无", "無"}


def sniff(value: Any) -> bool:
    return isinstance(value, dict) and "input" in value and "output" in value


@lru_cache(maxsize=8)
def _pair_pattern(labels: frozenset[str]) -> regex.Pattern[str]:
    if labels:
        alternatives = "|".join(regex.escape(x) for x in sorted(labels, key=len, reverse=True))
        return regex.compile(rf"[:：]({alternatives})[;；]")
    return regex.compile(r"[:：]([^:;：；/]+)[;；]")


def split_pairs(tail: str, labels: frozenset[str]) -> list[tuple[str, str]]:
    """`:<label>;<string>...` -> [(label, string)], splitting on known labels when they
    account for the whole tail, else on any `:<label>;`. Raises ValueError if neither does."""
    tail = tail.strip()
    if not tail or tail.strip(":：;；") in NONE_MARKERS:
        return []
    for pattern in (_pair_pattern(labels), _pair_pattern(frozenset())):
        matches = list(pattern.finditer(tail))
        if matches and matches[0].start() == 0:
            ends = [m.start() for m in matches[1:]] + [len(tail)]
            return [(m.group(1), tail[m.end():end]) for m, end in zip(matches, ends)]
    raise ValueError(f"expected ':<label>;<string>' pairs, got {tail[:40]!r}")


def parse(item: dict[str, Any], record_id: str, labels: frozenset[str]) -> Record:
    """One {input, output} object -> Record. Raises ValueError saying what is wrong."""
    source, output = item.get("input"), item.get("output")
    if not isinstance(source, str) or not isinstance(output, str):
        raise ValueError("'input' and 'output' must be strings")
    task = next((t for t in _TASK_WORDS if source.endswith("/" + t)), None)
    if task is None:
        raise ValueError(f"input does not end with '/<task word>' (one of {', '.join(TASKS)})")
    text = source[: -len(task) - 1]
    marker = f"/{task}/"
    if output.startswith(f"{task}/"):
        label, tail = None, output[len(task) + 1:]
    elif marker in output:
        label, tail = output.split(marker, 1)
    elif output.endswith(f"/{task}"):
        label, tail = output[: -len(task) - 1], ""
    else:
        raise ValueError(f"output has no '{marker}'")
    pairs = split_pairs(tail, labels)
    meta = {k: v for k, v in item.items() if k not in ("input", "output")}
    return Record(
        id=record_id,
        text=text,
        task=task,
        label=label or None,
        mentions=[Mention(lab, s) for lab, s in pairs],
        meta={"extra": meta} if meta else {},
    )


def read(path: str | Path, labels: Iterable[str] | None = None) -> Iterator[Record | Reject]:
    known = frozenset(labels) if labels is not None else frozenset(known_labels())
    stem = Path(path).stem
    lines = str(path).endswith(".jsonl")
    for item in iter_json_items(path):
        if isinstance(item, Reject):
            yield item
            continue
        record_id = f"{stem}:{item.line if lines else item.index}"
        try:
            if not isinstance(item.value, dict):
                raise ValueError("expected an object with 'input' and 'output'")
            record = parse(item.value, record_id, known)
            record.meta["line"] = item.line
            yield record
        except ValueError as e:
            yield Reject(str(path), item.line, str(e))


def to_item(record: Record) -> dict[str, Any]:
    pairs = "".join(f":{m.label};{m.text}" for m in record.mentions)
    item = {"input": f"{record.text}/{record.task}",
            "output": f"{record.label or ''}/{record.task}/{pairs}"}
    item.update(record.meta.get("extra", {}))
    return item


def write(records: Iterable[Record], path: str | Path) -> int:
    return write_json_values((to_item(r) for r in records), path)


__all__ = ["Item", "read", "write", "sniff", "parse", "to_item", "split_pairs", "TASKS"]
