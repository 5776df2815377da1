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
from . import _fields as fields
from ._io import InputReader, Reject, parse_items, with_own_id, write_json_values

NAME = "iepile"
KINDS = {"entity": "NER", "relation": "RE", "event": "EE"}


def sniff(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("text"), str) and \
        any(k in value for k in KINDS)


def add_values(record: Record, kind: str, values: Any) -> None:
    """Read a raw `entity`, `relation` or `event` list into `record` (IEPile's instruction
    test files carry the same lists as their `label`). Raises ValueError naming the field."""
    for i, v in enumerate(fields.array(values, f"'{kind}'")):
        where = f"{kind}[{i}]"
        v = fields.obj(v, where)
        if kind == "entity":
            record.mentions.append(Mention(fields.string(v, "entity_type", where),
                                           fields.string(v, "entity", where)))
        elif kind == "relation":
            head, tail = ("subject", "object") if "subject" in v else ("head", "tail")
            record.meta["keys"] = [head, tail]
            record.relations.append(Relation(
                fields.string(v, head, where), fields.string(v, "relation", where),
                fields.string(v, tail, where), fields.optional_string(v, "head_type", where),
                fields.optional_string(v, "tail_type", where)))
        else:
            arguments = []
            for j, a in enumerate(fields.array(v.get("arguments", []), f"{where}.arguments")):
                at = f"{where}.arguments[{j}]"
                a = fields.obj(a, at)
                arguments.append(Argument(fields.string(a, "role", at),
                                          fields.string(a, "argument", at)))
            record.events.append(Event(fields.string(v, "event_type", where),
                                       fields.optional_string(v, "event_trigger", where) or "",
                                       arguments))


def parse(item: Any, record_id: str) -> Record:
    if not sniff(item):
        raise ValueError("expected {text, entity|relation|event}")
    kind = next(k for k in KINDS if k in item)
    record = Record(id=record_id, text=item["text"], task=KINDS[kind], meta={"kind": kind})
    add_values(record, kind, item[kind])
    return record


def read(path: str | Path, source: InputReader | None = None) -> Iterator[Record | Reject]:
    return parse_items(path, parse, source=source)


def relation_keys(record: Record) -> tuple[str, str]:
    """The keys a relation's ends were read with (`head`/`tail` or `subject`/`object`); the
    former for a record that has none (no relation, or one from another format, whose
    `meta["keys"]` may mean something else)."""
    keys = record.meta.get("keys")
    return ("subject", "object") if keys == ["subject", "object"] else ("head", "tail")


def values_of(record: Record, kind: str) -> list[dict[str, Any]]:
    """The record's raw `entity`, `relation` or `event` list."""
    if kind == "entity":
        return [{"entity": m.text, "entity_type": m.label} for m in record.mentions]
    if kind == "relation":
        head, tail = relation_keys(record)
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
    return with_own_id(record, {"text": record.text, kind: values_of(record, kind)})


def write(records: Iterable[Record], path: str | Path) -> int:
    return write_json_values((to_item(r) for r in records), path)
