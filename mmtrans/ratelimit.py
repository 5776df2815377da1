"""Keep an endpoint exactly as busy as its rate limits allow, and no busier.

OpenAI-style endpoints limit requests and tokens per minute (RPM, TPM), enforce them over a
minute and pro rata over every second (so a minute's share cannot be sent in one burst), and
tell the client where it stands in `x-ratelimit-*` headers on every answer. So the limiter:

- paces each resource (requests, tokens) as a token bucket without burst (a GCRA: each send
  moves a "theoretical arrival time" on by cost / rate), at `share` of the limit, on an
  absolute grid: an event loop that wakes late (CPU contention) makes up the slots it skipped
  instead of losing them, but never beyond what any one second (rpm/60), any 10 s (rpm/6) or
  any minute may hold, so limiters that count per second, over 10 s windows or over a sliding
  minute all see an even pace (see `Lane`);
- counts each request in its windows from when its bytes were written to the connection
  (`sent`, told by the HTTP client's trace in llm.py), not from when it let it go: a send
  that went late (the SDK's path, a busy event loop) holds back the one a second after it;
- learns the limits from `x-ratelimit-limit-requests` / `-tokens` of the first answer when they
  are not given (until then one request is in flight), and follows `x-ratelimit-remaining-*`
  by holding back when the endpoint has less left than the run has sent since;
- charges a request its estimated tokens (prompt counted before sending, scaled by how the
  endpoint's own counts compared so far, plus the moving average of answers' output tokens),
  and settles the estimate with the usage the answer reports;
- on a 429, pauses the whole run once (all 429s of the same episode share one pause instead
  of each worker sleeping and retrying together): a first 429 while paced under the limit for
  a couple of slots, giving arrivals more room within the second; 429s that go on for the
  `Retry-After` asked, doubling, then climbing back from half pace (see `rate_limited`); the
  429'd request goes again without counting as one of its attempts;
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
MAX_PAUSE = 60.0
RAMP_SECONDS = 5.0  # climbing back from half pace to full after a pause
WINDOW = 60.0
CATCH_UP = 0.5  # seconds of slots a late wake-up may make up (see Lane)
CATCH_UP_GAP = 0.5  # of a slot: the least time between two sends while making up, on average
#: Seconds a send may come before the making-up pace's own grid: a loop that wakes a few ms
#: late for every send (a busy core; 6 ms slots at 10,000 RPM) still makes up its slots.
CATCH_UP_TOLERANCE = 0.02
SECOND_MARGIN = 0.005  # seconds added to the one-second span at first (catch-up's room)
MARGIN_STEP = 0.01  # what each 429 of the second's count adds to it
#: At most: each 10 ms costs 1% of the pace, and past 30 ms the margin costs more pace than
#: the 429s it could spare (they cost a slot each); arrivals bunched by more are refused.
MAX_SECOND_MARGIN = 0.03
#: Seconds after the margin last changed at which it shrinks by half a step: a spell of
#: jitter (a busy machine) widens it, and it does not cost the pace for good.
MARGIN_DECAY_SECONDS = 10.0
#: The margin widens only while 429s of the second's count are more than this share of the
#: sends over the last MARGIN_EVIDENCE seconds. A lone straggler (a send that reached the
#: server 100 ms late: the client's loop was busy) is refused by its echo a second on whatever
#: the margin; a margin wide enough for it would cost a tenth of the pace, while a margin
#: that follows every such 429 climbs and costs the pace without sparing one (bench/rate: at
#: a load of 0.5, p99 of send to arrival 10 to 18 ms, the most 150 to 220 ms).
MARGIN_TARGET = 0.005
MARGIN_EVIDENCE = WINDOW
SHORT_PAUSE_SLOTS = 1  # the first 429 of an episode pauses the run for this many slots

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


class Window:
    """What was sent over the last `span` seconds, as shared [time, cost] entries (settling an
    entry's cost later keeps every window's total true)."""

    def __init__(self, span: float):
        self.span = span
        self.entries: deque[list[float]] = deque()
        self.total = 0.0

    def prune(self, now: float) -> None:
        while self.entries and self.entries[0][0] <= now - self.span:
            self.total -= self.entries.popleft()[1]

    def add(self, entry: list[float]) -> None:
        self.entries.append(entry)
        self.total += entry[1]

    def remove(self, entry: list[float]) -> bool:
        """Take `entry` out (found from the newest end: it is a recent one); False when it
        is no longer in the window."""
        for i in range(len(self.entries) - 1, -1, -1):
            if self.entries[i] is entry:
                del self.entries[i]
                self.total -= entry[1]
                return True
        return False

    def insert(self, entry: list[float]) -> None:
        """Put `entry` back in time order (from the newest end: it is a recent one)."""
        i = len(self.entries)
        while i > 0 and self.entries[i - 1][0] > entry[0]:
            i -= 1
        self.entries.insert(i, entry)
        self.total += entry[1]

    def adjust(self, entry: list[float], delta: float) -> None:
        """`entry`'s cost changes by `delta` (when it is still in the window)."""
        if self.entries and entry[0] >= self.entries[0][0]:
            self.total += delta

    def wait(self, now: float, cost: float, most: float) -> float:
        """Seconds until `cost` more keeps the window's total within `most` (a cost larger
        than `most` goes once the window is empty)."""
        self.prune(now)
        excess = self.total + cost - max(most, cost)
        if excess <= 1e-9 or not self.entries:
            return 0.0
        freed = 0.0
        for t, c in self.entries:
            freed += c
            if freed >= excess - 1e-9:
                return max(0.0, t + self.span - now)
        return max(0.0, self.entries[-1][0] + self.span - now)


