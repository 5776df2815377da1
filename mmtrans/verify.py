"""`mmtrans check`: validate a translated file against its source, with no model at all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import formats
from .checks import Problem, run_checks
from .formats import Reject
from .labels import find_tables, load_tables


@dataclass
class Verdict:
    line: int | None
    id: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"line": self.line, "id": self.id, "ok": self.ok,
                "problems": [{"code": p.code, "message": p.message} for p in self.problems]}


def check_files(
    source: str | Path,
    target: str | Path,
    src: str,
    tgt: str,
    labels: list[str],
    source_format: str | None = None,
    target_format: str | None = None,
) -> Iterator[Verdict]:
    """One verdict per target record, paired with the source record at the same position.
    A target item that cannot be read is a `format` problem at its line."""
    sources = [r for r in formats.read(source, source_format) if not isinstance(r, Reject)]
    table = load_tables(labels or find_tables(sources, src, tgt), src, tgt)
    table.require(sources)
    count = 0
    for i, item in enumerate(formats.read(target, target_format)):
        count = i + 1
        if isinstance(item, Reject):
            yield Verdict(item.line, f"#{i}", [Problem("format", item.message, "line")])
            continue
        line = item.meta.get("line")
        if i >= len(sources):
            yield Verdict(line, item.id, [Problem("format", "no source record at this position")])
            continue
        expected = table.translate(sources[i])
        yield Verdict(line, expected.id, run_checks(expected, item, src, tgt).problems)
    # A missing target record is a defect too, not a silent pass.
    for missing in sources[count:]:
        yield Verdict(None, missing.id, [Problem("format", "no translated record")])
