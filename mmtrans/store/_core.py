"""Opening a store, and the one way every write goes in.

A store opened to read (`create=False`) holds a read-only connection (`mode=ro`): it never
migrates, never switches the journal mode, never writes. The first write through it
reopens the file read-write, switches it to WAL and applies the migrations it lacks, so a
command that only reads never changes the file, and one that writes upgrades it as it goes.
A file that is not an mmtrans store is refused before any of that, through a read-only
connection, and is left byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import sqlite_utils

from ..errors import StoreError, StoreWriteError
from .migrations import APPLIED, migrations, pending

#: A grouped write commits at least this often (see `Core.grouped`).
GROUP_ROWS = 200
GROUP_SECONDS = 0.25
#: Bytes kept in a file beside a store a run writes to (`<db>-reserve`), given up when the
#: disk fills so the answers arriving then are still written (see `Core.spend_reserve`).
RESERVE_BYTES = 256 * 1024
#: How long a write waits for another process's write lock before giving up.
BUSY_MS = 30000

#: What SQLite says when a write cannot reach the disk: what it means, and what to do.
FULL = ("the disk is full", "free some space")
READ_ONLY = ("the file or its folder is read-only", "make both writable")
WRITE_FAILURES = {
    "database or disk is full": FULL,
    "attempt to write a readonly database": READ_ONLY,
    "readonly database": READ_ONLY,
    "unable to open database file": READ_ONLY,  # the -wal or -shm file cannot be made
    "disk i/o error": ("a disk I/O error", "check the disk"),
}


_this_second: tuple[int, str] = (0, "")


def now(timespec: str = "seconds") -> str:
    """UTC now in ISO 8601; to the second, formatted once a second (a run stamps several
    rows a record: formatting each was 2% of a packed run's CPU)."""
    global _this_second
    if timespec != "seconds":
        return datetime.now(timezone.utc).isoformat(timespec=timespec)
    second = int(time.time())
    if _this_second[0] != second:
        _this_second = (second, datetime.fromtimestamp(second, timezone.utc).isoformat())
    return _this_second[1]


#: json.dumps(value, ensure_ascii=False), and the canonical JSON of keys: each one encoder
#: for every call (json.dumps with options builds a new one at each).
dumps = json.JSONEncoder(ensure_ascii=False).encode
_canonical = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def content_key(*parts: Any) -> str:
    """sha256 of the canonical JSON of `parts`: the identity of a request or a run."""
    return hashlib.sha256(_canonical(parts).encode("utf-8")).hexdigest()


#: The canonical JSON of the prompt's fixed messages met so far, by (role, content): they
#: open every request of a run, and writing them out again was most of a request key's cost.
_FIXED_JSON: dict[tuple[str, str], str] = {}
_FIXED_KEPT = 64
FIXED_MESSAGES = 3  # leading messages that are the prompt's fixed part


def _message_json(message: Any) -> str:
    if type(message) is dict and len(message) == 2:
        role, content = message.get("role"), message.get("content")
        if type(role) is str and type(content) is str:
            found = _FIXED_JSON.get((role, content))
            if found is None:
                if len(_FIXED_JSON) >= _FIXED_KEPT:
                    _FIXED_JSON.clear()
                found = _FIXED_JSON[(role, content)] = _canonical(message)
            return found
    return _canonical(message)


def request_key(endpoint: str, model: str, messages: list[Any], params: dict[str, Any]
                ) -> str:
    """`content_key(endpoint, model, messages, params)`, the same digest of the same bytes
    (the canonical JSON of a list is its items' canonical JSON joined by commas), with the
    prompt's fixed messages written out once instead of for every request."""
    if type(messages) is not list:
        return content_key(endpoint, model, messages, params)
    fixed = [_message_json(m) for m in messages[:FIXED_MESSAGES]]
    rest = [_canonical(m) for m in messages[FIXED_MESSAGES:]]
    blob = (f"[{_canonical(endpoint)},{_canonical(model)},[{','.join(fixed + rest)}],"
            f"{_canonical(params)}]")
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def prefix_key(prefix: list[Any]) -> str:
    """`content_key(prefix)` of a request's fixed messages, the same way."""
    blob = f"[[{','.join(_message_json(m) for m in prefix)}]]"
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def run_id_of(config: dict[str, Any]) -> str:
    """A run's id: the hash of everything its results depend on."""
    return content_key(config)[:16]


def encoded(row: dict[str, Any]) -> dict[str, Any]:
    """Lists and dicts as JSON text, for the columns that hold them."""
    return {k: dumps(v) if isinstance(v, (list, dict)) else v
            for k, v in row.items()}


def write_error(path: Path, error: sqlite3.Error) -> StoreWriteError | None:
    """The user's error for a write SQLite could not make (None: not a disk problem)."""
    text = str(error).lower()
    for said, (meaning, advice) in WRITE_FAILURES.items():
        if said in text:
            return StoreWriteError(
                f"{path}: cannot write to the store: {meaning}; every answer received is "
                f"kept: {advice}, then run the same command again", path)
    return None


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    # One thread at a time uses a Store, but not always the one that opened it (a run
    # started from inside a running event loop runs in a worker thread).
    if not readonly:
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        return conn
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
    try:
        conn.execute("select count(*) from sqlite_master").fetchone()
    except sqlite3.OperationalError as e:
        # A WAL store on a read-only disk: its -shm file cannot be made, and no process can
        # be writing to it, so it is read as it is.
        if "unable to open" not in str(e) or os.access(path.parent, os.W_OK):
            raise
        conn.close()
        conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, check_same_thread=False)
    return conn


