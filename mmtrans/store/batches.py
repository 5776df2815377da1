"""Batch jobs: the requests written to a batch file (`batch_requests`, by cache key) and the
OpenAI Batch jobs a store submitted (`batches`), so an imported answer lands in the request
cache like any other and a request a batch still holds is never sent again."""

from __future__ import annotations

import json
from typing import Any

from ._core import Core, now


class Batches(Core):
    def add_batch_requests(self, rows: list[dict[str, Any]]) -> None:
        """Remember requests written to a batch file (`key`, `body`, `file`)."""
        with self._write() as db:
            db["batch_requests"].upsert_all(
                ({**r, "body": json.dumps(r["body"], ensure_ascii=False), "created": now()}
                 for r in rows), pk="key")

    def batch_request(self, key: str) -> dict[str, Any] | None:
        """The body of a request written to a batch file, by its cache key."""
        rows = list(self._db["batch_requests"].rows_where("key = ?", [key]))
        return json.loads(rows[0]["body"]) if rows else None

    def add_batch(self, batch_id: str, file_id: str, status: str, keys: list[str]) -> None:
        """A submitted batch and the requests it holds, in one transaction."""
        with self._write() as db:
            db["batches"].insert({"id": batch_id, "file": file_id, "status": status,
                                  "created": now(), "collected": 0})
            db.conn.executemany("update batch_requests set batch_id = ? where key = ?",
                                [(batch_id, key) for key in keys])

    def open_batches(self) -> list[dict[str, Any]]:
        """The batches not collected yet, oldest first."""
        return list(self._db["batches"].rows_where("collected = 0", order_by="created"))

    def set_batch_status(self, batch_id: str, status: str) -> None:
        with self._write() as db:
            db["batches"].update(batch_id, {"status": status})

    def mark_collected(self, batch_id: str, status: str) -> None:
        """The batch's answers are in the cache: its requests are no longer held."""
        with self._write() as db:
            db["batches"].update(batch_id, {"status": status, "collected": 1})

    def batch_request_keys_held(self) -> set[str]:
        """Cache keys of the requests a batch not yet collected holds (never sent again)."""
        return {row[0] for row in self._db.conn.execute(
            "select r.key from batch_requests r join batches b on b.id = r.batch_id "
            "where b.collected = 0")}
