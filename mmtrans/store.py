"""The one SQLite file a run lives in: schema migrations and the queries over it.

Nothing a person may need later is updated in place: a new attempt or review is a new row,
and the current state of a record is its latest row. Writes commit at once, or during a
run in groups a fraction of a second apart (`Store.grouped`), so a run killed at any moment
resumes from what is here, having lost at most that fraction of a second of answers.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from .errors import RunBusyError, StoreError
from .formats import Reject
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


@migrations()
def m003_integrity(db: sqlite_utils.Database) -> None:
    """Run identity by content (`config`), the run last used, which file each record and
    reject came from, several rejects per line (one per item), and items read per file."""
    db["runs"].add_column("config", str)
    db["runs"].add_column("last_used", str)
    db["runs"].add_column("locked_by", str)
    db["records"].add_column("path", str)
    db["rejects"].add_column("item", int)
    db.execute("drop index if exists idx_rejects_run_id_path_line")
    db["rejects"].create_index(["run_id", "path", "line", "item"], unique=True)
    db["inputs"].create({"run_id": str, "path": str, "items": int}, pk=("run_id", "path"))


@migrations()
def m004_review_translation(db: sqlite_utils.Database) -> None:
    """A review row names the translation row it judged, so export writes what was
    reviewed even when a later attempt exists, and a reason when one was given."""
    db["reviews"].add_column("translation_id", int)
    db["reviews"].add_column("reason", str)


@migrations()
def m005_batch_requests(db: sqlite_utils.Database) -> None:
    """Requests written to a batch file (vLLM run-batch, OpenAI Batch), by cache key: what
    an imported answer was asked, so it lands in the request cache like any other."""
    db["batch_requests"].create({"key": str, "body": str, "file": str, "created": str},
                                pk="key")


@migrations()
def m006_openai_batches(db: sqlite_utils.Database) -> None:
    """OpenAI Batch jobs a store submitted, and which batch each written request went in,
    so that submitting again never sends a request a batch still holds."""
    db["batches"].create({"id": str, "file": str, "status": str, "created": str,
                          "collected": int}, pk="id")
    db["batch_requests"].add_column("batch_id", str)


@migrations()
def m300_shared_prompt_prefix(db: sqlite_utils.Database) -> None:
    """A prompt's fixed part (system text and one-shot example, four fifths of a request's
    bytes) is stored once in `prompt_prefixes`; a request row names it by hash and keeps only
    the messages after it. Rows stored before keep their whole messages (prefix null)."""
    db["prompt_prefixes"].create({"hash": str, "messages": str}, pk="hash")
    db["requests"].add_column("prefix", str)


@migrations()
def m007_review_adjudicated(db: sqlite_utils.Database) -> None:
    """A decision made in `review --adjudicate` settles a disagreement: it is the final
    version, and it is no annotator's vote in the agreement figures."""
    db["reviews"].add_column("adjudicated", int)


#: Leading messages of a request that are the prompt's fixed part (system, example in and out).
PREFIX_MESSAGES = 3
#: A grouped write commits at least this often (see `Store.grouped`).
GROUP_ROWS = 200
GROUP_SECONDS = 0.25


def now(timespec: str = "seconds") -> str:
    return datetime.now(timezone.utc).isoformat(timespec=timespec)


def content_key(*parts: Any) -> str:
    """sha256 of the canonical JSON of `parts`: the identity of a request or a run."""
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def run_id_of(config: dict[str, Any]) -> str:
    """A run's id: the hash of everything its results depend on."""
    return content_key(config)[:16]


def held_records(db_path: str | Path, config: dict[str, Any]) -> int:
    """How many records the store at `db_path` holds for the run of `config` (0 when there
    is no such store or run): a run that holds any holds them all, read and checked."""
    path = Path(db_path)
    if not path.is_file():
        return 0
    with Store(path, create=False) as store:
        return store.db.conn.execute("select count(*) from records where run_id = ?",
                                     [run_id_of(config)]).fetchone()[0]


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
        id=row["id"],
    )


