"""The asynchronous loop of a translation run: translate labels, prompt, cache or call,
parse, check, repair, store (setting a run up and reading its input is `run.py`).

Every stage but the model call is a pure function of its input, and every result is written
to the store before the next stage reads it, so the same command resumes a run stopped at
any point and pays for no request twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import itertools
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .check_pool import Checked, CheckPool, ReplyParser, check_all
from .checks import CheckResult, Problem
from .errors import (
    ConnectError,
    ConnectionDroppedError,
    DeferredError,
    EndpointDownError,
    FatalModelError,
    ModelError,
)
from .fidelity import FidelityQueue
from .labels import LabelTable
from .llm import (
    Backend,
    LocalBackend,
    OpenAIBackend,
    choose_model,
    close_backend,
    default_local_model,
)
from .packing import pack_messages, split_answer
from .payload import parse_reply, payload_json
from .prompts import Message, Prompt
from .ratelimit import RateLimiter
from .records import Record
from .store import Store, Translation, request_key
from .tagging import Tagged, parse_tagged_reply, tag, tagged_payload

if TYPE_CHECKING:
    from .run import Settings

T = TypeVar("T")


@dataclass
class Progress:
    total: int
    done: int = 0
    accepted: int = 0
    flagged: int = 0
    failed: int = 0
    unreachable: int = 0
    #: Records whose next request went into a batch file instead of to a server.
    deferred: int = 0
    tokens: int = 0
    requests_sent: int = 0
    #: Why the run waits, when it does ("retrying in 4 s ...: HTTP 503").
    note: str = ""
    #: Start times (monotonic) of the requests on the wire, by request key.
    in_flight: dict[str, float] = field(default_factory=dict)
    #: The pace against the server's limits, and why the run waits for them, if it does.
    pace: Callable[[], str] | None = None

    def waiting(self, timeout: float, now: float | None = None) -> str:
        """What the run is waiting for, for the progress line: a request unanswered for
        more than 5 s, else the last retry note."""
        if self.in_flight:
            oldest = (now or time.monotonic()) - min(self.in_flight.values())
            if oldest > 5:
                return (f"waiting {oldest:.0f} s for the server "
                        f"({len(self.in_flight)} request(s), timeout {timeout:g} s)")
        pace = self.pace() if self.pace else ""
        return f"{pace} {self.note}" if pace and self.note else pace or self.note


ProgressCallback = Callable[[Progress], None]
#: A record's first turn: the prompt's name, the payload, how to read answers, and notes.
Opening = tuple[str, str, ReplyParser, list[str]]


def make_backend(settings: Settings, on_notice: Callable[[str], None] | None = None
                 ) -> Backend:
    """The model backend; raises ConfigError before anything is written when none is set.
    Without --model, the model is the one the server lists (GET /models), or OpenAI's
    default without --base-url; `on_notice` is told which."""
    if settings.local:
        path = Path(settings.local_model) if settings.local_model else default_local_model()
        return LocalBackend(path)
    limiter = RateLimiter(settings.rpm, settings.tpm, max_concurrency=settings.concurrency)
    backend = OpenAIBackend(settings.model or "", settings.base_url, settings.api_key,
                            timeout=settings.timeout, max_attempts=settings.max_attempts,
                            limiter=limiter)
    backend.model, note = choose_model(settings.model, settings.base_url, backend.api_key,
                                       settings.timeout)
    if note and on_notice:
        on_notice(note)
    return backend


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
    #: Identical requests in flight at once share one answer.
    _in_flight: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _unreachable_streak: int = 0
    #: Requests sent and not answered yet (claimed by this run).
    _sending: set[str] = field(default_factory=set)
    #: Requests an open OpenAI batch holds (key -> batch): never sent online, and the
    #: keys of those asked, by batch, for the notice at the end.
    held: dict[str, str] = field(default_factory=dict)
    held_asked: dict[str, set[str]] = field(default_factory=dict)
    #: The last record's reason for being unreachable, for the line that stops the run.
    _unreachable_why: ModelError | None = None
    #: The fidelity check, judged in a thread of its own in batches (None: not checked).
    fidelity: FidelityQueue | None = None
    #: Worker processes that run the checks (None: they run in this process).
    check_pool: CheckPool | None = None

    @staticmethod
    def key_for(endpoint: str, model: str, messages: list[Message],
                params: dict[str, Any]) -> str:
        """The cache key: what answers (endpoint, model or weights), what it is asked, how."""
        return request_key(endpoint, model, messages, params)

    def request_key(self, messages: list[Message]) -> str:
        return self.key_for(self.backend.endpoint, self.backend.model, messages,
                            self.settings.params.to_dict())

    async def _claim(self, key: str) -> dict[str, Any] | None:
        """Claim request `key` before sending it; while another live process holds it, wait
        (polling, with backoff) for its answer to land in the cache instead of buying it
        again. None: this run holds the claim and sends the request."""
        s = self.settings
        ttl = s.timeout * s.max_attempts + 120  # past every retry the owner may still make
        pause = 0.05
        while not self.store.claim(key, ttl):
            await self._stop_if_store_failed()
            cached = self.store.cached_response(key)
            if cached is not None:
                return cached
            self.progress.note = "waiting for an answer another process is asking for"
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 1.0)
        return None

    async def _stop_if_store_failed(self) -> None:
        """Stop at the next request once the store refused a write (a full disk): first the
        answers on their way are received and kept, then the error is raised."""
        if self.store.write_failure is not None:
            while self._sending:
                await asyncio.sleep(0.05)
            raise self.store.write_failure

    async def _ask(self, messages: list[Message]) -> tuple[str, dict[str, Any]]:
        await self._stop_if_store_failed()
        key = self.request_key(messages)
        cached = self.store.cached_response(key)
        if cached is not None:
            return key, cached
        if key in self.held:  # paid for in a batch: its answer comes with `batch collect`
            self.held_asked.setdefault(self.held[key], set()).add(key)
            raise DeferredError(f"held by batch {self.held[key]}")
        if key in self._in_flight:
            return key, await asyncio.shield(self._in_flight[key])
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        self.progress.in_flight[key] = time.monotonic()
        try:
            answered = await self._claim(key)
            if answered is not None:  # another process asked it, and its answer landed
                future.set_result(answered)
                return key, answered
            self._sending.add(key)
            completion = await self.backend.complete(messages, self.settings.params)
        except asyncio.CancelledError:
            future.cancel()
            self.store.release_claim(key)
            raise
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: a lone request leaves no "never retrieved" warning
            self.store.release_claim(key)
            raise
        finally:
            del self._in_flight[key]
            self._sending.discard(key)
            self.progress.in_flight.pop(key, None)
        self.progress.requests_sent += 1
        self.progress.tokens += completion.tokens_in + completion.tokens_out
        self.progress.note = ""
        self.store.save_request(
            key, model=self.backend.model, base_url=self.backend.endpoint, messages=messages,
            params=self.settings.params.to_dict(), response=completion.text,
            tokens_in=completion.tokens_in, tokens_out=completion.tokens_out,
            latency=completion.latency, attempts=completion.attempts, error=None)
        answer = {"response": completion.text}
        future.set_result(answer)
        return key, answer

    def opening(self, expected: Record) -> Opening:
        """What a record's first turn holds: the prompt (by strategy), the payload, how to
        read the answers, and notes. A record the tagged strategy cannot mark falls back to
        the default, with a note."""
        notes: list[str] = []
        if self.settings.strategy == "tagged":
            tagged = tag(expected)
            if isinstance(tagged, Tagged):
                return ("tagged", tagged_payload(tagged),
                        partial(parse_tagged_reply, tagged=tagged, expected=expected), notes)
            notes.append(f"tagged strategy impossible ({tagged}): used the default strategy")
        # (Partials, not lambdas: a check process parses a pack's replies, and they pickle.)
        return ("default", payload_json(expected), partial(parse_reply, expected=expected),
                notes)

    def first_turn(self, expected: Record) -> tuple[list[Message], ReplyParser, list[str]]:
        """The opening messages for a record and how to read the answers."""
        name, payload, parse, notes = self.opening(expected)
        s = self.settings
        return self.prompts[name].messages(payload, s.src, s.tgt), parse, notes

    async def translate_pack(self, records: list[Record],
                             attempts: dict[str, set[int]]) -> list[str]:
        """Translate records that share one request for their first answers (`--pack`); a
        record whose part of the answer cannot be split out is asked alone. Repair turns
        and everything after the split are per record."""
        s = self.settings
        given: list[tuple[str, str] | None] = [None] * len(records)
        # (A record alone is asked by translate_record: no opening is built for it here.)
        expected = [self.table.translate(r) for r in records] if len(records) > 1 else []
        openings = [self.opening(e) for e in expected]
        names = {name for name, *_ in openings}
        if len(names) == 1:
            messages = pack_messages(self.prompts[names.pop()],
                                     [payload for _, payload, *_ in openings], s.src, s.tgt)
            try:
                key, answer = await self._ask(messages)
            except FatalModelError:
                raise
            except ModelError:
                pass  # each record asks alone, and fails or waits on its own
            else:
                replies = split_answer(answer["response"], len(records))
                if replies is not None:
                    given = [(key, reply) for reply in replies]
        if not openings:
            return [await self.translate_record(r, attempts.get(r.id, set()), g)
                    for r, g in zip(records, given)]
        checked: list[Checked | None] = [None] * len(records)
        if self.check_pool is not None and given[0] is not None:
            checked = await self._check_pack(expected, openings, given)
        return [await self.translate_record(r, attempts.get(r.id, set()), g, (e, o), c)
                for r, g, e, o, c in zip(records, given, expected, openings, checked)]

    async def _check_pack(self, expected: list[Record], openings: list[Opening],
                          given: list[tuple[str, str] | None]) -> list[Checked | None]:
        """Each record's part of a packed answer parsed and checked in one call to the
        check pool (one hand-over for the pack instead of one a record)."""
        assert self.check_pool is not None
        return list(await self.check_pool.parse_and_check(
            [(o[2], g[1], e) for o, g, e in zip(openings, given, expected) if g is not None]))

    async def _check_all(self, pairs: list[tuple[Record, Record]]) -> list[CheckResult]:
        """`run_checks` of each (expected, target) pair: in the check pool when there is
        one, else here."""
        s = self.settings
        if not pairs:
            return []
        if self.check_pool is not None:
            return await self.check_pool.check(pairs)
        return check_all(pairs, s.src, s.tgt)

    async def translate_record(self, record: Record, stored_attempts: set[int],
                               given: tuple[str, str] | None = None,
                               opened: tuple[Record, Opening] | None = None,
                               checked: Checked | None = None) -> str:
        """Translate one record, with up to `repair` follow-up turns; returns its status.
        Every attempt is stored; a repaired answer passes the same parser and checks. A
        record whose server could not be reached at all is `unreachable` and stays pending
        (no row): it is not the record's fault. `opened`: its translated labels and opening,
        from the pack that asked for it; its own first turn's messages are built only if
        they are sent (a record of a pack whose answer is accepted never needs them).
        `checked`: its part of the packed answer, parsed and checked by the pack."""
        s = self.settings
        expected, (name, payload, parse, strategy_notes) = opened or (
            (e := self.table.translate(record)), self.opening(e))
        first: list[Message] | None = None
        status = "failed"
        #: (closeness to the source, attempt, answer) of each flagged answer with a text.
        answers: list[tuple[float, int, Translation]] = []
        for attempt in range(s.repair + 1):
            try:
                if attempt == 0 and given is not None:  # its part of a packed answer
                    key, answer = given[0], {"response": given[1]}
                else:
                    if first is None:
                        first = messages = self.prompts[name].messages(payload, s.src, s.tgt)
                    key, answer = await self._ask(messages)
            except FatalModelError:
                raise
            except DeferredError:
                return "deferred"
            except (ConnectError, ConnectionDroppedError) as e:
                self._unreachable_why = e  # not the record's fault: it stays pending
                return "unreachable"
            except ModelError as e:
                self.store.add_translation(self.run_id, Translation(
                    record.id, attempt, "failed", None,
                    [{"code": "request", "message": str(e), "where": ""}], [], None))
                return "failed"
            reply = answer["response"]
            if attempt == 0 and checked is not None:
                target, problems, result = checked
            else:
                target, problems = parse(reply)
                result = (await self._check_all([(expected, target)]))[0] \
                    if target is not None else None
            notes = list(strategy_notes)
            if result is not None:  # its target checked
                target, problems, notes = result.record, result.problems, notes + result.notes
                target.meta = {**target.meta, "lang": s.tgt}  # writers pick templates by it
            closeness = 0.0
            if target is not None and self.fidelity is not None:
                verdict = await self.fidelity.check(expected, target)
                problems, closeness = problems + verdict.problems, verdict.closeness
            status = "flagged" if problems else "accepted"
            row = Translation(record.id, attempt, status, target,
                              [p.to_dict() for p in problems], notes, key)
            if attempt not in stored_attempts:
                self.store.add_translation(self.run_id, row)
            if status == "accepted":
                break
            if target is not None:
                answers.append((closeness, attempt, row))
            # A repair turn shows the model its last answer and what is wrong with it, not
            # every earlier turn again: the tokens of a turn stay those of the first plus one
            # answer, however many turns there are. It names its number, so a model that
            # repeats a flawed answer is asked anew instead of being served the cached reply.
            problems_text = (f"(repair turn {attempt + 1} of {s.repair})\n"
                             + describe_problems(problems, expected))
            if first is None:
                first = self.prompts[name].messages(payload, s.src, s.tgt)
            messages = [*first, {"role": "assistant", "content": reply},
                        self.prompts["default"].repair_message(problems_text, s.src, s.tgt)]
        if status == "flagged" and self.fidelity is not None:
            self._keep_closest(answers, stored_attempts)
        return status

    def _keep_closest(self, answers: list[tuple[float, int, Translation]],
                      stored_attempts: set[int]) -> None:
        """Among a record's flagged answers, the one that keeps closest to its source wins:
        when that is not the last, it is stored again as the record's final attempt."""
        if len(answers) < 2:
            return
        closeness, attempt, best = max(answers, key=lambda a: (a[0], a[1]))
        last = max(a[1] for a in answers)
        final = self.settings.repair + 1
        if attempt == last or final in stored_attempts:
            return
        self.store.add_translation(self.run_id, replace(
            best, attempt=final, notes=[*best.notes, f"kept answer {attempt} of {last}: the "
                                        f"closest to the source (fidelity {closeness:.2f})"]))

    def _count(self, status: str) -> None:
        p = self.progress
        p.done += 1
        setattr(p, status, getattr(p, status) + 1)
        if status == "unreachable":
            self._unreachable_streak += 1
            if self._unreachable_streak >= self.settings.unreachable_limit:
                n = self._unreachable_streak
                what = (f"the server closed the connection before answering, {n} records "
                        "in a row" if isinstance(self._unreachable_why, ConnectionDroppedError)
                        else f"{n} records in a row failed to connect")
                raise EndpointDownError(
                    f"cannot reach {self.backend.endpoint}: {what} on every attempt; the run "
                    "stopped and the records not translated stay pending (run the same "
                    "command again once the server is up)")
        else:
            self._unreachable_streak = 0
        if self.on_progress:
            self.on_progress(p)

    def note(self, text: str) -> None:
        self.progress.note = text
        if self.on_progress:
            self.on_progress(self.progress)

    async def translate_all(self, records: Iterable[Record]) -> None:
        """A fixed pool of workers takes records from `records` as they come."""
        attempts = self.store.stored_attempts(self.run_id)
        source = iter(records)

        pack = max(1, self.settings.pack)

        async def worker() -> None:
            while records := list(itertools.islice(source, pack)):  # shared: each record
                for status in await self.translate_pack(records, attempts):  # to one worker
                    self._count(status)

        workers = [asyncio.ensure_future(worker())
                   for _ in range(max(1, self.settings.concurrency))]
        # What exists now (every imported module, the client, the tables) lives as long as
        # the run: out of the collector's sight, a full collection scans only what the run
        # makes. Measured on 5,343 records: its pauses went from 125 ms to under 30 ms, and a
        # pause is a send that reaches a per-second limiter late (bench/rate).
        gc.collect()
        gc.freeze()
        try:
            await asyncio.gather(*workers)
        finally:
            gc.unfreeze()
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await close_backend(self.backend)
            if self.fidelity is not None:
                self.fidelity.close()
            if self.check_pool is not None:
                await self.check_pool.stop()


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to completion, also from a thread whose event loop is already running
    (a notebook, a sync Playwright test): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
