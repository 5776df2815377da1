"""Reviews (`reviews`): one row per decision, and one per undo that takes a decision back;
a record's current decision is its latest one still in effect."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..records import Record
from ._core import Core, now


@dataclass
class Review:
    id: int
    record_id: str
    annotator: str
    decision: str  # accept, edit, reject
    #: The record the decision keeps: an edit's, or the saved edit an accept endorsed (None:
    #: an accept of the translation itself, or a reject).
    record: Record | None
    created: str
    #: The translation row the decision judged (None: decided before this was recorded).
    translation_id: int | None = None
    reason: str | None = None
    adjudicated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "annotator": self.annotator, "decision": self.decision,
                "record": self.record.to_dict() if self.record else None,
                "created": self.created, "translation_id": self.translation_id,
                "reason": self.reason, "adjudicated": self.adjudicated}


def effective_reviews(rows: Iterable[dict[str, Any]]) -> list[Review]:
    """The decisions of a record's review rows (in order) that no later undo took back."""
    undone = {row["undoes"] for row in rows if row["decision"] == "undo"}
    return [Review(row["id"], row["record_id"], row["annotator"], row["decision"],
                   Record.from_json(row["record"]) if row["record"] else None, row["created"],
                   row.get("translation_id"), row.get("reason"), bool(row.get("adjudicated")))
            for row in rows if row["decision"] != "undo" and row["id"] not in undone]



class Reviews(Core):
    def add_review(self, run_id: str, record_id: str, annotator: str, decision: str,
                   record: Record | None = None, undoes: int | None = None,
                   translation_id: int | None = None, reason: str | None = None,
                   adjudicated: bool = False) -> int:
        with self._write() as db:
            table = db["reviews"].insert({
                "run_id": run_id, "record_id": record_id, "annotator": annotator,
                "decision": decision, "record": record.to_json() if record else None,
                "created": now(), "undoes": undoes, "translation_id": translation_id,
                "reason": reason, "adjudicated": int(adjudicated)})
        return table.last_pk

    def decisions_made(self, run_id: str | None = None) -> dict[str, int]:
        """Decisions each annotator made and did not take back, overridden by others or not
        (progress is work done, not who decided last)."""
        where, args = ("and run_id = ?", [run_id, run_id]) if run_id else ("", [])
        rows = self._db.query(f"""
            select annotator, count(*) as n from reviews
            where decision != 'undo' {where} and id not in (
                select undoes from reviews where decision = 'undo' and undoes is not null
                {where})
            group by annotator order by annotator""", args)
        return {row["annotator"]: row["n"] for row in rows}

    def last_decision_of(self, annotator: str, run_id: str | None = None
                         ) -> dict[str, Any] | None:
        """The annotator's latest decision still in effect (what `u` takes back, also
        after a reload)."""
        where, args = ("and run_id = ?", [annotator, run_id, run_id]) if run_id \
            else ("", [annotator])
        rows = list(self._db.query(f"""
            select * from reviews where annotator = ? and decision != 'undo' {where}
            and id not in (select undoes from reviews where decision = 'undo'
                           and undoes is not null {where})
            order by id desc limit 1""", args))
        return rows[0] if rows else None

    def review_rows(self, run_id: str, record_id: str | None = None) -> list[dict[str, Any]]:
        where, args = "run_id = ?", [run_id]
        if record_id is not None:
            where, args = where + " and record_id = ?", [run_id, record_id]
        return list(self._db["reviews"].rows_where(where, args, order_by="id"))

    def reviews(self, run_id: str, record_id: str) -> list[Review]:
        """The record's effective decisions, oldest first (undone ones left out)."""
        return effective_reviews(self.review_rows(run_id, record_id))

    def all_reviews(self, run_id: str) -> dict[str, list[Review]]:
        """Every reviewed record's effective decisions, oldest first, by record id."""
        rows: dict[str, list[dict[str, Any]]] = {}
        for row in self.review_rows(run_id):
            rows.setdefault(row["record_id"], []).append(row)
        return {record_id: effective for record_id, record_rows in rows.items()
                if (effective := effective_reviews(record_rows))}

    def decisions(self, run_id: str) -> dict[str, Review]:
        """The current decision on every reviewed record of the run."""
        return {record_id: reviews[-1] for record_id, reviews in self.all_reviews(run_id).items()}

    def reviews_since(self, review_id: int, run_id: str | None = None
                      ) -> list[tuple[str, str]]:
        """(run, record) of every record with a review row after `review_id` (what the
        review page refreshes)."""
        return self._records_since("reviews", review_id, run_id)

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """One writer at a time across processes (BEGIN IMMEDIATE): what is read inside
        stays true until what is written inside is committed (two review servers on one
        file cannot both pass the same conflict check)."""
        with self._write(immediate=True):
            yield

    def stamp(self) -> tuple[int, int]:
        """(last review row, last translation row): changes when anyone decides or a
        running `translate` stores an answer."""
        return (self._db.conn.execute("select coalesce(max(id), 0) from reviews").fetchone()[0],
                self._db.conn.execute("select coalesce(max(id), 0) from translations")
                .fetchone()[0])