@dataclass
class Lane:
    """One limited resource (requests or tokens) per minute, paced without burst.

    A send is never early: its slot is `tat` on an absolute grid of cost / rate. A send that
    comes late (the event loop woke late, the workers were all busy) leaves the grid where it
    was, so the slots it skipped are made up at once, up to CATCH_UP seconds' worth; but no
    catch-up may put more than the endpoint's share of any one second (rpm/60), of any 10 s
    (rpm/6) or of any minute into those spans, so that a limiter that counts over a second,
    over 10 s windows or over a sliding minute sees no burst it refuses."""

    name: str
    per_minute: float | None = None  # None: not limited (or not known yet)
    given: bool = False  # set by the user: a header may only lower it
    tat: float = -math.inf  # theoretical arrival time of the next send (GCRA)
    sent: float = 0.0  # total cost sent (a ticket remembers it, to tell what was sent since)
    hold_until: float = 0.0  # the endpoint said it has less left than we have sent since
    credit: float = 0.0  # seconds of slots to make up beyond CATCH_UP (a limit learned late)
    spaced_until: float = -math.inf  # the second's guard holds until then (see `wait`)
    fast_tat: float = -math.inf  # the making-up pace's grid (CATCH_UP_GAP of a slot a send)
    guarded: bool = False  # the next send waits for a guard, not for its slot
    per_second: bool = False  # a 429 said the endpoint counts over each second
    per_ten_seconds: bool = False  # ... over 10 s windows
    #: Seconds added to the one-second span: arrivals bunch up on the way to the server (a
    #: send delayed by the loop, the next one not), so a 429 of the quantum widens it.
    margin: float = SECOND_MARGIN
    margin_since: float = -math.inf  # when the margin last changed
    second_refusals: deque[float] = field(default_factory=deque)  # 429s of the second's count
    second: Window = field(default_factory=lambda: Window(1.0 + SECOND_MARGIN))
    ten: Window = field(default_factory=lambda: Window(10.0))
    minute: Window = field(default_factory=lambda: Window(WINDOW))

    @property
    def log(self) -> deque[list[float]]:
        """[time, cost] of what was sent over the last 60 s."""
        return self.minute.entries

    @property
    def in_window(self) -> float:
        return self.minute.total

    def refused(self, now: float, cost: float, retry_after: float | None) -> None:
        """A 429 while this lane is under its minute's limit: the endpoint also counts over
        a shorter span. A wait of a second or less names the second (429s of it that go on
        at more than MARGIN_TARGET of the sends give arrivals more room within it); a longer
        one, 10 s windows."""
        if not self.per_minute or self.in_window + cost > self.per_minute:
            return
        if retry_after is not None and retry_after > 1.0:
            self.per_ten_seconds = True
            return
        self.second_refusals.append(now)
        while self.second_refusals[0] <= now - MARGIN_EVIDENCE:
            self.second_refusals.popleft()
        if not self.per_second:
            self.per_second = True
            self.margin_since = now
        elif len(self.second_refusals) > MARGIN_TARGET * max(1, self._sends(now)):
            self._set_margin(now, min(MAX_SECOND_MARGIN, self.margin + MARGIN_STEP))

    def _sends(self, now: float) -> int:
        """Sends over the last MARGIN_EVIDENCE seconds (the minute's log: refused ones too)."""
        self.minute.prune(now)
        return len(self.minute.entries)

    def _set_margin(self, now: float, margin: float) -> None:
        self.margin, self.margin_since = margin, now
        self.second.span = 1.0 + margin

    def _relax(self, now: float) -> None:
        """MARGIN_DECAY_SECONDS since the margin last changed: give back half a step."""
        if self.margin > SECOND_MARGIN and now - self.margin_since >= MARGIN_DECAY_SECONDS:
            self._set_margin(now, max(SECOND_MARGIN, self.margin - MARGIN_STEP / 2))

    def wait(self, now: float, cost: float, share: float) -> float:
        """Seconds until `cost` may be sent at `share` of the limit (0: now)."""
        if not self.per_minute:
            return 0.0
        per_minute = self.per_minute
        paced = self.tat - now
        # Making up the wait for the first answer (a limit learned late) is kept within
        # any one second's share as well: every limiter admits that much at the start,
        # and one that counts per second refuses a burst of more before it can be known.
        # (And for one second more: the echo of what was made up would be one too many.)
        if self.credit > 0:
            self.spaced_until = now + self.second.span
        spaced = self.per_second or now < self.spaced_until
        if self.per_second:
            self._relax(now)
        if spaced:
            # Against a limiter that counts per second, making up skipped slots goes at
            # twice the pace, not in one burst: a burst reaches the server spread over the
            # time it takes to read it, and one second on (when the guard below lets the
            # next ones go by the client's clock) its echo would be one too many. Twice
            # the pace on a grid of its own, that a send may precede by CATCH_UP_TOLERANCE.
            paced = max(paced, self.fast_tat - now)
        guarded = max(self.hold_until - now, self.minute.wait(now, cost, per_minute * share))
        if self.per_ten_seconds:
            guarded = max(guarded, self.ten.wait(
                now, cost, max(1.0, math.floor(per_minute / 6 * share + 1e-9))))
        # Against a known per-second count the second's guard holds a send that comes
        # right after one of a second ago that went late: the grid stays where it was (a
        # late send shifts only its own echo a second on, not every send after it). The
        # other guards, and this one while making up a limit learned late, give up the
        # slots they held back (the first second is full: the rest would only bunch up).
        second = self.second.wait(now, cost, max(1.0, math.floor(per_minute / WINDOW))) \
            if spaced else 0.0
        if self.per_second:
            if guarded > 0 and guarded >= paced and guarded >= second:
                self.guarded = True
        elif max(guarded, second) > 0 and max(guarded, second) >= paced:
            self.guarded = True
        return max(paced, guarded, second, 0.0)

    def take(self, now: float, cost: float, share: float) -> list[float]:
        """Charge `cost` sent now; returns the entry, to settle it later."""
        entry = [now, cost]
        self.sent += cost
        if self.per_minute:
            rate = self.per_minute * share / WINDOW
            if self.tat == -math.inf or self.guarded:
                # The first send has no slots behind it to make up; nor has a send held
                # back by a guard (those slots are given up, or they would come in a burst).
                base = max(self.tat, now)
            else:
                base = max(self.tat, now - max(CATCH_UP, self.credit))
            self.tat = base + cost / rate
            if self.tat >= now:
                self.credit = 0.0
        self.guarded = False
        if self.per_minute:
            self.fast_tat = max(self.fast_tat, now - CATCH_UP_TOLERANCE) \
                + CATCH_UP_GAP * cost / (self.per_minute * share / WINDOW)
        for window in (self.second, self.ten, self.minute):
            window.add(entry)
        return entry

    def settle(self, entry: list[float], actual: float, share: float) -> None:
        """The answer says the request cost `actual`, not the estimate charged."""
        delta = actual - entry[1]
        for window in (self.second, self.ten, self.minute):
            window.adjust(entry, delta)
        entry[1] = actual
        self.sent += delta
        if self.per_minute:
            self.tat += delta / (self.per_minute * share / WINDOW)

    def went(self, entry: list[float], at: float) -> None:
        """The request charged `entry` was written to the connection `at` (after it was
        let go: the SDK's send path, a busy event loop, a new connection). A limiter counts
        it when it arrives, so every window counts it from then: against a per-second count
        the send a second after it waits for its real time, not for its slot's (which the
        server would see as one too many in that second). The slot grid stays where it was."""
        if at <= entry[0]:
            return
        windows = [w for w in (self.second, self.ten, self.minute) if w.remove(entry)]
        entry[0] = at
        for window in windows:
            window.insert(entry)

    def refund(self, entry: list[float], share: float) -> None:
        """A refused request (429) cost the endpoint nothing."""
        self.settle(entry, 0.0, share)

    def adopt(self, limit: float | None) -> None:
        """The endpoint names its limit: it holds unless the user set a lower one."""
        if not limit or (self.per_minute and self.given and self.per_minute <= limit):
            return
        if not self.per_minute and self.log:
            # Learned late: what was sent before counts as paced from its first send.
            # The wait for that first answer is made up in full, within the guards.
            rate = limit * DEFAULT_SHARE / WINDOW
            self.tat = max(self.tat, self.log[0][0] + self.in_window / rate)
            self.credit = math.inf
        self.per_minute = limit

    def follow(self, now: float, seen: LimitHeaders, sent_at: float, sent_before: float) -> None:
        """Adopt a limit the endpoint names (unless the user set one), and hold back when it
        has less left than this run sent after the answered request (after the refill since).

        Remaining means different things on different endpoints (a bucket's level, a sliding
        minute's unused part, a 10 s window's): read as a bucket refilled at the limit's
        rate, each of them may understate what is left but none overstates it by more than
        one answer's latency, and a hold lasts at most until the deficit would refill."""
        self.adopt(seen.limit)
        if seen.remaining is None or not self.per_minute:
            return
        refill = self.per_minute / WINDOW * max(0.0, now - sent_at)
        left = seen.remaining + refill - (self.sent - sent_before)
        if left < 0:
            self.hold_until = max(self.hold_until, now - left * WINDOW / self.per_minute)

    def pace(self, now: float) -> float:
        """Cost sent over the last 60 s."""
        self.minute.prune(now)
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
        self.strikes = 0  # episodes since the last answer to a request sent after a pause
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
            # Until a few answers have shown how latency varies, the first one's may be
            # the shortest: room for twice it, or the run starts below its pace.
            spread = self.latency_dev if self.answers >= 10 else max(self.latency_dev,
                                                                        self.latency / 2)
            latency = self.latency + 2 * spread
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

    def sent(self, ticket: Ticket, at: float | None = None) -> None:
        """The ticket's request was written to the connection at `at` (the limiter's clock;
        now when None): its windows count it from then (see `Lane.went`)."""
        at = self.clock() if at is None else at
        self.requests.went(ticket.requests_entry, at)
        self.tokens.went(ticket.tokens_entry, at)

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
        if ticket.sent_at >= self.paused_until:
            self.strikes = 0  # the endpoint took a request sent after the last pause
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
        """A 429: refund the request and pause the whole run once (a 429 of a request sent
        before that pause ended is the same episode). Returns the seconds paused from now.

        What a 429 means is learned, not read off one header. While the run is paced under
        a known limit, the first 429 of an episode says the endpoint also counts over a
        shorter span (bunched arrivals within one second, a full 10 s window): the run
        pauses for one slot, not for a `Retry-After` that may be a coarse whole second, and
        from then on keeps to that span's share too (`Lane.refused`). A 429 again from a
        request sent after that pause says a window is full: the run pauses for the
        `Retry-After` asked, until it turns (when that is a second or less, the pause
        doubles from one slot up to it instead). Beyond that the endpoint is short for longer (a
        lower limit than named, someone else on the key): the pause doubles, the pace drops
        2% for good and climbs back from half. Without a known limit every 429 is the last
        kind."""
        now = self.clock()
        share = self.share(now)
        self._release(ticket)
        self.rate_limited_count += 1
        self.requests.refund(ticket.requests_entry, share)
        self.tokens.refund(ticket.tokens_entry, share)
        if headers is not None:
            for lane in (self.requests, self.tokens):
                lane.adopt(LimitHeaders.read(headers, lane.name).limit)
        if ticket.sent_at < self.paused_until:
            return max(0.0, self.paused_until - now)  # a straggler of the episode paused for
        asked = retry_after if retry_after is not None else PAUSE_WITHOUT_RETRY_AFTER
        self.pauses += 1
        self.strikes += 1
        slot = self._slot(ticket)
        if slot is not None and self.strikes == 1:
            pause = min(asked, SHORT_PAUSE_SLOTS * slot)
            self.requests.refused(now, 1, retry_after)
            self.tokens.refused(now, ticket.tokens, retry_after)
        elif slot is not None and asked <= 1.0 and slot * 2 ** (self.strikes - 1) < asked:
            # Still the second's count (arrivals bunched by the way): back off from one slot.
            pause = slot * 2 ** (self.strikes - 1)
            self.requests.refused(now, 1, retry_after)
        elif slot is not None and self.strikes == 2:
            pause = min(MAX_PAUSE, asked)  # a full window (10 s, a minute): until it turns
        else:
            pause = min(MAX_PAUSE, asked * 2 ** max(0, self.strikes - 3))
            self.share_ceiling = max(0.8, self.share_ceiling * 0.98)
            self.window = max(1.0, self.window / 2)  # when no limit paces the run
            self.ramp_from = now + pause
        self.paused_until = max(self.paused_until, now + pause)
        for lane in (self.requests, self.tokens):
            lane.tat = max(lane.tat, self.paused_until)  # after the pause, no burst
        return self.paused_until - now

    def _slot(self, ticket: Ticket) -> float | None:
        """Seconds between two sends like `ticket`'s at the limit; None when none is known."""
        if self.requests.per_minute:
            return WINDOW / self.requests.per_minute
        if self.tokens.per_minute:
            return max(1.0, ticket.tokens) * WINDOW / self.tokens.per_minute
        return None

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
