"""Rate limiters built the different ways real endpoints build them, as test servers.

A pacer tuned to one limiter's semantics reaches its figure on that limiter only. Real
endpoints differ in what they count and in what their headers mean:

- `bucket` (OpenAI's headers): a bucket of `rpm` requests that refills continuously at rpm/60
  a second; `x-ratelimit-remaining-requests` is what the bucket holds, the reset header the
  time until it is full again; a refusal names its wait in `retry-after-ms`.
- `sliding` (proxies that count a log, LiteLLM-style): at most `rpm` over any sliding 60 s;
  remaining is the limit minus every request admitted in the last 60 s, so at full pace it stays
  near zero, and the reset header says `1s` whatever the truth; a refusal says `retry-after: 1`.
- `window10` (Azure OpenAI): the minute's quota enforced over fixed 10 s windows of rpm/6;
  remaining counts down within the current window and jumps back at its end, the reset header
  names that end; a refusal's `retry-after` is the whole seconds until the window turns.

Each takes a `quantum`: besides its own rule it then refuses past rpm/60 requests within one
second, with `retry-after: 1`. No product says which second: `sliding` counts any 1 s span
(the strictest reading of "pro rata over every second"), `fixed` counts whole seconds of the
server's clock (a counter reset each second, as gateways that keep a counter per key and
second do). Refused requests cost nothing. Only requests are limited (tokens are the
`RateLimited` server's, in testing.py).

    FakeLLM(Limited("sliding", rpm=600, quantum=True))   # a script, like RateLimited
    with LimitedServer("bucket", rpm=10_000) as server: ...   # in a process of its own
"""

from __future__ import annotations

import contextlib
import heapq
import json
import math
import random
import selectors
import socket
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from .testing import Reply, Script, format_duration, record_payload, translating

SEMANTICS = ("bucket", "sliding", "window10")
QUANTA = ("sliding", "fixed")  # the forms of a per-second quantum (see the module docstring)


def quantum_form(quantum: bool | str) -> str | None:
    """The per-second quantum asked for: None, "sliding" (True) or "fixed"."""
    if quantum is True:
        return "sliding"
    if not quantum:
        return None
    if quantum not in QUANTA:
        raise ValueError(f"quantum: one of {', '.join(QUANTA)}, not {quantum!r}")
    return str(quantum)


def message_key(request: dict[str, Any]) -> int:
    """What tells one request from another (its last message), to match sends to arrivals."""
    messages = request.get("messages") or [{}]
    return zlib.crc32(str(messages[-1].get("content", "")).encode())


class _Rule:
    """One way of counting requests: `wait` says how long until one more fits (0: now)."""

    def __init__(self, rpm: float, now: float):
        self.rpm = rpm

    def wait(self, now: float) -> float:
        raise NotImplementedError

    def take(self, now: float) -> None:
        raise NotImplementedError

    def headers(self, now: float) -> dict[str, str]:
        raise NotImplementedError

    def refusal(self, wait: float) -> dict[str, str]:
        raise NotImplementedError


