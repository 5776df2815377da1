"""Runs (`runs`): one row per configuration, and the lock a translating process holds."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import RunBusyError, StoreError
from ._core import Core, encoded, now, run_id_of

#: Runs, last used first (`last_used` is null for runs made before it was recorded).
LAST_USED_FIRST = "order by coalesce(last_used, created) desc, rowid desc"


class Runs(Core):
    def upsert_run(self, config: dict[str, Any]) -> str:
        """The run of this configuration (created on first use); it becomes the run last
        used, which `status`, `export` and `review` act on by default."""
        run_id = run_id_of(config)
        with self._write() as db:
            if not db["runs"].count_where("id = ?", [run_id]):
                legacy = {k: v for k, v in config.items() if k in db["runs"].columns_dict}
                db["runs"].insert({**encoded(legacy), "id": run_id, "created": now(),
                                   "config": json.dumps(config, ensure_ascii=False,
                                                        sort_keys=True)})
            # Microseconds: runs used within one second still come in the order used.
            db["runs"].update(run_id, {"last_used": now("microseconds")})
        return run_id

    def previous_run(self, input_path: str) -> dict[str, Any] | None:
        """The run last used on this input, whatever its settings."""
        rows = list(self._db.query(
            f"select * from runs where input_path = ? {LAST_USED_FIRST} limit 1", [input_path]))
        return rows[0] if rows else None

    def latest_run(self) -> str | None:
        """The run last used (not last created)."""
        rows = list(self._db.query(f"select id from runs {LAST_USED_FIRST} limit 1"))
        return rows[0]["id"] if rows else None

    def resolve_run(self, run_id: str | None) -> str:
        """The run a command acts on: `run_id` if given (a unique prefix will do), else the
        run last used."""
        if run_id is None:
            latest = self.latest_run()
            if latest is None:
                raise StoreError(f"{self.path}: holds no run yet")
            return latest
        found = [row["id"] for row in self._db.query(
            "select id from runs where id like ? || '%'", [run_id])]
        if len(found) == 1:
            return found[0]
        known = ", ".join(row["id"] for row in self._db.query("select id from runs")) or "none"
        what = "is ambiguous" if found else "is not a run of this store"
        raise StoreError(f"{self.path}: --run {run_id} {what}; runs: {known}")

    def run(self, run_id: str) -> dict[str, Any]:
        return self._db["runs"].get(run_id)

    def run_config(self, run_id: str) -> dict[str, Any]:
        row = self.run(run_id)
        return json.loads(row["config"]) if row.get("config") else {}

    def run_rows(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Every run's row (or only `run_id`'s), in the order they were made."""
        where, args = ("id = ?", [run_id]) if run_id else (None, None)
        return list(self._db["runs"].rows_where(where, args, order_by="rowid"))

    def run_ids(self) -> list[str]:
        """Every run's id, in the order they were made."""
        return [row["id"] for row in self.run_rows()]

    @contextmanager
    def lock_run(self, run_id: str) -> Iterator[None]:
        """Hold `run_id` for this process while it translates. A POSIX record lock on one
        byte of the store's `-lock` file: the kernel drops it when the holder exits, even by
        kill -9, so a lock is never left behind."""
        try:
            fd = os.open(f"{self.path}-lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StoreError(f"{self.path}-lock: cannot open the run lock: {e.strerror}") \
                from None
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
            with self._write() as db:
                db["runs"].update(run_id, {"locked_by": f"pid {os.getpid()} since {now()}"})
            yield
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset)
            os.close(fd)

    def input_runs(self, input_path: str) -> list[dict[str, Any]]:
        """The configs of the runs on this input path, last used first."""
        return [json.loads(row[0]) for row in self._db.conn.execute(
            f"select config from runs where input_path = ? and config is not null "
            f"{LAST_USED_FIRST}", [input_path])]
