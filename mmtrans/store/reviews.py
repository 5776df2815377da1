"""Reviews (`reviews`): one row per decision, and one per undo that takes a decision back;
a record's current decision is its latest one still in effect."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import EnoughVotesError
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

    def verdict(self) -> str:
        """What the decision says, comparable across annotators: two accepts agree, two
        rejects agree, two edits agree when they saved the same record (text, labels,
        strings); accepting someone's edit is that edit's verdict."""
        if self.record is None:
            return self.decision  # an accept of the translation, or a reject
        r = self.record
        return "edit " + json.dumps(
            [r.text, r.label, [[m.label, m.text] for m in r.mentions],
             [[x.head, x.relation, x.tail] for x in r.relations],
             [[e.type, e.trigger, [[a.role, a.text] for a in e.arguments]] for e in r.events]],
            ensure_ascii=False)

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


def votes(reviews: list[Review]) -> dict[str, Review]:
    """Each annotator's latest effective decision on one record (adjudications left out:
    they settle, they are nobody's vote)."""
    out: dict[str, Review] = {}
    for r in reviews:
        if not r.adjudicated:
            out.pop(r.annotator, None)  # keep the order of the latest decisions
            out[r.annotator] = r
    return out


def settled(reviews: list[Review], overlap: int = 1) -> Review | None:
    """The decision in effect on a record: with one annotator a record (`overlap` 1), the
    latest; with N, the latest adjudication, else the latest vote once N annotators decided
    it alike (a record they decided apart, or fewer than N decided, has none yet)."""
    if overlap <= 1:
        return reviews[-1] if reviews else None
    adjudications = [r for r in reviews if r.adjudicated]
    if adjudications:
        return adjudications[-1]
    cast = votes(reviews)
    if len(cast) >= overlap and len({r.verdict() for r in cast.values()}) == 1:
        return list(cast.values())[-1]
    return None



class Reviews(Core):
    def add_review(self, run_id: str, record_id: str, annotator: str, decision: str,
                   record: Record | None = None, undoes: int | None = None,
                   translation_id: int | None = None, reason: str | None = None,
                   adjudicated: bool = False, comment: str | None = None,
                   votes_needed: int | None = None) -> int:
        """A decision (or an undo), and the comment made with it, in one transaction.
        `votes_needed` (blind review): refused with EnoughVotesError when the record already
        has that many votes of other annotators; read under `write_lock`, two annotators
        saving at once cannot both be the Nth."""
        with self._write() as db:
            if votes_needed is not None and not adjudicated and decision != "undo":
                cast = votes(effective_reviews(list(db["reviews"].rows_where(
                    "run_id = ? and record_id = ?", [run_id, record_id], order_by="id"))))
                if annotator not in cast and len(cast) >= votes_needed:
                    raise EnoughVotesError(f"{record_id} already has the {votes_needed} "
                                           "decisions it needs; yours was not saved")
            table = db["reviews"].insert({
                "run_id": run_id, "record_id": record_id, "annotator": annotator,
                "decision": decision, "record": record.to_json() if record else None,
                "created": now(), "undoes": undoes, "translation_id": translation_id,
                "reason": reason, "adjudicated": int(adjudicated)})
            review_id = table.last_pk
            if comment:
                db["comments"].insert({"run_id": run_id, "record_id": record_id,
                                       "annotator": annotator, "text": comment,
                                       "review_id": review_id, "created": now()})
        return review_id

    def add_comment(self, run_id: str, record_id: str, annotator: str, text: str) -> int:
        """A comment on a record made without a decision."""
        with self._write() as db:
            return db["comments"].insert({"run_id": run_id, "record_id": record_id,
                                          "annotator": annotator, "text": text,
                                          "review_id": None, "created": now()}).last_pk

    def comments(self, run_id: str, record_id: str) -> list[dict[str, Any]]:
        """A record's comments, oldest first: id, annotator, text, review_id, created."""
        if not self._db["comments"].exists():  # a store read before m010
            return []
        return [{k: row[k] for k in ("id", "annotator", "text", "review_id", "created")}
                for row in self._db["comments"].rows_where(
                    "run_id = ? and record_id = ?", [run_id, record_id], order_by="id")]

    def set_review_plan(self, run_id: str, overlap: int, assign: dict[str, Any] | None
                        ) -> None:
        """How the run is reviewed from now on: `overlap` annotators per record, and who
        gets which records (`assign`, None: anyone any record)."""
        with self._write() as db:
            db["review_plans"].upsert({"run_id": run_id, "overlap": overlap,
                                       "assign": json.dumps(assign) if assign else None,
                                       "created": now()}, pk="run_id")

    def review_plan(self, run_id: str) -> dict[str, Any]:
        """The run's plan: {"overlap": N, "assign": dict | None}; one annotator a record,
        anyone any record, for a run that has none."""
        rows = list(self._db["review_plans"].rows_where("run_id = ?", [run_id])) \
            if self._db["review_plans"].exists() else []
        if not rows:
            return {"overlap": 1, "assign": None}
        return {"overlap": rows[0]["overlap"],
                "assign": json.loads(rows[0]["assign"]) if rows[0]["assign"] else None}

    def decided_by(self, run_id: str, annotator: str) -> set[str]:
        """Records the annotator has a decision in effect on (not an adjudication): what
        their queue of work to do leaves out."""
        return {row[0] for row in self._db.conn.execute("""
            select distinct record_id from reviews
            where run_id = ? and annotator = ? and decision != 'undo'
            and coalesce(adjudicated, 0) = 0 and id not in (
                select undoes from reviews where run_id = ? and decision = 'undo'
                and undoes is not null)""", [run_id, annotator, run_id])}

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
        """The decision in effect on every decided record of the run (`settled` under the
        run's plan: with N annotators a record, the adjudicated or agreed one)."""
        overlap = self.review_plan(run_id)["overlap"]
        return {record_id: decision for record_id, reviews in self.all_reviews(run_id).items()
                if (decision := settled(reviews, overlap)) is not None}

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
