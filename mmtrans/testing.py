"""An OpenAI-compatible chat-completions server on 127.0.0.1 with scripted answers.

For tests and benchmarks: real HTTP through the real openai client, while the caller chooses,
per request, what the "model" answers (a good translation, one with a defect, a 429, a 500,
a slow answer). The scripted
translator is deterministic: each annotated string becomes a made-up target-language name,
and the sentence is built around them, so every defect is one the test put there on purpose.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .checks import numbers_in

EN_NAMES = ["Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Ginkgo", "Hazel", "Ivy",
            "Juniper", "Kapok", "Larch", "Maple", "Nutmeg", "Oak", "Pine"]
ZH_NAMES = "松柏杉桦榆槐桂梅竹兰菊荷桃李杏枫"
JA_NAMES = ["サクラ", "カエデ", "ツバキ", "ヒノキ", "スギ", "マツ", "ウメ", "モモ", "キク", "ハス",
            "フジ", "ユリ", "ケヤキ", "クリ", "カシ", "ナシ"]


def name_for(s: str, tgt: str) -> str:
    """A stable made-up translation of the source string `s`."""
    h = int(hashlib.sha256(s.encode()).hexdigest(), 16)
    if tgt == "zh":
        return ZH_NAMES[h % 16] + ZH_NAMES[(h >> 4) % 16] + "公司"
    if tgt == "ja":
        return JA_NAMES[h % 16] + JA_NAMES[(h >> 4) % 16] + str(h % 97)
    return f"{EN_NAMES[h % 16]} {EN_NAMES[(h >> 4) % 16]}{h % 97}"


def _sentence(names: list[str], tgt: str, source: str = "") -> str:
    """A sentence about `names` that keeps the source's numbers, as a translation must."""
    numbers = numbers_in(source)
    tail = f" ({', '.join(numbers)})" if numbers else ""
    if tgt == "zh":
        return ("这是一篇关于" + "、".join(names or ["城市"]) + "的报道，来自市立图书馆的档案"
                + tail + "。")
    if tgt == "ja":
        return ("これは" + "、".join(names or ["町"])
                + "についての報告で、市立図書館の記録によるものです" + tail + "。")
    return ("This is a report about " + ", ".join(names or ["the city"])
            + " from the archive of the city library and its many readers" + tail + ".")


_TAGGED = re.compile(r"<(m\d+)>(.*?)</\1>", re.S)


def _render_tags(tagged: str, tgt: str) -> list[str]:
    """Each top-level tag of `tagged` with a made-up translation inside, nesting kept."""
    out = []
    for m in _TAGGED.finditer(tagged):
        inner = m.group(2)
        children = _render_tags(inner, tgt)
        rest = _TAGGED.sub("", inner)
        body = " ".join(children + ([name_for(rest, tgt)] if rest.strip() else []))
        out.append(f"<{m.group(1)}>{body}</{m.group(1)}>")
    return out


def good_translation(payload: dict[str, Any], tgt: str = "en") -> dict[str, Any]:
    """A translation that passes every check, for the default or the tagged payload: every
    annotated string becomes a made-up name, and the sentence is built around them."""
    if "entities" not in payload and "relations" not in payload and "events" not in payload:
        tagged = _render_tags(payload["text"], tgt)
        return {"text": _sentence(tagged, tgt, re.sub(r"</?m\d+>", " ", payload["text"]))}
    out: dict[str, Any] = {}
    names: list[str] = []

    def name(s: str) -> str:
        translated = name_for(s, tgt)
        if translated not in names:
            names.append(translated)
        return translated

    if "entities" in payload:
        out["entities"] = [{"label": e["label"], "text": name(e["text"])}
                           for e in payload["entities"]]
    if "relations" in payload:
        out["relations"] = [{"head": name(r["head"]), "relation": r["relation"],
                             "tail": name(r["tail"])} for r in payload["relations"]]
    if "events" in payload:
        out["events"] = [{"type": e["type"], "trigger": name(e["trigger"]) if e["trigger"] else "",
                          "arguments": [{"role": a["role"], "text": name(a["text"])}
                                        for a in e["arguments"]]}
                         for e in payload["events"]]
    return {"text": _sentence(names, tgt, payload.get("text", "")), **out}


@dataclass
class Reply:
    content: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: dict[str, Any] | None = None
    usage: dict[str, int] | None = None
    #: Bytes sent as they are (an HTML error page, `null`, a truncated body), with this type.
    raw: bytes | None = None
    content_type: str = "application/json"


