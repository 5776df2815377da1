"""OpenAI's Batch API (half price, answers within 24 h): submit the requests a run still
needs, follow the batches, and collect their answers into the request cache.

The requests are the batch files of `batch.py` (custom_id = the request's cache key), so a
collected answer is found by the next `translate` (or `batch submit`, which then sends the
repair turns) like any cached one. What is submitted is paid once:
- an uploaded file is recorded in the store before its batch is created, and a create whose
  answer was lost (a dropped connection, a 5xx, a submit killed while it waited) is found
  again by listing the batches for that input file, instead of being made twice;
- a request an open batch holds is never sent again: not by `submit`, not online by
  `translate`, which leaves its record pending until `collect`;
- a batch that finishes gives back everything it holds: the answers of its output file, the
  failures of its error file, its `errors.data`; a line that cannot be read is one failed
  request. Whatever it did not answer is submitted again next time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import openai
from openai.types import Batch
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from .batch import URL, Imported, import_lines, write_batch
from .endpoint import normalise_endpoint
from .errors import ConfigError, ModelError
from .run import Settings
from .store import Store

WINDOW = "24h"
DONE = {"completed", "expired", "failed", "cancelled"}
#: Errors after which the server may have carried a call out though its answer never came.
LOST = (openai.APIConnectionError, openai.InternalServerError)
#: Batches per page when looking for one by its input file (the API allows 1 to 100).
LIST_PAGE = 100
T = TypeVar("T")


def _client(base_url: str | None, api_key: str | None) -> tuple[openai.OpenAI, str]:
    """The SDK's client, and the endpoint its requests are keyed on."""
    if not base_url and not api_key:
        raise ConfigError("the Batch API needs OPENAI_API_KEY (or --api-key), or --base-url")
    client = openai.OpenAI(api_key=api_key or "none", base_url=base_url, max_retries=0)
    return client, normalise_endpoint(str(client.base_url))


#: How long to wait before each retry of a call that got no answer.
WAIT: Any = wait_exponential(0.5, max=8)


def _retrying() -> Retrying:
    return Retrying(retry=retry_if_exception_type(LOST), stop=stop_after_attempt(4),
                    wait=WAIT, reraise=True)


@contextmanager
def _api_errors(doing: str) -> Iterator[None]:
    try:
        yield
    except openai.OpenAIError as e:
        raise ModelError(f"Batch API, {doing}: {type(e).__name__}: {e}") from None


