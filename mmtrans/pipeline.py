"""One translation run: read, translate labels, prompt, cache or call, parse, check, repair, store.

Every stage but the model call is a pure function of its input, and every result is written
to the store before the next stage reads it, so the same command resumes a run stopped at
any point and pays for no request twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import formats
from .checks import Problem, run_checks
from .errors import FatalModelError, ModelError
from .formats import Reject
from .labels import LabelTable, find_tables, load_tables
from .llm import Backend, LocalBackend, OpenAIBackend, Params, default_local_model
from .payload import parse_reply, payload_json
from .prompts import Message, Prompt, load_prompt
from .records import Record
from .store import Store, Translation, content_key
from .tagging import Tagged, parse_tagged_reply, tag, tagged_payload

DEFAULT_MODEL = "gpt-4o-mini"
T = TypeVar("T")


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
    concurrency: int = 8
    params: Params = field(default_factory=Params)
    prompt: str | None = None
    format: str | None = None
    limit: int | None = None
    repair: int = 2
    strategy: str = "default"


@dataclass
class Progress:
    total: int
    done: int = 0
    accepted: int = 0
    flagged: int = 0
    failed: int = 0
    tokens: int = 0
    requests_sent: int = 0


ProgressCallback = Callable[[Progress], None]
ReplyParser = Callable[[str], tuple[Record | None, list[Problem]]]


def make_backend(settings: Settings) -> Backend:
    """The model backend; raises ConfigError before anything is written when none is set."""
    if settings.local:
        path = Path(settings.local_model) if settings.local_model else default_local_model()
        return LocalBackend(path)
    return OpenAIBackend(settings.model or DEFAULT_MODEL, settings.base_url, settings.api_key)


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


def describe_problems(problems: list[Problem], expected: Record) -> str:
    """The problems in words a model can act on, naming the source string of each anchor."""
    sources = dict(expected.anchored())
    lines = []
    for p in problems:
        hint = f" (translating {sources[p.where]!r})" if p.where in sources else ""
        lines.append(f"- {p.code} at {p.where}{hint}: {p.message}")
    return "\n".join(lines)


@dataclass
class Run:
    """A run in progress: its store, backend, prompt and tables."""

    store: Store
    run_id: str
    backend: Backend
    prompts: dict[str, Prompt]
    table: LabelTable
    settings: Settings
    progress: Progress
    on_progress: ProgressCallback | None = None

    async def _ask(self, messages: list[Message]) -> tuple[str, dict[str, Any]]:
        params = self.settings.params.to_dict()
        key = content_key(self.backend.model, messages, params)
        cached = self.store.cached_response(key)
        if cached is not None:
            return key, cached
        try:
            completion = await self.backend.complete(messages, self.settings.params)
        except FatalModelError:
            raise
        except ModelError as e:
            self.store.save_request(key, model=self.backend.model, base_url=self.backend.base_url,
                                    messages=messages, params=params, error=str(e))
            raise
        self.progress.requests_sent += 1
        self.progress.tokens += completion.tokens_in + completion.tokens_out
        row = {"model": self.backend.model, "base_url": self.backend.base_url,
               "messages": messages, "params": params, "response": completion.text,
               "tokens_in": completion.tokens_in, "tokens_out": completion.tokens_out,
               "latency": completion.latency, "attempts": completion.attempts, "error": None}
        self.store.save_request(key, **row)
        return key, {"response": completion.text}

    def first_turn(self, expected: Record) -> tuple[list[Message], ReplyParser, list[str]]:
        """The opening messages for a record and how to read the answers, by strategy. A
        record the tagged strategy cannot mark falls back to the default, with a note."""
        s = self.settings
        notes: list[str] = []
        if s.strategy == "tagged":
            tagged = tag(expected)
            if isinstance(tagged, Tagged):
                messages = self.prompts["tagged"].messages(tagged_payload(tagged), s.src, s.tgt)
                return messages, lambda reply: parse_tagged_reply(reply, tagged, expected), notes
            notes.append(f"tagged strategy impossible ({tagged}): used the default strategy")
        messages = self.prompts["default"].messages(payload_json(expected), s.src, s.tgt)
        return messages, lambda reply: parse_reply(reply, expected), notes

    async def translate_record(self, record: Record, stored_attempts: set[int]) -> str:
        """Translate one record, with up to `repair` follow-up turns; returns its status.
        Every attempt is stored; a repaired answer passes the same parser and checks."""
        s = self.settings
        expected = self.table.translate(record)
        messages, parse, strategy_notes = self.first_turn(expected)
        status = "failed"
        for attempt in range(s.repair + 1):
            try:
                key, answer = await self._ask(messages)
            except FatalModelError:
                raise
            except ModelError as e:
                self.store.add_translation(self.run_id, Translation(
                    record.id, attempt, "failed", None,
                    [{"code": "request", "message": str(e), "where": ""}], [], None))
                return "failed"
            reply = answer["response"]
            target, problems = parse(reply)
            notes = list(strategy_notes)
            if target is not None:
                result = run_checks(expected, target, s.src, s.tgt)
                target, problems, notes = result.record, result.problems, notes + result.notes
                target.meta = {**target.meta, "lang": s.tgt}  # writers pick templates by it
            status = "flagged" if problems else "accepted"
            if attempt not in stored_attempts:
                self.store.add_translation(self.run_id, Translation(
                    record.id, attempt, status, target, [p.to_dict() for p in problems],
                    notes, key))
            if status == "accepted":
                break
            messages = [*messages, {"role": "assistant", "content": reply},
                        self.prompts["default"].repair_message(
                            describe_problems(problems, expected), s.src, s.tgt)]
        return status

    def _count(self, status: str) -> None:
        p = self.progress
        p.done += 1
        setattr(p, status, getattr(p, status) + 1)
        if self.on_progress:
            self.on_progress(p)

    async def translate_all(self, records: list[Record]) -> None:
        semaphore = asyncio.Semaphore(max(1, self.settings.concurrency))
        attempts = self.store.stored_attempts(self.run_id)

        async def one(record: Record) -> None:
            async with semaphore:
                status = await self.translate_record(record, attempts.get(record.id, set()))
            self._count(status)

        try:
            await asyncio.gather(*(one(r) for r in records))
        finally:
            close = getattr(self.backend, "close", None)
            if close:
                await close()


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to completion, also from a thread whose event loop is already running
    (a notebook, a sync Playwright test): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def read_input(path: str | Path, fmt: str | None) -> tuple[str, list[Record], list[Reject]]:
    fmt = fmt or formats.detect(path)
    records: list[Record] = []
    rejects: list[Reject] = []
    for item in formats.read(path, fmt):
        (rejects if isinstance(item, Reject) else records).append(item)  # type: ignore[arg-type]
    return fmt, records, rejects


def translate(
    input_path: str | Path,
    db_path: str | Path,
    settings: Settings,
    on_progress: ProgressCallback | None = None,
    backend: Backend | None = None,
) -> dict[str, Any]:
    """Translate `input_path` into the store at `db_path`; resumes a run stopped earlier.

    Raises ConfigError (no model configured), InputError (unreadable input, table or prompt)
    and LabelError (labels no table knows) before any request is sent.
    """
    backend = backend or make_backend(settings)
    prompts = {strategy: load_prompt(settings.src, settings.tgt, settings.prompt, strategy)
               for strategy in {"default", settings.strategy}}
    prompt = prompts["default"]
    fmt, records, rejects = read_input(input_path, settings.format)
    labels = settings.labels or find_tables(records, settings.src, settings.tgt)
    table = load_tables(labels, settings.src, settings.tgt)
    table.require(records)

    with Store(db_path) as store:
        run_id = store.upsert_run({
            "input_path": str(Path(input_path).resolve()), "input_hash": file_hash(input_path),
            "format": fmt, "src": settings.src, "tgt": settings.tgt, "labels": labels,
            "model": backend.model, "base_url": backend.base_url, "prompt_name": prompt.name,
            "prompt_version": prompt.version, "strategy": settings.strategy,
            "params": {**settings.params.to_dict(), "repair": settings.repair},
        })
        store.add_records(run_id, records)
        for reject in rejects:
            store.add_reject(run_id, reject.path, reject.line, reject.message)
        chosen = records[: settings.limit] if settings.limit is not None else records
        done = store.done_ids(run_id, settings.repair)
        pending = [r for r in chosen if r.id not in done]
        progress = Progress(total=len(pending))
        run = Run(store, run_id, backend, prompts, table, settings, progress, on_progress)
        if on_progress:
            on_progress(progress)
        run_sync(run.translate_all(pending))
        return {"run_id": run_id, "skipped": len(chosen) - len(pending),
                "rejects": len(rejects), "reject_lines": [str(r) for r in rejects[:20]],
                **vars(progress)}