class _Log:
    """Admission times within a sliding window of `seconds`, at most `most` of them."""

    def __init__(self, most: float, seconds: float):
        self.most, self.seconds = most, seconds
        self.times: deque[float] = deque()

    def prune(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.seconds:
            self.times.popleft()

    def wait(self, now: float) -> float:
        self.prune(now)
        if len(self.times) + 1 <= self.most:
            return 0.0
        # The one that must age out for one more to fit.
        oldest = self.times[len(self.times) - int(self.most)]
        return max(1e-6, oldest + self.seconds - now)

    def take(self, now: float) -> None:
        self.times.append(now)


class _Seconds:
    """At most `most` admissions within each whole second of the clock (fixed windows)."""

    def __init__(self, most: float):
        self.most = most
        self.second, self.used = -math.inf, 0

    def wait(self, now: float) -> float:
        second = math.floor(now)
        if second != self.second:
            self.second, self.used = second, 0
        return 0.0 if self.used + 1 <= self.most else max(1e-6, second + 1 - now)

    def take(self, now: float) -> None:
        self.used += 1


class Bucket(_Rule):
    """OpenAI's headers: a bucket of `rpm`, refilled continuously, starting full."""

    def __init__(self, rpm: float, now: float):
        super().__init__(rpm, now)
        self.level, self.at = rpm, now
        self.rate = rpm / 60

    def _refill(self, now: float) -> None:
        self.level = min(self.rpm, self.level + (now - self.at) * self.rate)
        self.at = now

    def wait(self, now: float) -> float:
        self._refill(now)
        return 0.0 if self.level >= 1 else (1 - self.level) / self.rate

    def take(self, now: float) -> None:
        self.level -= 1

    def headers(self, now: float) -> dict[str, str]:
        self._refill(now)
        return {"x-ratelimit-limit-requests": str(int(self.rpm)),
                "x-ratelimit-remaining-requests": str(max(0, int(self.level))),
                "x-ratelimit-reset-requests": format_duration((self.rpm - self.level)
                                                              / self.rate)}

    def refusal(self, wait: float) -> dict[str, str]:
        return {"retry-after-ms": f"{wait * 1000:.0f}"}


class Sliding(_Rule):
    """A log of the last 60 s; remaining near zero at full pace; reset always `1s`."""

    def __init__(self, rpm: float, now: float):
        super().__init__(rpm, now)
        self.log = _Log(rpm, 60.0)

    def wait(self, now: float) -> float:
        return self.log.wait(now)

    def take(self, now: float) -> None:
        self.log.times.append(now)

    def headers(self, now: float) -> dict[str, str]:
        self.log.prune(now)
        return {"x-ratelimit-limit-requests": str(int(self.rpm)),
                "x-ratelimit-remaining-requests": str(max(0, int(self.rpm) - len(self.log.times))),
                "x-ratelimit-reset-requests": "1s"}

    def refusal(self, wait: float) -> dict[str, str]:
        return {"retry-after": "1"}


class Window10(_Rule):
    """Azure's way: fixed 10 s windows of rpm/6 (aligned to the clock, not to the client)."""

    SECONDS = 10.0

    def __init__(self, rpm: float, now: float):
        super().__init__(rpm, now)
        self.most = math.floor(rpm / 6)
        self.window, self.used = math.floor(now / self.SECONDS), 0

    def _turn(self, now: float) -> None:
        window = math.floor(now / self.SECONDS)
        if window != self.window:
            self.window, self.used = window, 0

    def _end(self) -> float:
        return (self.window + 1) * self.SECONDS

    def wait(self, now: float) -> float:
        self._turn(now)
        return 0.0 if self.used + 1 <= self.most else max(1e-6, self._end() - now)

    def take(self, now: float) -> None:
        self.used += 1

    def headers(self, now: float) -> dict[str, str]:
        self._turn(now)
        return {"x-ratelimit-limit-requests": str(int(self.rpm)),
                "x-ratelimit-remaining-requests": str(max(0, self.most - self.used)),
                "x-ratelimit-reset-requests": format_duration(self._end() - now)}

    def refusal(self, wait: float) -> dict[str, str]:
        return {"retry-after": str(max(1, math.ceil(wait)))}


RULES: dict[str, type[_Rule]] = {"bucket": Bucket, "sliding": Sliding, "window10": Window10}


class Limited:
    """A script that enforces `rpm` the `semantics` way (see the module docstring) around
    another one, with a latency drawn uniformly from `latency`."""

    def __init__(self, semantics: str, rpm: float, *, quantum: bool | str = False,
                 script: Script | None = None, latency: tuple[float, float] = (0.15, 0.6),
                 seed: int = 0, clock: Callable[[], float] = time.monotonic,
                 settled: float = 5.0):
        if semantics not in RULES:
            raise ValueError(f"semantics: one of {', '.join(SEMANTICS)}, not {semantics!r}")
        form = quantum_form(quantum)
        self.script = script or translating("en")
        self.clock = clock
        self.rule = RULES[semantics](rpm, clock())
        most = math.floor(rpm / 60)
        self.quantum: _Log | _Seconds | None = \
            _Log(most, 1.0) if form == "sliding" else _Seconds(most) if form == "fixed" else None
        self.latency = latency
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.answered: list[float] = []  # arrival of every admitted request
        #: Every request: arrival, admitted, and its last message's hash (to match it with
        #: the client's send, see bench/rate).
        self.arrivals: list[tuple[float, bool, int]] = []
        self.first_answer = math.inf  # when the first answer (naming the limit) went out
        self.refused = 0
        self.refused_by_quantum = 0
        self.settled = settled

    def __call__(self, payload: dict[str, Any], request: dict[str, Any],
                 arrived: float | None = None) -> Reply:
        """`arrived`: when the request reached the server (its clock), if known better than
        now (`LimitedHTTP` passes the kernel's receive time)."""
        if arrived is None:
            arrived = self.clock()  # a limiter counts a request when it arrives
        reply = self.script(payload, request)
        if reply.status != 200:
            return reply
        with self.lock:
            now = max(arrived, self.arrivals[-1][0]) if self.arrivals else arrived
            wait = self.rule.wait(now)
            quantum_wait = self.quantum.wait(now) if self.quantum else 0.0
            admitted = wait <= 0 and quantum_wait <= 0
            if admitted:
                self.rule.take(now)
                if self.quantum:
                    self.quantum.take(now)
                self.answered.append(now)
            else:
                self.refused += 1
                self.refused_by_quantum += wait <= 0
            self.arrivals.append((now, admitted, message_key(request)))
            headers = self.rule.headers(now)
            delay = self.random.uniform(*self.latency)
            if admitted and len(self.answered) == 1:
                self.first_answer = now + delay
        if not admitted:
            refusal = self.rule.refusal(wait) if wait > 0 else {"retry-after": "1"}
            return Reply(status=429, headers=headers | refusal, body={"error": {
                "message": "Rate limit reached; please try again later.",
                "type": "requests", "code": "rate_limit_exceeded"}})
        return Reply(reply.content, headers={**reply.headers, **headers}, delay=delay,
                     usage=reply.usage, body=reply.body)

    def achieved(self) -> dict[str, float]:
        """Requests per minute admitted, from the first admitted request to the last
        (`rpm`), from the first answer on (`rpm_known`: a client that learns the limit from
        the first answer has one request in flight until then) and from `settled` seconds
        after the first on (`rpm_settled`), and the 429s."""
        with self.lock:
            times = list(self.answered)
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        later = [t for t in times if t >= times[0] + self.settled] if times else []
        settled = later[-1] - later[0] if len(later) > 1 else 0.0
        known = [t for t in times if t >= self.first_answer]
        known_span = known[-1] - known[0] if len(known) > 1 else 0.0
        return {"answered": len(times), "refused": self.refused,
                "refused_by_quantum": self.refused_by_quantum, "seconds": span,
                "rpm": (len(times) - 1) / span * 60 if span else 0.0,
                "rpm_settled": (len(later) - 1) / settled * 60 if settled else 0.0,
                "rpm_known": (len(known) - 1) / known_span * 60 if known_span else 0.0}


_STAMP = struct.Struct("qq")  # a struct timeval, as SO_TIMESTAMP gives it


def _kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The receive time SO_TIMESTAMP put beside the bytes read, if it did."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMP and len(data) >= _STAMP.size:
            seconds, micros = _STAMP.unpack_from(data)
            return seconds + micros / 1e6
    return None


_SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)


