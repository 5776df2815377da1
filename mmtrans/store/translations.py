"""Translations (`translations`): one row per attempt at a record, never updated; a
record's current translation is its latest row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..records import Record
from ._core import Core, dumps, now

#: The latest translation row of each record of run `?` (a record's current state), as a
#: table to select from: the one place this is written.
LATEST = """(select t.* from translations t
    join (select record_id, max(id) as id from translations where run_id = ?
          group by record_id) latest on latest.id = t.id)"""


@dataclass
class Translation:
    record_id: str
    attempt: int
    status: str
    target: Record | None
    problems: list[dict[str, str]]
    notes: list[str]
    request_key: str | None
    #: Its row in `translations` (None until stored).
    id: int | None = None


def _translation(row: dict[str, Any]) -> Translation:
    return Translation(
        record_id=row["record_id"], attempt=row["attempt"], status=row["status"],
        target=Record.from_json(row["target"]) if row["target"] else None,
        problems=json.loads(row["problems"] or "[]"),
        notes=json.loads(row["notes"] or "[]"), request_key=row["request_key"],
        id=row["id"],
    )


class Translations(Core):
    def add_translation(self, run_id: str, t: Translation) -> None:
        """Store an attempt (grouped during a run: it is derived from a cached answer, so a
        row lost to a kill is recomputed on resume without asking again)."""
        self._insert("translations", {
            "run_id": run_id, "record_id": t.record_id, "attempt": t.attempt,
            "request_key": t.request_key, "status": t.status,
            "target": t.target.to_json() if t.target else None,
            "problems": dumps(t.problems), "notes": dumps(t.notes), "created": now(),
        })

    def _latest(self, run_id: str, columns: str = "*", where: str = "",
                args: tuple[Any, ...] = ()) -> Iterator[Any]:
        """Rows (sqlite3 tuples) of the latest translation of each record of the run."""
        return self._db.conn.execute(f"select {columns} from {LATEST} {where}",
                                     [run_id, *args])

    def latest_translations(self, run_id: str) -> dict[str, Translation]:
        """The current translation of every record that has one, by record id."""
        return {row["record_id"]: _translation(row)
                for row in self._db.query(f"select * from {LATEST}", [run_id])}

    def latest_statuses(self, run_id: str) -> list[str]:
        """The current status of every record that has a translation."""
        return [row[0] for row in self._latest(run_id, "status")]

    def latest_translation(self, run_id: str, record_id: str) -> Translation | None:
        """The current translation of one record (without reading the whole run's)."""
        rows = list(self._db.query(
            "select * from translations where run_id = ? and record_id = ? "
            "order by id desc limit 1", [run_id, record_id]))
        return _translation(rows[0]) if rows else None

    def done_ids(self, run_id: str, repair: int = 0) -> set[str]:
        """Records this run need not touch again: accepted, or flagged with no repair turn
        left. Read from the status columns, without decoding any translation."""
        return {row[0] for row in self._latest(
            run_id, "record_id",
            "where status = 'accepted' or (status = 'flagged' and attempt >= ?)", (repair,))}

    def stored_attempts(self, run_id: str) -> dict[str, set[int]]:
        """Which attempts of each record already have a translation row (a resumed run
        replays them from the cache without writing them again)."""
        out: dict[str, set[int]] = {}
        for record_id, attempt in self._db.conn.execute(
                "select record_id, attempt from translations where run_id = ? "
                "and status != 'failed'", [run_id]):
            out.setdefault(record_id, set()).add(attempt)
        return out

    def translation(self, translation_id: int) -> Translation | None:
        """One translation row by its id (the one a review judged)."""
        rows = list(self._db.query("select * from translations where id = ?", [translation_id]))
        return _translation(rows[0]) if rows else None

    def translations_since(self, translation_id: int, run_id: str | None = None,
                           limit: int | None = None) -> list[tuple[str, str]]:
        """(run, record) of every record with a translation row after `translation_id` (a
        running `translate` stored it; the review page patches those entries), the first
        `limit` of them."""
        return self._records_since("translations", translation_id, run_id, limit)
