"""Keep an endpoint exactly as busy as its rate limits allow, and no busier.

OpenAI-style endpoints limit requests and tokens per minute (RPM, TPM), enforce them over a
minute and pro rata over every second (so a minute's share cannot be sent in one burst), and
tell the client where it stands in `x-ratelimit-*` headers on every answer. So the limiter:

- paces each resource (requests, tokens) as a token bucket without burst (a GCRA: each send
  moves a "theoretical arrival time" on by cost / rate), at `share` of the limit, and never lets
  more than the limit in over any 60 s;
- learns the limits from `x-ratelimit-limit-requests` / `-tokens` of the first answer when they
  are not given (until then one request is in flight), and follows `x-ratelimit-remaining-*`
  by holding back when the endpoint has less left than the run has sent since;
- charges a request its estimated tokens (prompt counted before sending, scaled by how the
  endpoint's own counts compared so far, plus the moving average of answers' output tokens),
  and settles the estimate with the usage the answer reports;
- on a 429, pauses the whole run once for the `Retry-After` asked (all 429s of the same episode
  extend one pause instead of each worker sleeping and retrying together), then climbs back
  from half pace; the 429'd request goes again without counting as one of its attempts;
- adapts concurrency: with a limit, enough requests in flight for the paced rate at the
  latency seen (Little's law), no more; without one, additive increase and halving on a 429.

The pacing is pure arithmetic on a clock (`clock`), so it is the same in tests and runs.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

DEFAULT_SHARE = 0.99  # of the limit: the 1% left covers clock jitter and estimates in flight
PAUSE_WITHOUT_RETRY_AFTER = 1.0  # seconds, when a 429 names no wait
RAMP_SECONDS = 5.0  # climbing back from half pace to full after a pause
WINDOW = 60.0
MAX_EARLY = 0.25  # seconds a send may come before its paced time (see Lane.tolerance)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str | None) -> float | None:
    """Seconds in an OpenAI reset header: `1s`, `6m0s`, `12ms`, `59.8s`, `1h2m3s` or plain
    seconds; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


@dataclass(frozen=True)
class LimitHeaders:
    """What one answer's `x-ratelimit-*` headers say about one resource."""

    limit: float | None
    remaining: float | None
    reset: float | None

    @classmethod
    def read(cls, headers: Mapping[str, str], resource: str) -> LimitHeaders:
        def get(name: str) -> str | None:
            return headers.get(f"x-ratelimit-{name}-{resource}")

        limit = _number(get("limit"))
        return cls(limit if limit and limit > 0 else None, _number(get("remaining")),
                   parse_duration(get("reset")))


