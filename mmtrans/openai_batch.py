"""OpenAI's Batch API (half price, answers within 24 h): submit the requests a run still
needs, follow the batches, and collect their answers into the request cache.

The requests are the batch files of `batch.py` (custom_id = the request's cache key), so a
collected answer is found by the next `translate` (or `batch submit`, which then sends the
repair turns) like any cached one. A request a submitted batch still holds is never sent
again; a batch that expires, fails or is cancelled gives back what it answered, and its other
records stay pending, submitted again next time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import openai
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from .batch import URL, read_batch, write_batch
from .errors import ConfigError, ModelError
from .run import Settings
from .store import Store, now

WINDOW = "24h"
DONE = {"completed", "expired", "failed", "cancelled"}


def _client(base_url: str | None, api_key: str | None) -> openai.OpenAI:
    if not base_url and not api_key:
        raise ConfigError("the Batch API needs OPENAI_API_KEY (or --api-key), or --base-url")
    return openai.OpenAI(api_key=api_key or "none", base_url=base_url, max_retries=0)


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """One API call, retried on connection errors and 5xx (the SDK's own retries are off)."""
    try:
        for attempt in Retrying(
                retry=retry_if_exception_type((openai.APIConnectionError,
                                               openai.InternalServerError)),
                stop=stop_after_attempt(4), wait=wait_exponential(0.5, max=8), reraise=True):
            with attempt:
                return fn(*args, **kwargs)
    except openai.OpenAIError as e:
        raise ModelError(f"Batch API: {type(e).__name__}: {e}") from None


def submit(input_path: str | Path, db_path: str | Path, settings: Settings) -> dict[str, Any]:
    """Upload the requests the run still needs as batch files and start a batch for each."""
    client = _client(settings.base_url, settings.api_key)
    base_url = str(client.base_url).rstrip("/")
    with Store(db_path) as store:
        held = {row["key"] for row in store.db.query(
            "select r.key from batch_requests r join batches b on b.id = r.batch_id "
            "where b.collected = 0")}
    with tempfile.TemporaryDirectory() as tmp:
        written = write_batch(input_path, db_path,
                              Settings(**{**vars(settings), "base_url": base_url}),
                              Path(tmp) / "requests.jsonl", skip=held)
        batches = []
        for path, keys in zip(written["files"], written["chunks"]):
            with open(path, "rb") as f:
                uploaded = _call(client.files.create, file=f, purpose="batch")
            batch = _call(client.batches.create, input_file_id=uploaded.id, endpoint=URL,
                          completion_window=WINDOW)
            with Store(db_path) as store, store.db.conn:
                store.db["batches"].insert({"id": batch.id, "file": uploaded.id,
                                            "status": batch.status, "created": now(),
                                            "collected": 0})
                store.db.conn.executemany(
                    "update batch_requests set batch_id = ? where key = ?",
                    [(batch.id, key) for key in keys])
            batches.append(batch.id)
    return {**written, "batches": batches, "held": len(held)}


def status(db_path: str | Path, base_url: str | None, api_key: str | None
           ) -> list[dict[str, Any]]:
    """Every batch of the store not yet collected, as the API reports it now."""
    client = _client(base_url, api_key)
    out = []
    with Store(db_path, create=False) as store:
        for row in store.db["batches"].rows_where("collected = 0", order_by="created"):
            batch = _call(client.batches.retrieve, row["id"])
            counts = batch.request_counts
            store.db["batches"].update(row["id"], {"status": batch.status})
            out.append({"id": batch.id, "status": batch.status,
                        "completed": counts.completed if counts else None,
                        "failed": counts.failed if counts else None,
                        "total": counts.total if counts else None})
    return out


def collect(db_path: str | Path, base_url: str | None, api_key: str | None
            ) -> dict[str, int]:
    """Import the answers of every finished batch; its unanswered requests are released, to
    be submitted again."""
    client = _client(base_url, api_key)
    totals = {"batches": 0, "imported": 0, "failed": 0, "waiting": 0}
    with Store(db_path, create=False) as store:
        rows = list(store.db["batches"].rows_where("collected = 0", order_by="created"))
    for row in rows:
        batch = _call(client.batches.retrieve, row["id"])
        if batch.status not in DONE:
            totals["waiting"] += 1
            continue
        if batch.output_file_id:
            text = _call(client.files.content, batch.output_file_id).text
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "output.jsonl"
                path.write_text(text, encoding="utf-8")
                counts = read_batch(db_path, path)
            totals["imported"] += counts["imported"]
            totals["failed"] += counts["failed"]
        with Store(db_path, create=False) as store, store.db.conn:
            store.db["batches"].update(row["id"], {"status": batch.status, "collected": 1})
        totals["batches"] += 1
    return totals
