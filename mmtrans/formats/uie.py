"""InstructUIE / B2NERD: `<dir>/<dataset>/{train,dev,test}.json` and `<dataset>/labels.json`.

Each split file is a JSON array of {sentence, entities: [{name, type, pos: [start, end]}],
relations: [{head: {name, type, pos}, type, tail: {...}}], events: [{trigger, type,
arguments: [{name, role}]}]}. The path given may be one dataset folder or a folder of them.
Offsets are recomputed in the written text: the k-th repeat of a string gets its k-th
occurrence. The dataset's `labels.json` travels in the `schema` of its first record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..records import Argument, Event, Mention, Record, Relation, locate_mentions
from . import _fields as fields
from ._io import (
    InputReader,
    Reject,
    atomic_write,
    parse_items,
    read_text,
    resolved,
    with_own_id,
    write_json_values,
)

NAME = "uie"
SPLITS = ("train", "dev", "test")


def sniff(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("sentence"), str) and \
        "entities" in value


def datasets(path: Path) -> list[Path]:
    """The dataset folders under `path` (or `path` itself): those holding a split file."""
    def has_split(p: Path) -> bool:
        return any((p / f"{s}.json").is_file() for s in SPLITS)

    if has_split(path):
        return [path]
    found = sorted(p for p in path.iterdir() if p.is_dir() and has_split(p))
    if not found:
        raise InputError(path, None, "no <dataset>/{train,dev,test}.json here")
    return found


def _named(value: Any, where: str) -> dict[str, Any]:
    value = fields.obj(value, where)
    fields.string(value, "name", where)
    return value


def _label(value: dict[str, Any], key: str, where: str) -> str:
    return fields.optional_string(value, key, where) or ""


def parse(item: Any, record_id: str) -> Record:
    """One item -> Record; raises ValueError naming the field that is wrong."""
    if not sniff(item):
        raise ValueError("expected {sentence, entities}")
    record = Record(id=record_id, text=item["sentence"], task="NER")
    for i, e in enumerate(fields.array(item.get("entities") or [], "'entities'")):
        where = f"entities[{i}]"
        e = _named(e, where)
        start, end = fields.span(e.get("pos"), f"{where}.pos")
        record.mentions.append(Mention(_label(e, "type", where), e["name"], start, end))
    for i, r in enumerate(fields.array(item.get("relations") or [], "'relations'")):
        where = f"relations[{i}]"
        r = fields.obj(r, where)
        head, tail = _named(r.get("head"), f"{where}.head"), _named(r.get("tail"), f"{where}.tail")
        record.relations.append(Relation(
            head["name"], _label(r, "type", where), tail["name"],
            fields.optional_string(head, "type", f"{where}.head"),
            fields.optional_string(tail, "type", f"{where}.tail")))
    for i, e in enumerate(fields.array(item.get("events") or [], "'events'")):
        where = f"events[{i}]"
        e = fields.obj(e, where)
        args = [_named(a, f"{where}.arguments[{j}]") for j, a in
                enumerate(fields.array(e.get("arguments") or [], f"{where}.arguments"))]
        record.events.append(Event(
            _label(e, "type", where), _label(e, "trigger", where),
            [Argument(_label(a, "role", f"{where}.arguments[{j}]"), a["name"])
             for j, a in enumerate(args)]))
    if record.relations:
        record.task = "RE"
    elif record.events:
        record.task = "EE"
    record.meta["keys"] = [k for k in ("relations", "events") if k in item]
    return record


def _labels_file(path: Path) -> Any:
    """A dataset's labels.json (a list of labels), or None when there is none."""
    if not path.is_file():
        return None
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise InputError(path, e.lineno, f"not JSON: {e.msg} at column {e.colno}") from None


def read(path: str | Path, source: InputReader | None = None) -> Iterator[Record | Reject]:
    """Every split file of every dataset under `path`; a record's id is `<file path relative
    to path>:<index>`. A split file that breaks off (a JSON array cut short) keeps the items
    before the break and its rest is one Reject (index None); the other files are still
    read. `source` is for the single-file formats' signature: a folder has no one stream."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(root, None, "the uie format reads a folder of datasets")
    for folder in datasets(root):
        labels = _labels_file(folder / "labels.json")
        first = True
        for split in SPLITS:
            file = folder / f"{split}.json"
            if not file.is_file():
                continue
            try:
                for record in parse_items(file, parse, file.relative_to(root).as_posix()):
                    if isinstance(record, Record):
                        record.meta.update(dataset=folder.name, split=split)
                        if first and isinstance(labels, list):
                            record.schema = [str(x) for x in labels]
                            record.meta["labels_file"] = True
                        first = False
                    yield record
            except InputError as e:
                yield Reject(resolved(file), e.line, e.message)


def _span(text: str, name: str, pos: tuple[int | None, int | None] | None) -> list[int] | None:
    if pos and pos[0] is not None:
        return [pos[0], pos[1]]  # type: ignore[list-item]
    start = text.find(name) if name else -1
    return [start, start + len(name)] if start >= 0 else None


def to_item(record: Record) -> dict[str, Any]:
    located = locate_mentions(record)
    spans = {(m.label, m.text): (m.start, m.end) for m in located.mentions}
    item: dict[str, Any] = {
        "sentence": record.text,
        "entities": [{"name": m.text, "type": m.label, "pos": [m.start, m.end]}
                     for m in located.mentions],
    }
    keys = record.meta.get("keys", [])
    if record.relations or "relations" in keys:
        item["relations"] = [
            {"head": {"name": r.head, "type": r.head_label,
                      "pos": _span(record.text, r.head, spans.get((r.head_label, r.head)))},
             "type": r.relation,
             "tail": {"name": r.tail, "type": r.tail_label,
                      "pos": _span(record.text, r.tail, spans.get((r.tail_label, r.tail)))}}
            for r in record.relations]
    if record.events or "events" in keys:
        item["events"] = [
            {"trigger": e.trigger, "type": e.type,
             "pos": _span(record.text, e.trigger, None),
             "arguments": [{"name": a.text, "role": a.role,
                            "pos": _span(record.text, a.text, None)} for a in e.arguments]}
            for e in record.events]
    return with_own_id(record, item)


def write(records: Iterable[Record], path: str | Path) -> int:
    """A folder per dataset with its split files and labels.json."""
    root = Path(path)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    labels: dict[str, list[str]] = {}
    for r in records:
        dataset, split = r.meta.get("dataset", "dataset"), r.meta.get("split", "train")
        groups.setdefault((dataset, split), []).append(to_item(r))
        if r.meta.get("labels_file"):
            labels[dataset] = r.schema
    for (dataset, split), items in groups.items():
        write_json_values(iter(items), root / dataset / f"{split}.json")
    for dataset, names in labels.items():
        with atomic_write(root / dataset / "labels.json") as f:
            json.dump(names, f, ensure_ascii=False)
    return sum(len(items) for items in groups.values())
