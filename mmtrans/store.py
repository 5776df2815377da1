"""The one SQLite file a run lives in: schema migrations and the queries over it.

Nothing a person may need later is updated in place: a new attempt or review is a new row,
and the current state of a record is its latest row. Every write commits at once, so a run
killed at any moment resumes from what is here.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from .records import Record

migrations = Migrations("mmtrans")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db["runs"].create(
        {"id": str, "input_path": str, "input_hash": str, "format": str, "src": str,
         "tgt": str, "labels": str, "model": str, "base_url": str, "prompt_name": str,
         "prompt_version": str, "strategy": str, "params": str, "created": str},
        pk="id",
    )
    db["records"].create(
        {"run_id": str, "id": str, "position": int, "source": str},
        pk=("run_id", "id"),
    )
    db["records"].create_index(["run_id", "position"])
    db["requests"].create(
        {"key": str, "model": str, "base_url": str, "messages": str, "params": str,
         "response": str, "tokens_in": int, "tokens_out": int, "latency": float,
         "attempts": int, "error": str, "created": str},
        pk="key",
    )
    db["translations"].create(
        {"id": int, "run_id": str, "record_id": str, "attempt": int, "request_key": str,
         "status": str, "target": str, "problems": str, "notes": str, "created": str},
        pk="id",
    )
    db["translations"].create_index(["run_id", "record_id"])
    db["reviews"].create(
        {"id": int, "run_id": str, "record_id": str, "annotator": str, "decision": str,
         "record": str, "created": str},
        pk="id",
    )
    db["reviews"].create_index(["run_id", "record_id"])
    db["rejects"].create(
        {"id": int, "run_id": str, "path": str, "line": int, "error": str, "created": str},
        pk="id",
    )
    db["rejects"].create_index(["run_id", "path", "line"], unique=True)


@migrations()
def m002_review_undo(db: sqlite_utils.Database) -> None:
    """An undo is a review row of its own pointing at the decision it takes back."""
    db["reviews"].add_column("undoes", int)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def content_key(*parts: Any) -> str:
    """sha256 of the canonical JSON of `parts`: the identity of a request or a run."""
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class Review:
    id: int
    record_id: str
    annotator: str
    decision: str  # accept, edit, reject
    record: Record | None
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "annotator": self.annotator, "decision": self.decision,
                "record": self.record.to_dict() if self.record else None,
                "created": self.created}


def effective_reviews(rows: Iterable[dict[str, Any]]) -> list[Review]:
    """The decisions of a record's review rows (in order) that no later undo took back."""
    undone = {row["undoes"] for row in rows if row["decision"] == "undo"}
    return [Review(row["id"], row["record_id"], row["annotator"], row["decision"],
                   Record.from_json(row["record"]) if row["record"] else None, row["created"])
            for row in rows if row["decision"] != "undo" and row["id"] not in undone]


@dataclass
class Translation:
    record_id: str
    attempt: int
    status: str
    target: Record | None
    problems: list[dict[str, str]]
    notes: list[str]
    request_key: str | None


def _encoded(row: dict[str, Any]) -> dict[str, Any]:
    """Lists and dicts as JSON text, for the columns that hold them."""
    return {k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v
            for k, v in row.items()}


