"""The run's input: its records (`records`), the items that could not be read
(`rejects`), and how many items each input file held (`inputs`)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from typing import Any

from ..errors import StoreError
from ..formats import Reject
from ..records import Record
from ._core import Core, now, run_id_of
from .requests import HOST, _alive

#: Rows of a run's input written in one transaction while it is read.
STAGED_ROWS = 1000


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

    # A run's input read once: its records go in as they stream, under a staging id, in short
    # transactions of a thousand rows (the write lock is never held for the whole read: a
    # run going on in the same store keeps committing its answers), then are named by the
    # run's own id, known only once the whole input is read (it covers the input's hash and
    # label tables), in one more short transaction. A failure deletes the staged rows; a
    # process killed meanwhile leaves rows the next reader deletes (their pid is gone).

    def add_input(self, items: Iterable[Record | Reject], default_path: str,
                  identify: Callable[[], dict[str, Any]], items_read: dict[str, int]
                  ) -> tuple[str, int]:
        """Store a new run's records and rejects as `items` streams them, then name them by
        the run of the config `identify()` returns once the stream is spent, with the items
        read per file that `items_read` holds by then (the caller counts as it streams).
        Whatever raises meanwhile (an unknown label, an unreadable input) leaves the store
        as it was. Returns the run id and how many records the run holds (a run that
        already held its records, stored by another process meanwhile, keeps those)."""
        self._drop_dead_staging()
        staging = f"~{os.getpid():x}-{time.monotonic_ns():x}"[:16]
        records: list[tuple[Any, ...]] = []
        rejects: list[tuple[Any, ...]] = []
        try:
            position = 0
            for item in items:
                if isinstance(item, Record):
                    records.append((staging, item.id, position, item.to_json(),
                                    item.meta.get("path", default_path)))
                    position += 1
                else:
                    rejects.append((staging, item.path, item.line,
                                    -1 if item.index is None else item.index, item.message,
                                    now()))
                if len(records) + len(rejects) >= STAGED_ROWS:
                    self._stage(records, rejects)
            self._stage(records, rejects)
            run_id = run_id_of(identify())
            with self._write(immediate=True) as db:
                held = self.record_count(run_id)
                if held:
                    self._unstage(db.conn, staging)
                    return run_id, held
                for table in ("records", "rejects"):
                    db.conn.execute(f"delete from [{table}] where run_id = ?", [run_id])
                    db.conn.execute(f"update [{table}] set run_id = ? where run_id = ?",
                                    [run_id, staging])
                db.conn.executemany(
                    "insert or replace into inputs (run_id, path, items) values (?, ?, ?)",
                    [(run_id, p, n) for p, n in items_read.items()])
        except BaseException:
            with suppress(StoreError, sqlite3.Error), self._write() as db:
                self._unstage(db.conn, staging)
            raise
        return run_id, self.record_count(run_id)

    def _stage(self, records: list[tuple[Any, ...]], rejects: list[tuple[Any, ...]]) -> None:
        """Write staged rows in one short transaction, and empty the lists."""
        with self._write() as db:
            db.conn.executemany("insert or ignore into records (run_id, id, position, source, "
                                "path) values (?, ?, ?, ?, ?)", records)
            db.conn.executemany("insert or ignore into rejects (run_id, path, line, item, "
                                "error, created) values (?, ?, ?, ?, ?, ?)", rejects)
        records.clear()
        rejects.clear()

    @staticmethod
    def _unstage(conn: sqlite3.Connection, staging: str) -> None:
        for table in ("records", "rejects"):
            conn.execute(f"delete from [{table}] where run_id = ?", [staging])

    def _drop_dead_staging(self) -> None:
        """Delete the staged input of processes that died before naming it (staging ids are
        `~<pid in hex>-...`; every run id is hex, so they sort after every run's rows)."""
        staged = {row[0] for table in ("records", "rejects") for row in self._db.conn.execute(
            f"select distinct run_id from [{table}] where run_id >= '~'")}
        dead = [s for s in staged if not _alive(HOST, int(s[1:].split("-")[0], 16))]
        if dead:
            with self._write() as db:
                for staging in dead:
                    self._unstage(db.conn, staging)

    _NOT_DONE = """not exists (
        select 1 from translations t where t.id = (
            select max(id) from translations where run_id = r.run_id and record_id = r.id)
        and (t.status = 'accepted' or (t.status = 'flagged' and t.attempt >= :repair)))"""

    def pending_input(self, run_id: str, repair: int, limit: int | None = None,
                      page: int = 1000) -> tuple[int, Iterator[Record]]:
        """The run's records in input order (the first `limit`) not accepted nor flagged
        with no repair turn left: how many, and a stream of them a page at a time, judged
        by SQL, so memory holds a page, not a set of every record's id."""
        values = {"run": run_id, "bound": limit if limit is not None else 2**62,
                  "repair": repair, "page": page}
        count = self._db.conn.execute(
            "select count(*) from records r where r.run_id = :run and r.position < :bound "
            f"and {self._NOT_DONE}", values).fetchone()[0]

        def stream() -> Iterator[Record]:
            after = -1
            while True:
                rows = self._db.conn.execute(
                    "select position, source from records r where r.run_id = :run and "
                    f"r.position > :after and r.position < :bound and {self._NOT_DONE} "
                    "order by r.position limit :page", {**values, "after": after}).fetchall()
                if not rows:
                    return
                after = rows[-1][0]
                for _, source in rows:
                    yield Record.from_json(source)

        return count, stream()
