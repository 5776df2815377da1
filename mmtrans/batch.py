"""Batch files: the requests a run still needs, written in the JSONL that `vllm run-batch`
and OpenAI's Batch API read, and their answers read back into the request cache.

Writing runs the pipeline itself with a backend that sends nothing: cached answers are
checked (and repaired) as in any run, and every request the run would send is written
instead, keyed by its cache key as `custom_id`. Reading puts each real answer into the cache
under that key, so the next `translate` with the same settings finds them all answered,
and checks, repair turns (online, or in the next batch file), review and export go on as
usual. An answer that failed or holds no answer is left out: its record stays pending.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openai.types.chat import ChatCompletion
from pydantic import ValidationError

from .errors import InputError, ModelError
from .llm import Completion, Message, Params, ServerFault, answer_text
from .pipeline import DEFAULT_MODEL, Run
from .run import Settings, translate
from .store import Store

#: OpenAI's Batch API limits per input file; vLLM takes any size.
MAX_REQUESTS_PER_FILE = 50_000
MAX_BYTES_PER_FILE = 200 * 1024 * 1024
URL = "/v1/chat/completions"


class Deferred(ModelError):
    """The request goes into a batch file; the record waits for its answer."""

    def __init__(self) -> None:
        super().__init__("written to a batch file", "deferred")


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


def write_batch(input_path: str | Path, db_path: str | Path, settings: Settings,
                out: str | Path, skip: set[str] | None = None) -> dict[str, Any]:
    """Write every request the run still needs to `out` (split into `out.2.jsonl`, ...
    past OpenAI's per-file limits), leaving out the keys in `skip` (requests a submitted
    batch still holds); returns the run's figures and the files written."""
    if not settings.base_url:
        raise InputError(out, None, "a batch file needs --base-url: the endpoint that will "
                                    "answer it (any name for vLLM run-batch, e.g. vllm:local)")
    backend = DeferringBackend(settings.model or DEFAULT_MODEL, settings.base_url.rstrip("/"))
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
    for path, chunk in zip(paths, chunks):
        path.write_text("".join(chunk), encoding="utf-8")
    with Store(db_path) as store:
        store.add_batch_requests([{"key": line["custom_id"], "body": line["body"],
                                   "file": str(Path(out).name)} for line in lines])
    return {**result, "requests": len(lines), "files": [str(p) for p in paths]}


def read_batch(db_path: str | Path, path: str | Path) -> dict[str, int]:
    """Put the answers of a batch output file (vLLM run-batch or OpenAI Batch) into the
    request cache; returns how many were imported, failed, or unknown to this store."""
    counts = {"imported": 0, "failed": 0, "unknown": 0}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(path, None, f"cannot read: {e}") from None
    with Store(db_path, create=False) as store:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                key = item["custom_id"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise InputError(path, n, f"not a batch output line: {e}") from None
            body = store.batch_request(key)
            if body is None:
                counts["unknown"] += 1
                continue
            response = item.get("response") or {}
            try:
                if item.get("error") or response.get("status_code") != 200:
                    raise ServerFault(str(item.get("error") or response.get("status_code")))
                completion = ChatCompletion.model_validate(response.get("body"))
                reply = answer_text(completion)
            except (ServerFault, ValidationError):
                counts["failed"] += 1  # its record stays pending: asked again next time
                continue
            usage = completion.usage
            messages = body["messages"]
            params = {k: v for k, v in body.items() if k not in ("model", "messages")}
            store.save_request(key, model=body["model"], base_url=None, messages=messages,
                               params=params, response=reply,
                               tokens_in=usage.prompt_tokens if usage else 0,
                               tokens_out=usage.completion_tokens if usage else 0,
                               latency=0.0, attempts=1, error=None)
            counts["imported"] += 1
    return counts