class _Peer:
    """One client connection: bytes read and not yet a whole request, bytes to write."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.read = bytearray()
        self.write = bytearray()
        self.arrived = 0.0  # kernel receive time of the latest bytes read
        self.closing = False


class LimitedHTTP:
    """The HTTP/1.1 front of a `Limited` script, in one thread, that counts each request at
    the moment it reached the server: the kernel's receive time of its last bytes
    (SO_TIMESTAMP), not the moment a Python thread got round to it.

    A real endpoint's limiter runs on machines of its own and reads a request as it comes;
    a test server sharing two cores with the client (and a busy process) is scheduled late
    by tens of ms, and counting then would add a bunching no real endpoint adds. What the
    kernel stamps is when the client's bytes arrived: the client's own lateness (a busy
    event loop, the SDK's send path) stays in the figures, the test server's is left out.
    Answers go after the script's delay from that arrival. One thread also costs the shared
    cores less than a thread per connection."""

    def __init__(self, script: Limited):
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.listener.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMP, 1)
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.due: list[tuple[float, int, _Peer, bytes]] = []  # answers by when they go
        self.sequence = 0
        self.connections = 0  # accepted: a client that opens one per request shows here
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"

    def __enter__(self) -> LimitedHTTP:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopped.set()
        self.thread.join(5)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            timeout = 0.1
            if self.due:
                timeout = min(timeout, max(0.0, self.due[0][0] - time.time()))
            requests: list[tuple[float, _Peer, str, bytes]] = []
            for key, mask in self.selector.select(timeout):
                if key.data is None:
                    self._accept()
                    continue
                peer: _Peer = key.data
                if mask & selectors.EVENT_READ:
                    requests += self._read(peer)
                if mask & selectors.EVENT_WRITE:
                    self._flush(peer)
            # Counted in the order they arrived, whichever socket was read first.
            for arrived, peer, path, body in sorted(requests, key=lambda r: r[0]):
                self._answer(arrived, peer, path, body)
            now = time.time()
            while self.due and self.due[0][0] <= now:
                _, _, peer, data = heapq.heappop(self.due)
                peer.write += data
                self._flush(peer)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            self.connections += 1
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMP, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.selector.register(sock, selectors.EVENT_READ, _Peer(sock))

    def _close(self, peer: _Peer) -> None:
        peer.closing = True
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(peer.sock)
        peer.sock.close()

    def _read(self, peer: _Peer) -> list[tuple[float, _Peer, str, bytes]]:
        try:
            data, ancillary, _, _ = peer.sock.recvmsg(1 << 16, 256)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            data, ancillary = b"", []
        if not data:
            self._close(peer)
            return []
        peer.arrived = _kernel_time(ancillary) or time.time()
        peer.read += data
        requests = []
        while True:
            end = peer.read.find(b"\r\n\r\n")
            if end < 0:
                return requests
            head = bytes(peer.read[:end]).decode("latin-1").split("\r\n")
            fields = dict(line.lower().split(": ", 1) for line in head[1:] if ": " in line)
            length = int(fields.get("content-length", 0))
            if len(peer.read) < end + 4 + length:
                return requests
            body = bytes(peer.read[end + 4:end + 4 + length])
            del peer.read[:end + 4 + length]
            method, path = (head[0].split(" ") + ["", ""])[:2]
            requests.append((peer.arrived, peer, path if method == "POST" else "", body))

    def _answer(self, arrived: float, peer: _Peer, path: str, body: bytes) -> None:
        if not path.endswith("/chat/completions"):
            self._queue(arrived, peer, 404, {}, {"error": {"message": "not found",
                                                             "type": "test"}})
            return
        request = json.loads(body)
        reply = self.script(record_payload(request), request, arrived)
        data: dict[str, Any] = reply.body or ({
            "id": "chatcmpl-test", "object": "chat.completion", "created": 0,
            "model": request.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": reply.content}}],
            "usage": reply.usage or {"prompt_tokens": 100, "completion_tokens": 20,
                                     "total_tokens": 120}}
            if reply.status == 200 else {"error": {"message": f"scripted {reply.status}",
                                                   "type": "test"}})
        self._queue(arrived + reply.delay, peer, reply.status, reply.headers, data)

    def _queue(self, when: float, peer: _Peer, status: int, headers: dict[str, str],
               body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
                "content-type: application/json", f"content-length: {len(data)}",
                *(f"{k}: {v}" for k, v in headers.items())]
        self.sequence += 1
        heapq.heappush(self.due, (when, self.sequence, peer,
                                  ("\r\n".join(head) + "\r\n\r\n").encode() + data))

    def _flush(self, peer: _Peer) -> None:
        if peer.closing:
            return
        try:
            sent = peer.sock.send(peer.write)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(peer)
            return
        del peer.write[:sent]
        self.selector.modify(peer.sock, selectors.EVENT_READ
                             | (selectors.EVENT_WRITE if peer.write else 0), peer)


FRONTS = ("kernel", "threads")  # LimitedHTTP; testing.FakeLLM (counts when a thread parsed it)


def _serve(conn: Any, semantics: str, rpm: float, quantum: bool | str,
           latency: tuple[float, float], front: str) -> None:
    import os
    import sys

    from .testing import FakeLLM

    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (clients killed mid-request need no trace)
    limited = Limited(semantics, rpm, quantum=quantum, latency=latency, clock=time.time)
    with (LimitedHTTP(limited) if front == "kernel" else FakeLLM(limited)) as server:
        conn.send(server.base_url)
        while True:
            what = conn.recv()
            if what == "stop":
                return
            if what == "arrivals":
                with limited.lock:
                    conn.send(list(limited.arrivals))
                continue
            conn.send(limited.achieved() | {"connections": getattr(server, "connections", 0)})


class LimitedServer:
    """A `Limited` translating server in a process of its own, so that a benchmark measures
    the client's CPU alone. `front`: "kernel" (`LimitedHTTP`, counting at the kernel's
    receive time) or "threads" (`FakeLLM`, counting when its thread parsed the request).

        with LimitedServer("window10", rpm=600, quantum=True) as server:
            ... server.base_url ... server.achieved()
    """

    def __init__(self, semantics: str, rpm: float, *, quantum: bool | str = False,
                 latency: tuple[float, float] = (0.15, 0.6), front: str = "kernel"):
        import multiprocessing

        if semantics not in RULES:
            raise ValueError(f"semantics: one of {', '.join(SEMANTICS)}, not {semantics!r}")
        if front not in FRONTS:
            raise ValueError(f"front: one of {', '.join(FRONTS)}, not {front!r}")
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, daemon=True,
                                       args=(child, semantics, rpm, quantum, latency, front))
        self.base_url = ""

    def __enter__(self) -> LimitedServer:
        self.process.start()
        self.base_url = self.conn.recv()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.conn.send("stop")
        self.process.join(10)

    def achieved(self) -> dict[str, float]:
        self.conn.send("achieved")
        return self.conn.recv()

    def arrivals(self) -> list[tuple[float, bool, int]]:
        """Every request's arrival (server clock, `time.time`), whether it was admitted, and
        its `message_key`."""
        self.conn.send("arrivals")
        return self.conn.recv()


class _VirtualSelector(selectors.SelectSelector):
    """A selector whose `select(timeout)` moves a virtual clock on by `timeout` instead of
    waiting (nothing it watches is ever ready): an event loop on it runs its timers in
    virtual time."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout:
            self.now += timeout
        return []