@dataclass
class Lane:
    """One limited resource (requests or tokens) per minute, paced without burst."""

    name: str
    per_minute: float | None = None  # None: not limited (or not known yet)
    given: bool = False  # set by the user: a header may only lower it
    tat: float = 0.0  # theoretical arrival time of the next send (GCRA)
    sent: float = 0.0  # total cost sent (a ticket remembers it, to tell what was sent since)
    log: deque[list[float]] = field(default_factory=deque)  # [time, cost] of the last 60 s
    in_window: float = 0.0
    hold_until: float = 0.0  # the endpoint said it has less left than we have sent since

    def _prune(self, now: float) -> None:
        while self.log and self.log[0][0] <= now - WINDOW:
            self.in_window -= self.log.popleft()[1]

    def tolerance(self, cost: float) -> float:
        """Seconds a send may come before its time, so that a late wake-up of the event loop
        is made up for instead of lost for good: at most MAX_EARLY, and never so much that
        the endpoint's one-second share could not hold `cost` besides."""
        per_second = (self.per_minute or 0.0) / WINDOW
        if per_second <= 0:
            return 0.0
        return max(0.0, min(MAX_EARLY, 0.5 * (1 - cost / per_second)))

    def wait(self, now: float, cost: float, share: float) -> float:
        """Seconds until `cost` may be sent at `share` of the limit (0: now)."""
        if not self.per_minute:
            return 0.0
        self._prune(now)
        wait = max(self.tat - self.tolerance(cost) - now, self.hold_until - now, 0.0)
        cap = self.per_minute * share
        if self.log and self.in_window + cost > cap:
            # The 60 s window is full (after a pause or a limit learned late): wait until
            # enough of it has aged out.
            excess, waited_out = self.in_window + cost - cap, 0.0
            for t, c in self.log:
                waited_out += c
                if waited_out >= excess:
                    wait = max(wait, t + WINDOW - now)
                    break
        return wait

    def take(self, now: float, cost: float, share: float) -> list[float]:
        """Charge `cost` sent now; returns the log entry, to settle it later."""
        entry = [now, cost]
        self.sent += cost
        if self.per_minute:
            rate = self.per_minute * share / WINDOW
            self.tat = max(self.tat, now) + cost / rate
        self.log.append(entry)
        self.in_window += cost
        return entry

    def settle(self, entry: list[float], actual: float, share: float) -> None:
        """The answer says the request cost `actual`, not the estimate charged."""
        delta = actual - entry[1]
        entry[1] = actual
        self.in_window += delta
        self.sent += delta
        if self.per_minute:
            self.tat += delta / (self.per_minute * share / WINDOW)

    def refund(self, entry: list[float], share: float) -> None:
        """A refused request (429) cost the endpoint nothing."""
        self.settle(entry, 0.0, share)

    def adopt(self, limit: float | None) -> None:
        """The endpoint names its limit: it holds unless the user set a lower one."""
        if not limit or (self.per_minute and self.given and self.per_minute <= limit):
            return
        if not self.per_minute and self.log:
            # Learned late: what was sent before counts as paced from its first send.
            rate = limit * DEFAULT_SHARE / WINDOW
            self.tat = max(self.tat, self.log[0][0] + self.in_window / rate)
        self.per_minute = limit

    def follow(self, now: float, seen: LimitHeaders, sent_at: float, sent_before: float) -> None:
        """Adopt a limit the endpoint names (unless the user set one), and hold back when it
        has less left than this run sent after the answered request (after the refill since)."""
        self.adopt(seen.limit)
        if seen.remaining is None or not self.per_minute:
            return
        refill = self.per_minute / WINDOW * max(0.0, now - sent_at)
        left = seen.remaining + refill - (self.sent - sent_before)
        if left < 0:
            self.hold_until = max(self.hold_until, now - left * WINDOW / self.per_minute)

    def pace(self, now: float) -> float:
        """Cost sent over the last 60 s."""
        self._prune(now)
        return self.in_window


@dataclass
class Ticket:
    """One request let through: what it was charged, to settle or refund when it answers."""

    tokens: float
    sent_at: float
    requests_entry: list[float]
    tokens_entry: list[float]
    requests_before: float
    tokens_before: float
    done: bool = False