Script = Callable[[dict[str, Any], dict[str, Any]], Reply]


def record_payload(request: dict[str, Any]) -> dict[str, Any]:
    """The record being translated: the JSON in the fourth message (after the one-shot);
    for a packed request (`--pack`) {"packed": [payload with its "index", ...]}; empty for
    requests of another shape (label suggestions)."""
    messages = request["messages"]
    if len(messages) < 4 or "{" not in messages[3]["content"]:
        return {}
    content = messages[3]["content"]
    packed = [json.loads(line) for line in content.splitlines()
              if line.startswith('{"index": ')]
    if packed:
        return {"packed": packed}
    return json.loads(content[content.index("{"):])


def answer_packed(payload: dict[str, Any], tgt: str = "en") -> str:
    """A packed request's answer: every record's good translation with its index."""
    return json.dumps([{"index": p["index"], **good_translation(
        {k: v for k, v in p.items() if k != "index"}, tgt)} for p in payload["packed"]],
        ensure_ascii=False)


def translating(tgt: str = "en") -> Script:
    def script(payload: dict[str, Any], request: dict[str, Any]) -> Reply:
        if "packed" in payload:
            return Reply(answer_packed(payload, tgt))
        return Reply(json.dumps(good_translation(payload, tgt), ensure_ascii=False))
    return script


class Listener(ThreadingHTTPServer):
    """The test servers' HTTP server: socketserver listens with a backlog of 5, and a client
    opening 64 connections at once (a run at concurrency 64) had most of them dropped by the
    kernel, which the client saw as a server closing connections unanswered."""

    request_queue_size = 1024
    daemon_threads = True


class FakeLLM:
    """Start with `with FakeLLM() as llm:`; `llm.base_url` goes to --base-url."""

    def __init__(self, script: Script | None = None):
        self.script: Script = script or translating("en")
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        #: What GET /v1/models lists (a run without --model asks it); None: a 404.
        self.models: list[str] | None = ["scripted-model"]
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers: no connect per request

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                listed = self.path.rstrip("/").endswith("/models") and fake.models is not None
                data = json.dumps({"object": "list", "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "test"}
                    for m in fake.models or []]} if listed else
                    {"error": {"message": "not found", "type": "test"}}).encode()
                self.send_response(200 if listed else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                request = json.loads(self.rfile.read(length))
                with fake.lock:
                    fake.requests.append(request)
                reply = fake.script(record_payload(request), request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status == 200:
                    body = reply.body or {
                        "id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                        "model": request.get("model", "fake"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": reply.content}}],
                        "usage": reply.usage or {"prompt_tokens": 100, "completion_tokens": 20,
                                                 "total_tokens": 120},
                    }
                else:
                    body = reply.body or {"error": {"message": f"scripted {reply.status}",
                                                    "type": "test"}}
                data = reply.raw if reply.raw is not None else \
                    json.dumps(body, ensure_ascii=False).encode()
                self.send_response(reply.status)
                self.send_header("content-type", reply.content_type)
                self.send_header("content-length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = Listener(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def texts(self) -> list[str]:
        """The source texts of every request received, in order."""
        with self.lock:
            return [record_payload(r)["text"] for r in self.requests]


# -- rate limits, enforced the way OpenAI does --------------------------------------------

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff00-\uffef]")


def count_tokens(text: str) -> int:
    """A tokenizer-free count close to OpenAI's for this project's text: one token per CJK
    character, one per four other characters."""
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 4)


def request_tokens(request: dict[str, Any]) -> int:
    """Prompt tokens of a chat request: its messages' text plus 4 per message."""
    return sum(count_tokens(str(m.get("content") or "")) + 4 for m in request["messages"])


