"""The `schema` of an IEPile instruction: its labels into `Record.schema`, its shape into meta.

Entries are labels (NER, RE, EET: `"人物"`) or objects whose string values are labels and
whose lists of strings are lists of labels (EE `{event_type, trigger: true, arguments}`, SPO
`{subject_type, predicate, object_type}`, KG `{entity_type, attributes}`). EEA's
`trigger: ["裁员"]` is the exception: trigger words are anchored strings, so each is tied to
the event (or, naming none, a mention) that holds it and is written back from it, translated.
Anything else (`trigger: true`) is written back as read.
"""

from __future__ import annotations

from typing import Any

from ..records import Mention, Record

#: The key that names an entry (and keys its output) in each kind of schema object.
ENTRY_KEYS = ("event_type", "predicate", "entity_type")
#: Keys whose value must be one label, and keys whose value must be a list of labels.
LABEL_KEYS = (*ENTRY_KEYS, "subject_type", "object_type")
LABEL_LIST_KEYS = ("arguments", "attributes")

Shape = list[list[Any]]  # [[key, kind, value], ...] for an object entry


def entry_key(entry: Any) -> Any:
    """The label an entry's output is keyed by (the entry itself for a plain label)."""
    if isinstance(entry, dict):
        return next((entry[k] for k in ENTRY_KEYS if k in entry), None)
    return entry


def read_schema(record: Record, schema: list[Any]) -> None:
    """`schema`'s labels into `record.schema` and its shape into `meta["shape"]` (None for a
    plain label). EEA trigger words stay strings until `tie_triggers` runs."""
    shapes: list[Shape | None] = []
    for i, entry in enumerate(schema):
        where = f"schema[{i}]"
        if isinstance(entry, str):
            record.schema.append(entry)
            shapes.append(None)
            continue
        if not isinstance(entry, dict) or not any(k in entry for k in ENTRY_KEYS):
            raise ValueError(f"{where} must be a label or an object with one of "
                             f"{', '.join(ENTRY_KEYS)}, got {entry!r}"[:200])
        shape: Shape = []
        for key, value in entry.items():
            if key in LABEL_KEYS and not isinstance(value, str):
                raise ValueError(f"{where}.{key} must be a string, got {value!r}"[:200])
            if key in LABEL_LIST_KEYS and not _strings(value):
                raise ValueError(f"{where}.{key} must be a list of strings, got {value!r}"[:200])
            if key == "trigger" and _strings(value):
                shape.append([key, "triggers", list(value)])
            elif isinstance(value, str):
                record.schema.append(value)
                shape.append([key, "label", None])
            elif _strings(value):
                record.schema.extend(value)
                shape.append([key, "labels", len(value)])
            else:
                shape.append([key, "value", value])
        shapes.append(shape)
    record.meta["shape"] = shapes


def shape_of(shape: Any) -> Shape | None:
    """A stored shape entry in today's form. Shapes stored before SPO and KG were read (and
    those `schema_batches` builds) are EE dicts `{trigger: true, arguments: n}` whose event
    type came first."""
    if not isinstance(shape, dict):
        return shape
    return [["event_type", "label", None], *(
        [key, "labels", value] if key == "arguments" else [key, "value", value]
        for key, value in shape.items())]


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def tie_triggers(record: Record) -> None:
    """Each EEA schema trigger word to the first event of its type holding that trigger not
    yet taken (`["event", i]`), else to a new mention labelled with the event type
    (`["mention", i]`): either way the word is anchored, translated and checked."""
    taken: set[int] = set()
    for entry in object_entries(record):
        shape, values = entry
        event_type = values.get("event_type")
        for part in shape:
            if part[1] != "triggers":
                continue
            refs = []
            for word in part[2]:
                if isinstance(word, list):  # tied already
                    refs.append(word)
                    continue
                found = next((i for i, e in enumerate(record.events) if i not in taken
                              and e.type == event_type and e.trigger == word), None)
                if found is None:
                    record.mentions.append(Mention(str(event_type), word))
                    refs.append(["mention", len(record.mentions) - 1])
                else:
                    taken.add(found)
                    refs.append(["event", found])
            part[2] = refs


def object_entries(record: Record) -> list[tuple[Shape, dict[str, Any]]]:
    """(shape, {key: label}) for each object entry, its labels taken from `record.schema`."""
    labels = iter(record.schema)
    out = []
    for stored in record.meta.get("shape", [None] * len(record.schema)):
        shape = shape_of(stored)
        if shape is None:
            next(labels, None)
            continue
        values: dict[str, Any] = {}
        for key, kind, value in shape:
            if kind == "label":
                values[key] = next(labels, "")
            elif kind == "labels":
                values[key] = [next(labels, "") for _ in range(value)]
        out.append((shape, values))
    return out


def _trigger(record: Record, ref: Any, event_type: Any) -> str:
    kind, i = ref if isinstance(ref, list) and len(ref) == 2 else ("", -1)
    if kind == "event" and 0 <= i < len(record.events):
        return record.events[i].trigger
    if kind == "mention" and 0 <= i < len(record.mentions):
        return record.mentions[i].text
    if isinstance(ref, str):
        return ref
    # The event it named is gone (removed in review): the first trigger of its type.
    return next((e.trigger for e in record.events if e.type == event_type), "")


def write_schema(record: Record) -> list[Any]:
    """The schema as read, with the record's (translated) labels and trigger words."""
    out: list[Any] = []
    labels = iter(record.schema)
    for stored in record.meta.get("shape", [None] * len(record.schema)):
        shape = shape_of(stored)
        if shape is None:
            out.append(next(labels))
            continue
        entry: dict[str, Any] = {}
        for key, kind, value in shape:
            if kind == "label":
                entry[key] = next(labels)
            elif kind == "labels":
                entry[key] = [next(labels) for _ in range(value)]
            elif kind == "triggers":
                entry[key] = value  # filled below, once the event type is known
            else:
                entry[key] = value
        for key, kind, value in shape:
            if kind == "triggers":
                entry[key] = [_trigger(record, ref, entry.get("event_type")) for ref in value]
        out.append(entry)
    return out