def _call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A call that is harmless to repeat (a read, an upload), retried on connection errors
    and 5xx (the SDK's own retries are off)."""
    for attempt in _retrying():
        with attempt:
            return fn(*args, **kwargs)
    raise AssertionError("unreachable: tenacity reraises the last error")


def find_batch(client: openai.OpenAI, file_id: str, uploaded_at: int | None) -> Batch | None:
    """The batch made of input file `file_id`, if any, from the listing of the account's
    batches (newest first, page by page; it stops at batches older than the file)."""
    for batch in client.batches.list(limit=LIST_PAGE):
        if batch.input_file_id == file_id:
            return batch
        if uploaded_at is not None and batch.created_at < uploaded_at:
            return None
    return None


def create_batch(client: openai.OpenAI, file_id: str, uploaded_at: int | None) -> Batch:
    """Make the batch of an uploaded file, once: a create that got no answer may have made
    it, so before each retry it is looked for by its input file."""
    for attempt in _retrying():
        with attempt:
            if attempt.retry_state.attempt_number > 1:
                found = find_batch(client, file_id, uploaded_at)
                if found is not None:
                    return found
            return client.batches.create(input_file_id=file_id, endpoint=URL,
                                         completion_window=WINDOW)
    raise AssertionError("unreachable: tenacity reraises the last error")


def _lost_create(file_id: str) -> str:
    return (f"creating the batch of upload {file_id} (the upload is recorded: `mmtrans batch "
            "submit` again finds its batch, or makes it)")


def _batches_of_uploads(client: openai.OpenAI, endpoint: str, db_path: str | Path,
                        make: bool = True) -> tuple[list[str], list[str]]:
    """Give each upload of an earlier submit whose batch is not known its batch: the one
    the API holds (its create's answer was lost), else (`make`) one made now; returns the
    batches found and made. An upload no batch can be made of (the file is gone) is
    released: its requests go again."""
    with Store(db_path) as store:
        uploads = store.uploads_without_batch(endpoint)
    found, made = [], []
    for upload in uploads:
        file_id, uploaded_at = upload["file_id"], upload["uploaded_at"]
        with _api_errors(_lost_create(file_id)):
            batch = _call(find_batch, client, file_id, uploaded_at)
            known = batch is not None
            if batch is None and not make:
                continue
            if batch is None:
                try:
                    batch = create_batch(client, file_id, uploaded_at)
                except (openai.NotFoundError, openai.BadRequestError):
                    with Store(db_path) as store:
                        store.release_upload(file_id)
                    continue
        with Store(db_path) as store:
            store.set_upload_batch(file_id, batch.id, batch.status, endpoint)
        (found if known else made).append(batch.id)
    return found, made


def submit(input_path: str | Path, db_path: str | Path, settings: Settings) -> dict[str, Any]:
    """Upload the requests the run still needs as batch files and start a batch for each;
    the figures of the run, the batches started, how many requests earlier batches still
    hold, and the batches of earlier uploads: found (their create had no answer) and made
    (none was found)."""
    client, endpoint = _client(settings.base_url, settings.api_key)
    found, made = _batches_of_uploads(client, endpoint, db_path)
    with Store(db_path) as store:
        held = store.held_request_keys()
    with tempfile.TemporaryDirectory() as tmp:
        written = write_batch(input_path, db_path,
                              Settings(**{**vars(settings), "base_url": endpoint}),
                              Path(tmp) / "requests.jsonl", skip=set(held))
        batches = []
        for path, keys in zip(written["files"], written["chunks"]):
            with _api_errors("uploading a batch file"):
                # A path, not an open file: a retried upload reads it again from the start.
                uploaded = _call(client.files.create, file=Path(path), purpose="batch")
            with Store(db_path) as store:
                store.add_upload(uploaded.id, endpoint, uploaded.created_at, keys)
            with _api_errors(_lost_create(uploaded.id)):
                batch = create_batch(client, uploaded.id, uploaded.created_at)
            with Store(db_path) as store:
                store.set_upload_batch(uploaded.id, batch.id, batch.status, endpoint)
            batches.append(batch.id)
    return {**written, "batches": batches, "held": len(held), "found": found, "made": made}


def batch_errors(batch: Batch) -> list[str]:
    """Why the API refused a batch (`errors.data`), one line per error."""
    data = batch.errors.data if batch.errors and batch.errors.data else []
    return [(f"line {e.line}: " if e.line is not None else "") + f"{e.code}: {e.message}"
            + (f" ({e.param})" if e.param else "") for e in data]


def status(db_path: str | Path, base_url: str | None, api_key: str | None
           ) -> list[dict[str, Any]]:
    """Every batch of the store not yet collected, as the API reports it now (with its
    errors; a batch whose create had no answer is found by its input file first), and any
    upload whose batch is not known yet."""
    client, endpoint = _client(base_url, api_key)
    Store(db_path, create=False).close()  # refuse a path that is no store before any call
    _batches_of_uploads(client, endpoint, db_path, make=False)
    out = []
    with Store(db_path, create=False) as store:
        for row in store.open_batches(endpoint):
            with _api_errors(f"retrieving {row['id']}"):
                batch = _call(client.batches.retrieve, row["id"])
            store.set_batch_status(batch.id, batch.status)
            counts = batch.request_counts
            out.append({"id": batch.id, "status": batch.status,
                        "completed": counts.completed if counts else None,
                        "failed": counts.failed if counts else None,
                        "total": counts.total if counts else None,
                        "errors": batch_errors(batch)})
        for upload in store.uploads_without_batch(endpoint):
            out.append({"id": f"upload {upload['file_id']}", "errors": [],
                        "status": "no batch known yet (`mmtrans batch submit` finds or makes "
                                  "it)", "completed": None, "failed": None, "total": None})
    return out


def collect(db_path: str | Path, base_url: str | None, api_key: str | None
            ) -> dict[str, Any]:
    """Import the answers of every finished batch (a batch whose create had no answer is
    found by its input file first), from its output and its error file; the requests it
    did not answer are released, to be submitted again. `notes`: what went
    wrong, one line each (unreadable lines, a batch's errors, expiry)."""
    client, endpoint = _client(base_url, api_key)
    totals = {"batches": 0, "imported": 0, "failed": 0, "unknown": 0, "unreadable": 0,
              "waiting": 0}
    notes: list[str] = []
    Store(db_path, create=False).close()  # refuse a path that is no store before any call
    found, _ = _batches_of_uploads(client, endpoint, db_path, make=False)
    notes += [f"found batch {batch_id} of an upload whose create had no answer"
              for batch_id in found]
    with Store(db_path, create=False) as store:
        rows = store.open_batches(endpoint)
    for row in rows:
        with _api_errors(f"retrieving {row['id']}"):
            batch = _call(client.batches.retrieve, row["id"])
        if batch.status not in DONE:
            with Store(db_path, create=False) as store:
                store.set_batch_status(batch.id, batch.status)
            totals["waiting"] += 1
            continue
        got = Imported()
        for kind, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
            if not file_id:
                continue
            with _api_errors(f"reading the {kind} file of {batch.id}"):
                content = _call(client.files.content, file_id).content
            with Store(db_path, create=False) as store:
                # Lines end at b"\n" only: a text may hold U+2028 or U+0085.
                got.add(import_lines(store, content.split(b"\n"), f"{batch.id} {kind} file"))
        with Store(db_path, create=False) as store:
            store.set_batch_status(batch.id, batch.status, collected=True)
        totals["batches"] += 1
        totals["imported"] += got.imported
        totals["failed"] += got.failed
        totals["unknown"] += got.unknown
        totals["unreadable"] += len(got.unreadable)
        notes += [f"{where} line {n}: {why}; its request goes in the next submit"
                  for where, n, why in got.unreadable]
        notes += [f"{batch.id} {batch.status}: {error}" for error in batch_errors(batch)]
        if batch.status in ("expired", "cancelled", "failed"):
            why = {"expired": "its 24 h window ran out", "cancelled": "it was cancelled",
                   "failed": "the API refused it"}[batch.status]
            notes.append(f"{batch.id} {batch.status} ({why}): the requests it did not answer "
                         "go in the next `mmtrans batch submit`")
    return {**totals, "notes": notes}