def format_duration(seconds: float) -> str:
    """A reset header's value as OpenAI writes it: `12ms`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    return f"{int(seconds // 60)}m{seconds % 60:.0f}s"


class _Quota:
    """One limited resource: at most `per_minute` over any sliding 60 s, and pro rata over
    every second (a bucket holding one second's share, refilled continuously: a request
    bigger than a full bucket goes when it is full). Refused requests cost nothing."""

    def __init__(self, per_minute: float, now: float):
        self.per_minute = per_minute
        self.per_second = per_minute / 60
        self.level = self.per_second
        self.at = now
        self.log: deque[tuple[float, float]] = deque()
        self.used = 0.0

    def _advance(self, now: float) -> None:
        self.level = min(self.per_second, self.level + (now - self.at) * self.per_second)
        self.at = now
        while self.log and self.log[0][0] <= now - 60:
            self.used -= self.log.popleft()[1]

    def wait(self, now: float, cost: float) -> float:
        """0 when `cost` fits now, else the seconds until it would."""
        self._advance(now)
        need = min(cost, self.per_second)
        wait = max(0.0, (need - self.level) / self.per_second)
        excess = self.used + cost - self.per_minute
        if excess > 0:
            freed = 0.0
            for t, c in self.log:
                freed += c
                if freed >= excess:
                    wait = max(wait, t + 60 - now)
                    break
        return wait

    def take(self, now: float, cost: float) -> None:
        self.level -= cost
        self.log.append((now, cost))
        self.used += cost

    def headers(self, now: float, resource: str) -> dict[str, str]:
        self._advance(now)
        reset = self.log[-1][0] + 60 - now if self.log else 0.0
        return {f"x-ratelimit-limit-{resource}": str(int(self.per_minute)),
                f"x-ratelimit-remaining-{resource}": str(max(0, int(self.per_minute - self.used))),
                f"x-ratelimit-reset-{resource}": format_duration(reset)}


class RateLimited:
    """A script that enforces `rpm` and/or `tpm` around another one, as OpenAI does: limits
    over sliding 60 s windows and pro rata over every second, `x-ratelimit-*` headers on every
    answer, 429 with `Retry-After` (and `retry-after-ms`) when a request does not fit, and a
    latency drawn uniformly from `latency`. A request is charged its prompt tokens and the
    answer's tokens when it arrives. `FakeLLM(RateLimited(translating(), rpm=600))`."""

    def __init__(self, script: Script | None = None, rpm: float | None = None,
                 tpm: float | None = None, latency: tuple[float, float] = (0.15, 0.6),
                 seed: int = 0, clock: Callable[[], float] = time.monotonic):
        self.script = script or translating("en")
        self.clock = clock
        now = clock()
        self.quotas = {name: _Quota(limit, now)
                       for name, limit in (("requests", rpm), ("tokens", tpm)) if limit}
        self.latency = latency
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.answered: list[tuple[float, int]] = []  # (arrival, tokens) of admitted requests
        self.refused = 0

    def __call__(self, payload: dict[str, Any], request: dict[str, Any]) -> Reply:
        reply = self.script(payload, request)
        if reply.status != 200:
            return reply
        usage = reply.usage or {"prompt_tokens": request_tokens(request),
                                "completion_tokens": count_tokens(reply.content or "")}
        usage = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}
        costs = {"requests": 1, "tokens": usage["total_tokens"]}
        with self.lock:
            now = self.clock()
            wait = max((q.wait(now, costs[name]) for name, q in self.quotas.items()),
                       default=0.0)
            if wait <= 0:
                for name, quota in self.quotas.items():
                    quota.take(now, costs[name])
                self.answered.append((now, usage["total_tokens"]))
            else:
                self.refused += 1
            headers = {k: v for name, quota in self.quotas.items()
                       for k, v in quota.headers(now, name).items()}
            delay = self.random.uniform(*self.latency)
        if wait > 0:
            headers |= {"retry-after": str(math.ceil(wait)),
                        "retry-after-ms": f"{wait * 1000:.0f}"}
            return Reply(status=429, headers=headers, body={"error": {
                "message": "Rate limit reached; please try again later.",
                "type": "requests", "code": "rate_limit_exceeded"}})
        return Reply(reply.content, headers={**reply.headers, **headers}, delay=delay,
                     usage=usage, body=reply.body)

    def achieved(self) -> dict[str, float]:
        """Requests and tokens per minute admitted, from the first admitted request to the
        last, and the 429s sent."""
        with self.lock:
            times = [t for t, _ in self.answered]
            tokens = sum(n for _, n in self.answered[1:])
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        return {"answered": len(times), "refused": self.refused, "seconds": span,
                "rpm": (len(times) - 1) / span * 60 if span else 0.0,
                "tpm": tokens / span * 60 if span else 0.0}


