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
from ._io import InputReader, Reject, checked_items, resolved, write_json_values

NAME = "uniner"
READ = "I've read this text."
QUESTION = regex.compile(r"^What describes (.+) in the text\?$", regex.S)


def sniff(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("conversations"), list)


def parse_item(value: Any) -> tuple[str, str, list[str]]:
    """(text, type, answer strings) of one conversation, or one ValueError naming every
    turn that is wrong (so one look at the reject shows all there is to fix)."""
    turns = value.get("conversations") if isinstance(value, dict) else None
    if not isinstance(turns, list) or len(turns) != 4:
        raise ValueError("expected 4 conversation turns")
    values = [t.get("value") if isinstance(t, dict) else None for t in turns]
    bad = [f"turn {i + 1} has no string 'value'" for i, v in enumerate(values)
           if not isinstance(v, str)]
    text, question, answer = (v if isinstance(v, str) else None for v in
                              (values[0], values[2], values[3]))
    if text is not None and not text.startswith("Text: "):
        bad.append("the first turn must start with 'Text: '")
    asked = QUESTION.match(question) if question is not None else None
    if question is not None and not asked:
        bad.append("the third turn must ask 'What describes <type> in the text?'")
    strings: Any = []
    if answer is not None:
        try:
            strings = json.loads(answer)
        except json.JSONDecodeError as e:
            bad.append(f"the answer is not a JSON list: {e.msg}")
        else:
            if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
                bad.append("the answer must be a JSON list of strings")
    if bad or text is None or asked is None:
        raise ValueError("; ".join(bad))
    return text[len("Text: "):], asked.group(1), strings


def read(path: str | Path, source: InputReader | None = None) -> Iterator[Record | Reject]:
    """Records in order of their text's first appearance (the whole file is grouped first).
    A merged record's id is that of its first item; every item's own id stays in
    `meta["items"]` and the first one in `meta["id"]`."""
    records: dict[str, Record] = {}
    name, file = Path(path).name, resolved(path)
    for checked in checked_items(path, lambda item: parse_item(item.value), source):
        if isinstance(checked, Reject):
            yield checked
            continue
        item, (text, label, strings) = checked
        own_id = item.value.get("id")
        record = records.get(text)
        if record is None:
            meta: dict[str, Any] = {"id": own_id} if "id" in item.value else {}
            record = records[text] = Record(
                id=f"{name}:{item.index}", text=text, task="NER",
                meta={**meta, "line": item.line, "path": file, "items": []})
        record.schema.append(label)
        record.meta["items"].append([item.index, own_id, len(record.mentions), len(strings)])
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
