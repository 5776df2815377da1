"""The one SQLite file a run lives in, and the only code that reads or writes it.

Nothing a person may need later is updated in place: a new attempt or review is a new row,
and the current state of a record is its latest row. An answer paid for is committed the
moment it arrives; rows derived from answers are written in groups a fraction of a second
apart (`Store.grouped`), so a run killed at any moment resumes from what is here, having
lost no answer, only rows it recomputes from the cache for free.

The connection is private (`Store._db`): every other module asks the `Store` by name.
The package holds one module per table family:

- `migrations`: the schema, an ordered list of named migrations applied once each;
- `_core`: opening (read-only to read, refusing a file that is not a store), the write path
  and its errors, grouped writes;
- `runs`: runs and the run lock; `requests`: the request cache, prompt prefixes and the
  claims on requests in flight; `records`: records, rejects and items read per file;
  `translations`; `reviews`; `queue`: the review queue a page at a time; `batches`: batch
  files and OpenAI Batch jobs; `reports`:
  counts, `status` and `runs`.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ._core import (
    GROUP_ROWS,
    GROUP_SECONDS,
    content_key,
    inspect,
    now,
    request_key,
    run_id_of,
)
from .batches import Batches
from .migrations import migrations
from .queue import ACCEPTED, FLAGGED, QueueQuery, ReviewQueue
from .reports import Reports
from .requests import PREFIX_MESSAGES, RequestCache
from .reviews import Review, effective_reviews, settled, votes
from .translations import Translation

__all__ = ["ACCEPTED", "FLAGGED", "GROUP_ROWS", "GROUP_SECONDS", "PREFIX_MESSAGES",
           "QueueQuery", "Review", "Store", "Translation",
           "content_key", "effective_reviews", "request_key", "held_records", "migrations", "now",
           "run_id_of", "scratch_store", "settled", "votes"]


class Store(Reports, RequestCache, Batches, ReviewQueue):
    """An mmtrans store. `create=False` (every command but `translate`) refuses a path that
    does not exist yet, instead of leaving an empty database behind, and opens the file
    read-only until its first write (which brings its schema up to date)."""


def held_records(db_path: str | Path, config: dict[str, Any]) -> int:
    """How many records the store at `db_path` holds for the run of `config` (0 when there
    is no such store or run): a run that holds any holds them all, read and checked."""
    path = Path(db_path)
    if not path.is_file():
        return 0
    with Store(path, create=False) as store:
        return store.record_count(run_id_of(config))


@contextmanager
def scratch_store(db_path: str | Path) -> Iterator[Path]:
    """A copy of the store at `db_path` (none: no file) in a temporary folder, removed after:
    a dry run reads the answers already cached from it and writes nothing to the real store."""
    with tempfile.TemporaryDirectory(prefix="mmtrans-dry-run-") as folder:
        scratch = Path(folder) / Path(db_path).name
        if Path(db_path).is_file():
            inspect(Path(db_path), create=True)  # somebody else's file is refused, not copied
            # Not mode=ro: a read-only reader of a WAL store leaves -wal and -shm files
            # behind; a plain reader that writes nothing removes them when it closes.
            try:
                with closing(sqlite3.connect(Path(db_path))) as source, \
                        closing(sqlite3.connect(scratch)) as target:
                    source.backup(target)
            except sqlite3.DatabaseError as e:
                raise StoreError(f"{db_path}: cannot read it as an mmtrans store ({e})") \
                    from None
        yield scratch
