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
from . import iepile
from ._io import Reject, parse_items, write_json_values

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
        if not isinstance(values, list):
            raise ValueError(f"output[{label!r}] must be a list")
        for v in values:
            if task == "NER":
                if not isinstance(v, str):
                    raise ValueError(f"output[{label!r}] must hold strings")
                record.mentions.append(Mention(label, v))
            elif task in ("RE", "SPO"):
                if not isinstance(v, dict):
                    raise ValueError(f"output[{label!r}] must hold objects")
                head, tail = ("subject", "object") if "subject" in v else ("head", "tail")
                record.meta["keys"] = [head, tail]
                record.relations.append(Relation(str(v.get(head, "")), label,
                                                 str(v.get(tail, ""))))
            else:
                if not isinstance(v, dict):
                    raise ValueError(f"output[{label!r}] must hold objects")
                arguments = []
                if v.get("arguments") == {}:  # written back as {}, not as all-NAN
                    record.meta.setdefault("empty_arguments", []).append(len(record.events))
                for role, value in (v.get("arguments") or {}).items():
                    for text in value if isinstance(value, list) else [value]:
                        if text != NAN:
                            arguments.append(Argument(role, str(text)))
                record.events.append(Event(label, str(v.get("trigger", "")), arguments))


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
    task = _task(item, sentence, schema)
    known = template_of(sentence)
    record = Record(id=str(item.get("id") or record_id), text=text, task=task, meta={
        "keys": None, "item_keys": list(item), "lang": known[0] if known else None,
        "sentence": None if known else sentence,
        "extra": {k: item[k] for k in ("task", "source") if k in item},
    })
    shape = []
    for entry in schema:
        if isinstance(entry, dict):  # EE: {event_type, trigger, arguments}
            roles = entry.get("arguments", [])
            record.schema.extend([entry["event_type"], *roles])
            shape.append({k: (len(roles) if k == "arguments" else v)
                          for k, v in entry.items() if k != "event_type"})
        else:
            record.schema.append(entry)
            shape.append(None)
    record.meta["shape"] = shape
    try:
        if "output" in item:
            output = json.loads(item["output"])
            if not isinstance(output, dict):
                raise ValueError("'output' must be a JSON object")
            record.meta["output_keys"] = list(output)
            _read_output(record, task, output)
        else:
            iepile.add_values(record, RAW_KIND.get(task, "entity"), json.loads(item["label"]))
    except json.JSONDecodeError as e:
        raise ValueError(f"'output'/'label' is not JSON: {e.msg}") from None
    return record


def read(path: str | Path) -> Iterator[Record | Reject]:
    stem = Path(path).stem
    return parse_items(path, lambda item: parse(item.value, f"{stem}:{item.line}"))


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
    head, tail = record.meta.get("keys") or ["head", "tail"]
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
    if "id" in record.meta.get("item_keys", []):
        item["id"] = record.id
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
