"""The rate limiter against the test server that enforces limits the way OpenAI does: its
headers name the limits, its 429s pause the run once, and a run paced by it is not refused."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from mmtrans.llm import OpenAIBackend, Params
from mmtrans.ratelimit import LimitHeaders, RateLimiter, parse_duration
from mmtrans.testing import FakeLLM, RateLimited, record_payload

BODY = {"model": "m", "messages": [
    {"role": "system", "content": "s"}, {"role": "user", "content": "{}"},
    {"role": "assistant", "content": "{}"},
    {"role": "user", "content": '{"text": "東京の会社", "entities": []}'}]}
PAYLOAD = record_payload(BODY)


def test_reset_durations_read_as_openai_writes_them():
    assert parse_duration("12ms") == pytest.approx(0.012)
    assert parse_duration("1s") == 1 and parse_duration("59.8s") == pytest.approx(59.8)
    assert parse_duration("6m0s") == 360 and parse_duration("1h2m3s") == 3723
    assert parse_duration("2") == 2 and parse_duration("soon") is None
    assert parse_duration(None) is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_server_limits_over_every_second_and_over_the_minute():
    """The real client (OpenAIBackend and its RateLimiter, over HTTP) against the limiting
    server, on one clock that the client's waits move on: eleven clients of one key at one
    instant meet the second's share of ten, and a client arriving when the minute's 600 are
    spent is held until the first of them age out."""
    clock = Clock()

    async def sleep(seconds: float) -> None:
        clock.now += seconds + 1e-6  # a real clock has always moved on a little
        await asyncio.sleep(0)

    server = RateLimited(rpm=600, latency=(0, 0), clock=clock)

    async def ask(clients: list[OpenAIBackend]) -> None:
        try:
            await asyncio.gather(*(c.complete(BODY["messages"], Params()) for c in clients))
        finally:
            for client in clients:
                await client.close()

    with FakeLLM(server) as llm:
        def client() -> OpenAIBackend:
            return OpenAIBackend(model="m", base_url=llm.base_url, api_key="x",
                                 limiter=RateLimiter(clock=clock, sleep=sleep))

        asyncio.run(ask([client() for _ in range(11)]))
        arrivals = [t for t, _ in server.answered]
        assert server.refused == 1 and arrivals[:10] == [1000.0] * 10
        assert arrivals[10] == pytest.approx(1000.1, abs=0.01)  # after its retry-after-ms
        # the rest of the minute's 600, one a tenth of a second (the second's share) ...
        for k in range(1, 590):
            clock.now = arrivals[10] + k * 0.1 + 1e-6
            assert server(PAYLOAD, BODY).status == 200, k
        clock.now += 0.1
        asyncio.run(ask([client()]))  # ... so another client's request waits for 1060
    assert server.refused >= 2 and len(server.answered) == 601
    assert 1060 <= server.answered[-1][0] < 1061


async def drive(limiter: RateLimiter, url: str, n: int, workers: int) -> list[int]:
    """`n` requests by `workers` workers through the limiter; a 429 goes again, uncounted.
    Returns each request's number of sends."""
    sends = [0] * n
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            while True:
                ticket = await limiter.acquire(50)
                sends[i] += 1
                started = time.monotonic()
                response = await client.post(url + "/chat/completions", json=BODY)
                if response.status_code == 429:
                    ms = response.headers.get("retry-after-ms")
                    limiter.rate_limited(ticket, float(ms) / 1000 if ms else None,
                                         response.headers)
                    continue
                usage = response.json()["usage"]
                limiter.answered(ticket, response.headers, usage["prompt_tokens"],
                                 usage["completion_tokens"], time.monotonic() - started, 50)
                break

    async with httpx.AsyncClient(timeout=10) as client:
        await asyncio.gather(*(worker(client) for _ in range(workers)))
    return sends


def test_limits_learned_from_the_first_answer_pace_the_run_without_a_429():
    server = RateLimited(rpm=300, tpm=100_000, latency=(0.05, 0.2))
    limiter = RateLimiter(max_concurrency=32)
    with FakeLLM(server) as llm:
        started = time.monotonic()
        sends = asyncio.run(drive(limiter, llm.base_url, 25, workers=16))
        seconds = time.monotonic() - started
    assert (limiter.requests.per_minute, limiter.tokens.per_minute) == (300, 100_000)
    assert server.refused == 0 and sends == [1] * 25
    assert seconds >= 24 * 60 / 300 * 0.95  # 5 a second, not 16 at once
    assert limiter.concurrency() < 16  # Little's law: 5/s at under 0.4 s needs few in flight
    # The endpoint counts 31 prompt tokens where the driver counted 50: estimates follow it.
    assert limiter.output_tokens > 0 and limiter.prompt_scale == pytest.approx(31 / 50)


