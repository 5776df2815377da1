"""`mmtrans check`: validate a translated file against its source, with no model at all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import formats
from .checks import Problem, run_checks
from .fidelity import FidelityChecker
from .formats import Reject
from .labels import find_tables, load_tables
from .pairing import by_position, pair
from .records import Record

#: What `check` says when the files carry no ids to pair their records by.
#: Records per embedding call of the fidelity check.
FIDELITY_BATCH = 64
BY_POSITION = ("the records carry no ids: each translated record is paired with the source "
               "record at its position (a source record whose labels cannot match is taken "
               "as left out)")


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


@dataclass
class Comparison:
    """The verdicts of one check, and what a person should know about them (`notes`: that
    pairing went by position, that source items could not be read). Iterating yields the
    verdicts."""

    notes: list[str]
    verdicts: list[Verdict]

    def __iter__(self) -> Iterator[Verdict]:
        return iter(self.verdicts)


def check_files(
    source: str | Path,
    target: str | Path,
    src: str,
    tgt: str,
    labels: list[str],
    source_format: str | None = None,
    target_format: str | None = None,
    fidelity: FidelityChecker | None = None,
) -> Comparison:
    """One verdict per translated record, checked against the source record it translates
    (paired by id, see `pairing`), in the translated file's order; then one verdict per source
    record that has no translated record. A translated item that cannot be read is a `format`
    problem at its line. With `fidelity`, every paired record is also judged for content
    added or dropped."""
    read = list(formats.read(source, source_format))
    sources = [r for r in read if isinstance(r, Record)]
    unreadable = [r for r in read if isinstance(r, Reject)]
    table = load_tables(labels or find_tables(sources, src, tgt), src, tgt)
    table.require(sources)
    expected = [table.translate(r) for r in sources]
    items = list(formats.read(target, target_format))
    targets = [r for r in items if isinstance(r, Record)]
    by_target = {p.target: p.source for p in pair(expected, targets) if p.target is not None}
    positional = by_position(expected, targets)
    verdicts, k = [], 0
    judged: list[tuple[Verdict, Record, Record]] = []
    for item in items:
        if isinstance(item, Reject):
            where = f"item {item.index}" if item.index is not None else "file"
            verdicts.append(Verdict(item.line, where, [Problem("format", item.message, "line")]))
            continue
        verdicts.append(_verdict(item, by_target.get(k), expected, src, tgt, positional))
        if fidelity is not None and by_target.get(k) is not None:
            judged.append((verdicts[-1], expected[by_target[k]], item))
        k += 1
    for i in range(0, len(judged), FIDELITY_BATCH):  # a few embedding calls, not one a record
        chunk = judged[i:i + FIDELITY_BATCH]
        for (verdict, _, _), found in zip(chunk, fidelity.check_many(  # type: ignore[union-attr]
                [(e, t) for _, e, t in chunk])):
            verdict.problems += found.problems
    paired = set(by_target.values())
    # A source record left out of the translation is a defect too, never a silent pass.
    verdicts += [Verdict(None, r.id, [Problem("format", f"no translated record ({_named(r)})")])
                 for i, r in enumerate(sources) if i not in paired]
    notes = [BY_POSITION] if positional else []
    if unreadable:
        notes.append(f"{len(unreadable)} source item(s) cannot be read, so no translation of "
                     f"them is expected; the first: {unreadable[0]}")
    return Comparison(notes, verdicts)


def _verdict(item: Record, source: int | None, expected: list[Record], src: str, tgt: str,
             positional: bool) -> Verdict:
    line = item.meta.get("line")
    if source is None:
        what = "left to pair it with" if positional or "id" not in item.meta else "with this id"
        return Verdict(line, item.id, [Problem("format", f"no source record {what}")])
    return Verdict(line, expected[source].id,
                   run_checks(expected[source], item, src, tgt).problems)


def _named(record: Record) -> str:
    """Where a source record is, for a person: its line, and its own id if it has one."""
    own = f", id {record.meta['id']}" if record.meta.get("id") is not None else ""
    return f"source line {record.meta.get('line')}{own}"


__all__ = ["BY_POSITION", "Comparison", "Verdict", "check_files"]
