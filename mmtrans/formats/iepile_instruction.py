"""IEPile instruction records: JSON Lines of {task, source, instruction, output} (training) or
{id, instruction, label} (test), for all seven tasks (NER, RE, SPO, KG, EE, EET, EEA).

`instruction` is a JSON string {instruction, schema, input}; `output` a JSON string keyed by
schema label (`_iepile_output`; KG's nested entities: `_iepile_kg`); a test `label` is the
raw IEPile list. The text is `input`; the schema's labels become the record's `schema`
labels (`_iepile_schema`); the instruction sentence is written in the record's language from
IEPile's templates (`data/templates/iepile.toml`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..records import Record
from ..resources import resource_dir
from . import _fields as fields
from . import iepile
from ._iepile_kg import read_kg, write_kg
from ._iepile_output import NAN, read_output, write_output  # noqa: F401 (NAN: evaluate.py)
from ._iepile_schema import read_schema, tie_triggers, write_schema
from ._io import InputReader, Reject, own_id, parse_items, write_json_values

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NAME = "iepile-instruction"
RAW_KIND = {"NER": "entity", "RE": "relation", "SPO": "relation", "KG": "relation",
            "EE": "event", "EET": "event", "EEA": "event"}
#: The task of an item that names none and whose sentence is no known template, by the key
#: its schema objects hold.
TASK_BY_SCHEMA_KEY = {"event_type": "EE", "predicate": "SPO", "entity_type": "KG"}


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
    first = schema[0] if schema else None
    if isinstance(first, dict):
        return next((t for k, t in TASK_BY_SCHEMA_KEY.items() if k in first), "EE")
    return "NER"


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
    read_schema(record, schema)
    try:
        if "output" in item:
            output = json.loads(fields.string(item, "output", "the item"))
            if not isinstance(output, dict):
                raise ValueError("'output' must be a JSON object")
            record.meta["output_keys"] = list(output)
            if task == "KG":
                read_kg(record, output)
            else:
                read_output(record, task, output, schema)
        else:
            label = json.loads(fields.string(item, "label", "the item"))
            iepile.add_values(record, RAW_KIND.get(task, "entity"), label)
    except json.JSONDecodeError as e:
        raise ValueError(f"'output'/'label' is not JSON: {e.msg}") from None
    tie_triggers(record)
    return record


def read(path: str | Path, source: InputReader | None = None) -> Iterator[Record | Reject]:
    return parse_items(path, parse, source=source)


def to_item(record: Record) -> dict[str, Any]:
    lang = record.meta.get("lang")
    sentence = record.meta.get("sentence")
    if sentence is None or lang is not None:
        sentence = templates().get(lang or "en", {}).get(record.task, sentence or "")
    schema = write_schema(record)
    item: dict[str, Any] = dict(record.meta.get("extra", {}))
    item.update(own_id(record))
    item["instruction"] = json.dumps({"instruction": sentence, "schema": schema,
                                      "input": record.text}, ensure_ascii=False)
    if "label" in record.meta.get("item_keys", []):
        item["label"] = json.dumps(iepile.values_of(record, RAW_KIND.get(record.task, "entity")),
                                   ensure_ascii=False)
    else:
        output = write_kg(record, schema) if record.task == "KG" else \
            write_output(record, schema)
        item["output"] = json.dumps(output, ensure_ascii=False)
    order = record.meta.get("item_keys") or list(item)
    return {k: item[k] for k in order if k in item} | item


def write(records: Iterable[Record], path: str | Path) -> int:
    return write_json_values((to_item(r) for r in records), path)
