"""Shared file plumbing for readers: JSON values with line numbers (writing: mmtrans.files)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import InputError
from ..files import atomic_write, write_json_values  # noqa: F401 (the writers import them here)
from ..records import Record

T = TypeVar("T")


@dataclass
class Reject:
    """An input item that could not be read; the run records it and goes on.

    `path` is resolved (one file named two ways is one file); `index` is the item's 0-based
    position in its file, None when the file itself could not be read."""

    path: str
    line: int | None
    message: str
    index: int | None = None

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        item = "" if self.index is None else f" item {self.index}:"
        return f"{where}:{item} {self.message}"


def resolved(path: str | Path) -> str:
    """The absolute path that names a file however it was given (./a.json, a.json, x/../a.json)."""
    return str(Path(path).resolve())


@dataclass
class Item:
    """One JSON value of an input file: its 1-based line and its 0-based position."""

    line: int
    index: int
    value: Any


def read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise InputError(path, None, "no such file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, None, f"cannot read: {e}") from e


def iter_json_items(path: str | Path) -> Iterator[Item | Reject]:
    """The values of a JSON array, or of a JSON Lines file, each with the line it starts on.

    An item's index counts items (blank lines are none). A bad JSON Lines line becomes a
    Reject and reading goes on; a JSON array that breaks mid-way cannot be resynchronised,
    so it raises InputError at the line where it broke.
    """
    text = read_text(path)
    stripped = text.lstrip()
    if stripped.startswith("["):
        yield from _array_items(path, text)
        return
    index = 0
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield Item(n, index, json.loads(line))
        except json.JSONDecodeError as e:
            yield Reject(resolved(path), n, f"not JSON: {e.msg} at column {e.colno}", index)
        index += 1


def _array_items(path: str | Path, text: str) -> Iterator[Item]:
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line = 1 + text.count("\n", 0, pos)
    index = 0
    n = len(text)

    def skip(pos: int, line: int) -> tuple[int, int]:
        while pos < n and text[pos] in " \t\r\n":
            if text[pos] == "\n":
                line += 1
            pos += 1
        return pos, line

    pos, line = skip(pos, line)
    if pos < n and text[pos] == "]":
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise InputError(path, e.lineno, f"not JSON: {e.msg} at column {e.colno}") from e
        yield Item(line, index, value)
        index += 1
        line += text.count("\n", pos, end)
        pos, line = skip(end, line)
        if pos < n and text[pos] == ",":
            pos, line = skip(pos + 1, line)
            continue
        if pos < n and text[pos] == "]":
            return
        raise InputError(path, line, "expected ',' or ']' between array items")


def refusal(error: Exception) -> str:
    """What a Reject says about an item its reader raised `error` on: a reader's ValueError
    is its own sentence; anything else is named by its type, so a reader's slip is visible."""
    if isinstance(error, ValueError):
        return str(error)
    return f"cannot read this item ({type(error).__name__}: {error})"


def checked_items(path: str | Path, parse: Callable[[Item], T]
                  ) -> Iterator[tuple[Item, T] | Reject]:
    """Every item of `path` with what `parse` makes of it. Whatever `parse` raises on one item
    (any Exception) and every line that is not JSON becomes a Reject naming the file, the line
    and the item's index, and reading goes on: one bad item never costs the others."""
    file = resolved(path)
    for item in iter_json_items(path):
        if isinstance(item, Reject):
            yield item
            continue
        try:
            yield item, parse(item)
        except Exception as e:  # noqa: BLE001 (every item's fault is reported, not raised)
            yield Reject(file, item.line, refusal(e), item.index)


def parse_items(path: str | Path, parse: Callable[[Any, str], Record],
                name: str | None = None) -> Iterator[Record | Reject]:
    """Every item of `path` as a Record (`parse(value, record_id)`) or a Reject.

    The record id is `<name>:<index>` (`name` defaults to the file's name), unique in a run
    whatever ids the dataset repeats; the item's own `id`, if it has one, is kept as read in
    `meta["id"]` (unless `parse` set it from another field), with `meta["line"]` and the
    resolved `meta["path"]`."""
    file = resolved(path)
    name = name or Path(path).name
    for checked in checked_items(path, lambda item: parse(item.value, f"{name}:{item.index}")):
        if isinstance(checked, Reject):
            yield checked
            continue
        item, record = checked
        if isinstance(item.value, dict) and "id" in item.value:
            record.meta.setdefault("id", item.value["id"])
        record.meta["line"] = item.line
        record.meta["path"] = file
        yield record


def own_id(record: Record) -> dict[str, Any]:
    """`{"id": <the dataset's own id, as read>}` when the record's item had an `id` field,
    else nothing (not when its id came from another field, such as stockmark's `curid`)."""
    if "id" not in record.meta or record.meta.get("id_field", "id") != "id":
        return {}
    return {"id": record.meta["id"]}


def with_own_id(record: Record, item: dict[str, Any]) -> dict[str, Any]:
    """`item` with the record's own id first (see `own_id`)."""
    return {**own_id(record), **item}


def first_value(path: str | Path) -> Any:
    """The first JSON value of a file (for format detection), or None."""
    for item in iter_json_items(path):
        if isinstance(item, Item):
            return item.value
    return None
