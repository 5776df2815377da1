"""The run's input: its records (`records`), the items that could not be read
(`rejects`), and how many items each input file held (`inputs`)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from ..formats import Reject
from ..records import Record
from ._core import Core, now


class Records(Core):
    def add_records(self, run_id: str, records: Iterable[Record], default_path: str) -> int:
        """Store the run's source records (once); returns how many the store holds. A run's
        identity covers its input's content, and its records go in in one transaction: a run
        that holds any holds them all, and a resumed run skips encoding them again."""
        held = self.record_count(run_id)
        if held:
            return held
        with self._write() as db:
            db["records"].insert_all(
                ({"run_id": run_id, "id": r.id, "position": i, "source": r.to_json(),
                  "path": r.meta.get("path", default_path)}
                 for i, r in enumerate(records)),
                ignore=True, batch_size=1000,
            )
        return self.record_count(run_id)

    def add_rejects(self, run_id: str, rejects: Iterable[Any]) -> None:
        """Store unreadable input items (`formats.Reject`), one row per item."""
        with self._write() as db:
            db["rejects"].insert_all(
                ({"run_id": run_id, "path": r.path, "line": r.line,
                  "item": -1 if getattr(r, "index", None) is None else r.index,
                  "error": r.message, "created": now()} for r in rejects),
                ignore=True, batch_size=1000,
            )

    def add_reject(self, run_id: str, path: str, line: int, error: str) -> None:
        with self._write() as db:
            db["rejects"].insert({"run_id": run_id, "path": path, "line": line,
                                  "item": -1, "error": error, "created": now()}, ignore=True)

    def set_items_read(self, run_id: str, items: dict[str, int]) -> None:
        """How many input items each file of the run holds, as its reader counted them."""
        with self._write() as db:
            db["inputs"].upsert_all(
                ({"run_id": run_id, "path": path, "items": n} for path, n in items.items()),
                pk=("run_id", "path"))

    def accounting(self, run_id: str) -> list[dict[str, Any]]:
        """Per input file: items read, records and rejects stored, and whether they add up.
        Records merged from several items (UniversalNER) count every item they hold."""
        stored: dict[str, Counter[str]] = {}
        for row in self._db.query(
                "select path, source from records where run_id = ?", [run_id]):
            items = json.loads(row["source"]).get("meta", {}).get("items")
            stored.setdefault(row["path"] or "", Counter())["records"] += 1
            stored[row["path"] or ""]["items"] += len(items) if isinstance(items, list) else 1
        for row in self._db.query("select path, count(*) as n from rejects where run_id = ? "
                                 "group by path", [run_id]):
            stored.setdefault(row["path"], Counter())["rejects"] += row["n"]
            stored[row["path"]]["items"] += row["n"]
        read = {row["path"]: row["items"]
                for row in self._db["inputs"].rows_where("run_id = ?", [run_id])}
        out = []
        for path in sorted(set(read) | set(stored)):
            c = stored.get(path, Counter())
            out.append({"path": path, "items_read": read.get(path), "records": c["records"],
                        "rejects": c["rejects"],
                        "ok": read.get(path) is None or read[path] == c["items"]})
        return out

    def records(self, run_id: str) -> Iterator[Record]:
        for row in self._db.query("select source from records where run_id = ? order by position",
                                 [run_id]):
            yield Record.from_json(row["source"])

    def pending_records(self, run_id: str, done: set[str], limit: int | None = None,
                        page: int = 1000) -> tuple[int, Iterator[Record]]:
        """The run's records in input order (the first `limit` only, when given) that are not
        in `done`: how many, and a stream of them read a page at a time, so a run holds a
        page of its records in memory, not all of them."""
        bound = limit if limit is not None else 2**62
        ids = [row[0] for row in self._db.conn.execute(
            "select id from records where run_id = ? and position < ? order by position",
            [run_id, bound]) if row[0] not in done]
        wanted = set(ids)

        def stream() -> Iterator[Record]:
            after = -1
            while True:
                rows = self._db.conn.execute(
                    "select position, id, source from records where run_id = ? and "
                    "position > ? and position < ? order by position limit ?",
                    [run_id, after, bound, page]).fetchall()
                if not rows:
                    return
                after = rows[-1][0]
                for _, record_id, source in rows:
                    if record_id in wanted:
                        yield Record.from_json(source)

        return len(ids), stream()

    def stored_rejects(self, run_id: str) -> tuple[list[Reject], dict[str, int]]:
        """The run's unreadable input items and its items read per file, as stored when it
        read its input (a resumed run reports them without reading the input again)."""
        rejects = [Reject(r["path"], r["line"], r["error"], None if r["item"] == -1 else r["item"])
                   for r in self._db["rejects"].rows_where("run_id = ?", [run_id], order_by="id")]
        items = {r["path"]: r["items"]
                 for r in self._db["inputs"].rows_where("run_id = ?", [run_id])}
        return rejects, items

    def record(self, run_id: str, record_id: str) -> Record:
        row = self._db["records"].get((run_id, record_id))
        return Record.from_json(row["source"])

    def record_count(self, run_id: str) -> int:
        """How many records the run holds (all of them, or none: see `add_records`)."""
        return self._db.conn.execute("select count(*) from records where run_id = ?",
                                     [run_id]).fetchone()[0]

    def has_record(self, run_id: str, record_id: str) -> bool:
        return self._db.conn.execute("select 1 from records where run_id = ? and id = ?",
                                     [run_id, record_id]).fetchone() is not None

    def positions(self, run_id: str) -> dict[str, int]:
        """Each record's place in the run's input, by record id."""
        return dict(self._db.conn.execute("select id, position from records where run_id = ?",
                                          [run_id]).fetchall())

    def position(self, run_id: str, record_id: str) -> int | None:
        row = self._db.conn.execute("select position from records where run_id = ? and id = ?",
                                    [run_id, record_id]).fetchone()
        return row[0] if row else None

    def reject_rows(self, run_id: str) -> list[dict[str, Any]]:
        """The run's unreadable input items as stored, in the order they were read."""
        return list(self._db["rejects"].rows_where("run_id = ?", [run_id], order_by="id"))
