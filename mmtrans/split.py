"""`mmtrans split`: train and test files from one dataset file, reproducible by seed.

As in the MMM paper, each sub-dataset gets a train set of a given size (500, 1000, 2000) and
the rest is its test set. Records sharing a text go to the same side, so no sentence is
trained on and tested on at once (IEPile instruction files hold one line per schema batch
of a text).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from . import formats
from .errors import ConfigError, InputError
from .files import atomic_path, check_target, writing
from .formats import Reject
from .records import Record


@dataclass
class SplitResult:
    train_path: str
    test_path: str
    train: int
    test: int


def parse_sizes(specs: list[str]) -> tuple[int | None, dict[str, int]]:
    """`["1000", "scnm.json=500"]` -> (1000 for every file, {"scnm.json": 500})."""
    default: int | None = None
    named: dict[str, int] = {}
    for spec in specs:
        name, _, value = spec.rpartition("=")
        try:
            n = int(value)
        except ValueError:
            raise ConfigError(f"--train {spec!r}: expected N or NAME=N") from None
        if n < 0:
            raise ConfigError(f"--train {spec!r}: the size cannot be negative")
        if name:
            named[name] = n
        else:
            default = n
    return default, named


def size_for(path: str | Path, default: int | None, named: dict[str, int]) -> int:
    """The train size of a file: by its name or stem, else the default."""
    p = Path(path)
    for key in (p.name, p.stem, str(path)):
        if key in named:
            return named[key]
    if default is None:
        raise ConfigError(f"{path}: no train size given for it (--train N or "
                          f"--train {p.name}=N)")
    return default


def output_paths(path: str | Path, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """`<dir>/<stem>.train<suffix>` and `<dir>/<stem>.test<suffix>`."""
    p = Path(path)
    where = Path(out_dir) if out_dir else p.parent
    return where / f"{p.stem}.train{p.suffix}", where / f"{p.stem}.test{p.suffix}"


def _json_lines(path: str | Path) -> bool:
    with open(path, encoding="utf-8-sig") as f:
        head = f.read(4096).lstrip()
    return not head.startswith("[")


def write_like(records: list[Record], source: str | Path, target: Path, fmt: str) -> None:
    """Write in the source's format and layout: a JSON Lines source named `.json` (IEPile's
    files) gives JSON Lines, though writers choose by suffix."""
    if _json_lines(source) and target.suffix != ".jsonl":
        with atomic_path(target, suffix="lines.jsonl") as tmp, writing(force=True):
            formats.write(records, tmp, fmt)
    else:
        formats.write(records, target, fmt)


def split_records(records: list[Record], train: int,
                  seed: int = 0) -> tuple[list[Record], list[Record]]:
    """(train, test): texts shuffled with `seed`, taken whole until `train` records are in
    the train side; each side in the input's order."""
    by_text: dict[str, list[Record]] = {}
    for record in records:
        by_text.setdefault(record.text, []).append(record)
    units = list(by_text.values())
    random.Random(seed).shuffle(units)
    chosen: list[Record] = []
    rest: list[Record] = []
    for unit in units:
        (chosen if len(chosen) < train else rest).extend(unit)
    order = {id(r): i for i, r in enumerate(records)}
    chosen.sort(key=lambda r: order[id(r)])
    rest.sort(key=lambda r: order[id(r)])
    return chosen, rest


def split(path: str | Path, train: int, seed: int = 0, out_dir: str | Path | None = None,
          fmt: str | None = None, force: bool = False) -> SplitResult:
    """Shuffle the file's texts with `seed`, take texts until `train` records are in the
    train file, and write the rest to the test file, both in the input's format. Existing
    train and test files are replaced only with `force` (checked before either is written);
    the input never."""
    if Path(path).is_dir():
        raise InputError(path, None, "split takes a file (export a uie folder to a file first)")
    fmt = fmt or formats.detect(path)
    records: list[Record] = []
    for item in formats.read(path, fmt):
        if isinstance(item, Reject):
            raise InputError(item.path, item.line, item.message)
        records.append(item)
    chosen, rest = split_records(records, train, seed)
    train_path, test_path = output_paths(path, out_dir)
    with writing(force, protected=[path]):
        for target in (train_path, test_path):
            check_target(target)
        write_like(chosen, path, train_path, fmt)
        write_like(rest, path, test_path, fmt)
    return SplitResult(str(train_path), str(test_path), len(chosen), len(rest))
