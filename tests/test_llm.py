"""The OpenAI-compatible client over real HTTP: retries, Retry-After, timeouts, config errors."""

from __future__ import annotations

import asyncio
import time

import pytest

from mmtrans.errors import ConfigError, FatalModelError, ModelError
from mmtrans.llm import OpenAIBackend, Params
from mmtrans.testing import FakeLLM, Reply

MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "{}"},
            {"role": "assistant", "content": "{}"},
            {"role": "user", "content": 'x {"text": "日本"}'}]


def scripted(*replies: Reply) -> FakeLLM:
    queue = list(replies)
    return FakeLLM(lambda payload, request: queue.pop(0) if len(queue) > 1 else queue[0])


def complete(backend: OpenAIBackend):
    return asyncio.run(backend.complete(MESSAGES, Params(temperature=0, seed=1)))


def test_no_key_and_no_base_url_is_a_config_error():
    with pytest.raises(ConfigError, match="OPENAI_API_KEY.*--base-url"):
        OpenAIBackend("gpt-4o-mini")


def test_429_waits_as_long_as_retry_after_asks_and_is_not_an_attempt():
    with scripted(Reply(status=429, headers={"Retry-After": "1"}), Reply("ok")) as llm:
        started = time.monotonic()
        completion = complete(OpenAIBackend("m", llm.base_url, backoff=0.01))
        waited = time.monotonic() - started
    assert completion.text == "ok" and completion.attempts == 1
    assert 1.0 <= waited < 5, waited
    assert completion.tokens_in == 100 and completion.tokens_out == 20


def test_429s_never_use_up_a_requests_attempts():
    refusals = [Reply(status=429, headers={"retry-after-ms": "20"})] * 4
    with scripted(*refusals, Reply("ok")) as llm:
        backend = OpenAIBackend("m", llm.base_url, backoff=0.01, max_attempts=2)
        completion = complete(backend)
    assert completion.text == "ok" and completion.attempts == 1
    assert backend.limiter.rate_limited_count == 4 and len(llm.requests) == 5


def test_500s_are_retried_with_backoff_then_give_up():
    with scripted(Reply(status=500), Reply(status=503), Reply("fine")) as llm:
        assert complete(OpenAIBackend("m", llm.base_url, backoff=0.01)).attempts == 3
    with scripted(Reply(status=500)) as llm:
        with pytest.raises(ModelError, match="HTTP 500 after 3 attempt"):
            complete(OpenAIBackend("m", llm.base_url, backoff=0.01, max_attempts=3))
        assert len(llm.requests) == 3


def test_a_slow_answer_times_out_and_is_retried():
    with scripted(Reply("late", delay=1.5), Reply("on time")) as llm:
        backend = OpenAIBackend("m", llm.base_url, timeout=0.5, backoff=0.01)
        assert complete(backend).text == "on time"


def test_bad_request_is_not_retried_and_bad_key_stops_everything():
    with scripted(Reply(status=400)) as llm:
        with pytest.raises(ModelError):
            complete(OpenAIBackend("m", llm.base_url, backoff=0.01))
        assert len(llm.requests) == 1
    with scripted(Reply(status=401)) as llm, pytest.raises(FatalModelError):
        complete(OpenAIBackend("m", llm.base_url, backoff=0.01))


def test_parameters_reach_the_server():
    with FakeLLM(lambda p, r: Reply("{}")) as llm:
        asyncio.run(OpenAIBackend("my-model", llm.base_url).complete(
            MESSAGES, Params(temperature=0.3, seed=7, max_tokens=99)))
    request = llm.requests[0]
    assert (request["model"], request["temperature"], request["seed"], request["max_tokens"]) \
        == ("my-model", 0.3, 7, 99)


def test_a_request_answered_at_once_builds_no_retry_loop_and_a_retried_one_waits_as_before(
        monkeypatch):
    """tenacity is entered only once an attempt failed, with that failure as its first
    outcome: the same attempts, waits and notes as a loop entered before the first."""
    from mmtrans import llm as llm_module

    built: list[object] = []
    real = llm_module.AsyncRetrying

    def counted(*args, **kwargs):
        built.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(llm_module, "AsyncRetrying", counted)
    with scripted(Reply("ok")) as llm:
        assert complete(OpenAIBackend("m", llm.base_url)).attempts == 1
    assert built == []
    notes: list[str] = []
    with scripted(Reply(status=503), Reply(status=500), Reply("fine")) as llm:
        backend = OpenAIBackend("m", llm.base_url, backoff=0.01, on_retry=notes.append)
        assert complete(backend).attempts == 3 and len(llm.requests) == 3
    assert len(built) == 1
    assert [n.split(" (")[1].split(")")[0] for n in notes] == ["attempt 2 of 6", "attempt 3 of 6"]
    with scripted(Reply(status=500)) as llm:
        with pytest.raises(ModelError, match="HTTP 500 after 2 attempt"):
            complete(OpenAIBackend("m", llm.base_url, backoff=0.01, max_attempts=2))
        assert len(llm.requests) == 2