def simulate(semantics: str, rpm: float, *, quantum: bool = False, seconds: float = 60.0,
             arrival_jitter: float = 0.003, late_wake: float = 0.0, first_wait: float = 0.0,
             stragglers: tuple[float, float] = (0.0, 0.0),
             latency: tuple[float, float] = (0.15, 0.6), seed: int = 0,
             limiter_options: dict[str, Any] | None = None,
             told_when_sent: bool = True) -> dict[str, Any]:
    """The real `RateLimiter` against a `Limited` rule in virtual time, with the two things a
    busy machine adds made explicit: each request reaches the limiter `arrival_jitter`
    seconds late on average (exponential: usually little, sometimes much, as when a process
    is not scheduled), each wake-up of the client is late by `late_wake`, and a share
    `stragglers[0]` of the requests reaches it `stragglers[1]` seconds late besides (what
    bench/rate measures on real loopback: the client's own send path, at p99 10 to 20 ms,
    at most 100 to 200 ms). So
    the pacing's own figure can be had on any machine, in a second, the same every time.
    `told_when_sent`: the limiter is told when each request reached the server, as the real
    client's transport tells it when the bytes were written (False: it knows only when it
    let each one go).
    Returns `Limited.achieved()` with the client's `limiter`."""
    import asyncio

    from .ratelimit import RateLimiter

    selector = _VirtualSelector()
    loop = asyncio.SelectorEventLoop(selector)  # type: ignore[arg-type]
    loop.time = lambda: selector.now  # type: ignore[method-assign]
    chance = random.Random(seed)
    server = Limited(semantics, rpm, quantum=quantum, script=lambda *_: Reply("{}"),
                     latency=latency, seed=seed, clock=lambda: selector.now)
    limiter = RateLimiter(clock=loop.time, **({"max_concurrency": 512} | (limiter_options or {})))

    def late(mean: float) -> float:
        return chance.expovariate(1 / mean) if mean > 0 else 0.0

    async def sleep(wait: float) -> None:
        await asyncio.sleep(wait + late(late_wake))

    limiter.sleep = sleep
    left = [max(1, round(rpm * seconds / 60))]
    failed = [0]

    async def one() -> None:
        for _ in range(30):
            ticket = await limiter.acquire(100)
            straggles = chance.random() < stragglers[0]
            await asyncio.sleep(late(arrival_jitter) + (stragglers[1] if straggles else 0.0))
            if told_when_sent:
                limiter.sent(ticket)  # as the real client's transport tells it (transport.py)
            reply = server({}, {})
            headers = reply.headers
            if reply.status == 429:
                ms = headers.get("retry-after-ms")
                asked = float(ms) / 1000 if ms else float(headers.get("retry-after", 1))
                await asyncio.sleep(0.001)
                await asyncio.sleep(limiter.rate_limited(ticket, asked, headers))
                continue
            await asyncio.sleep(reply.delay)
            limiter.answered(ticket, headers, 80, 20, reply.delay, 100)
            return
        failed[0] += 1

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await one()

    async def run() -> None:
        await asyncio.sleep(first_wait)
        await asyncio.gather(*(worker() for _ in range(512)))

    try:
        loop.run_until_complete(run())
    finally:
        loop.close()
    return server.achieved() | {"failed": failed[0], "limiter": limiter, "server": server}