def _check_store(path: Path, conn: sqlite3.Connection) -> None:
    """Refuse a file that is not an mmtrans store before anything is written to it: no
    migration, no WAL switch on somebody else's database."""
    try:
        tables = {row[0] for row in conn.execute(
            "select name from sqlite_master where type = 'table'")}
    except sqlite3.DatabaseError:
        raise StoreError(f"{path}: not an mmtrans store (not an SQLite database)") from None
    if not tables:
        return
    ours = "_sqlite_migrations" in tables and conn.execute(
        "select count(*) from _sqlite_migrations where migration_set = ?",
        [migrations.name]).fetchone()[0]
    if not ours:
        shown = ", ".join(sorted(tables)[:5])
        raise StoreError(f"{path}: not an mmtrans store (an SQLite database with tables {shown})")


class Store:
    """An mmtrans store. `create=False` (every command but `translate`) refuses a path that
    does not exist yet, instead of leaving an empty database behind."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory; --db takes a file")
        if not create and not self.path.is_file():
            raise StoreError(f"{self.path}: no such database")
        try:
            # One thread at a time uses a Store, but not always the one that opened it (a
            # run started from inside a running event loop runs in a worker thread).
            conn = sqlite3.connect(self.path, check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open: {e}") from None
        try:
            _check_store(self.path, conn)
        except StoreError:
            conn.close()
            raise
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA busy_timeout = 30000")
        self.db.enable_wal()
        # In WAL mode a commit is in the log file before it returns: a killed process loses
        # nothing committed, only power loss may drop the last commits. No fsync per commit.
        self.db.execute("PRAGMA synchronous = NORMAL")
        migrations.apply(self.db)
        self._prefixes: set[str] = set()
        self._grouping = False
        self._queued: list[tuple[str, tuple[Any, ...]]] = []  # writes not yet flushed
        self._queued_answers: dict[str, str] = {}  # their cached answers, by request key
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        self._flush()
        self.db.close()

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """Translation and request writes inside are queued and written in one short
        transaction every GROUP_ROWS rows or GROUP_SECONDS seconds (and at the end), instead
        of one commit each. The write lock is held only while a group is written, so another
        process (a review, a second translate) is never starved of it; a run killed loses at
        most the answers of the last fraction of a second."""
        self._grouping = True
        try:
            yield
        finally:
            self._grouping = False
            self._flush()

    def _flush(self) -> None:
        if self._queued:
            with self.db.conn:
                for sql, values in self._queued:
                    self.db.conn.execute(sql, values)
            self._queued.clear()
            self._queued_answers.clear()
        self._flushed_at = time.monotonic()

    _sql: dict[tuple[str, tuple[str, ...], str], str] = {}

    def _insert(self, table: str, row: dict[str, Any], verb: str = "insert") -> None:
        """Write one row by a prepared statement (sqlite-utils' insert reads the table's
        schema on every call: too slow for a row per record): at once, or queued when
        grouped."""
        columns = tuple(row)
        sql = self._sql.get((table, columns, verb))
        if sql is None:
            sql = (f"{verb} into [{table}] ({', '.join(f'[{c}]' for c in columns)}) "
                   f"values ({', '.join('?' for _ in columns)})")
            self._sql[(table, columns, verb)] = sql
        if not self._grouping:
            with self.db.conn:
                self.db.conn.execute(sql, tuple(row.values()))
            return
        self._queued.append((sql, tuple(row.values())))
        if (len(self._queued) >= GROUP_ROWS
                or time.monotonic() - self._flushed_at >= GROUP_SECONDS):
            self._flush()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs ------------------------------------------------------------------------------

    def upsert_run(self, config: dict[str, Any]) -> str:
        """The run of this configuration (created on first use); it becomes the run last
        used, which `status`, `export` and `review` act on by default."""
        run_id = run_id_of(config)
        with self.db.conn:
            if not self.db["runs"].count_where("id = ?", [run_id]):
                legacy = {k: v for k, v in config.items() if k in self.db["runs"].columns_dict}
                self.db["runs"].insert({**_encoded(legacy), "id": run_id, "created": now(),
                                        "config": json.dumps(config, ensure_ascii=False,
                                                             sort_keys=True)})
            # Microseconds: runs used within one second still come in the order used.
            self.db["runs"].update(run_id, {"last_used": now("microseconds")})
        return run_id

    def previous_run(self, input_path: str) -> dict[str, Any] | None:
        """The run last used on this input, whatever its settings."""
        rows = list(self.db.query(
            "select * from runs where input_path = ? order by coalesce(last_used, created) "
            "desc, rowid desc limit 1", [input_path]))
        return rows[0] if rows else None

    def latest_run(self) -> str | None:
        """The run last used (not last created)."""
        rows = list(self.db.query(
            "select id from runs order by coalesce(last_used, created) desc, rowid desc limit 1"))
        return rows[0]["id"] if rows else None

    def resolve_run(self, run_id: str | None) -> str:
        """The run a command acts on: `run_id` if given (a unique prefix will do), else the
        run last used."""
        if run_id is None:
            latest = self.latest_run()
            if latest is None:
                raise StoreError(f"{self.path}: holds no run yet")
            return latest
        found = [row["id"] for row in self.db.query(
            "select id from runs where id like ? || '%'", [run_id])]
        if len(found) == 1:
            return found[0]
        known = ", ".join(row["id"] for row in self.db.query("select id from runs")) or "none"
        what = "is ambiguous" if found else "is not a run of this store"
        raise StoreError(f"{self.path}: --run {run_id} {what}; runs: {known}")

    def run(self, run_id: str) -> dict[str, Any]:
        return self.db["runs"].get(run_id)

    def run_config(self, run_id: str) -> dict[str, Any]:
        row = self.run(run_id)
        return json.loads(row["config"]) if row.get("config") else {}

    def runs(self) -> list[dict[str, Any]]:
        """Every run, last used first, with its settings and record counts."""
        out = []
        for row in self.db.query(
                "select * from runs order by coalesce(last_used, created) desc, rowid desc"):
            counts = self.counts(row["id"])
            out.append({"id": row["id"], "input": row["input_path"], "format": row["format"],
                        "src": row["src"], "tgt": row["tgt"], "model": row["model"],
                        "endpoint": row["base_url"], "labels": json.loads(row["labels"] or "[]"),
                        "prompt": f"{row['prompt_name']} v{row['prompt_version']}",
                        "strategy": row["strategy"], "params": json.loads(row["params"] or "{}"),
                        "created": row["created"], "last_used": row.get("last_used"),
                        **counts})
        return out

    @contextmanager
    def lock_run(self, run_id: str) -> Iterator[None]:
        """Hold `run_id` for this process while it translates. A POSIX record lock on one
        byte of the store's `-lock` file: the kernel drops it when the holder exits, even by
        kill -9, so a lock is never left behind."""
        fd = os.open(f"{self.path}-lock", os.O_RDWR | os.O_CREAT, 0o644)
        offset = int(run_id[:7], 16)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
        except OSError:
            os.close(fd)
            holder = self.run(run_id).get("locked_by") or "another process"
            raise RunBusyError(
                f"run {run_id} is being translated by {holder}; wait for it to finish (or "
                "stop it), then run this command again") from None
        try:
            with self.db.conn:
                self.db["runs"].update(run_id, {"locked_by": f"pid {os.getpid()} since {now()}"})
            yield
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset)
            os.close(fd)

    # -- records and what could not be read -----------------------------------------------

    def add_records(self, run_id: str, records: Iterable[Record], default_path: str) -> int:
        """Store the run's source records (once); returns how many the store holds. A run's
        identity covers its input's content, and its records go in in one transaction: a run
        that holds any holds them all, and a resumed run skips encoding them again."""
        held = self.db.conn.execute("select count(*) from records where run_id = ?",
                                    [run_id]).fetchone()[0]
        if held:
            return held
        with self.db.conn:
            self.db["records"].insert_all(
                ({"run_id": run_id, "id": r.id, "position": i, "source": r.to_json(),
                  "path": r.meta.get("path", default_path)}
                 for i, r in enumerate(records)),
                ignore=True, batch_size=1000,
            )
        return self.db["records"].count_where("run_id = ?", [run_id])

    def add_rejects(self, run_id: str, rejects: Iterable[Any]) -> None:
        """Store unreadable input items (`formats.Reject`), one row per item."""
        with self.db.conn:
            self.db["rejects"].insert_all(
                ({"run_id": run_id, "path": r.path, "line": r.line,
                  "item": -1 if getattr(r, "index", None) is None else r.index,
                  "error": r.message, "created": now()} for r in rejects),
                ignore=True, batch_size=1000,
            )

    def add_reject(self, run_id: str, path: str, line: int, error: str) -> None:
        with self.db.conn:
            self.db["rejects"].insert({"run_id": run_id, "path": path, "line": line,
                                       "item": -1, "error": error, "created": now()},
                                      ignore=True)

    def set_items_read(self, run_id: str, items: dict[str, int]) -> None:
        """How many input items each file of the run holds, as its reader counted them."""
        with self.db.conn:
            self.db["inputs"].upsert_all(
                ({"run_id": run_id, "path": path, "items": n} for path, n in items.items()),
                pk=("run_id", "path"))

    def accounting(self, run_id: str) -> list[dict[str, Any]]:
        """Per input file: items read, records and rejects stored, and whether they add up.
        Records merged from several items (UniversalNER) count every item they hold."""
        stored: dict[str, Counter[str]] = {}
        for row in self.db.query(
                "select path, source from records where run_id = ?", [run_id]):
            items = json.loads(row["source"]).get("meta", {}).get("items")
            stored.setdefault(row["path"] or "", Counter())["records"] += 1
            stored[row["path"] or ""]["items"] += len(items) if isinstance(items, list) else 1
        for row in self.db.query("select path, count(*) as n from rejects where run_id = ? "
                                 "group by path", [run_id]):
            stored.setdefault(row["path"], Counter())["rejects"] += row["n"]
            stored[row["path"]]["items"] += row["n"]
        read = {row["path"]: row["items"]
                for row in self.db["inputs"].rows_where("run_id = ?", [run_id])}
        out = []
        for path in sorted(set(read) | set(stored)):
            c = stored.get(path, Counter())
            out.append({"path": path, "items_read": read.get(path), "records": c["records"],
                        "rejects": c["rejects"],
                        "ok": read.get(path) is None or read[path] == c["items"]})
        return out

    def records(self, run_id: str) -> Iterator[Record]:
        for row in self.db.query("select source from records where run_id = ? order by position",
                                 [run_id]):
            yield Record.from_json(row["source"])

    def pending_records(self, run_id: str, done: set[str], limit: int | None = None,
                        page: int = 1000) -> tuple[int, Iterator[Record]]:
        """The run's records in input order (the first `limit` only, when given) that are not
        in `done`: how many, and a stream of them read a page at a time, so a run holds a
        page of its records in memory, not all of them."""
        bound = limit if limit is not None else 2**62
        ids = [row[0] for row in self.db.conn.execute(
            "select id from records where run_id = ? and position < ? order by position",
            [run_id, bound]) if row[0] not in done]
        wanted = set(ids)

        def stream() -> Iterator[Record]:
            after = -1
            while True:
                rows = self.db.conn.execute(
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
                   for r in self.db["rejects"].rows_where("run_id = ?", [run_id], order_by="id")]
        items = {r["path"]: r["items"]
                 for r in self.db["inputs"].rows_where("run_id = ?", [run_id])}
        return rejects, items

    def record(self, run_id: str, record_id: str) -> Record:
        row = self.db["records"].get((run_id, record_id))
        return Record.from_json(row["source"])

    # -- request cache -------------------------------------------------------------------

    def add_batch_requests(self, rows: list[dict[str, Any]]) -> None:
        """Remember requests written to a batch file (`key`, `body`, `file`)."""
        with self.db.conn:
            self.db["batch_requests"].upsert_all(
                ({**r, "body": json.dumps(r["body"], ensure_ascii=False), "created": now()}
                 for r in rows), pk="key")

    def batch_request(self, key: str) -> dict[str, Any] | None:
        """The body of a request written to a batch file, by its cache key."""
        rows = list(self.db["batch_requests"].rows_where("key = ?", [key]))
        return json.loads(rows[0]["body"]) if rows else None

    def average_tokens_out(self, run_id: str, at_least: int) -> float | None:
        """The mean output tokens of the run's answers so far, once it has `at_least`."""
        row = self.db.conn.execute(
            "select count(*), avg(tokens_out) from requests where key in "
            "(select request_key from translations where run_id = ?) and tokens_out > 0",
            [run_id]).fetchone()
        return row[1] if row[0] >= at_least else None

    def cached_response(self, key: str) -> dict[str, Any] | None:
        """The cached answer to request `key` ({"key", "response"}), or None."""
        if key in self._queued_answers:
            return {"key": key, "response": self._queued_answers[key]}
        row = self.db.conn.execute(
            "select response from requests where key = ? and response is not null",
            [key]).fetchone()
        return {"key": key, "response": row[0]} if row else None

    def save_request(self, key: str, **row: Any) -> None:
        """Cache a real answer (never a fault: those are retried, not stored). The prompt's
        fixed part of `messages` is stored once, in `prompt_prefixes`."""
        messages = row.get("messages")
        prefix = None
        if isinstance(messages, list) and len(messages) > PREFIX_MESSAGES:
            prefix = messages[:PREFIX_MESSAGES]
            row["prefix"] = content_key(prefix)
            row["messages"] = messages[PREFIX_MESSAGES:]
        if prefix is not None and row["prefix"] not in self._prefixes:
            self._insert("prompt_prefixes", {"hash": row["prefix"], "messages": json.dumps(
                prefix, ensure_ascii=False)}, "insert or ignore")
            self._prefixes.add(row["prefix"])
        if self._grouping and row.get("response") is not None:
            self._queued_answers[key] = row["response"]
        self._insert("requests", {"key": key, **_encoded(row), "created": now()},
                     "insert or replace")

    def request_messages(self, key: str) -> list[dict[str, str]] | None:
        """The whole messages of cached request `key`, its stored prefix put back."""
        row = self.db.conn.execute(
            "select r.messages, p.messages from requests r left join prompt_prefixes p "
            "on p.hash = r.prefix where r.key = ?", [key]).fetchone()
        if row is None or row[0] is None:
            return None
        return json.loads(row[1] or "[]") + json.loads(row[0])

    # -- translations --------------------------------------------------------------------

    def add_translation(self, run_id: str, t: Translation) -> None:
        self._insert("translations", {
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
        """Records this run need not touch again: accepted, or flagged with no repair turn
        left. Read from the status columns, without decoding any translation."""
        return {row[0] for row in self.db.conn.execute("""
            select t.record_id from translations t
            join (select record_id, max(id) as id from translations where run_id = ?
                  group by record_id) latest on latest.id = t.id
            where t.status = 'accepted' or (t.status = 'flagged' and t.attempt >= ?)""",
            [run_id, repair])}

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
                   record: Record | None = None, undoes: int | None = None,
                   translation_id: int | None = None, reason: str | None = None,
                   adjudicated: bool = False) -> int:
        with self.db.conn:
            table = self.db["reviews"].insert({
                "run_id": run_id, "record_id": record_id, "annotator": annotator,
                "decision": decision, "record": record.to_json() if record else None,
                "created": now(), "undoes": undoes, "translation_id": translation_id,
                "reason": reason, "adjudicated": int(adjudicated)})
        return table.last_pk

    def decisions_made(self, run_id: str | None = None) -> dict[str, int]:
        """Decisions each annotator made and did not take back, overridden by others or not
        (progress is work done, not who decided last)."""
        where, args = ("and run_id = ?", [run_id, run_id]) if run_id else ("", [])
        rows = self.db.query(f"""
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
        rows = list(self.db.query(f"""
            select * from reviews where annotator = ? and decision != 'undo' {where}
            and id not in (select undoes from reviews where decision = 'undo'
                           and undoes is not null {where})
            order by id desc limit 1""", args))
        return rows[0] if rows else None

    def translation(self, translation_id: int) -> Translation | None:
        """One translation row by its id (the one a review judged)."""
        rows = list(self.db.query("select * from translations where id = ?", [translation_id]))
        return _translation(rows[0]) if rows else None

    def review_rows(self, run_id: str, record_id: str | None = None) -> list[dict[str, Any]]:
        where, args = "run_id = ?", [run_id]
        if record_id is not None:
            where, args = where + " and record_id = ?", [run_id, record_id]
        return list(self.db["reviews"].rows_where(where, args, order_by="id"))

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

    def translations_since(self, translation_id: int, run_id: str | None = None
                           ) -> list[tuple[str, str]]:
        """(run, record) of every record with a translation row after `translation_id` (a
        running `translate` stored it; the review page patches those entries)."""
        return self._records_since("translations", translation_id, run_id)

    def _records_since(self, table: str, row_id: int, run_id: str | None
                       ) -> list[tuple[str, str]]:
        where, args = ("and run_id = ?", [row_id, run_id]) if run_id else ("", [row_id])
        return [(row[0], row[1]) for row in self.db.conn.execute(
            f"select distinct run_id, record_id from {table} where id > ? {where}", args)]

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        """One writer at a time across processes (BEGIN IMMEDIATE): what is read inside
        stays true until what is written inside is committed (two review servers on one
        file cannot both pass the same conflict check)."""
        self.db.execute("begin immediate")
        try:
            yield
        except BaseException:
            if self.db.conn.in_transaction:
                self.db.conn.rollback()
            raise
        if self.db.conn.in_transaction:
            self.db.conn.commit()

    def stamp(self) -> tuple[int, int]:
        """(last review row, last translation row): changes when anyone decides or a
        running `translate` stores an answer."""
        return (self.db.conn.execute("select coalesce(max(id), 0) from reviews").fetchone()[0],
                self.db.conn.execute("select coalesce(max(id), 0) from translations")
                .fetchone()[0])

    # -- reporting -----------------------------------------------------------------------

    def counts(self, run_id: str) -> dict[str, int]:
        """Records of the run by current status (pending: no translation row yet)."""
        records = self.db["records"].count_where("run_id = ?", [run_id])
        counts: Counter[str] = Counter(
            row["status"] for row in self.db.query("""
                select t.status from translations t
                join (select record_id, max(id) as id from translations where run_id = ?
                      group by record_id) latest on latest.id = t.id""", [run_id]))
        return {"records": records, "accepted": counts["accepted"], "flagged": counts["flagged"],
                "failed": counts["failed"],
                "pending": records - counts["accepted"] - counts["flagged"] - counts["failed"]}

    def status(self, run_id: str | None = None) -> dict[str, Any]:
        """One run's accounting (default: the run last used): items read per file, records
        by status, problems, the requests it used and their tokens, attempts and reviews."""
        run_id = self.resolve_run(run_id)
        codes: Counter[str] = Counter()
        for t in self.latest_translations(run_id).values():
            if t.status != "accepted":
                codes.update({p["code"] for p in t.problems})
        decisions = self.decisions(run_id)
        reviewed = Counter(review.decision for review in decisions.values())
        reasons = Counter(r.reason for r in decisions.values()
                          if r.decision == "reject" and r.reason)
        usage = next(self.db.query("""
            select count(*) as n, coalesce(sum(tokens_in), 0) as tin,
                   coalesce(sum(tokens_out), 0) as tout from requests
            where key in (select request_key from translations where run_id = ?)""", [run_id]))
        files = self.accounting(run_id)
        return {
            "run": run_id,
            **self.counts(run_id),
            "rejects": sum(f["rejects"] for f in files),
            "items_read": sum(f["items_read"] or 0 for f in files),
            "files": files,
            "requests": usage["n"],
            "tokens_in": usage["tin"],
            "tokens_out": usage["tout"],
            "problems": dict(codes.most_common()),
            "attempts": self.attempt_stats([run_id]),
            "reviews": {"accepted": reviewed["accept"], "edited": reviewed["edit"],
                        "rejected": reviewed["reject"]},
            "reject_reasons": dict(reasons.most_common()),
        }

    def attempt_stats(self, run_ids: list[str]) -> dict[str, dict[str, int]]:
        """Per attempt (0 = first answer, 1.. = repair turns): translations made, records
        accepted at that attempt (for repairs: rescued), and the tokens it cost."""
        if not run_ids:
            return {}
        marks = ",".join("?" for _ in run_ids)
        # A request shared by several records (--pack, identical inputs) is paid once.
        sql = f"""
            select t.attempt, count(*) as n, sum(t.status = 'accepted') as accepted,
                   (select coalesce(sum(r.tokens_in + r.tokens_out), 0) from requests r
                    where r.key in (select request_key from translations
                                    where run_id in ({marks}) and attempt = t.attempt
                                    and status != 'failed')) as tokens
            from translations t
            where t.run_id in ({marks}) and t.status != 'failed'
            group by t.attempt order by t.attempt
        """
        return {str(row["attempt"]): {"translations": row["n"], "accepted": row["accepted"],
                                      "tokens": row["tokens"]}
                for row in self.db.query(sql, [*run_ids, *run_ids])}

    # -- input (input helper) ----------------------------------------------------------------
    # A run's input read once: its records go in as they stream, under a staging id, in one
    # transaction that ends with the run's own id (known only once the whole input is read:
    # it covers the input's hash and label tables), or is rolled back.

    def add_input(self, items: Iterable[Record | Reject], default_path: str,
                  identify: Callable[[], dict[str, Any]], items_read: dict[str, int]
                  ) -> tuple[str, int]:
        """Store a new run's records and rejects as `items` streams them, then name them by
        the run of the config `identify()` returns once the stream is spent, with the items
        read per file that `items_read` holds by then (the caller counts as it streams).
        Whatever raises meanwhile (an unknown label, an unreadable input) leaves the store
        as it was. Returns the run id and how many records the run holds (a run that
        already held its records, stored by another process meanwhile, keeps those)."""
        staging = f"~{os.getpid():x}-{time.monotonic_ns():x}"[:16]
        conn = self.db.conn
        conn.commit()  # a transaction of its own, from here
        try:
            conn.execute("begin")
            batch: list[tuple[Any, ...]] = []
            insert = ("insert or ignore into records (run_id, id, position, source, path) "
                      "values (?, ?, ?, ?, ?)")
            position = 0
            for item in items:
                if isinstance(item, Record):
                    batch.append((staging, item.id, position, item.to_json(),
                                  item.meta.get("path", default_path)))
                    position += 1
                    if len(batch) >= 1000:
                        conn.executemany(insert, batch)
                        batch.clear()
                else:
                    conn.execute(
                        "insert or ignore into rejects (run_id, path, line, item, error, "
                        "created) values (?, ?, ?, ?, ?, ?)",
                        (staging, item.path, item.line, -1 if item.index is None else item.index,
                         item.message, now()))
            conn.executemany(insert, batch)
            run_id = run_id_of(identify())
            held = self.records_held(run_id)
            if held:
                conn.rollback()
                return run_id, held
            for table in ("records", "rejects"):
                conn.execute(f"delete from [{table}] where run_id = ?", [run_id])
                conn.execute(f"update [{table}] set run_id = ? where run_id = ?",
                             [run_id, staging])
            conn.executemany("insert or replace into inputs (run_id, path, items) "
                             "values (?, ?, ?)", [(run_id, p, n) for p, n in items_read.items()])
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return run_id, self.records_held(run_id)

    def records_held(self, run_id: str) -> int:
        return self.db.conn.execute("select count(*) from records where run_id = ?",
                                    [run_id]).fetchone()[0]

    def input_runs(self, input_path: str) -> list[dict[str, Any]]:
        """The configs of the runs on this input path, last used first."""
        return [json.loads(row[0]) for row in self.db.conn.execute(
            "select config from runs where input_path = ? and config is not null "
            "order by coalesce(last_used, created) desc, rowid desc", [input_path])]

    _NOT_DONE = """not exists (
        select 1 from translations t where t.id = (
            select max(id) from translations where run_id = r.run_id and record_id = r.id)
        and (t.status = 'accepted' or (t.status = 'flagged' and t.attempt >= :repair)))"""

    def pending_input(self, run_id: str, repair: int, limit: int | None = None,
                      page: int = 1000) -> tuple[int, Iterator[Record]]:
        """`pending_records` judged by SQL: the run's records in input order (the first
        `limit`) not accepted nor flagged with no repair turn left, how many, and a stream
        of them a page at a time. Memory holds a page, not a set of every record's id."""
        values = {"run": run_id, "bound": limit if limit is not None else 2**62,
                  "repair": repair, "page": page}
        count = self.db.conn.execute(
            "select count(*) from records r where r.run_id = :run and r.position < :bound "
            f"and {self._NOT_DONE}", values).fetchone()[0]

        def stream() -> Iterator[Record]:
            after = -1
            while True:
                rows = self.db.conn.execute(
                    "select position, source from records r where r.run_id = :run and "
                    f"r.position > :after and r.position < :bound and {self._NOT_DONE} "
                    "order by r.position limit :page", {**values, "after": after}).fetchall()
                if not rows:
                    return
                after = rows[-1][0]
                for _, source in rows:
                    yield Record.from_json(source)

        return count, stream()
