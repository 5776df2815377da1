"""Shared file plumbing for readers: JSON values with line numbers (writing: mmtrans.files)."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import ijson

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
    """A small file's whole text (a dataset's labels.json); inputs are read as streams."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise InputError(path, None, "no such file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, None, f"cannot read: {e}") from e


def open_input(path: str | Path) -> IO[bytes]:
    """`path` opened for reading bytes; InputError (one line: no such file, cannot read)."""
    try:
        return open(path, "rb")  # noqa: SIM115 (the caller closes it)
    except FileNotFoundError as e:
        raise InputError(path, None, "no such file") from e
    except OSError as e:
        raise InputError(path, None, f"cannot read: {e}") from e


def check_input(path: str | Path) -> None:
    """InputError unless `path` is a directory (a dataset of split files) or a file that
    opens: asked before anything slow (a model loading, a server asked) so a typo is one line."""
    if not Path(path).is_dir():
        open_input(path).close()


#: Bytes read from an input at a time.
CHUNK = 1 << 16
#: The longest line of a JSON array kept whole for finding where its items begin.
LINE_CAP = 16 << 20
_BOM = b"\xef\xbb\xbf"
_SPACE = b" \t\r\n"


class InputReader:
    """A binary input file read once: sha256 and count of every byte that passes through,
    and a replay of what format detection peeked at, so detecting the format costs neither
    a second read nor a second hash."""

    def __init__(self, path: str | Path, hashing: bool = True):
        self.path = Path(path)
        self.hashing = hashing  # False: the caller hashed the file already
        self._file: IO[bytes] = open_input(path)  # closed by close()
        self._digest = hashlib.sha256()
        self.bytes_read = 0
        self._replay: list[bytes] = []
        self._recorded: list[bytes] | None = None

    def read(self, n: int = CHUNK) -> bytes:
        if self._replay:
            data = self._replay.pop(0)
        else:
            try:
                data = self._file.read(n)
            except OSError as e:
                raise InputError(self.path, None, f"cannot read: {e}") from e
            if self.hashing:
                self._digest.update(data)
            self.bytes_read += len(data)
        if self._recorded is not None:
            self._recorded.append(data)
        return data

    @contextmanager
    def peeking(self) -> Iterator[None]:
        """What is read inside is read again by the next reader (the first item, for
        detection)."""
        self._recorded = []
        try:
            yield
        finally:
            self._replay = self._recorded + self._replay
            self._recorded = None

    def hexdigest(self) -> str:
        """sha256 of the whole file: what no reader consumed (the rest of a file whose
        array broke off) is read now, so the hash is always of every byte."""
        if not self.hashing:
            raise ValueError("this reader does not hash")
        while block := self._file.read(CHUNK):
            self._digest.update(block)
            self.bytes_read += len(block)
        return self._digest.hexdigest()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> InputReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def opened(path: str | Path, source: InputReader | None) -> Iterator[InputReader]:
    """`source` when the caller reads `path` through one already, else a reader of its own."""
    if source is not None:
        yield source
        return
    with InputReader(path) as reader:
        yield reader


def _chunks(source: InputReader) -> Iterator[bytes]:
    while chunk := source.read(CHUNK):
        yield chunk


def iter_json_items(path: str | Path, source: InputReader | None = None
                    ) -> Iterator[Item | Reject]:
    """The values of a JSON array, or of a JSON Lines file, each with the line it starts on,
    read as a stream (memory holds a chunk and an item, never the file).

    An item's index counts items (blank lines are none). JSON Lines are split on `\\n`
    alone and each line decoded by itself, so U+2028 or U+0085 inside a text stay in it,
    and a line that is not UTF-8 or not JSON is one Reject while reading goes on. A JSON
    array that breaks mid-way cannot be resynchronised: the items before the break are
    read, and the rest of the file is one Reject (index None) at the line where it broke.
    """
    with opened(path, source) as reader:
        chunks = _chunks(reader)
        head, line = b"", 1
        for n, chunk in enumerate(chunks):
            if n == 0 and chunk.startswith(_BOM):
                chunk = chunk[len(_BOM):]
            head = chunk.lstrip(_SPACE)
            line += chunk.count(b"\n", 0, len(chunk) - len(head))
            if head:
                break
        if not head:
            return
        if head.startswith(b"["):
            yield from _array_items(resolved(path), head, line, chunks)
        else:
            yield from _json_lines(resolved(path), head, line, chunks)