def inspect(path: Path, create: bool) -> None:
    """Refuse a file that is not an mmtrans store, reading it through a read-only
    connection: nothing is written to somebody else's file, not even a journal mode."""
    try:
        conn = _connect(path, readonly=True)
    except sqlite3.OperationalError as e:
        raise StoreError(f"{path}: cannot open: {e}") from None
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path}: not an mmtrans store (not an SQLite database: {e})") \
            from None
    try:
        objects = conn.execute("select type, name from sqlite_master").fetchall()
        if not objects:
            if create:
                return  # an empty file or database: a new store
            raise StoreError(f"{path}: not an mmtrans store (an empty database)")
        tables = {name for kind, name in objects if kind == "table"}
        ours = APPLIED in tables and conn.execute(
            f"select count(*) from {APPLIED} where migration_set = ?",
            [migrations.name]).fetchone()[0]
        if not ours:
            shown = ", ".join(f"{kind} {name}" for kind, name in sorted(objects)[:5])
            raise StoreError(f"{path}: not an mmtrans store (an SQLite database holding "
                             f"{shown})")
    except sqlite3.OperationalError as e:
        raise StoreError(f"{path}: cannot read: {e}") from None
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path}: not an mmtrans store (not an SQLite database: {e})") \
            from None
    finally:
        conn.close()


