"""Batch files: the requests a run still needs, written in the JSONL that `vllm run-batch`
and OpenAI's Batch API read, and their answers read back into the request cache.

Writing runs the pipeline itself with a backend that sends nothing: cached answers are
checked (and repaired) as in any run, and every request the run would send is written
instead, keyed by its cache key as `custom_id`. Reading puts each real answer into the cache
under that key, so the next `translate` with the same settings finds them all answered,
and checks, repair turns (online, or in the next batch file), review and export go on as
usual. An answer that failed or holds no answer, and a line that cannot be read, are left
out: their records stay pending, asked again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openai.types.chat import ChatCompletion
from pydantic import ValidationError

from .endpoint import normalise_endpoint
from .errors import ConfigError, DeferredError, InputError
from .files import check_output, write_text, writing
from .llm import Completion, Message, Params, ServerFault, answer_text, choose_model
from .pipeline import Run
from .run import Settings, translate
from .store import Store

#: OpenAI's Batch API limits per input file; vLLM takes any size.
MAX_REQUESTS_PER_FILE = 50_000
MAX_BYTES_PER_FILE = 200 * 1024 * 1024
URL = "/v1/chat/completions"


class Deferred(DeferredError):
    """The request goes into a batch file; the record waits for its answer."""

    def __init__(self) -> None:
        super().__init__("written to a batch file")


@dataclass
class DeferringBackend:
    """Answers nothing: remembers each request it is asked, for the batch file. Its model
    and endpoint are those of the server that will answer, so the cache keys match."""

    model: str
    base_url: str
    requests: dict[str, tuple[list[Message], dict[str, Any]]] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return self.base_url

    async def complete(self, messages: list[Message], params: Params) -> Completion:
        self.requests[json.dumps(messages, ensure_ascii=False)] = (messages, params.to_dict())
        raise Deferred


def _files(out: Path, count: int) -> list[Path]:
    return [out if i == 0 else out.with_name(f"{out.stem}.{i + 1}{out.suffix}")
            for i in range(count)]


def batch_model(settings: Settings) -> str:
    """The model a batch's requests name, as `translate` would choose it (so both key their
    requests alike): --model, else the one model a server URL lists; a batch runner's name
    (`vllm:local`) cannot be asked, so it needs --model."""
    if settings.model:
        return settings.model
    if not str(settings.base_url).lower().startswith(("http://", "https://")):
        raise ConfigError(f"--base-url {settings.base_url} cannot be asked for its model: pass "
                          "--model (the model the batch runner serves)")
    return choose_model(None, settings.base_url, settings.api_key, settings.timeout)[0]


def write_batch(input_path: str | Path, db_path: str | Path, settings: Settings,
                out: str | Path, skip: set[str] | None = None,
                force: bool = False) -> dict[str, Any]:
    """Write every request the run still needs to `out` (split into `out.2.jsonl`, ...
    past OpenAI's per-file limits), leaving out the keys in `skip` (requests a submitted
    batch still holds); returns the run's figures and the files written. Files that exist
    are replaced only with `force`; the input never."""
    check_output(out, force, protected=[input_path])
    if not settings.base_url:
        raise InputError(out, None, "a batch file needs --base-url: the endpoint that will "
                                    "answer it (any name for vLLM run-batch, e.g. vllm:local)")
    backend = DeferringBackend(batch_model(settings), normalise_endpoint(settings.base_url))
    result = translate(input_path, db_path, settings, backend=backend)
    lines: list[dict[str, Any]] = []
    for messages, params in backend.requests.values():
        key = Run.key_for(backend.endpoint, backend.model, messages, params)
        if skip and key in skip:
            continue
        lines.append({"custom_id": key, "method": "POST", "url": URL,
                      "body": {"model": backend.model, "messages": messages, **params}})
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        text = json.dumps(line, ensure_ascii=False) + "\n"
        if len(chunks[-1]) >= MAX_REQUESTS_PER_FILE or size + len(text.encode()) > \
                MAX_BYTES_PER_FILE:
            chunks.append([])
            size = 0
        chunks[-1].append(text)
        size += len(text.encode())
    paths = _files(Path(out), len(chunks)) if lines else []
    result["chunks"] = [[json.loads(line)["custom_id"] for line in chunk] for chunk in chunks]
    with writing(force, protected=[input_path]):
        for path, chunk in zip(paths, chunks):
            write_text(path, "".join(chunk))
    with Store(db_path) as store:
        store.add_batch_requests([{"key": line["custom_id"], "body": line["body"],
                                   "file": str(Path(out).name)} for line in lines])
    return {**result, "requests": len(lines), "files": [str(p) for p in paths]}


@dataclass
class Imported:
    """What reading batch output lines did: answers put into the cache, requests that
    failed (their records stay pending, asked again), lines of requests this store never
    wrote, and lines that are no batch output line (`where:line: why`, each one failed
    request)."""

    imported: int = 0
    failed: int = 0
    unknown: int = 0
    #: (file, line, why) of each line that is no batch output line.
    unreadable: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, other: Imported) -> None:
        self.imported += other.imported
        self.failed += other.failed
        self.unknown += other.unknown
        self.unreadable += other.unreadable


def line_answer(item: dict[str, Any]) -> ChatCompletion:
    """The chat completion a batch output line holds, in any of the shapes that answer one:
    OpenAI's and vLLM's (`response: {"status_code", "request_id", "body"}`) and vLLM's older
    one (`response` is the completion itself). ServerFault when the line is a failure or
    holds no answer."""
    response = item.get("response")
    if item.get("error") or not isinstance(response, dict):
        raise ServerFault(str(item.get("error") or "no response"))
    if "status_code" in response or "body" in response:
        if response.get("status_code") != 200:
            raise ServerFault(f"HTTP {response.get('status_code')}")
        response = response.get("body")
    try:
        completion = ChatCompletion.model_validate(response)
    except ValidationError as e:
        raise ServerFault(f"not a chat completion: {e.error_count()} error(s)") from None
    answer_text(completion)
    return completion


def import_lines(store: Store, lines: Iterable[bytes], where: str) -> Imported:
    """Put the answers of batch output lines into the request cache. A line that cannot be
    read is one failed request: the rest go on (its request is not answered, so its record
    stays pending and is asked again)."""
    counts = Imported()
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw.decode("utf-8"))
            key = item["custom_id"]
            if not isinstance(key, str):
                raise TypeError("custom_id is not a string")
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
            counts.failed += 1
            counts.unreadable.append((where, n, f"not a batch output line "
                                                f"({type(e).__name__}: {e})"))
            continue
        body = store.batch_request(key)
        if body is None:
            counts.unknown += 1
            continue
        try:
            completion = line_answer(item)
        except ServerFault:
            counts.failed += 1
            continue
        usage = completion.usage
        params = {k: v for k, v in body.items() if k not in ("model", "messages")}
        store.save_request(key, model=body["model"], base_url=None, messages=body["messages"],
                           params=params, response=answer_text(completion),
                           tokens_in=usage.prompt_tokens if usage else 0,
                           tokens_out=usage.completion_tokens if usage else 0,
                           latency=0.0, attempts=1, error=None)
        counts.imported += 1
    return counts


def read_batch(db_path: str | Path, path: str | Path) -> Imported:
    """Put the answers of a batch output file (vLLM run-batch or OpenAI Batch) into the
    request cache. A file of which not one line is a batch output line is an InputError
    (the wrong file); a bad line among good ones is one failed request."""
    try:
        with open(path, "rb") as f, Store(db_path, create=False) as store:
            # Lines end at b"\n" only: a text may hold U+2028 or U+0085 (JSON Lines).
            counts = import_lines(store, f, str(path))
    except OSError as e:
        raise InputError(path, None, f"cannot read: {e}") from None
    if counts.unreadable and not (counts.imported or counts.unknown
                                  or counts.failed > len(counts.unreadable)):
        _, line, why = counts.unreadable[0]
        raise InputError(path, line, f"{why}, nor is any other line of it")
    return counts
