"""Packing: several records in one request, so the instruction and the one-shot example are
paid once for K records, and the answer split back into one reply per record.

Everything after the split stays per record: its parser, its checks, its repair turns (sent
unpacked), its review. An answer that cannot be split whole (not a JSON array, a missing or
repeated index, a count that does not match) splits into nothing: each of its records is
then asked alone.
"""

from __future__ import annotations

import json
import re

from .prompts import Message, Prompt
from .scripts import language_name

_dumps = json.JSONEncoder(ensure_ascii=False).encode  # one encoder for every call

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)

INSTRUCTION = (
    "Translate each of these {k} records from {source} into {target}, each exactly as in the "
    "example. Answer with one JSON array of {k} answers in the same order: each answer is the "
    "JSON object you would give for that record alone, with its \"index\" added. Nothing "
    "before or after the array.\n{payloads}"
)


def with_index(payload: str, index: int) -> str:
    """A record's payload (a JSON object's text) with `"index"` as its first key."""
    return f'{{"index": {index}, {payload.lstrip()[1:]}'


def pack_messages(prompt: Prompt, payloads: list[str], src: str, tgt: str) -> list[Message]:
    """The prompt's system message and one-shot example, then every payload, numbered."""
    fixed = prompt.messages(payloads[0], src, tgt)[:3]
    body = "\n".join(with_index(p, i) for i, p in enumerate(payloads))
    text = INSTRUCTION.format(k=len(payloads), source=language_name(src),
                              target=language_name(tgt), payloads=body)
    return [*fixed, {"role": "user", "content": text}]


def split_answer(reply: str, k: int) -> list[str] | None:
    """One reply per record, in order, from a packed answer; None when it does not split
    whole into exactly `k` answers indexed 0..k-1."""
    fenced = _FENCE.search(reply)
    body = fenced.group(1) if fenced else reply
    start, end = body.find("["), body.rfind("]")
    if start < 0 or end < start:
        return None
    try:
        items = json.loads(body[start:end + 1])
    except (json.JSONDecodeError, RecursionError):  # (nested too deeply to read)
        return None
    if not isinstance(items, list) or len(items) != k:
        return None
    by_index: dict[int, str] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("index"), int):
            return None
        index = item.pop("index")
        if index in by_index or not 0 <= index < k:
            return None
        by_index[index] = _dumps(item)
    return [by_index[i] for i in range(k)]
