"""Format readers and writers, one module each, and auto-detection.

A reader streams `Record`s, and a `Reject` (file, line, what is wrong) for every item it
cannot read; a writer writes atomically and returns how many records it wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

from ..errors import InputError
from ..records import Record
from . import iepile, iepile_instruction, mre, stockmark, uie, uniner
from ._iepile_kg import relations_edited
from ._io import InputReader, Reject, check_input, first_value

#: Changes whenever the readers make different records of the same input (2: ids became
#: "<file>:<index>", the dataset's own id moved to meta["id"]; 3: JSON Lines split on "\\n"
#: alone, so a text holding U+2028 or U+0085 is one record, not two rejects; 4: IEPile's KG
#: and SPO instructions, EET trigger lists and EEA schema triggers are read). A stored run
#: read under another version holds other records, so it must not be resumed as the same.
READER_VERSION = 4

FORMATS: dict[str, ModuleType] = {
    m.NAME: m for m in (mre, stockmark, iepile, iepile_instruction, uniner, uie)
}


def detect(path: str | Path, source: InputReader | None = None) -> str:
    """The name of the format of `path`, judged from its first JSON value (a folder: uie).
    Read through `source`, what detection read is read again by the reader that follows."""
    if Path(path).is_dir():
        return uie.NAME
    value = first_value(path, source)
    for name, module in FORMATS.items():
        if module.sniff(value):
            return name
    raise InputError(path, 1, f"cannot tell the format; name one of {', '.join(FORMATS)}")


def get(name: str) -> ModuleType:
    try:
        return FORMATS[name]
    except KeyError:
        raise InputError(name, None, f"unknown format; known: {', '.join(FORMATS)}") from None


def read(path: str | Path, fmt: str | None = None, source: InputReader | None = None
         ) -> Iterator[Record | Reject]:
    """The records and rejects of `path`, streamed; through `source` (an `InputReader` of
    `path`) when the caller also wants the hash of the bytes read."""
    return get(fmt or detect(path, source)).read(path, source)


def write(records: Iterable[Record], path: str | Path, fmt: str) -> int:
    return get(fmt).write(records, path)


__all__ = ["FORMATS", "READER_VERSION", "InputReader", "Reject", "check_input", "detect", "read",
           "relations_edited", "write"]
