"""stockmark Japanese Wikipedia NER: a JSON array of {curid, text, entities:[{name, span, type}]}.

`curid` names the article, not the sentence (several sentences share one), so a record's id
is `<file name>:<index>` and `curid` is the item's own id, `meta["id"]`, written back as read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..records import Mention, Record, locate_mentions
from . import _fields as fields
from ._io import InputReader, Reject, parse_items, write_json_values

NAME = "stockmark"


def sniff(value: Any) -> bool:
    return isinstance(value, dict) and "text" in value and "entities" in value and "curid" in value


def parse(item: Any, record_id: str) -> Record:
    item = fields.obj(item, "the item")
    text = fields.string(item, "text", "the item")
    mentions = []
    for i, e in enumerate(fields.array(item.get("entities"), "'entities'")):
        where = f"entities[{i}]"
        e = fields.obj(e, where)
        label, name = fields.string(e, "type", where), fields.string(e, "name", where)
        start, end = fields.span(e.get("span"), f"{where}.span")
        mentions.append(Mention(label, name, start, end))
    return Record(id=record_id, text=text, task="NER", mentions=mentions,
                  meta={"id": item["curid"], "id_field": "curid"} if "curid" in item else {})


def read(path: str | Path, source: InputReader | None = None) -> Iterator[Record | Reject]:
    return parse_items(path, parse, source=source)


def to_item(record: Record) -> dict[str, Any]:
    located = locate_mentions(record)
    return {
        # `curid` in meta: records stored before the article id became `meta["id"]`
        "curid": record.meta.get("id", record.meta.get("curid")),
        "text": record.text,
        "entities": [
            {"name": m.text, "span": [m.start, m.end], "type": m.label} for m in located.mentions
        ],
    }


def write(records: Iterable[Record], path: str | Path) -> int:
    return write_json_values((to_item(r) for r in records), path)
