"""One translate run set up and finished: its settings, one pass over its input (read,
detect, hash and store at once), its identity, and resuming it. The asynchronous loop that
sends the requests is `pipeline.Run`; nothing here waits on the network.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import formats
from .check_pool import CheckPool, auto_processes
from .errors import ConfigError, InputError, LabelError
from .estimate import dry_run
from .fidelity import FidelityChecker, FidelityQueue, identity, make_checker
from .formats import InputReader, Reject
from .labels import LabelTable, find_tables, load_tables
from .llm import Backend, OpenAIBackend, Params
from .pipeline import Progress, ProgressCallback, Run, make_backend, run_sync
from .prompts import Prompt, load_prompt
from .records import Record
from .store import Store, content_key, run_id_of, scratch_store


@dataclass
class Settings:
    """Everything a `translate` run is configured by (the CLI's options)."""

    src: str
    tgt: str
    labels: list[str] = field(default_factory=list)  # empty: found by find_tables
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    local: bool = False
    local_model: str | None = None
    #: Most requests in flight; fewer when the server's limits and latency need fewer.
    concurrency: int = 32
    #: Requests and tokens per minute the server allows; None: learned from its headers.
    rpm: float | None = None
    tpm: float | None = None
    params: Params = field(default_factory=Params)
    prompt: str | None = None
    format: str | None = None
    limit: int | None = None
    repair: int = 2
    strategy: str = "default"
    timeout: float = 60.0
    max_attempts: int = 6
    #: Records in a row that cannot reach the server before the run stops.
    unreachable_limit: int = 3
    #: Records per request for first answers (their repair turns go one by one).
    pack: int = 1
    #: Render and price the requests, send none.
    dry_run: bool = False
    #: US dollars per million tokens, over data/prices (for the dry run's cost).
    price_in: float | None = None
    price_out: float | None = None
    #: The fidelity check (mmtrans/fidelity.py): on whenever an embedding model is there;
    #: `embeddings_url` names an OpenAI-compatible /v1/embeddings server instead of the
    #: in-process model.
    fidelity: bool = True
    embeddings_url: str | None = None
    embeddings_model: str | None = None
    #: Set by `translate` when fidelity is checked: what its verdicts depend on.
    fidelity_identity: dict[str, Any] | None = None
    #: Worker processes for the checks of the answers (0: in the run's own process; None:
    #: `check_pool.auto_processes()`, one where the process may use a second core and can
    #: fork it).
    check_processes: int | None = 0



def file_hash(path: str | Path) -> str:
    """sha256 of the input: of a file's bytes, or of a folder's files (a uie dataset) with
    their relative paths, in name order."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode("utf-8") + b"\0")
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def read_input(path: str | Path, fmt: str | None,
               keep: Callable[[Record], Any] = lambda record: record
               ) -> tuple[str, list[Any], list[Reject], dict[str, int]]:
    """The input's format, records (or what `keep` keeps of each), unreadable items, and
    items read per file (resolved path). A forced format under which not one item is
    readable is an InputError."""
    forced = fmt is not None
    fmt = fmt or formats.detect(path)
    records: list[Any] = []
    rejects: list[Reject] = []
    items: Counter[str] = Counter()
    default_path = str(Path(path).resolve())
    for item in formats.read(path, fmt):
        if isinstance(item, Reject):
            rejects.append(item)
            items[str(Path(item.path).resolve())] += 1
        else:
            records.append(keep(item))
            covered = item.meta.get("items")
            items[item.meta.get("path", default_path)] += (
                len(covered) if isinstance(covered, list) else 1)
    if forced and not records and rejects:
        raise InputError(path, None, f"no item is readable as --format {fmt} "
                                     f"({len(rejects)} tried; the first: {rejects[0]})")
    return fmt, records, rejects, dict(items)


#: What each part of a run's configuration is called when it changes.
CONFIG_WORDS = {
    "input_path": "the input path", "input_hash": "the input file's content",
    "format": "the format", "reader": "how mmtrans reads the input",
    "src": "the source language", "tgt": "the target language",
    "labels": "the label tables", "label_hash": "the label tables' content",
    "model": "the model", "base_url": "the endpoint", "prompt_name": "the prompt",
    "prompt_version": "the prompt's version", "prompt_hash": "the prompt's text",
    "strategy": "the strategy", "params": "the sampling parameters",
}


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs between two run configurations, in words."""
    changed = [CONFIG_WORDS.get(k, k) for k in CONFIG_WORDS.keys() | new.keys()
               if old.get(k) != new.get(k)]
    return ", ".join(sorted(changed)) or "the settings"


def run_config(input_path: str | Path, fmt: str, settings: Settings, labels: list[str],
               table: LabelTable, backend: Backend, prompts: dict[str, Prompt],
               input_hash: str | None = None) -> dict[str, Any]:
    """Everything a run's results depend on: its identity. Any change makes a new run.
    `input_hash` is the input's `file_hash` when the caller has it (hashed as it read)."""
    prompt = prompts["default"]
    return {
        "input_path": str(Path(input_path).resolve()),
        "input_hash": input_hash or file_hash(input_path),
        "format": fmt, "reader": formats.READER_VERSION, "src": settings.src,
        "tgt": settings.tgt, "labels": labels,
        "label_hash": content_key(table.mapping), "model": backend.model,
        "base_url": backend.endpoint, "prompt_name": prompt.name,
        "prompt_version": prompt.version,
        "prompt_hash": content_key({k: vars(p) for k, p in sorted(prompts.items())}),
        "strategy": settings.strategy,
        "params": {**settings.params.to_dict(), "repair": settings.repair,
                   **({"pack": settings.pack} if settings.pack > 1 else {})},
        **({"fidelity": settings.fidelity_identity} if settings.fidelity_identity else {}),
    }


class LabelCounts:
    """The labels of a stream of records, counted: all that finding and checking label
    tables reads (`find_tables` and `LabelTable.require` take it as one record), in the
    memory of the distinct labels, however many records there are."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, record: Record) -> None:
        self.counts.update(label for _, label in record.labels())

    def labels(self) -> Iterator[tuple[str, str]]:
        for label, n in self.counts.items():
            for _ in range(n):
                yield "", label


@dataclass
class InputRead:
    """What one pass over a new run's input found, besides the records it stored."""

    fmt: str
    labels: LabelCounts = field(default_factory=LabelCounts)
    items: Counter[str] = field(default_factory=Counter)  # items read per file
    records: int = 0
    rejects: int = 0
    first_rejects: list[Reject] = field(default_factory=list)  # the first 20, to show


def read_records(path: str | Path, source: InputReader | None,
                 found: InputRead) -> Iterator[Record | Reject]:
    """The input's records and rejects as one stream, counting into `found` what the run's
    identity and report need (labels, items per file) as they pass."""
    default_path = str(Path(path).resolve())
    for item in formats.read(path, found.fmt, source):
        if isinstance(item, Reject):
            found.rejects += 1
            if len(found.first_rejects) < 20:
                found.first_rejects.append(item)
            found.items[str(Path(item.path).resolve())] += 1
        else:
            found.records += 1
            found.labels.add(item)
            covered = item.meta.get("items")
            found.items[item.meta.get("path", default_path)] += (
                len(covered) if isinstance(covered, list) else 1)
        yield item


def stored_run(store: Store, input_path: str | Path, settings: Settings, backend: Backend,
               prompts: dict[str, Prompt]) -> tuple[dict[str, Any], LabelTable, int] | str:
    """The run this command resumes when the store holds it, found without decoding the
    input: a run on the same path whose input hash matches (hashing reads bytes, no JSON)
    gives the format and, when --labels names none, the tables; the run is this one when
    the config they make is one the store holds records for. Else the input's hash, so the
    pass that reads the input need not hash it again ("" when no run is on this path)."""
    candidates = store.input_runs(str(Path(input_path).resolve()))
    if not candidates:
        return ""
    digest = file_hash(input_path)
    for old in candidates:
        fmt = old.get("format")
        if (old.get("input_hash") != digest or old.get("reader") != formats.READER_VERSION
                or not fmt or (settings.format is not None and fmt != settings.format)):
            continue
        labels = settings.labels or old.get("labels") or []
        try:
            table = load_tables(labels, settings.src, settings.tgt)
        except (InputError, LabelError):  # that run's tables are gone: not this run
            continue
        config = run_config(input_path, fmt, settings, labels, table, backend, prompts,
                            digest)
        held = store.record_count(run_id_of(config))
        if held:
            return config, table, held
    return digest


def read_new_run(store: Store, input_path: str | Path, settings: Settings, backend: Backend,
                 prompts: dict[str, Prompt], digest: str
                 ) -> tuple[dict[str, Any], LabelTable, int, InputRead]:
    """One pass over the input: read, detect and hash it at once, its records streamed into
    the store as the label tables are checked, all in one transaction, so an unknown
    label or an unreadable input stops the run with nothing written and nothing sent."""
    path = Path(input_path)
    source = None if path.is_dir() else InputReader(path, hashing=not digest)
    try:
        fmt = settings.format or formats.detect(path, source)
        found = InputRead(fmt)
        table: LabelTable | None = None
        config: dict[str, Any] = {}

        def identify() -> dict[str, Any]:  # once the stream is spent, inside the transaction
            nonlocal table
            if settings.format is not None and not found.records and found.rejects:
                raise InputError(path, None, f"no item is readable as --format {fmt} "
                                             f"({found.rejects} tried; the first: "
                                             f"{found.first_rejects[0]})")
            labels = settings.labels or find_tables(
                [found.labels], settings.src, settings.tgt)  # type: ignore[list-item]
            table = load_tables(labels, settings.src, settings.tgt)
            table.require([found.labels])  # type: ignore[list-item]
            input_hash = digest or (source.hexdigest() if source else file_hash(path))
            config.update(run_config(path, fmt, settings, labels, table, backend, prompts,
                                     input_hash))
            return config

        _, held = store.add_input(read_records(path, source, found),
                                  str(path.resolve()), identify, found.items)
        assert table is not None
        return config, table, held, found
    finally:
        if source is not None:
            source.close()


def translate(
    input_path: str | Path,
    db_path: str | Path,
    settings: Settings,
    on_progress: ProgressCallback | None = None,
    backend: Backend | None = None,
    on_notice: Callable[[str], None] | None = None,
    scratch: bool = False,
) -> dict[str, Any]:
    """Translate `input_path` into the store at `db_path`; resumes a run stopped earlier.

    Raises ConfigError (no model configured, same languages), InputError (unreadable input,
    table or prompt), LabelError (labels no table knows), StoreError (--db is not a store)
    and RunBusyError (another process translates this run) before any request is sent;
    EndpointDownError when the server cannot be reached for several records in a row. A
    store this call created is removed again when it stops before the input was stored.
    A dry run (`settings.dry_run`) prices the requests against a copy of the store
    (`scratch`: `db_path` is that copy), so it writes nothing.
    """
    if settings.src == settings.tgt:
        raise ConfigError(f"--src and --tgt are both {settings.src!r}: nothing to translate")
    if settings.dry_run and not scratch:
        with scratch_store(db_path) as copy:  # a dry run writes nothing to the store
            return translate(input_path, copy, settings, on_progress, backend, on_notice,
                             scratch=True)
    # What the user typed is checked before a model loads or a server is asked: a missing
    # file is one line, not a wait for the embedder and the server's model list first.
    formats.check_input(input_path)
    prompts = {strategy: load_prompt(settings.src, settings.tgt, settings.prompt, strategy)
               for strategy in {"default", settings.strategy}}
    # The check processes first, while this process may have no other thread (they fork).
    processes = auto_processes() if settings.check_processes is None \
        else settings.check_processes
    pool = CheckPool(processes, settings.src, settings.tgt) \
        if processes > 0 and not settings.dry_run else None
    try:
        return _translate_new(input_path, db_path, settings, on_progress, backend, on_notice,
                              prompts, pool)
    finally:
        if pool is not None:
            pool.close()


def _translate_new(input_path: str | Path, db_path: str | Path, settings: Settings,
                   on_progress: ProgressCallback | None, backend: Backend | None,
                   on_notice: Callable[[str], None] | None, prompts: dict[str, Prompt],
                   pool: CheckPool | None) -> dict[str, Any]:
    """`translate` once its prompts are read and its check processes started."""
    backend = backend or make_backend(settings, on_notice)
    checker = None if settings.dry_run else make_checker(
        settings.src, settings.tgt, settings.fidelity, settings.embeddings_url,
        settings.embeddings_model, on_notice=on_notice)
    if checker is not None:
        settings = replace(settings, fidelity_identity=identity(checker))
    db = Path(db_path)
    created = not db.exists()
    stored_input = False
    try:
        with Store(db) as store:
            found = stored_run(store, input_path, settings, backend, prompts)
            read: InputRead | None = None
            if isinstance(found, tuple):
                config, table, stored = found
            else:
                config, table, stored, read = read_new_run(store, input_path, settings,
                                                           backend, prompts, found)
            stored_input = True
            return _translate_stored(store, config, table, stored, read, settings, backend,
                                     prompts, on_progress, on_notice, checker, pool)
    except BaseException:
        if created and not stored_input:
            ends = ("wal", "shm", "lock", "reserve")
            for leftover in (db, *(Path(f"{db}-{end}") for end in ends)):
                leftover.unlink(missing_ok=True)
        raise


def _translate_stored(store: Store, config: dict[str, Any], table: LabelTable, stored: int,
                      read: InputRead | None, settings: Settings, backend: Backend,
                      prompts: dict[str, Prompt], on_progress: ProgressCallback | None,
                      on_notice: Callable[[str], None] | None,
                      checker: FidelityChecker | None = None,
                      pool: CheckPool | None = None) -> dict[str, Any]:
    """The run of `config`, its input in the store, translated from where it stopped."""
    previous = store.previous_run(config["input_path"])
    run_id = store.upsert_run(config)
    changed = None
    if previous is not None and previous["id"] != run_id:
        old = json.loads(previous["config"]) if previous.get("config") else previous
        changed = (f"{describe_changes(old, config)} changed since run {previous['id']}: "
                   f"this is run {run_id} (answers already paid for are reused)")
        if on_notice:
            on_notice(changed)
    if read is not None and stored != read.records and on_notice:
        on_notice(f"{read.records} records read but the run holds {stored}: "
                  "records with the same id are stored once (see `mmtrans status`)")
    with store.lock_run(run_id):
        if read is None:
            rejects, items_read = store.stored_rejects(run_id)
            reject_count, first_rejects = len(rejects), rejects[:20]
        else:
            items_read = dict(read.items)
            reject_count, first_rejects = read.rejects, read.first_rejects
        chosen = min(stored, settings.limit) if settings.limit is not None else stored
        waiting, pending = store.pending_input(run_id, settings.repair, settings.limit)
        progress = Progress(total=waiting)
        run = Run(store, run_id, backend, prompts, table, settings, progress, on_progress,
                  held=store.held_request_keys(),
                  fidelity=FidelityQueue(checker) if checker is not None else None)
        if isinstance(backend, OpenAIBackend):
            backend.on_retry = run.note
            progress.pace = backend.limiter.describe
        if settings.dry_run:
            estimate = dry_run(run, pending, settings.price_in, settings.price_out)
            return {"run_id": run_id, "changed": changed, "estimate": estimate.to_dict()}
        if on_progress:
            on_progress(progress)
        if waiting:  # a finished run reads nothing more (no record, no attempt)
            run.check_pool = pool
            with store.grouped():
                run_sync(run.translate_all(pending))
            for batch_id, keys in run.held_asked.items():
                if on_notice:
                    on_notice(f"{len(keys)} requests are held by batch {batch_id}; run `mmtrans "
                              "batch collect` once it has finished, then this command again")
        else:
            close = getattr(backend, "close", None)
            if close:
                run_sync(close())
    return {"run_id": run_id, "changed": changed, "skipped": chosen - waiting,
            "records": stored, "items": sum(items_read.values()),
            "rejects": reject_count, "reject_lines": [str(r) for r in first_rejects],
            **{k: v for k, v in vars(progress).items()
               if k not in ("in_flight", "note", "pace")}}
