"""Batch jobs: the requests written to a batch file (`batch_requests`, by cache key), the
files uploaded for OpenAI batches (`batch_uploads`) and the batches made of them (`batches`).

An upload is recorded before its batch is created, so a create whose answer was lost is found
again by its input file instead of being made twice; its requests are held (never sent online,
never written again) until the batch is collected, or the upload is released because no batch
can be made of it."""

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

    def add_upload(self, file_id: str, endpoint: str, uploaded_at: int | None,
                   keys: list[str]) -> None:
        """Record an uploaded batch input file and the requests (cache keys) it holds, before
        any batch is created from it."""
        with self._write() as db:
            db.conn.execute(
                "insert or ignore into batch_uploads (file_id, endpoint, uploaded_at, "
                "released, created) values (?, ?, ?, 0, ?)",
                [file_id, endpoint, uploaded_at, now()])
            db.conn.executemany("update batch_requests set upload = ? where key = ?",
                                [(file_id, key) for key in keys])

    def uploads_without_batch(self, endpoint: str) -> list[dict[str, Any]]:
        """Uploads of `endpoint` whose batch is not known yet (its create's answer was lost,
        or the submit was stopped): `file_id`, `uploaded_at`."""
        return [{"file_id": row[0], "uploaded_at": row[1]} for row in self._db.conn.execute(
            "select file_id, uploaded_at from batch_uploads where batch_id is null and "
            "released = 0 and endpoint = ? order by created, rowid", [endpoint])]

    def set_upload_batch(self, file_id: str, batch_id: str, status: str,
                         endpoint: str) -> None:
        """The batch made of an upload: its requests are held by it from now on."""
        with self._write() as db:
            db.conn.execute(
                "insert or ignore into batches (id, file, status, created, collected, "
                "endpoint) values (?, ?, ?, ?, 0, ?)", [batch_id, file_id, status, now(),
                                                        endpoint])
            db.conn.execute("update batch_uploads set batch_id = ? where file_id = ?",
                            [batch_id, file_id])
            db.conn.execute("update batch_requests set batch_id = ? where upload = ?",
                            [batch_id, file_id])

    def release_upload(self, file_id: str) -> None:
        """No batch can be made of this upload: its requests are free to go again."""
        with self._write() as db:
            db.conn.execute("update batch_uploads set released = 1 where file_id = ?",
                            [file_id])

    def held_request_keys(self) -> dict[str, str]:
        """Every request an open batch (or an upload whose batch is not known yet) holds,
        by cache key: the batch id, or "of upload <file id>"."""
        return {row[0]: row[1] for row in self._db.conn.execute("""
            select r.key, coalesce(u.batch_id, 'of upload ' || u.file_id)
            from batch_requests r join batch_uploads u on u.file_id = r.upload
            left join batches b on b.id = u.batch_id
            where u.released = 0 and (u.batch_id is null or b.collected = 0)""")}

    def open_batches(self, endpoint: str) -> list[dict[str, Any]]:
        """Batches of `endpoint` (or of no recorded endpoint) not collected yet, oldest
        first: `id`, `file`, `status`."""
        return [{"id": row[0], "file": row[1], "status": row[2]}
                for row in self._db.conn.execute(
                    "select id, file, status from batches where collected = 0 and "
                    "(endpoint = ? or endpoint is null) order by created, rowid", [endpoint])]

    def set_batch_status(self, batch_id: str, status: str, collected: bool = False) -> None:
        """A batch's status as the API last reported it; `collected`: its answers are in
        the cache and the requests it did not answer are free to go again."""
        with self._write() as db:
            db.conn.execute(
                "update batches set status = ?, collected = max(collected, ?) where id = ?",
                [status, int(collected), batch_id])