class RateLimiter:
    """Admits requests to one endpoint (see the module docstring). One per run; asyncio only."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None, *,
                 max_concurrency: int = 64, learn: bool = True, share: float = DEFAULT_SHARE,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep):
        self.requests = Lane("requests", rpm, given=rpm is not None)
        self.tokens = Lane("tokens", tpm, given=tpm is not None)
        self.max_concurrency = max(1, max_concurrency)
        self.learning = learn and (rpm is None or tpm is None)
        self.share_ceiling = share
        self.clock, self.sleep = clock, sleep
        self.in_flight = 0
        self.window = float(self.max_concurrency)  # concurrency when no limit is known
        self.paused_until = 0.0
        self.ramp_from = -math.inf  # when the last pause ended: pace climbs back from there
        self.rate_limited_count = 0  # 429 answers
        self.pauses = 0  # 429 episodes (one pause each)
        self.waiting = ""  # why the next request waits, for the progress line
        self.waiting_until = 0.0
        self.prompt_scale = 1.0  # endpoint's prompt tokens / our estimate, moving average
        self.output_tokens = 0.0  # moving average of answers' output tokens
        self.answers = 0
        self.latency = 0.0  # moving average and deviation of answers' latency
        self.latency_dev = 0.0
        self.prompt_seen = 0.0  # moving average of the endpoint's prompt tokens per request
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gate = asyncio.Lock()  # waiters pace one at a time, first come first served
        self._released = asyncio.Event()

    def _bind(self) -> None:
        """asyncio primitives belong to one event loop: a limiter used again under a new
        loop (a second `asyncio.run`) starts them afresh, its pacing state kept."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._gate = asyncio.Lock()
            self._released = asyncio.Event()
            self.in_flight = 0

    # -- what a request costs ------------------------------------------------------------

    def estimate(self, prompt_tokens: float) -> float:
        """Tokens a request is charged before it is sent: its counted prompt scaled to the
        endpoint's counts, plus the run's average answer."""
        return prompt_tokens * self.prompt_scale + self.output_tokens

    # -- pace ----------------------------------------------------------------------------

    def share(self, now: float) -> float:
        """Share of the limit paced at: the ceiling, or less while climbing back."""
        since = now - self.ramp_from
        if since >= RAMP_SECONDS:
            return self.share_ceiling
        return self.share_ceiling * (0.5 + 0.5 * max(0.0, since) / RAMP_SECONDS)

    def concurrency(self) -> int:
        """Requests allowed in flight now."""
        if self.learning and self.answers == 0:
            return 1  # the first answer's headers name the limits
        rates = []
        if self.requests.per_minute:
            rates.append(self.requests.per_minute / WINDOW)
        if self.tokens.per_minute and (self.output_tokens or self.answers):
            per_request = max(1.0, self.output_tokens + self.prompt_seen)
            rates.append(self.tokens.per_minute / WINDOW / per_request)
        if rates and self.answers:
            latency = self.latency + 2 * self.latency_dev
            return max(1, min(self.max_concurrency, math.ceil(min(rates) * latency * 1.5) + 2))
        return max(1, min(self.max_concurrency, int(self.window)))

    def _wait(self, now: float, tokens: float) -> tuple[float, str]:
        if now < self.paused_until:
            return self.paused_until - now, "paused after a 429 (Retry-After)"
        if self.in_flight >= self.concurrency():
            reason = ("learning the limits from the first answer"
                      if self.learning and self.answers == 0 else "all workers busy")
            return math.inf, reason
        share = self.share(now)
        waits = [(self.requests.wait(now, 1, share), "requests per minute"),
                 (self.tokens.wait(now, tokens, share), "tokens per minute")]
        wait, lane = max(waits)
        return wait, f"pacing to the {lane} limit"

    async def acquire(self, prompt_tokens: float = 0.0) -> Ticket:
        """Wait until a request with `prompt_tokens` (as counted here) may go; the returned
        ticket must end in `answered`, `rate_limited` or `failed`."""
        self._bind()
        async with self._gate:
            while True:
                now = self.clock()
                tokens = self.estimate(prompt_tokens)
                wait, why = self._wait(now, tokens)
                if wait <= 0:
                    break
                self.waiting, self.waiting_until = why, now + wait
                if math.isinf(wait):
                    self._released.clear()
                    await self._released.wait()
                else:
                    await self.sleep(wait)
            self.waiting = ""
            share = self.share(now)
            ticket = Ticket(tokens, now, [], [], self.requests.sent, self.tokens.sent)
            ticket.requests_entry = self.requests.take(now, 1, share)
            ticket.tokens_entry = self.tokens.take(now, tokens, share)
            self.in_flight += 1
            return ticket

    def _release(self, ticket: Ticket) -> None:
        if not ticket.done:
            ticket.done = True
            self.in_flight -= 1
            self._released.set()

    # -- what the endpoint said ------------------------------------------------------------

    def answered(self, ticket: Ticket, headers: Mapping[str, str] | None = None,
                 tokens_in: int = 0, tokens_out: int = 0, latency: float = 0.0,
                 prompt_tokens: float = 0.0) -> None:
        """A real answer: learn from its headers, usage and latency."""
        now = self.clock()
        share = self.share(now)
        self._release(ticket)
        self.answers += 1
        weight = 0.1 if self.answers > 1 else 1.0
        own_tokens = ticket.tokens
        if tokens_in or tokens_out:
            own_tokens = tokens_in + tokens_out
            self.tokens.settle(ticket.tokens_entry, own_tokens, share)
            self.output_tokens += weight * (tokens_out - self.output_tokens)
            self.prompt_seen += weight * (tokens_in - self.prompt_seen)
            if prompt_tokens > 0 and tokens_in > 0:
                self.prompt_scale += weight * (tokens_in / prompt_tokens - self.prompt_scale)
        if latency > 0:
            self.latency_dev += weight * (abs(latency - self.latency) - self.latency_dev) \
                if self.answers > 1 else 0.0
            self.latency += weight * (latency - self.latency)
        if headers is not None:
            self.requests.follow(now, LimitHeaders.read(headers, "requests"), ticket.sent_at,
                                 ticket.requests_before + 1)
            self.tokens.follow(now, LimitHeaders.read(headers, "tokens"), ticket.sent_at,
                               ticket.tokens_before + own_tokens)
        if not self.requests.per_minute and not self.tokens.per_minute:
            self.window = min(self.max_concurrency, self.window + 1 / max(1.0, self.window))

    def rate_limited(self, ticket: Ticket, retry_after: float | None,
                     headers: Mapping[str, str] | None = None) -> float:
        """A 429: refund the request, pause the whole run once for what the endpoint asks
        (a 429 of the same episode extends the one pause), then climb back. Returns the
        seconds the run is paused from now."""
        now = self.clock()
        share = self.share(now)
        self._release(ticket)
        self.rate_limited_count += 1
        self.requests.refund(ticket.requests_entry, share)
        self.tokens.refund(ticket.tokens_entry, share)
        if headers is not None:
            for lane in (self.requests, self.tokens):
                lane.adopt(LimitHeaders.read(headers, lane.name).limit)
        wait = retry_after if retry_after is not None else PAUSE_WITHOUT_RETRY_AFTER
        if ticket.sent_at >= self.paused_until:
            # A new episode (not a straggler sent before the last pause ended): slow down for
            # good a little, and halve the concurrency when no limit paces the run.
            self.pauses += 1
            self.share_ceiling = max(0.8, self.share_ceiling * 0.98)
            self.window = max(1.0, self.window / 2)
        self.paused_until = max(self.paused_until, now + wait)
        self.ramp_from = self.paused_until
        for lane in (self.requests, self.tokens):
            # Past the pause by the early allowance: after it, one at a time, no burst.
            lane.tat = max(lane.tat, self.paused_until + MAX_EARLY)
        return self.paused_until - now

    def failed(self, ticket: Ticket) -> None:
        """Any other failure: the slot is free again; the charge stands (the endpoint may
        have counted the request)."""
        self._release(ticket)

    # -- for the progress line -------------------------------------------------------------

    def describe(self) -> str:
        """Pace against the limit, and what the run waits for, in a few words."""
        now = self.clock()
        parts = []
        for lane, unit in ((self.requests, "rpm"), (self.tokens, "tpm")):
            if lane.per_minute:
                parts.append(f"{lane.pace(now):,.0f}/{lane.per_minute:,.0f} {unit}")
        if self.waiting and self.waiting_until > now:
            left = self.waiting_until - now
            if math.isfinite(left):
                parts.append(f"waiting {left:.1f}s: {self.waiting}")
            elif self.learning and self.answers == 0:  # (all workers busy is no news)
                parts.append(f"waiting: {self.waiting}")
        if self.rate_limited_count:
            parts.append(f"{self.rate_limited_count}x429")
        return " ".join(parts)
