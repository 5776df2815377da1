"""stockmark Japanese Wikipedia NER: a JSON array of {curid, text, entities:[{name, span, type}]}.

`curid` names the article, not the sentence (several sentences share one), so a record's id
is `<file stem>:<index>` and `curid` travels in `meta`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..records import Mention, Record, locate_mentions
from ._io import Reject, parse_items, write_json_values

NAME = "stockmark"


def sniff(value: Any) -> bool:
    return isinstance(value, dict) and "text" in value and "entities" in value and "curid" in value


def parse(item: Any, record_id: str) -> Record:
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise ValueError("expected an object with a string 'text'")
    entities = item.get("entities")
    if not isinstance(entities, list):
        raise ValueError("'entities' must be a list")
    mentions = []
    for i, e in enumerate(entities):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not e.get("type"):
            raise ValueError(f"entities[{i}] needs a string 'name' and a 'type'")
        span = e.get("span") or [None, None]
        mentions.append(Mention(e["type"], e["name"], span[0], span[1]))
    return Record(id=record_id, text=item["text"], task="NER", mentions=mentions,
                  meta={"curid": item.get("curid")})


def read(path: str | Path) -> Iterator[Record | Reject]:
    stem = Path(path).stem
    return parse_items(path, lambda item: parse(item.value, f"{stem}:{item.index}"))


def to_item(record: Record) -> dict[str, Any]:
    located = locate_mentions(record)
    return {
        "curid": record.meta.get("curid", record.id),
        "text": record.text,
        "entities": [
            {"name": m.text, "span": [m.start, m.end], "type": m.label} for m in located.mentions
        ],
    }


def write(records: Iterable[Record], path: str | Path) -> int:
    return write_json_values((to_item(r) for r in records), path)
