"""IEPile raw format: JSON Lines of {text, entity|relation|event}.

    {"text": ..., "entity": [{"entity": ..., "entity_type": ...}]}
    {"text": ..., "relation": [{"head", "relation", "tail", "head_type"?, "tail_type"?}]}
    {"text": ..., "event": [{"event_trigger", "event_type", "arguments": [{"argument", "role"}]}]}

Relations come with `subject`/`object` in place of `head`/`tail` in the wild: both are read,
and a record is written back with the keys it came with.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..records import Argument, Event, Mention, Record, Relation
from ._io import Reject, parse_items, write_json_values

NAME = "iepile"
KINDS = {"entity": "NER", "relation": "RE", "event": "EE"}


def sniff(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("text"), str) and \
        any(k in value for k in KINDS)


def _str(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{where} needs a string '{key}'")
    return value


def add_values(record: Record, kind: str, values: Any) -> None:
    """Read a raw `entity`, `relation` or `event` list into `record` (IEPile's instruction
    test files carry the same lists as their `label`)."""
    if not isinstance(values, list):
        raise ValueError(f"'{kind}' must be a list")
    for i, v in enumerate(values):
        where = f"{kind}[{i}]"
        if not isinstance(v, dict):
            raise ValueError(f"{where} must be an object")
        if kind == "entity":
            record.mentions.append(Mention(_str(v, "entity_type", where), _str(v, "entity", where)))
        elif kind == "relation":
            head, tail = ("subject", "object") if "subject" in v else ("head", "tail")
            record.meta["keys"] = [head, tail]
            record.relations.append(Relation(
                _str(v, head, where), _str(v, "relation", where), _str(v, tail, where),
                v.get("head_type"), v.get("tail_type")))
        else:
            arguments = v.get("arguments", [])
            if not isinstance(arguments, list):
                raise ValueError(f"{where}.arguments must be a list")
            record.events.append(Event(
                _str(v, "event_type", where), v.get("event_trigger") or "",
                [Argument(_str(a, "role", f"{where}.arguments[{j}]"),
                          _str(a, "argument", f"{where}.arguments[{j}]"))
                 for j, a in enumerate(arguments)]))


def parse(item: Any, record_id: str) -> Record:
    if not sniff(item):
        raise ValueError("expected {text, entity|relation|event}")
    kind = next(k for k in KINDS if k in item)
    record = Record(id=record_id, text=item["text"], task=KINDS[kind], meta={"kind": kind})
    add_values(record, kind, item[kind])
    return record


def read(path: str | Path) -> Iterator[Record | Reject]:
    stem = Path(path).stem
    return parse_items(path, lambda item: parse(item.value, f"{stem}:{item.line}"))


def values_of(record: Record, kind: str) -> list[dict[str, Any]]:
    """The record's raw `entity`, `relation` or `event` list."""
    if kind == "entity":
        return [{"entity": m.text, "entity_type": m.label} for m in record.mentions]
    if kind == "relation":
        head, tail = record.meta.get("keys", ["head", "tail"])
        values = []
        for r in record.relations:
            value: dict[str, Any] = {head: r.head}
            if r.head_label is not None:
                value["head_type"] = r.head_label
            value.update({"relation": r.relation, tail: r.tail})
            if r.tail_label is not None:
                value["tail_type"] = r.tail_label
            values.append(value)
        return values
    return [{"event_trigger": e.trigger, "event_type": e.type,
             "arguments": [{"argument": a.text, "role": a.role} for a in e.arguments]}
            for e in record.events]


def kind_of(record: Record) -> str:
    return record.meta.get("kind") or {v: k for k, v in KINDS.items()}.get(record.task, "entity")


def to_item(record: Record) -> dict[str, Any]:
    kind = kind_of(record)
    return {"text": record.text, kind: values_of(record, kind)}


def write(records: Iterable[Record], path: str | Path) -> int:
    return write_json_values((to_item(r) for r in records), path)
