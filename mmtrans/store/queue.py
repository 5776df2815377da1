"""The review queue (`review_queue`): each record's latest translation as one row, kept by a
trigger on `translations` (migration m011), read a page at a time.

Filters that only SQL can answer fast over a million rows are here (runs, problem code, text,
a set of records to keep or to leave out); what a record's reviews say (its state, who
decided) is judged by `mmtrans.review.queue` from the reviews and handed in as those sets.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ._core import Core

#: A queue row's kind: flagged or failed records (reviewed first), accepted ones (shown only
#: when a spot check draws them).
FLAGGED, ACCEPTED = 0, 1

Key = tuple[str, str]  # (run id, record id)
#: A row's place in the queue's order: (kind, run id, position). A page is read after or
#: before one, not at an offset, so decisions made meanwhile never shift the next page.
Cursor = tuple[int, str, int]


@dataclass(frozen=True)
class QueueQuery:
    """Which queue rows to read: every filter is optional (None keeps everything)."""

    kind: int = FLAGGED
    runs: Collection[str] | None = None
    code: str | None = None
    #: Text the source or the translation holds (letters compared without case), looked up
    #: row by row (a text too common for `hits`).
    text: str | None = None
    #: The rows (of `review_search`) whose text holds what is searched (`search_hits`).
    hits: Collection[int] | None = None
    #: Only these records (an empty set keeps none).
    only: Collection[Key] | None = None
    #: None of these records.
    without: Collection[Key] | None = None


def _like(text: str) -> str:
    """`text` as a LIKE pattern matching it anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _keys(keys: Collection[Key]) -> str:
    return json.dumps([list(k) for k in keys], ensure_ascii=False)


def _where(query: QueueQuery, code_sets: list[str] | None = None) -> tuple[str, list[Any]]:
    """The SQL condition on `review_queue q` for the query (`code_sets`: the distinct sets
    of codes holding `query.code`)."""
    # A set of records or of search hits is read row by row from the set (`+`: not by
    # walking the order index past every row of the run to find them).
    by_set = "+" if query.only is not None or query.hits is not None else ""
    clauses, args = [f"{by_set}q.kind = ?"], [query.kind]
    if query.runs is not None and len(query.runs) == 1:
        clauses.append(f"{by_set}q.run_id = ?")  # the common case
        args.append(next(iter(query.runs)))
    elif query.runs is not None:
        clauses.append("q.run_id in (select value from json_each(?))")
        args.append(json.dumps(list(query.runs)))
    if query.code:
        clauses.append("q.codes in (select value from json_each(?))")
        args.append(json.dumps(code_sets or []))
    if query.hits is not None:
        clauses.append("q.rowid in (select value from json_each(?))")
        args.append(json.dumps(list(query.hits)))
    if query.text:
        clauses.append("exists (select 1 from review_search s where s.rowid = q.rowid "
                       "and +s.text like ? escape '\\')")
        args.append(_like(query.text))
    if query.only is not None:  # looked up by key, not compared with every row
        clauses.append("q.rowid in (select o.rowid from json_each(?) k join review_queue o "
                       "on o.run_id = k.value ->> 0 and o.record_id = k.value ->> 1)")
        args.append(_keys(query.only))
    if query.without:
        clauses.append("(q.run_id, q.record_id) not in (select value ->> 0, value ->> 1 "
                       "from json_each(?))")
        args.append(_keys(query.without))
    return " and ".join(clauses), args