def _translation(row: dict[str, Any]) -> Translation:
    return Translation(
        record_id=row["record_id"], attempt=row["attempt"], status=row["status"],
        target=Record.from_json(row["target"]) if row["target"] else None,
        problems=json.loads(row["problems"] or "[]"),
        notes=json.loads(row["notes"] or "[]"), request_key=row["request_key"],
    )


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        # One thread at a time uses a Store, but not always the one that opened it (a run
        # started from inside a running event loop runs in a worker thread).
        self.db = sqlite_utils.Database(sqlite3.connect(self.path, check_same_thread=False))
        self.db.enable_wal()
        self.db.execute("PRAGMA busy_timeout = 30000")
        migrations.apply(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs and records ----------------------------------------------------------------

    def upsert_run(self, config: dict[str, Any]) -> str:
        run_id = content_key(config)[:16]
        if not self.db["runs"].count_where("id = ?", [run_id]):
            self.db["runs"].insert({"id": run_id, **_encoded(config), "created": now()},
                                   alter=True)
        return run_id

    def latest_run(self) -> str | None:
        rows = list(self.db.query("select id from runs order by rowid desc limit 1"))
        return rows[0]["id"] if rows else None

    def run(self, run_id: str) -> dict[str, Any]:
        return self.db["runs"].get(run_id)

    def add_records(self, run_id: str, records: Iterable[Record]) -> None:
        with self.db.conn:
            self.db["records"].insert_all(
                ({"run_id": run_id, "id": r.id, "position": i, "source": r.to_json()}
                 for i, r in enumerate(records)),
                ignore=True, batch_size=1000,
            )

    def add_reject(self, run_id: str, path: str, line: int, error: str) -> None:
        with self.db.conn:
            self.db["rejects"].insert({"run_id": run_id, "path": path, "line": line,
                                       "error": error, "created": now()}, ignore=True)

    def records(self, run_id: str) -> Iterator[Record]:
        for row in self.db.query("select source from records where run_id = ? order by position",
                                 [run_id]):
            yield Record.from_json(row["source"])

    def record(self, run_id: str, record_id: str) -> Record:
        row = self.db["records"].get((run_id, record_id))
        return Record.from_json(row["source"])

    # -- request cache -------------------------------------------------------------------

    def cached_response(self, key: str) -> dict[str, Any] | None:
        rows = list(self.db.query(
            "select * from requests where key = ? and response is not null", [key]))
        return rows[0] if rows else None

    def save_request(self, key: str, **row: Any) -> None:
        with self.db.conn:
            self.db["requests"].upsert({"key": key, **_encoded(row), "created": now()},
                                       pk="key")

    # -- translations --------------------------------------------------------------------

    def add_translation(self, run_id: str, t: Translation) -> None:
        with self.db.conn:
            self.db["translations"].insert({
                "run_id": run_id, "record_id": t.record_id, "attempt": t.attempt,
                "request_key": t.request_key, "status": t.status,
                "target": t.target.to_json() if t.target else None,
                "problems": json.dumps(t.problems, ensure_ascii=False),
                "notes": json.dumps(t.notes, ensure_ascii=False), "created": now(),
            })

    def latest_translations(self, run_id: str) -> dict[str, Translation]:
        """The current translation of every record that has one, by record id."""
        sql = """
            select t.* from translations t
            join (select record_id, max(id) as id from translations where run_id = ?
                  group by record_id) latest on latest.id = t.id
        """
        return {row["record_id"]: _translation(row) for row in self.db.query(sql, [run_id])}

    def latest_translation(self, run_id: str, record_id: str) -> Translation | None:
        """The current translation of one record (without reading the whole run's)."""
        rows = list(self.db.query(
            "select * from translations where run_id = ? and record_id = ? "
            "order by id desc limit 1", [run_id, record_id]))
        return _translation(rows[0]) if rows else None

    def done_ids(self, run_id: str, repair: int = 0) -> set[str]:
        """Records this run need not touch again: accepted, or flagged with no repair turn left."""
        return {rid for rid, t in self.latest_translations(run_id).items()
                if t.status == "accepted" or (t.status == "flagged" and t.attempt >= repair)}

    def stored_attempts(self, run_id: str) -> dict[str, set[int]]:
        """Which attempts of each record already have a translation row (a resumed run
        replays them from the cache without writing them again)."""
        out: dict[str, set[int]] = {}
        for row in self.db.query(
                "select record_id, attempt from translations where run_id = ? "
                "and status != 'failed'", [run_id]):
            out.setdefault(row["record_id"], set()).add(row["attempt"])
        return out

    # -- reviews ---------------------------------------------------------------------------

    def add_review(self, run_id: str, record_id: str, annotator: str, decision: str,
                   record: Record | None = None, undoes: int | None = None) -> int:
        with self.db.conn:
            table = self.db["reviews"].insert({
                "run_id": run_id, "record_id": record_id, "annotator": annotator,
                "decision": decision, "record": record.to_json() if record else None,
                "created": now(), "undoes": undoes})
        return table.last_pk

    def review_rows(self, run_id: str, record_id: str | None = None) -> list[dict[str, Any]]:
        where, args = "run_id = ?", [run_id]
        if record_id is not None:
            where, args = where + " and record_id = ?", [run_id, record_id]
        return list(self.db["reviews"].rows_where(where, args, order_by="id"))

    def reviews(self, run_id: str, record_id: str) -> list[Review]:
        """The record's effective decisions, oldest first (undone ones left out)."""
        return effective_reviews(self.review_rows(run_id, record_id))

    def decisions(self, run_id: str) -> dict[str, Review]:
        """The current decision on every reviewed record of the run."""
        rows: dict[str, list[dict[str, Any]]] = {}
        for row in self.review_rows(run_id):
            rows.setdefault(row["record_id"], []).append(row)
        out = {}
        for record_id, record_rows in rows.items():
            effective = effective_reviews(record_rows)
            if effective:
                out[record_id] = effective[-1]
        return out

    # -- reporting -----------------------------------------------------------------------

    def status(self, run_id: str | None = None) -> dict[str, Any]:
        run_ids = [run_id] if run_id else [r["id"] for r in self.db["runs"].rows]
        counts: Counter[str] = Counter()
        codes: Counter[str] = Counter()
        reviewed: Counter[str] = Counter()
        records = rejects = 0
        for rid in run_ids:
            records += self.db["records"].count_where("run_id = ?", [rid])
            rejects += self.db["rejects"].count_where("run_id = ?", [rid])
            reviewed.update(review.decision for review in self.decisions(rid).values())
            for t in self.latest_translations(rid).values():
                counts[t.status] += 1
                if t.status != "accepted":
                    codes.update({p["code"] for p in t.problems})
        usage = next(self.db.query(
            "select count(*) as n, coalesce(sum(tokens_in), 0) as tin, "
            "coalesce(sum(tokens_out), 0) as tout from requests where response is not null"))
        attempts = self.attempt_stats(run_ids)
        return {
            "records": records,
            "accepted": counts["accepted"],
            "flagged": counts["flagged"],
            "failed": counts["failed"],
            "pending": records - counts["accepted"] - counts["flagged"] - counts["failed"],
            "requests": usage["n"],
            "tokens_in": usage["tin"],
            "tokens_out": usage["tout"],
            "rejects": rejects,
            "problems": dict(codes.most_common()),
            "attempts": attempts,
            "reviews": {"accepted": reviewed["accept"], "edited": reviewed["edit"],
                        "rejected": reviewed["reject"]},
        }

    def attempt_stats(self, run_ids: list[str]) -> dict[str, dict[str, int]]:
        """Per attempt (0 = first answer, 1.. = repair turns): translations made, records
        accepted at that attempt (for repairs: rescued), and the tokens it cost."""
        if not run_ids:
            return {}
        marks = ",".join("?" for _ in run_ids)
        sql = f"""
            select t.attempt, count(*) as n, sum(t.status = 'accepted') as accepted,
                   coalesce(sum(r.tokens_in + r.tokens_out), 0) as tokens
            from translations t left join requests r on r.key = t.request_key
            where t.run_id in ({marks}) and t.status != 'failed'
            group by t.attempt order by t.attempt
        """
        return {str(row["attempt"]): {"translations": row["n"], "accepted": row["accepted"],
                                      "tokens": row["tokens"]}
                for row in self.db.query(sql, run_ids)}
