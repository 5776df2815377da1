"""UniversalNER / Pile-NER-type conversations: a JSON array of {id, conversations}.

Each item asks about one entity type of one text: "Text: ...", "I've read this text.",
"What describes <type> in the text?", and a JSON list answer. Items that share a text merge
into one record holding all their types (its `schema`, so an empty answer stays a known
negative) and all their answers (its mentions); writing splits them again, in input order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import regex

from ..records import Mention, Record
from ._io import Item, Reject, iter_json_items, write_json_values

NAME = "uniner"
READ = "I've read this text."
QUESTION = regex.compile(r"^What describes (.+) in the text\?$", regex.S)


def sniff(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("conversations"), list)


def parse_item(value: Any) -> tuple[str, str, list[str]]:
    """(text, type, answer strings) of one conversation, or ValueError."""
    turns = value.get("conversations") if isinstance(value, dict) else None
    if not isinstance(turns, list) or len(turns) != 4 or \
            not all(isinstance(t, dict) and isinstance(t.get("value"), str) for t in turns):
        raise ValueError("expected 4 conversation turns with string values")
    text, question, answer = turns[0]["value"], turns[2]["value"], turns[3]["value"]
    if not text.startswith("Text: "):
        raise ValueError("the first turn must start with 'Text: '")
    asked = QUESTION.match(question)
    if not asked:
        raise ValueError("the third turn must ask 'What describes <type> in the text?'")
    try:
        strings = json.loads(answer)
    except json.JSONDecodeError as e:
        raise ValueError(f"the answer is not a JSON list: {e.msg}") from None
    if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
        raise ValueError("the answer must be a JSON list of strings")
    return text[len("Text: "):], asked.group(1), strings


def read(path: str | Path) -> Iterator[Record | Reject]:
    """Records in order of their text's first appearance (the whole file is grouped first)."""
    records: dict[str, Record] = {}
    for item in iter_json_items(path):
        if isinstance(item, Reject):
            yield item
            continue
        assert isinstance(item, Item)
        try:
            text, label, strings = parse_item(item.value)
        except ValueError as e:
            yield Reject(str(path), item.line, str(e))
            continue
        record = records.get(text)
        if record is None:
            record = records[text] = Record(
                id=str(item.value.get("id", f"{Path(path).stem}:{item.index}")), text=text,
                task="NER", meta={"line": item.line, "items": []})
        record.schema.append(label)
        record.meta["items"].append([item.index, item.value.get("id"), len(record.mentions),
                                     len(strings)])
        record.mentions.extend(Mention(label, s) for s in strings)
    yield from records.values()


def _items(record: Record) -> Iterator[tuple[int | None, dict[str, Any]]]:
    shape = record.meta.get("items") or [[None, None, None, None] for _ in record.schema]
    for (index, item_id, first, count), label in zip(shape, record.schema):
        if first is None:  # a record from another format: its mentions of this label
            strings = [m.text for m in record.mentions if m.label == label]
        else:
            strings = [m.text for m in record.mentions[first:first + count]]
        item: dict[str, Any] = {} if item_id is None else {"id": item_id}
        item["conversations"] = [
            {"from": "human", "value": f"Text: {record.text}"},
            {"from": "gpt", "value": READ},
            {"from": "human", "value": f"What describes {label} in the text?"},
            {"from": "gpt", "value": json.dumps(strings)},
        ]
        yield index, item


def write(records: Iterable[Record], path: str | Path) -> int:
    """Items back in input order when every record came from this format, else record by
    record, one item per schema type."""
    items = [item for r in records for item in _items(r)]
    if all(index is not None for index, _ in items):
        items.sort(key=lambda x: x[0])
    return write_json_values((item for _, item in items), path)