def _lines(first: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Lines split on b"\\n" only (every other line break is text inside a line)."""
    tail: list[bytes] = []
    for chunk in itertools.chain([first], chunks):
        parts = chunk.split(b"\n")
        if len(parts) > 1:
            yield b"".join([*tail, parts[0]])
            tail = []
            yield from parts[1:-1]
        if parts[-1]:
            tail.append(parts[-1])
    if tail:
        yield b"".join(tail)


def _json_lines(file: str, first: bytes, line: int, chunks: Iterator[bytes]
                ) -> Iterator[Item | Reject]:
    index = 0
    for n, raw in enumerate(_lines(first, chunks), line):
        if not raw.strip():
            continue
        try:
            yield Item(n, index, json.loads(raw.decode("utf-8")))
        except UnicodeDecodeError as e:
            yield Reject(file, n, f"not UTF-8 at byte {e.start + 1} of the line: {e.reason}",
                         index)
        except json.JSONDecodeError as e:
            yield Reject(file, n, f"not JSON: {e.msg} at column {e.colno}", index)
        index += 1


#: A JSON string or a bracket: all that tells the depth along one line. JSON strings never
#: hold a raw line break, so a line never starts inside one and can be read on its own.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _next_item_opens(line: bytes) -> bool:
    """On a line where an array item ended and the next one does not: whether the next
    one begins on it. That item cannot be a scalar (it would end on this line too), so it
    begins here when a bracket opens after the last point of the line's lowest depth (the
    depth between items)."""
    depth = low = 0
    opened = False
    for token in _TOKEN.finditer(line):
        c = line[token.start()]
        if c in b"[{":
            depth += 1
            opened = True
        elif c in b"]}":
            depth -= 1
            if depth <= low:
                low, opened = depth, False
    return opened


def _ijson_message(error: Exception) -> str:
    text = error.args[0] if error.args else str(error)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = str(text)
    if text.startswith(("b'", 'b"')):
        text = text[2:]
    return text.replace("\\n", "\n").splitlines()[0].strip() if text.strip() else "broken"


def _array_items(file: str, head: bytes, line: int, chunks: Iterator[bytes]
                 ) -> Iterator[Item | Reject]:
    """A JSON array's items, parsed by ijson from pieces of at most one line each.

    ijson tells no positions, so lines come from what was fed: an item ends on the line
    whose piece completed it (no JSON token spans lines). It starts on the line where the
    item before it ended when it also ends there, or when a bracket opens after that
    item's end (`_next_item_opens`); else on the first later line holding more than spaces
    and commas. Compact arrays (one line) and indented ones (`},` lines) need no scan.
    One loop with local state: it runs once per line of the input."""
    values: list[Any] = ijson.sendable_list()
    parser = ijson.items_coro(values, "item", use_float=True)
    index = 0
    next_start: int | None = None  # where the next item to end began, once known
    awaiting = False  # it begins on the first later line with more than spaces and commas
    opening = True  # this line holds the array's "["
    ended_here = False  # an item ended on this line
    plain = True  # this line holds only spaces, commas and closing brackets
    parts: list[bytes] | None = []  # this line's bytes (None: longer than LINE_CAP)
    size = 0
    commas, closers = _SPACE + b",", _SPACE + b",}]"
    broken: ijson.JSONError | None = None
    for chunk in itertools.chain([head], chunks, [b""]):
        start = 0
        while True:
            if chunk:
                end = chunk.find(b"\n", start) + 1
                piece = chunk[start:end or len(chunk)]
                if not piece:
                    break
                start = end or len(chunk)
            else:
                piece = b""
            if awaiting and piece.translate(None, commas):
                next_start, awaiting = line, False
            if plain and piece.translate(None, closers):
                plain = False
            if parts is not None:
                parts.append(piece)
                size += len(piece)
                if size > LINE_CAP:
                    parts = None
            try:
                if piece:
                    parser.send(piece)
                else:  # the end of the file
                    parser.close()
            except ijson.JSONError as e:
                broken = e
            for value in values:  # those completed before a break are kept too
                yield Item(line if ended_here or next_start is None else next_start, index,
                           value)
                ended_here = True
                index += 1
            del values[:]
            if broken is not None:
                what = _ijson_message(broken)
                if "premature EOF" in what:
                    what = "the file ends inside the array (cut short?)"
                yield Reject(file, line, f"not JSON: {what}; the rest of the file (from item "
                                         f"{index} on) is not read")
                return
            if not piece:
                return
            if end:  # the line is complete: where does the next item begin?
                if ended_here or opening:
                    text = b"".join(parts) if parts is not None else b""
                    if opening:  # the items begin after the "["
                        text = text[text.index(b"[") + 1:] if b"[" in text else b""
                    begins = not plain and parts is not None and _next_item_opens(text)
                    next_start, awaiting = (line, False) if begins else (None, True)
                opening = ended_here = False
                plain, parts, size = True, [], 0
                line += 1


def refusal(error: Exception) -> str:
    """What a Reject says about an item its reader raised `error` on: a reader's ValueError
    is its own sentence; anything else is named by its type, so a reader's slip is visible."""
    if isinstance(error, ValueError):
        return str(error)
    return f"cannot read this item ({type(error).__name__}: {error})"


def checked_items(path: str | Path, parse: Callable[[Item], T],
                  source: InputReader | None = None) -> Iterator[tuple[Item, T] | Reject]:
    """Every item of `path` with what `parse` makes of it. Whatever `parse` raises on one item
    (any Exception) and every line that is not JSON becomes a Reject naming the file, the line
    and the item's index, and reading goes on: one bad item never costs the others."""
    file = resolved(path)
    for item in iter_json_items(path, source):
        if isinstance(item, Reject):
            yield item
            continue
        try:
            yield item, parse(item)
        except Exception as e:  # noqa: BLE001 (every item's fault is reported, not raised)
            yield Reject(file, item.line, refusal(e), item.index)


def parse_items(path: str | Path, parse: Callable[[Any, str], Record],
                name: str | None = None, source: InputReader | None = None
                ) -> Iterator[Record | Reject]:
    """Every item of `path` as a Record (`parse(value, record_id)`) or a Reject.

    The record id is `<name>:<index>` (`name` defaults to the file's name), unique in a run
    whatever ids the dataset repeats; the item's own `id`, if it has one, is kept as read in
    `meta["id"]` (unless `parse` set it from another field), with `meta["line"]` and the
    resolved `meta["path"]`."""
    file = resolved(path)
    name = name or Path(path).name
    for checked in checked_items(path, lambda item: parse(item.value, f"{name}:{item.index}"),
                                 source):
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


def first_value(path: str | Path, source: InputReader | None = None) -> Any:
    """The first JSON value of a file (for format detection), or None. Read through `source`,
    it is read again by the next reader of `source`, so detection adds no read."""
    with opened(path, source) as reader, reader.peeking():
        for item in iter_json_items(path, reader):
            if isinstance(item, Item):
                return item.value
    return None
