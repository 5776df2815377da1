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
from ..records import Argument, Event, Mention, Record, Relation
from ._io import InputReader, Item, Reject, parse_items, with_own_id, write_json_values

NAME = "mre"

#: Task word -> the layout of one tuple after its leading `:` (slots separated by `;`).
#: "label" slots go through the rule tables; "anchor" slots must occur in the text.
#:   mention:  <label>;<anchor>                                       -> Mention
#:   relation: <anchor head>;<label relation>;<anchor tail>           -> Relation
#:   event:    <label type>;<anchor trigger>[;<label role>;<anchor argument>]...  -> Event
TASKS: dict[str, str] = {
    "NER": "mention",
    "Sentiment Relation Word": "mention",
    "Sentiment Adj and N": "mention",
    "Sentiment Adj": "mention",
    "Sentiment N": "mention",
    "Relation Extraction": "relation",
    "Event Extraction": "event",
}
# Longest first, so "Sentiment Adj and N" wins over "Sentiment Adj".
_TASK_WORDS = sorted(TASKS, key=len, reverse=True)
NONE_MARKERS = {"無い", "None", "无", "無"}
_SEP = "[;；]"
_START = "[:：]"


def sniff(value: Any) -> bool:
    return isinstance(value, dict) and "input" in value and "output" in value


@lru_cache(maxsize=8)
def _alternatives(labels: frozenset[str]) -> str:
    if not labels:
        return "[^:;：；/]+"
    return "|".join(regex.escape(x) for x in sorted(labels, key=len, reverse=True))


def _is_none(tail: str) -> bool:
    return not tail or tail.strip(":：;；") in NONE_MARKERS


def split_pairs(tail: str, labels: frozenset[str]) -> list[tuple[str, str]]:
    """`:<label>;<string>...` -> [(label, string)], splitting on known labels when they
    account for the whole tail, else on any `:<label>;`. Raises ValueError if neither does."""
    tail = tail.strip()
    if _is_none(tail):
        return []
    for known in (labels, frozenset()):
        pattern = regex.compile(f"{_START}({_alternatives(known)}){_SEP}")
        matches = list(pattern.finditer(tail))
        if matches and matches[0].start() == 0:
            ends = [m.start() for m in matches[1:]] + [len(tail)]
            return [(m.group(1), tail[m.end():end]) for m, end in zip(matches, ends)]
    raise ValueError(f"expected ':<label>;<string>' pairs, got {tail[:40]!r}")


def _cut(segment: str, text: str) -> tuple[str, str]:
    """Split `a:b` between two tuples at the `:` that leaves both sides in the text (strings
    hold `:` too), else at the first one."""
    cuts = [m.start() for m in regex.finditer(_START, segment)]
    if not cuts:
        raise ValueError(f"no ':' between tuples in {segment[:40]!r}")
    best = next((c for c in cuts if segment[:c] in text and segment[c + 1:] in text), cuts[0])
    return segment[:best], segment[best + 1:]


def split_relations(tail: str, labels: frozenset[str], text: str) -> list[Relation]:
    """`:<head>;<relation>;<tail>...`, found by their relation labels."""
    tail = tail.strip()
    if _is_none(tail):
        return []
    if not tail.startswith((":", "：")):
        raise ValueError(f"expected ':<head>;<relation>;<tail>', got {tail[:40]!r}")
    for known in (labels, frozenset()):
        middles = list(regex.finditer(f"{_SEP}({_alternatives(known)}){_SEP}", tail[1:]))
        if not middles:
            continue
        relations, head_start = [], 1
        for i, m in enumerate(middles):
            head = tail[head_start:m.start() + 1]
            rest_end = middles[i + 1].start() + 1 if i + 1 < len(middles) else len(tail)
            segment = tail[m.end() + 1:rest_end]
            if i + 1 < len(middles):
                tail_text, next_head = _cut(segment, text)
                head_start = rest_end - len(next_head)
            else:
                tail_text = segment
            relations.append(Relation(head, m.group(1), tail_text))
        return relations
    raise ValueError(f"no relation label found in {tail[:40]!r}")


def split_events(tail: str, types: frozenset[str], roles: frozenset[str]) -> list[Event]:
    """`:<type>;<trigger>[;<role>;<argument>]...` per event, found by known types and roles."""
    tail = tail.strip()
    if _is_none(tail):
        return []
    starts = list(regex.finditer(f"{_START}({_alternatives(types)}){_SEP}", tail))
    if not starts or starts[0].start() != 0:
        raise ValueError(f"expected ':<event type>;<trigger>...', got {tail[:40]!r}")
    events = []
    for i, m in enumerate(starts):
        body = tail[m.end():starts[i + 1].start() if i + 1 < len(starts) else len(tail)]
        cuts = list(regex.finditer(f"{_SEP}({_alternatives(roles)}){_SEP}", body))
        trigger = body[:cuts[0].start()] if cuts else body
        ends = [c.start() for c in cuts[1:]] + [len(body)]
        arguments = [Argument(c.group(1), body[c.end():end]) for c, end in zip(cuts, ends)]
        events.append(Event(m.group(1), trigger, arguments))
    return events


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
    meta = {k: v for k, v in item.items() if k not in ("input", "output", "id")}
    record = Record(id=record_id, text=text, task=task, label=label or None,
                    meta={"extra": meta} if meta else {})
    kind = TASKS[task]
    if kind == "mention":
        record.mentions = [Mention(lab, s) for lab, s in split_pairs(tail, labels)]
    elif kind == "relation":
        record.relations = split_relations(tail, labels, text)
    else:
        record.events = split_events(tail, labels, labels)
    return record


def read(path: str | Path, source: InputReader | None = None,
         labels: Iterable[str] | None = None) -> Iterator[Record | Reject]:
    known = frozenset(labels) if labels is not None else frozenset(known_labels())

    def parse_item(value: Any, record_id: str) -> Record:
        if not isinstance(value, dict):
            raise ValueError("expected an object with 'input' and 'output'")
        return parse(value, record_id, known)

    return parse_items(path, parse_item, source=source)


def tuples(record: Record) -> str:
    """The part of `output` after `/<task word>/`."""
    kind = TASKS.get(record.task, "mention")
    if kind == "relation":
        return "".join(f":{r.head};{r.relation};{r.tail}" for r in record.relations)
    if kind == "event":
        return "".join(f":{e.type};{e.trigger}" + "".join(f";{a.role};{a.text}"
                                                         for a in e.arguments)
                       for e in record.events)
    return "".join(f":{m.label};{m.text}" for m in record.mentions)


def to_item(record: Record) -> dict[str, Any]:
    pairs = tuples(record)
    item = {"input": f"{record.text}/{record.task}",
            "output": f"{record.label or ''}/{record.task}/{pairs}"}
    item.update(record.meta.get("extra", {}))
    return with_own_id(record, item)


def write(records: Iterable[Record], path: str | Path) -> int:
    return write_json_values((to_item(r) for r in records), path)


__all__ = ["Item", "TASKS", "parse", "read", "sniff", "split_pairs", "to_item", "write"]
