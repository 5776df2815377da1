"""Shared file plumbing for readers and writers: JSON values with line numbers, atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import InputError
from ..records import Record


@dataclass
class Reject:
    """An input item that could not be read; the run records it and goes on."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


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

    A bad JSON Lines line becomes a Reject and reading goes on; a JSON array that breaks
    mid-way cannot be resynchronised, so it raises InputError at the line where it broke.
    """
    text = read_text(path)
    stripped = text.lstrip()
    if stripped.startswith("["):
        yield from _array_items(path, text)
        return
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield Item(n, n - 1, json.loads(line))
        except json.JSONDecodeError as e:
            yield Reject(str(path), n, f"not JSON: {e.msg} at column {e.colno}")


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


def parse_items(path: str | Path, parse: Callable[[Item], Record]) -> Iterator[Record | Reject]:
    """Every item of `path` through `parse`; an item it refuses (ValueError) or that is not
    JSON becomes a Reject with its line, and reading goes on."""
    for item in iter_json_items(path):
        if isinstance(item, Reject):
            yield item
            continue
        try:
            record = parse(item)
        except ValueError as e:
            yield Reject(str(path), item.line, str(e))
            continue
        record.meta["line"] = item.line
        yield record


def first_value(path: str | Path) -> Any:
    """The first JSON value of a file (for format detection), or None."""
    for item in iter_json_items(path):
        if isinstance(item, Item):
            return item.value
    return None


@contextmanager
def atomic_write(path: str | Path) -> Iterator[IO[str]]:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_values(values: Iterator[Any], path: str | Path) -> int:
    """A `.jsonl` path gets JSON Lines, any other a JSON array. Returns how many were written."""
    count = 0
    lines = str(path).endswith(".jsonl")
    with atomic_write(path) as f:
        if not lines:
            f.write("[\n")
        for value in values:
            if not lines and count:
                f.write(",\n")
            f.write(json.dumps(value, ensure_ascii=False))
            if lines:
                f.write("\n")
            count += 1
        if not lines:
            f.write("\n]\n")
    return count