def _serve(conn: Any, rpm: float | None, tpm: float | None,
           latency: tuple[float, float]) -> None:
    import os
    import sys

    # A benchmark kills clients mid-request on purpose; their broken requests need no
    # traceback on the benchmark's terminal.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (for the life of this process)
    limited = RateLimited(translating("en"), rpm, tpm, latency, clock=time.time)
    with FakeLLM(limited) as llm:
        conn.send(llm.base_url)
        while True:
            what, arg = conn.recv()
            if what == "stop":
                return
            if what == "achieved":
                conn.send(limited.achieved())
            elif what == "first_after":
                with limited.lock:
                    conn.send(next((t for t, _ in limited.answered if t >= arg), None))


class ServerProcess:
    """A `RateLimited` translating server in a process of its own, so that a benchmark
    measures the client's CPU and memory alone. Times are wall-clock (`time.time()`).

        with ServerProcess(rpm=600) as server: ... server.base_url ... server.achieved()
    """

    def __init__(self, rpm: float | None = None, tpm: float | None = None,
                 latency: tuple[float, float] = (0.0, 0.0)):
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, rpm, tpm, latency),
                                       daemon=True)
        self.base_url = ""

    def __enter__(self) -> ServerProcess:
        self.process.start()
        self.base_url = self.conn.recv()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.conn.send(("stop", None))
        self.process.join(10)

    def achieved(self) -> dict[str, float]:
        self.conn.send(("achieved", None))
        return self.conn.recv()

    def first_request_after(self, when: float) -> float | None:
        """Wall-clock arrival of the first request admitted at or after `when`."""
        self.conn.send(("first_after", when))
        return self.conn.recv()


def repeated_items(source: Path, n: int) -> Iterator[dict[str, Any]]:
    """`n` stockmark items from `source`, its items repeated; each copy past the first gets a
    curid and a text of its own (appended, so every entity span stays where it was), so no
    request of a benchmark is a cache hit."""
    items = json.loads(Path(source).read_text(encoding="utf-8"))
    for i in range(n):
        item = dict(items[i % len(items)])
        if copy := i // len(items):
            item["curid"] = f"{item['curid']}-{copy}"
            item["text"] = f"{item['text']}（{copy}）"
        yield item


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """An ASGI app (the review app) served by uvicorn on a free 127.0.0.1 port in a thread,
    for the browser tests and the review bench; yields its base URL and stops it after."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start on 127.0.0.1")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class Deliveries:
    """A script wrapper that answers every request after `delay` seconds and notes when
    each answer was delivered, so a test can count the answers a client received and then
    asked for again (bought twice), given the times its clients died:

        deliveries = Deliveries(delay=1.0)  # FakeLLM(deliveries), clients killed at `deaths`
        ... deliveries.bought_twice(deaths)
    """

    def __init__(self, script: Script | None = None, delay: float = 1.0):
        self.script = script or translating("en")
        self.delay = delay
        self.lock = threading.Lock()
        #: (request identity, arrival, delivery) of every answer, by wall-clock time.
        self.log: list[tuple[str, float, float]] = []

    def __call__(self, payload: dict[str, Any], request: dict[str, Any]) -> Reply:
        reply = self.script(payload, request)
        reply.delay = self.delay
        arrival = time.time()
        identity = hashlib.sha256(json.dumps(request["messages"], sort_keys=True)
                                  .encode()).hexdigest()
        with self.lock:
            self.log.append((identity, arrival, arrival + self.delay))
        return reply

    def answered(self) -> int:
        with self.lock:
            return len(self.log)

    def delivered_before(self, when: float) -> int:
        """Answers delivered before wall-clock time `when`."""
        with self.lock:
            return sum(delivered < when for _, _, delivered in self.log)

    def bought_twice(self, deaths: list[float], margin: float = 0.2) -> int:
        """Requests asked again after an earlier copy was delivered to a client that was
        still alive `margin` seconds later (its next death in `deaths`, wall-clock, came
        after): answers that were paid for and lost."""
        with self.lock:
            log = sorted(self.log, key=lambda entry: entry[1])
        delivered: dict[str, float] = {}  # identity -> first delivery to a live client
        twice = 0
        for identity, arrival, delivery in log:
            if identity in delivered and arrival > delivered[identity]:
                twice += 1
                continue
            death = min((d for d in deaths if d >= arrival), default=math.inf)
            if delivery + margin < death and identity not in delivered:
                delivered[identity] = delivery
        return twice


if __name__ == "__main__":  # python -m mmtrans.testing serve: see testing_serve.py
    from mmtrans.testing_serve import main

    main()
