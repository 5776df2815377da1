"""What the model sees of a record, and how its reply becomes a record again.

The model gets the text and its annotated strings as JSON, with labels already translated,
and answers in the same shape. A reply that does not parse into that shape is a `format`
problem; nothing here judges the translation itself (that is `checks`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import regex

from .checks import Problem
from .records import Argument, Event, Mention, Record, Relation

_dumps = json.JSONEncoder(ensure_ascii=False).encode  # one encoder for every call

_FENCE = regex.compile(r"```(?:json)?\s*(.*?)```", regex.S)


def to_payload(record: Record) -> dict[str, Any]:
    payload: dict[str, Any] = {"text": record.text}
    if record.mentions or not (record.relations or record.events):
        payload["entities"] = [{"label": m.label, "text": m.text} for m in record.mentions]
    if record.relations:
        payload["relations"] = [{"head": r.head, "relation": r.relation, "tail": r.tail}
                                for r in record.relations]
    if record.events:
        payload["events"] = [
            {"type": e.type, "trigger": e.trigger,
             "arguments": [{"role": a.role, "text": a.text} for a in e.arguments]}
            for e in record.events
        ]
    return payload


def payload_json(record: Record) -> str:
    return _dumps(to_payload(record))


def extract_json(reply: str) -> Any:
    """The JSON object in a reply, inside a code fence or not."""
    fenced = _FENCE.search(reply)
    body = fenced.group(1) if fenced else reply
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object in the reply")
    try:
        return json.loads(body[start:end + 1])
    except RecursionError:  # a model's answer of 100,000 nested brackets
        raise ValueError("the reply's JSON is nested too deeply to read") from None


def _strings(items: Any, name: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise ValueError(f"'{name}' must be a list")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in keys):
            raise ValueError(f"{name}[{i}] needs string {', '.join(keys)}")
    return items


def reply_object(reply: str) -> dict[str, Any]:
    """The reply's JSON object, which must hold a string 'text'; ValueError otherwise."""
    data = extract_json(reply)
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ValueError("the reply needs a string 'text'")
    return data


def unparsable(error: ValueError) -> list[Problem]:
    return [Problem("format", f"reply does not parse: {error}", "reply")]


def parse_reply(reply: str, expected: Record) -> tuple[Record | None, list[Problem]]:
    """The model's reply -> a target record (text label and meta carried over from
    `expected`), or None and a `format` problem saying what is wrong."""
    try:
        data = reply_object(reply)
        mentions = [Mention(e["label"], e["text"])
                    for e in _strings(data.get("entities", []), "entities", ("label", "text"))]
        relations = [Relation(r["head"], r["relation"], r["tail"])
                     for r in _strings(data.get("relations", []), "relations",
                                       ("head", "relation", "tail"))]
        events = []
        for i, e in enumerate(_strings(data.get("events", []), "events", ("type", "trigger"))):
            args = _strings(e.get("arguments", []), f"events[{i}].arguments", ("role", "text"))
            events.append(Event(e["type"], e["trigger"],
                                [Argument(a["role"], a["text"]) for a in args]))
    except ValueError as e:  # json.JSONDecodeError is one
        return None, unparsable(e)
    # Entity types of heads and tails are labels the model never sees: carry them over.
    for i, (r, x) in enumerate(zip(relations, expected.relations)):
        relations[i] = replace(r, head_label=x.head_label, tail_label=x.tail_label)
    return replace(expected, text=data["text"], mentions=mentions, relations=relations,
                   events=events), []