def test_a_limit_given_holds_unless_the_server_names_a_lower_one():
    server = RateLimited(rpm=600, latency=(0.0, 0.01))
    limiter = RateLimiter(rpm=120)
    with FakeLLM(server) as llm:
        started = time.monotonic()
        asyncio.run(drive(limiter, llm.base_url, 5, workers=4))
    assert limiter.requests.per_minute == 120
    assert time.monotonic() - started >= 4 * 0.5 * 0.95


def test_a_429_storm_pauses_the_whole_run_once_and_nothing_is_lost():
    """Someone else spent the minute's share: every worker meets a 429, the run pauses
    once for the Retry-After asked, and every request ends answered."""
    clock_started = time.monotonic()
    server = RateLimited(rpm=120, latency=(0.0, 0.02))
    for _ in range(2):  # the pro rata share of this second is gone
        assert server(PAYLOAD, BODY).status == 200
    limiter = RateLimiter(rpm=6000, max_concurrency=8)  # told wrong: far above the real limit
    with FakeLLM(server) as llm:
        sends = asyncio.run(drive(limiter, llm.base_url, 6, workers=6))
    assert limiter.pauses >= 1 and limiter.rate_limited_count == server.refused
    assert limiter.requests.per_minute == 120  # the server named a lower limit than told
    assert server.refused <= 6, server.refused  # one storm, not six workers retrying blindly
    assert all(s >= 1 for s in sends) and len(server.answered) == 2 + 6
    assert time.monotonic() - clock_started >= 0.9


def test_remaining_below_what_was_sent_since_holds_the_run_back():
    limiter = RateLimiter(rpm=600)
    lane = limiter.requests
    now = 50.0
    for _ in range(5):
        lane.take(now, 1, 0.99)
    # The answer to the first of the five says only 1 request is left (someone else uses the
    # key): the four sent since leave the endpoint 3 short.
    lane.follow(now, LimitHeaders(600, 1, 0.5), now, lane.sent - 4)
    assert lane.hold_until == pytest.approx(now + 3 * 0.1)


def test_a_run_against_limits_it_is_not_told_ends_with_no_failed_record(tmp_path, sample):
    import mmtrans
    from mmtrans.testing import translating

    server = RateLimited(translating("en"), rpm=600, tpm=120_000, latency=(0.05, 0.2))
    with FakeLLM(server) as llm:
        result = mmtrans.translate(sample(20), tmp_path / "run.db", mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, model="m",
            concurrency=16, max_attempts=2))
    assert (result["accepted"], result["failed"]) == (20, 0)
    assert server.refused <= 1, server.refused  # paced, not refused and retried
    assert len(server.answered) == 20


def test_what_was_sent_before_the_limit_was_known_is_paced_too():
    """The first answer names a token limit smaller than the first request: the second
    request waits for the first's tokens to be paid off instead of going at once."""
    limiter = RateLimiter()
    lane = limiter.tokens
    lane.take(10.0, 600, 0.99)  # the first request, sent before any limit was known
    lane.follow(10.2, LimitHeaders(30_000, 29_400, 1.2), 10.0, lane.sent)
    assert lane.wait(10.2, 500, 0.99) == pytest.approx(10.0 + 600 / (500 * 0.99) - 10.2)


def test_the_progress_line_shows_pace_against_the_limit_and_why_it_waits():
    clock = Clock()
    waits: list[str] = []

    async def sleep(seconds: float) -> None:
        waits.append(f"{limiter.describe()}")
        clock.now += seconds

    limiter = RateLimiter(rpm=600, tpm=200_000, clock=clock, sleep=sleep)

    async def three_then_a_429() -> None:
        for _ in range(3):
            limiter.answered(await limiter.acquire(1000), None, 900, 100, 0.2, 1000)
        limiter.rate_limited(await limiter.acquire(1000), 2.0)
        limiter.answered(await limiter.acquire(1000), None, 900, 100, 0.2, 1000)

    asyncio.run(three_then_a_429())
    assert waits[0].startswith("1/600 rpm 1,000/200,000 tpm waiting 0.1s: pacing to the")
    assert "waiting 2.0s: paused after a 429 (Retry-After) 1x429" in waits[-1]
    assert limiter.describe() == "4/600 rpm 4,000/200,000 tpm 1x429"