class Core:
    """The connection, private to the store package: opened read-only for reading, made
    writable (and migrated) at the first write."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory; --db takes a file")
        if not create and not self.path.is_file():
            raise StoreError(f"{self.path}: no such database")
        if self.path.exists():
            inspect(self.path, create)
        self._writable = False
        self._grouping = False
        self._queued: list[tuple[str, tuple[Any, ...]]] = []  # derived rows not yet written
        self._flushed_at = time.monotonic()
        #: The write the disk refused during a grouped run: the run stops at its next request,
        #: once the answers on their way are in (see `grouped`).
        self.write_failure: StoreWriteError | None = None
        if create:
            self._db = self._open_writable()
            self._keep_reserve()
        else:
            try:
                self._db = sqlite_utils.Database(_connect(self.path, readonly=True))
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot open: {e}") from None

    def _open_writable(self) -> sqlite_utils.Database:
        # A new store's first opening switches it to WAL and migrates it; a second process
        # doing the same at that moment can be refused at once (`database is locked`: a
        # journal-mode change waits for nobody), so it tries again until the busy timeout.
        deadline = time.monotonic() + BUSY_MS / 1000
        while True:
            try:
                return self._open_writable_once()
            except sqlite3.OperationalError as e:
                if "locked" in str(e) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise write_error(self.path, e) or \
                    StoreError(f"{self.path}: cannot open: {e}") from None

    def _open_writable_once(self) -> sqlite_utils.Database:
        conn = _connect(self.path, readonly=False)
        try:
            db = sqlite_utils.Database(conn)
            db.enable_wal()
            # In WAL mode a commit is in the log file before it returns: a killed process
            # loses nothing committed, only power loss may drop the last commits. No fsync
            # per commit, so a commit per answer costs little.
            db.execute("PRAGMA synchronous = NORMAL")
            if not self._has_schema(conn) or pending(conn):
                self._migrate(conn, db)
        except BaseException:
            conn.close()
            raise
        self._writable = True
        return db

    def _migrate(self, conn: sqlite3.Connection, db: sqlite_utils.Database) -> None:
        """Bring the schema up to date holding the write lock from the first read: two
        processes opening a new store at once (two runs started together) would both read
        that a migration is pending and both apply it (`table ... already exists`), or one
        would find the lock taken mid-transaction, where SQLite waits for nobody (`database
        is locked`). The second waits (busy timeout), then finds nothing to do."""
        conn.execute("begin immediate")
        try:
            if not self._has_schema(conn) or pending(conn):
                migrations.apply(db)  # each migration in a savepoint of this transaction
            conn.execute("commit")
        except BaseException:
            conn.rollback()
            raise

    @property
    def _reserve(self) -> Path:
        return Path(f"{self.path}-reserve")

    def _keep_reserve(self) -> None:
        """Set disk space aside for the answers that arrive as the disk fills up: a store's
        WAL grows with every commit, so free pages inside the database would not help."""
        if self._reserve.exists():
            return
        try:
            with open(self._reserve, "wb") as f:
                f.write(bytes(RESERVE_BYTES))
        except OSError:  # no room (or a read-only folder): no reserve, nothing else lost
            self._reserve.unlink(missing_ok=True)

    def spend_reserve(self) -> bool:
        """Give the reserved space back to the disk (once): True if there was some."""
        try:
            self._reserve.unlink()
        except OSError:
            return False
        return True

    @staticmethod
    def _has_schema(conn: sqlite3.Connection) -> bool:
        return conn.execute("select count(*) from sqlite_master where name = ?",
                            [APPLIED]).fetchone()[0] > 0

    def _writer(self) -> sqlite_utils.Database:
        """The read-write connection, opened (and the schema brought up to date) at the
        first write of a store opened to read."""
        if not self._writable:
            self._db.close()
            self._db = self._open_writable()
        return self._db

    @contextmanager
    def _write(self, immediate: bool = False) -> Iterator[sqlite_utils.Database]:
        """One transaction, committed on leaving (`immediate`: holding the write lock from
        its start, so what is read inside stays true until it commits); a write the disk
        refuses (full, read-only, I/O error) is a StoreWriteError naming the file."""
        db = self._writer()
        try:
            with db.conn:
                if immediate:
                    db.conn.execute("begin immediate")
                yield db
        except sqlite3.OperationalError as e:
            raise write_error(self.path, e) or e from None

    _sql: dict[tuple[str, tuple[str, ...], str], str] = {}

    def _insert(self, table: str, row: dict[str, Any], verb: str = "insert",
                at_once: bool = False) -> None:
        """Write one row by a prepared statement (sqlite-utils' insert reads the table's
        schema on every call: too slow for a row per record): committed at once, or queued
        when grouped (unless `at_once`: what was paid for is never left waiting)."""
        columns = tuple(row)
        sql = self._sql.get((table, columns, verb))
        if sql is None:
            sql = (f"{verb} into [{table}] ({', '.join(f'[{c}]' for c in columns)}) "
                   f"values ({', '.join('?' for _ in columns)})")
            self._sql[(table, columns, verb)] = sql
        if at_once or not self._grouping:
            with self._write() as db:
                db.conn.execute(sql, tuple(row.values()))
            return
        self._queued.append((sql, tuple(row.values())))
        if (len(self._queued) >= GROUP_ROWS
                or time.monotonic() - self._flushed_at >= GROUP_SECONDS):
            self._flush_derived()

    @contextmanager
    def grouped(self) -> Iterator[None]:
        """Rows derived from answers (translations) written inside are queued and written
        in one short transaction every GROUP_ROWS rows or GROUP_SECONDS seconds (and at
        the end), instead of one commit each. Answers themselves are committed as they
        arrive: a run killed loses none, only derived rows, which a resumed run recomputes
        from the cache without asking again. The write lock is held only while a group is
        written, so another process is never starved of it.

        A write the disk refuses inside is noted in `write_failure` (derived rows are
        dropped: they are recomputed) instead of raised where it happened, so the run can
        stop sending and take in the answers on their way; it is raised on leaving."""
        self._grouping = True
        try:
            yield
        except BaseException:
            self._grouping = False
            with suppress(StoreError):
                self._flush()
            raise
        self._grouping = False
        self._flush_derived()
        if self.write_failure is not None:
            raise self.write_failure

    def _flush(self) -> None:
        if self._queued:
            queued, self._queued = self._queued, []
            with self._write() as db:
                for sql, values in queued:
                    db.conn.execute(sql, values)
        self._flushed_at = time.monotonic()

    def _flush_derived(self) -> None:
        """Write the queued rows; a refused write drops them (they are derived) and is
        noted."""
        try:
            self._flush()
        except StoreWriteError as e:
            self.write_failure = self.write_failure or e

    def _records_since(self, table: str, row_id: int, run_id: str | None,
                       limit: int | None = None) -> list[tuple[str, str]]:
        """(run, record) of every record with a row in `table` after row `row_id` (the first
        `limit` of them: a caller that only needs to know there are many reads no more)."""
        where, args = ("and run_id = ?", [row_id, run_id]) if run_id else ("", [row_id])
        return [(row[0], row[1]) for row in self._db.conn.execute(
            f"select distinct run_id, record_id from {table} where id > ? {where} limit ?",
            [*args, -1 if limit is None else limit])]

    def _release(self) -> None:
        """What a store gives back when it closes (its claims); see RequestCache."""

    def close(self) -> None:
        try:
            self._flush()
            self._release()
        finally:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            self.close()
        except StoreError:
            if kind is None:  # a failure already on its way says more than this one
                raise
