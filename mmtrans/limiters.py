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

Each takes a `quantum`: besides its own rule it then refuses past rpm/60 requests within any
one second (a sliding 1 s count, the strictest reading of "pro rata over every second"), with
`retry-after: 1`. Refused requests cost nothing. Only requests are limited (tokens are the
`RateLimited` server's, in testing.py).

    FakeLLM(Limited("sliding", rpm=600, quantum=True))   # a script, like RateLimited
    with LimitedServer("bucket", rpm=10_000) as server: ...   # in a process of its own
"""

from __future__ import annotations

import math
import random
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .testing import FakeLLM, Reply, Script, format_duration, translating

SEMANTICS = ("bucket", "sliding", "window10")


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

    def __init__(self, semantics: str, rpm: float, *, quantum: bool = False,
                 script: Script | None = None, latency: tuple[float, float] = (0.15, 0.6),
                 seed: int = 0, clock: Callable[[], float] = time.monotonic,
                 settled: float = 5.0):
        if semantics not in RULES:
            raise ValueError(f"semantics: one of {', '.join(SEMANTICS)}, not {semantics!r}")
        self.script = script or translating("en")
        self.clock = clock
        self.rule = RULES[semantics](rpm, clock())
        self.quantum = _Log(math.floor(rpm / 60), 1.0) if quantum else None
        self.latency = latency
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.answered: list[float] = []  # arrival of every admitted request
        self.arrivals: list[tuple[float, bool]] = []  # every request: arrival, admitted
        self.first_answer = math.inf  # when the first answer (naming the limit) went out
        self.refused = 0
        self.refused_by_quantum = 0
        self.settled = settled

    def __call__(self, payload: dict[str, Any], request: dict[str, Any]) -> Reply:
        arrived = self.clock()  # a limiter counts a request when it arrives
        reply = self.script(payload, request)
        if reply.status != 200:
            return reply
        with self.lock:
            now = arrived
            wait = self.rule.wait(now)
            quantum_wait = self.quantum.wait(now) if self.quantum else 0.0
            admitted = wait <= 0 and quantum_wait <= 0
            if admitted:
                self.rule.take(now)
                if self.quantum:
                    self.quantum.times.append(now)
                self.answered.append(now)
            else:
                self.refused += 1
                self.refused_by_quantum += wait <= 0
            self.arrivals.append((now, admitted))
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


def _serve(conn: Any, semantics: str, rpm: float, quantum: bool,
           latency: tuple[float, float]) -> None:
    import os
    import sys

    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (clients killed mid-request need no trace)
    limited = Limited(semantics, rpm, quantum=quantum, latency=latency, clock=time.time)
    with FakeLLM(limited) as llm:
        conn.send(llm.base_url)
        while True:
            what = conn.recv()
            if what == "stop":
                return
            if what == "arrivals":
                with limited.lock:
                    conn.send(list(limited.arrivals))
                continue
            conn.send(limited.achieved())


class LimitedServer:
    """A `Limited` translating server in a process of its own, so that a benchmark measures
    the client's CPU alone.

        with LimitedServer("window10", rpm=600, quantum=True) as server:
            ... server.base_url ... server.achieved()
    """

    def __init__(self, semantics: str, rpm: float, *, quantum: bool = False,
                 latency: tuple[float, float] = (0.15, 0.6)):
        import multiprocessing

        if semantics not in RULES:
            raise ValueError(f"semantics: one of {', '.join(SEMANTICS)}, not {semantics!r}")
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, daemon=True,
                                       args=(child, semantics, rpm, quantum, latency))
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

    def arrivals(self) -> list[tuple[float, bool]]:
        """Every request's arrival (server clock, `time.time`) and whether it was admitted."""
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
             latency: tuple[float, float] = (0.15, 0.6), seed: int = 0,
             limiter_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The real `RateLimiter` against a `Limited` rule in virtual time, with the two things a
    busy machine adds made explicit: each request reaches the limiter `arrival_jitter`
    seconds late on average (exponential: usually little, sometimes much, as when a process
    is not scheduled), and each wake-up of the client is late by as much (`late_wake`). So
    the pacing's own figure can be had on any machine, in a second, the same every time.
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
            await asyncio.sleep(late(arrival_jitter))
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