class ReviewQueue(Core):
    def queue_rows(self, query: QueueQuery, limit: int, after: Cursor | None = None,
                   before: Cursor | None = None) -> list[dict[str, Any]]:
        """Up to `limit` queue rows the query keeps, in queue order (kind, then each run's
        input order): the first ones, those right after `after`, or those right before
        `before`."""
        if (query.only is not None and not query.only) or \
                (query.hits is not None and not query.hits):
            return []
        if (after and after[0] > query.kind) or (before and before[0] < query.kind):
            return []
        where, args = self._where(query)
        order = "q.kind, q.run_id, q.position"
        if after and after[0] == query.kind:
            where += " and (q.run_id, q.position) > (?, ?)"
            args += [after[1], after[2]]
        if before and before[0] == query.kind:
            where += " and (q.run_id, q.position) < (?, ?)"
            args += [before[1], before[2]]
            order = "q.kind desc, q.run_id desc, q.position desc"
        cursor = self._db.conn.execute(
            "select q.kind, q.run_id, q.record_id, q.position, q.status, q.codes "
            f"from review_queue q where {where} order by {order} limit ?", [*args, limit])
        columns = [c[0] for c in cursor.description]
        rows = [dict(zip(columns, row)) for row in cursor]
        return rows[::-1] if before else rows

    def queue_count(self, query: QueueQuery, cap: int | None = None) -> int:
        """How many queue rows the query keeps (counted up to `cap` + 1 at most)."""
        if (query.only is not None and not query.only) or \
                (query.hits is not None and not query.hits):
            return 0
        where, args = self._where(query)
        return self._db.conn.execute(
            f"select count(*) from (select 1 from review_queue q where {where} limit ?)",
            [*args, -1 if cap is None else cap + 1]).fetchone()[0]

    def index_search(self) -> int:
        """Bring the search index up to date: the texts of the records whose latest
        translation it does not hold yet, in one transaction (whoever searches does this;
        the trigger on translations leaves it). Returns how many it indexed."""
        if self._db.conn.execute("select 1 from review_queue where searched != translation_id "
                                 "limit 1").fetchone() is None:
            return 0
        with self._write(immediate=True) as db:
            indexed = db.conn.execute("""insert or replace into review_search (rowid, text)
                select q.rowid, coalesce(json_extract(r.source, '$.text'), '') || char(10) ||
                    coalesce(json_extract(t.target, '$.text'), '')
                from review_queue q join translations t on t.id = q.translation_id
                left join records r on r.run_id = q.run_id and r.id = q.record_id
                where q.searched != q.translation_id""").rowcount
            db.conn.execute("update review_queue set searched = translation_id "
                            "where searched != translation_id")
        return indexed

    def search_hits(self, text: str, cap: int) -> list[int] | None:
        """The rows whose source or translation holds `text` (letters compared without case),
        found through the trigram index; None when there are more than `cap` (a text that
        common is looked for row by row instead, as far as a page needs)."""
        # The index answers a LIKE of three characters or more without an ESCAPE; a shorter
        # text, or one holding a wildcard, is looked for in every text (`+text`: not
        # through the index, which misses short non-ASCII ones).
        indexed = len(text) >= 3 and not any(c in text for c in "%_\\")
        search = "text like ?" if indexed else "+text like ? escape '\\'"
        rows = [row[0] for row in self._db.conn.execute(
            f"select rowid from review_search where {search} limit ?",
            [f"%{text}%" if indexed else _like(text), cap + 1])]
        return rows if len(rows) <= cap else None

    def queue_ids(self, run_id: str, kind: int) -> list[str]:
        """Every record id of one kind in a run's queue (what a spot check draws from)."""
        return [row[0] for row in self._db.conn.execute(
            "select record_id from review_queue where kind = ? and run_id = ?", [kind, run_id])]

    def _where(self, query: QueueQuery) -> tuple[str, list[Any]]:
        if not query.code:
            return _where(query)
        runs = query.runs if query.runs is not None else self._queue_runs()
        sets = [s for run_id in runs for s in self._code_sets(run_id)
                if f",{query.code}," in s]
        return _where(query, sets)

    def _queue_runs(self) -> list[str]:
        return [row[0] for row in self._db.conn.execute("select id from runs")]

    def _code_sets(self, run_id: str) -> list[str]:
        """The distinct sets of codes of a run's queue rows: one index seek per set."""
        return [row[0] for row in self._db.conn.execute(
            """with recursive sets(codes) as (
                select min(codes) from review_queue where run_id = :run
                union all
                select (select min(codes) from review_queue where run_id = :run
                        and codes > sets.codes) from sets where sets.codes is not null)
            select codes from sets where codes is not null""", {"run": run_id})]

    def queue_codes(self, runs: Collection[str] | None = None) -> list[str]:
        """Every problem code some record of the queue has (the filter's choices)."""
        codes: set[str] = set()
        for run_id in runs if runs is not None else self._queue_runs():
            for joined in self._code_sets(run_id):
                codes.update(c for c in joined.split(",") if c)
        return sorted(codes)

    def queue_row(self, run_id: str, record_id: str) -> dict[str, Any] | None:
        """One record's queue row (None: no translation yet)."""
        cursor = self._db.conn.execute(
            "select kind, run_id, record_id, position, status, codes "
            "from review_queue where run_id = ? and record_id = ?", [run_id, record_id])
        row = cursor.fetchone()
        return dict(zip([c[0] for c in cursor.description], row)) if row else None
