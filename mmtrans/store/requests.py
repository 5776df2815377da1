"""The request cache (`requests`, `prompt_prefixes`) and the requests in flight (`claims`).

An answer is committed the moment it arrives, in a transaction of its own, before anything
else is done with it: what was paid for survives kill -9, SIGTERM and a full disk that
stops the run later. A request being asked is claimed first, so a second process needing
the same answer waits for it instead of buying it again.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

from ..errors import StoreError, StoreWriteError
from ._core import FIXED_MESSAGES, Core, dumps, encoded, now, prefix_key

#: Leading messages of a request that are the prompt's fixed part (system, example in and out).
PREFIX_MESSAGES = FIXED_MESSAGES
HOST = socket.gethostname()


def _alive(host: str, pid: int) -> bool:
    """Whether a claim's owner may still be running (another host's: cannot tell, so yes)."""
    if host != HOST:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RequestCache(Core):
    def __init__(self, path: str | Path, create: bool = True):
        super().__init__(path, create)
        self._prefixes: set[str] = set()
        self._claimed: set[str] = set()  # keys this store claimed and has not answered
        self._token = uuid.uuid4().hex

    def cached_response(self, key: str) -> dict[str, Any] | None:
        """The cached answer to request `key` ({"key", "response"}), or None."""
        row = self._db.conn.execute(
            "select response from requests where key = ? and response is not null",
            [key]).fetchone()
        return {"key": key, "response": row[0]} if row else None

    def save_request(self, key: str, **row: Any) -> None:
        """Cache a real answer (never a fault: those are retried, not stored), committed at
        once, and give up the claim on it. The prompt's fixed part of `messages` is stored
        once, in `prompt_prefixes`. When the disk is full the store's reserve is given up
        and the answer written into it; the StoreWriteError is raised all the same (in a
        grouped run: noted in `write_failure`), so the run stops with every answer it
        received kept."""
        messages = row.get("messages")
        prefix = None
        if isinstance(messages, list) and len(messages) > PREFIX_MESSAGES:
            prefix = messages[:PREFIX_MESSAGES]
            row["prefix"] = prefix_key(prefix)
            row["messages"] = messages[PREFIX_MESSAGES:]
        values = {"key": key, **encoded(row), "created": now()}
        try:
            self._save(key, values, prefix)
        except StoreWriteError as e:
            if not self.spend_reserve():
                raise
            self._save(key, values, prefix)  # kept, in the room the reserve gave back
            if not self._grouping:
                raise
            self.write_failure = self.write_failure or e

    def _save(self, key: str, values: dict[str, Any], prefix: list[Any] | None) -> None:
        sql = (f"insert or replace into requests ({', '.join(f'[{c}]' for c in values)}) "
               f"values ({', '.join('?' for _ in values)})")
        with self._write() as db:
            if prefix is not None and values["prefix"] not in self._prefixes:
                db.conn.execute(
                    "insert or ignore into prompt_prefixes (hash, messages) values (?, ?)",
                    [values["prefix"], dumps(prefix)])
            db.conn.execute(sql, tuple(values.values()))
            if key in self._claimed:
                db.conn.execute("delete from claims where key = ? and token = ?",
                                [key, self._token])
        if prefix is not None:
            self._prefixes.add(values["prefix"])
        self._claimed.discard(key)

    def request_messages(self, key: str) -> list[dict[str, str]] | None:
        """The whole messages of cached request `key`, its stored prefix put back."""
        row = self._db.conn.execute(
            "select r.messages, p.messages from requests r left join prompt_prefixes p "
            "on p.hash = r.prefix where r.key = ?", [key]).fetchone()
        if row is None or row[0] is None:
            return None
        return json.loads(row[1] or "[]") + json.loads(row[0])

    def average_tokens_out(self, run_id: str, at_least: int) -> float | None:
        """The mean output tokens of the run's answers so far, once it has `at_least`."""
        row = self._db.conn.execute(
            "select count(*), avg(tokens_out) from requests where key in "
            "(select request_key from translations where run_id = ?) and tokens_out > 0",
            [run_id]).fetchone()
        return row[1] if row[0] >= at_least else None

    # -- requests in flight --------------------------------------------------------------

    def claim(self, key: str, ttl: float) -> bool:
        """Claim request `key` for this store for `ttl` seconds before asking it. False when
        its answer is cached by now, or another live process holds it (wait for its answer:
        `cached_response`). A claim whose owner died (same host, pid gone) or whose time is
        up is taken over. One short BEGIN IMMEDIATE transaction: two processes cannot both
        take the same key."""
        try:
            return self._claim(key, ttl)
        except StoreWriteError as e:  # nothing sent: the run stops (see `grouped`)
            if not self._grouping:
                raise
            self.write_failure = self.write_failure or e
            return False

    def _claim(self, key: str, ttl: float) -> bool:
        with self._write(immediate=True) as db:
            if db.conn.execute("select 1 from requests where key = ? and response is not null",
                               [key]).fetchone():
                return False
            held = db.conn.execute("select host, pid, token, expires from claims where key = ?",
                                   [key]).fetchone()
            if held and held[2] != self._token and held[3] > time.time() \
                    and _alive(held[0], held[1]):
                return False
            db.conn.execute("insert or replace into claims (key, host, pid, token, expires) "
                            "values (?, ?, ?, ?, ?)",
                            [key, HOST, os.getpid(), self._token, time.time() + ttl])
        self._claimed.add(key)
        return True

    def release_claim(self, key: str) -> None:
        """Give up the claim on `key` unanswered (the request failed or was cancelled): a
        waiting process takes it over at once. Best effort: a claim that cannot be deleted
        (full disk) is taken over once this process is gone."""
        if key in self._claimed:
            self._claimed.discard(key)
            with suppress(StoreError), self._write() as db:
                db.conn.execute("delete from claims where key = ? and token = ?",
                                [key, self._token])

    def _release(self) -> None:
        """Every claim still held, given up as the store closes (a killed process leaves
        its claims, which the next claimant takes over: their pid is gone)."""
        if self._claimed:
            self._claimed.clear()
            with suppress(StoreError), self._write() as db:
                db.conn.execute("delete from claims where token = ?", [self._token])
