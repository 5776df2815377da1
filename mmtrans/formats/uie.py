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
from ._io import Item, Reject, atomic_write, parse_items, read_text, write_json_values

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
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ValueError(f"{where} needs a string 'name'")
    return value


def parse(item: Any, record_id: str) -> Record:
    if not sniff(item):
        raise ValueError("expected {sentence, entities}")
    record = Record(id=record_id, text=item["sentence"], task="NER")
    for i, e in enumerate(item.get("entities") or []):
        e = _named(e, f"entities[{i}]")
        pos = e.get("pos") or [None, None]
        record.mentions.append(Mention(str(e.get("type", "")), e["name"], pos[0], pos[1]))
    for i, r in enumerate(item.get("relations") or []):
        head, tail = _named(r.get("head"), f"relations[{i}].head"), \
            _named(r.get("tail"), f"relations[{i}].tail")
        record.relations.append(Relation(head["name"], str(r.get("type", "")), tail["name"],
                                         head.get("type"), tail.get("type")))
    for i, e in enumerate(item.get("events") or []):
        args = [_named(a, f"events[{i}].arguments[{j}]") for j, a in
                enumerate(e.get("arguments") or [])]
        record.events.append(Event(str(e.get("type", "")), str(e.get("trigger", "")),
                                   [Argument(str(a.get("role", "")), a["name"]) for a in args]))
    if record.relations:
        record.task = "RE"
    elif record.events:
        record.task = "EE"
    record.meta["keys"] = [k for k in ("relations", "events") if k in item]
    return record


def read(path: str | Path) -> Iterator[Record | Reject]:
    root = Path(path)
    if not root.is_dir():
        raise InputError(root, None, "the uie format reads a folder of datasets")
    for folder in datasets(root):
        labels_path = folder / "labels.json"
        labels = json.loads(read_text(labels_path)) if labels_path.is_file() else None
        first = True
        for split in SPLITS:
            file = folder / f"{split}.json"
            if not file.is_file():
                continue

            def parse_item(item: Item, prefix: str = f"{folder.name}/{split}") -> Record:
                return parse(item.value, f"{prefix}:{item.index}")

            for record in parse_items(file, parse_item):
                if isinstance(record, Record):
                    record.meta.update(dataset=folder.name, split=split)
                    if first and isinstance(labels, list):
                        record.schema = [str(x) for x in labels]
                        record.meta["labels_file"] = True
                    first = False
                yield record


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
    return item


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
