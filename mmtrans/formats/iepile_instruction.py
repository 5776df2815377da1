"""IEPile instruction records: JSON Lines of {task, source, instruction, output} (training) or
{id, instruction, label} (test).

`instruction` is a JSON string {instruction, schema, input}; `output` a JSON string keyed by
schema label (NER: strings; RE: {head, tail}; EE: {trigger, arguments: {role: value | NAN |
[values]}}); a test `label` is the raw IEPile list. The text is `input`; the schema becomes
the record's `schema` labels (EE: each event type followed by its roles); the instruction
sentence is written in the record's language from IEPile's templates
(`data/templates/iepile.toml`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..records import Argument, Event, Mention, Record, Relation
from ..resources import resource_dir
from . import _fields as fields
from . import iepile
from ._io import InputReader, Reject, own_id, parse_items, write_json_values

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NAME = "iepile-instruction"
NAN = "NAN"
RAW_KIND = {"NER": "entity", "RE": "relation", "SPO": "relation", "EE": "event",
            "EET": "event", "EEA": "event"}


@lru_cache(maxsize=1)
def templates() -> dict[str, dict[str, str]]:
    path = resource_dir("templates") / "iepile.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))


def template_of(sentence: str) -> tuple[str, str] | None:
    """(language, task) of a known IEPile instruction sentence."""
    for lang, by_task in templates().items():
        for task, text in by_task.items():
            if text == sentence:
                return lang, task
    return None


def sniff(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("instruction"), str) and \
        ("output" in value or "label" in value)


def _task(item: dict[str, Any], sentence: str, schema: list[Any]) -> str:
    if isinstance(item.get("task"), str):
        return item["task"]
    known = template_of(sentence)
    if known:
        return known[1]
    return "EE" if schema and isinstance(schema[0], dict) else "NER"


def _read_output(record: Record, task: str, output: dict[str, Any]) -> None:
    for label, values in output.items():
        where = f"output[{label!r}]"
        for k, v in enumerate(fields.array(values, where)):
            at = f"{where}[{k}]"
            if task == "NER":
                if not isinstance(v, str):
                    raise ValueError(f"{where} must hold strings")
                record.mentions.append(Mention(label, v))
            elif task in ("RE", "SPO"):
                v = fields.obj(v, at)
                head, tail = ("subject", "object") if "subject" in v else ("head", "tail")
                record.meta["keys"] = [head, tail]
                record.relations.append(Relation(fields.string(v, head, at), label,
                                                 fields.string(v, tail, at)))
            else:
                record.events.append(_event(record, label, fields.obj(v, at), at))


def _event(record: Record, label: str, value: dict[str, Any], where: str) -> Event:
    """One EE output value: {trigger, arguments: {role: value | NAN | [values]}}."""
    given = value.get("arguments")
    if given == {}:  # written back as {}, not as all-NAN
        record.meta.setdefault("empty_arguments", []).append(len(record.events))
    arguments = []
    for role, texts in fields.obj(given or {}, f"{where}.arguments").items():
        at = f"{where}.arguments[{role!r}]"
        for text in fields.strings(texts if isinstance(texts, list) else [texts], at):
            if text != NAN:
                arguments.append(Argument(role, text))
    trigger = fields.optional_string(value, "trigger", where) or ""
    return Event(label, trigger, arguments)


def _read_schema(record: Record, schema: list[Any]) -> None:
    """The schema's labels into `record.schema`, its shape (which entries are EE objects,
    their other keys) into meta, so the writer rebuilds the same schema."""
    shape = []
    for i, entry in enumerate(schema):
        where = f"schema[{i}]"
        if isinstance(entry, dict):  # EE: {event_type, trigger, arguments}
            roles = fields.strings(entry.get("arguments", []), f"{where}.arguments")
            record.schema.extend([fields.string(entry, "event_type", where), *roles])
            shape.append({k: (len(roles) if k == "arguments" else v)
                          for k, v in entry.items() if k != "event_type"})
        elif isinstance(entry, str):
            record.schema.append(entry)
            shape.append(None)
        else:
            raise ValueError(f"{where} must be a label or an event object, got {entry!r}"[:200])
    record.meta["shape"] = shape


def parse(item: Any, record_id: str) -> Record:
    if not sniff(item):
        raise ValueError("expected {instruction, output} or {instruction, label}")
    try:
        instruction = json.loads(item["instruction"])
        schema = instruction["schema"]
        text = instruction["input"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"'instruction' must be a JSON string with schema and input: {e}") \
            from None
    if not isinstance(text, str) or not isinstance(schema, list):
        raise ValueError("instruction needs a string 'input' and a list 'schema'")
    sentence = instruction.get("instruction", "")
    if not isinstance(sentence, str):
        raise ValueError("instruction.instruction must be a string")
    task = _task(item, sentence, schema)
    known = template_of(sentence)
    record = Record(id=record_id, text=text, task=task, meta={
        "keys": None, "item_keys": list(item), "lang": known[0] if known else None,
        "sentence": None if known else sentence,
        "extra": {k: item[k] for k in ("task", "source") if k in item},
    })
    _read_schema(record, schema)
    try:
        if "output" in item:
            output = json.loads(fields.string(item, "output", "the item"))
            if not isinstance(output, dict):
                raise ValueError("'output' must be a JSON object")
            record.meta["output_keys"] = list(output)
            _read_output(record, task, output)
        else:
            label = json.loads(fields.string(item, "label", "the item"))
            iepile.add_values(record, RAW_KIND.get(task, "entity"), label)
    except json.JSONDecodeError as e:
        raise ValueError(f"'output'/'label' is not JSON: {e.msg}") from None
    return record


def read(path: str | Path, source: InputReader | None = None) -> Iterator[Record | Reject]:
    return parse_items(path, parse, source=source)


def _schema(record: Record) -> list[Any]:
    out: list[Any] = []
    labels = iter(record.schema)
    for shape in record.meta.get("shape", [None] * len(record.schema)):
        if shape is None:
            out.append(next(labels))
            continue
        entry: dict[str, Any] = {"event_type": next(labels)}
        for key, value in shape.items():
            entry[key] = [next(labels) for _ in range(value)] if key == "arguments" else value
        out.append(entry)
    return out


def _event_roles(schema: list[Any]) -> dict[str, list[str]]:
    return {e["event_type"]: e.get("arguments", []) for e in schema if isinstance(e, dict)}


def _output(record: Record, schema: list[Any]) -> dict[str, Any]:
    keys = [e["event_type"] if isinstance(e, dict) else e for e in schema]
    output: dict[str, list[Any]] = {k: [] for k in keys}
    head, tail = iepile.relation_keys(record)
    for m in record.mentions:
        output.setdefault(m.label, []).append(m.text)
    for r in record.relations:
        output.setdefault(r.relation, []).append({head: r.head, tail: r.tail})
    roles_of = _event_roles(schema)
    empty = set(record.meta.get("empty_arguments", []))
    for i, e in enumerate(record.events):
        arguments: dict[str, Any] = {} if i in empty and not e.arguments else \
            {role: NAN for role in roles_of.get(e.type, [])}
        for a in e.arguments:
            current = arguments.get(a.role, NAN)
            arguments[a.role] = a.text if current == NAN else (
                [*current, a.text] if isinstance(current, list) else [current, a.text])
        value: dict[str, Any] = {"trigger": e.trigger} if e.trigger or \
            record.task != "EEA" else {}
        value["arguments"] = arguments
        output.setdefault(e.type, []).append(value)
    return output


def to_item(record: Record) -> dict[str, Any]:
    lang = record.meta.get("lang")
    sentence = record.meta.get("sentence")
    if sentence is None or lang is not None:
        sentence = templates().get(lang or "en", {}).get(record.task, sentence or "")
    schema = _schema(record)
    item: dict[str, Any] = dict(record.meta.get("extra", {}))
    item.update(own_id(record))
    item["instruction"] = json.dumps({"instruction": sentence, "schema": schema,
                                      "input": record.text}, ensure_ascii=False)
    if "label" in record.meta.get("item_keys", []):
        item["label"] = json.dumps(iepile.values_of(record, RAW_KIND.get(record.task, "entity")),
                                   ensure_ascii=False)
    else:
        item["output"] = json.dumps(_output(record, schema), ensure_ascii=False)
    order = record.meta.get("item_keys") or list(item)
    return {k: item[k] for k in order if k in item} | item


def write(records: Iterable[Record], path: str | Path) -> int:
    return write_json_values((to_item(r) for r in records), path)
