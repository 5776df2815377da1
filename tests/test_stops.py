"""Runs stop when they cannot go on, and say why in one line: `mmtrans translate` against a
real server on 127.0.0.1 for each way a model server fails (mmtrans/faults.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app
from mmtrans.errors import (
    AuthError,
    ConnectError,
    ConnectionDroppedError,
    EndpointDownError,
    EndpointNotFoundError,
    EndpointSilentError,
    FatalModelError,
    ModelError,
    ModelNotFoundError,
    NoAnswerError,
    PermissionDeniedError,
    QuotaExhaustedError,
    ServerFaultError,
)
from mmtrans.faults import FaultServer, closed_port_url
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply, good_translation

runner = CliRunner()
pytestmark = pytest.mark.timeout(90)


def translate(path: Path, db: Path, base_url: str, *extra: str) -> tuple[object, float]:
    """`mmtrans translate` as a user types it; the result and its wall time."""
    started = time.monotonic()
    result = runner.invoke(app, ["translate", str(path), "--src", "ja", "--tgt", "en",
                                 "--labels", "scnm", "--db", str(db), "--base-url", base_url,
                                 *extra])
    return result, time.monotonic() - started


def said(result: object, word: str) -> list[str]:
    """The output's lines that start with `word:`."""
    return [line for line in result.output.splitlines()  # type: ignore[attr-defined]
            if line.startswith(f"{word}:")]


def cached_answers(db: Path) -> list[str]:
    with Store(db) as store:
        return [row["response"] for row in store._db["requests"].rows]


#: Each permanent refusal: the class it is, and words its one line holds.
REFUSALS = {
    "quota": (QuotaExhaustedError, "the account has no quota left (HTTP 429 insufficient_quota"),
    "unauthorized": (AuthError, "refused the API key (HTTP 401"),
    "forbidden": (PermissionDeniedError, "this key may not use model 'nope' (HTTP 403"),
    "openai-no-model": (ModelNotFoundError, "does not serve model 'nope' (HTTP 404"),
    "vllm-no-model": (ModelNotFoundError, "does not serve model 'nope' (HTTP 404"),
    "vllm-old-no-model": (ModelNotFoundError, "does not serve model 'nope' (HTTP 400"),
    "ollama-no-model": (ModelNotFoundError, "does not serve model 'nope' (HTTP 404"),
    "no-such-path": (EndpointNotFoundError, "/chat/completions does not exist (HTTP 404"),
}


@pytest.mark.parametrize("form", REFUSALS)
def test_a_permanent_refusal_stops_the_run_at_its_first_request_with_one_line(
        tmp_path, sample, form):
    db = tmp_path / "run.db"
    with FaultServer(form) as server:
        result, seconds = translate(sample(20), db, server.base_url, "--model", "nope")
    assert result.exit_code == 2, result.output
    lines = said(result, "stopped")
    assert len(lines) == 1 and REFUSALS[form][1] in lines[0], result.output
    assert "Traceback" not in result.output
    assert server.requests == 1  # not one request per record, not a retry
    assert seconds < 20
    with Store(db) as store:
        assert store._db["translations"].count == 0  # every record waits for the next run
        assert store.status()["pending"] == 20


@pytest.mark.parametrize("form", REFUSALS)
def test_each_refusal_is_its_own_class_and_a_fatal_one(tmp_path, sample, form):
    with FaultServer(form) as server, pytest.raises(REFUSALS[form][0]) as raised:
        mmtrans.translate(sample(3), tmp_path / "run.db", mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=server.base_url, model="nope"))
    assert isinstance(raised.value, FatalModelError)


def test_a_rate_limit_429_with_retry_after_is_waited_for_not_fatal(tmp_path, sample):
    db = tmp_path / "run.db"
    with FaultServer("rate-limit", good_after=2, retry_after="1") as server:
        result, seconds = translate(sample(3), db, server.base_url, "--model", "fake")
    assert result.exit_code == 0, result.output
    assert server.requests == 5  # two refusals, then three answers
    assert 1.0 <= seconds < 20  # it waited as asked
    assert len(cached_answers(db)) == 3


def test_a_server_that_accepts_and_never_answers_stops_the_run_within_seconds(
        tmp_path, sample):
    db = tmp_path / "run.db"
    with FaultServer("hang") as server:
        result, seconds = translate(sample(20), db, server.base_url, "--model", "fake",
                                    "--timeout", "0.5")
    assert result.exit_code == 2, result.output
    lines = said(result, "stopped")
    assert len(lines) == 1 and "accepts connections but does not answer: 3 requests in a " \
                               "row got no answer within 0.5 s" in lines[0], result.output
    assert server.requests == 3  # not 20 records x 6 attempts
    assert seconds < 20, seconds
    with Store(db) as store:
        assert store.status()["pending"] == 20


def test_timeouts_between_answers_do_not_stop_the_run(tmp_path, sample):
    """Only timeouts in a row count: a server that answers between them is alive."""
    seen: set[str] = set()

    def late_once(payload, request):  # each record's first attempt comes too late
        if payload["text"] not in seen:
            seen.add(payload["text"])
            return Reply("late", delay=1.5)
        return Reply(json.dumps(good_translation(payload), ensure_ascii=False))

    with FakeLLM(late_once) as server:
        result, _ = translate(sample(4), tmp_path / "run.db", server.base_url,
                              "--model", "fake", "--timeout", "0.5", "--concurrency", "1")
        assert len(server.requests) == 8  # four timeouts in all, never three in a row
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("form", ["drop", "close"])
def test_a_connection_closed_before_the_answer_says_so_and_stops_the_run(
        tmp_path, sample, form):
    db = tmp_path / "run.db"
    with FaultServer(form) as server:
        result, seconds = translate(sample(20), db, server.base_url, "--model", "fake")
    assert result.exit_code == 2, result.output
    lines = said(result, "stopped")
    assert len(lines) == 1, result.output
    assert "the server closed the connection before answering 3 requests in a row" in lines[0]
    assert "failed to connect" not in result.output
    assert server.requests == 3  # not three records' every attempt
    assert seconds < 20
    with Store(db) as store:
        assert store.status()["pending"] == 20


def test_a_dead_server_says_it_cannot_connect_and_exits_2(tmp_path, sample):
    result, seconds = translate(sample(20), tmp_path / "run.db", closed_port_url(),
                                "--model", "fake", "--max-attempts", "2")
    assert result.exit_code == 2, result.output
    lines = said(result, "stopped")
    assert len(lines) == 1 and "3 records in a row failed to connect" in lines[0]
    assert seconds < 20


def test_a_missing_input_is_said_before_the_server_is_asked(tmp_path):
    """Without --model the run asks the server for its models, and the in-process embedder
    loads: a mistyped input path is said first, alone, whatever the server is doing."""
    result, _ = translate(tmp_path / "typo.jsonl", tmp_path / "run.db", closed_port_url())
    assert result.exit_code == 2, result.output
    assert "typo.jsonl: no such file" in result.output
    assert "connect" not in result.output and "onnxruntime" not in result.output
    assert not (tmp_path / "run.db").exists()


@pytest.mark.parametrize("form", ["empty", "null", "html", "server-error"])
def test_an_answer_that_is_no_answer_fails_the_record_and_is_never_cached(
        tmp_path, sample, form):
    db = tmp_path / "run.db"
    with FaultServer(form) as server:
        result, seconds = translate(sample(2), db, server.base_url, "--model", "fake",
                                    "--max-attempts", "2")
    assert result.exit_code == 1, result.output
    assert "2 record(s) failed" in result.output
    assert server.requests == 4  # two records, two attempts each, nothing cached
    assert cached_answers(db) == []
    assert seconds < 20


@pytest.mark.parametrize(("form", "error", "words"), [
    ("drop", ConnectionDroppedError, "the server closed the connection before answering"),
    ("close", ConnectionDroppedError, "the server closed the connection before answering"),
    ("hang", NoAnswerError, "no answer within 0.3 s after 2 attempt(s)"),
    ("empty", ServerFaultError, "not JSON"),
    ("server-error", ServerFaultError, "HTTP 500 after 2 attempt(s)"),
])
def test_the_client_names_each_failure_by_its_class(form, error, words):
    import asyncio

    from mmtrans.llm import OpenAIBackend, Params

    with FaultServer(form) as server:
        backend = OpenAIBackend("fake", server.base_url, timeout=0.3, max_attempts=2,
                                backoff=0.01)
        with pytest.raises(error) as raised:
            asyncio.run(backend.complete([{"role": "user", "content": "hi"}], Params()))
    assert words in str(raised.value)
    assert not isinstance(raised.value, FatalModelError)


def test_a_dead_server_is_a_connect_error():
    import asyncio

    from mmtrans.llm import OpenAIBackend, Params

    backend = OpenAIBackend("fake", closed_port_url(), max_attempts=2, backoff=0.01)
    with pytest.raises(ConnectError, match="cannot connect after 2 attempt"):
        asyncio.run(backend.complete([{"role": "user", "content": "hi"}], Params()))


def test_every_error_the_cli_maps_is_a_model_error_or_stop_class():
    assert issubclass(EndpointDownError, FatalModelError)
    assert issubclass(EndpointSilentError, FatalModelError)
    assert issubclass(ConnectError, ModelError) and not issubclass(ConnectError, FatalModelError)


# -- the model name is the one the server names --------------------------------------------


def test_without_model_the_run_uses_and_records_the_one_model_the_server_lists(
        tmp_path, sample, llm):
    db = tmp_path / "run.db"
    result, _ = translate(sample(2), db, llm.base_url)
    assert result.exit_code == 0, result.output
    assert "using scripted-model, the one model" in result.output
    assert {r["model"] for r in llm.requests} == {"scripted-model"}
    with Store(db) as store:
        assert store.run(store.latest_run())["model"] == "scripted-model"


@pytest.mark.parametrize(("models", "words"), [
    (["llama3", "qwen2.5"], "serves 2 models (llama3, qwen2.5): pass --model"),
    ([], "lists no model (GET /models): pass --model"),
    (None, "does not list its models (GET /models: HTTP 404): pass --model"),
])
def test_without_model_a_server_naming_no_single_model_is_refused_in_one_line(
        tmp_path, sample, llm, models, words):
    llm.models = models
    db = tmp_path / "run.db"
    result, _ = translate(sample(2), db, llm.base_url)
    assert result.exit_code == 2, result.output
    lines = said(result, "error")
    assert len(lines) == 1 and words in lines[0], result.output
    assert llm.requests == []
    assert not db.exists()  # refused before the store is made


def test_without_model_or_base_url_openai_s_default_is_used_and_said(monkeypatch):
    from mmtrans.pipeline import make_backend

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    notes: list[str] = []
    backend = make_backend(mmtrans.Settings(src="ja", tgt="en", api_key="sk-test"),
                           notes.append)
    assert backend.model == "gpt-4o-mini"
    assert notes == ["no --model given: using gpt-4o-mini, OpenAI's default here"]


def test_a_model_given_is_used_as_given(tmp_path, sample, llm):
    llm.models = ["a", "b"]  # would be refused if it were asked
    result, _ = translate(sample(1), tmp_path / "run.db", llm.base_url, "--model", "mine")
    assert result.exit_code == 0, result.output
    assert {r["model"] for r in llm.requests} == {"mine"}


# -- a local model's empty answer ----------------------------------------------------------


class FakeLlama:
    """Stands in for llama_cpp.Llama: answers each chat with the next of `answers` (the last
    one for ever), a good translation where an answer is "good"."""

    def __init__(self, *answers: str | None):
        self.answers = list(answers)
        self.calls = 0

    def create_chat_completion(self, messages, **kwargs):
        from mmtrans.testing import good_translation, record_payload

        self.calls += 1
        content = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if content == "good":
            content = json.dumps(good_translation(record_payload({"messages": messages})),
                                 ensure_ascii=False)
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5}}


def local_backend(tmp_path: Path, llama: FakeLlama):
    from mmtrans.llm import LocalBackend

    weights = tmp_path / "model.gguf"
    if not weights.exists():
        weights.write_bytes(b"GGUF not really weights")
    backend = LocalBackend(weights)
    backend._llama = llama  # the real one takes a minute to load: test_real_llm.py runs it
    return backend


@pytest.mark.parametrize("empty", ["", "  \n", None], ids=["empty", "blank", "null"])
def test_a_local_model_s_empty_answer_is_retried_never_cached_and_asked_again(
        tmp_path, sample, empty):
    db = tmp_path / "run.db"
    path = sample(2)
    settings = mmtrans.Settings(src="ja", tgt="en", labels=["scnm"], local=True)
    silent = FakeLlama(empty)
    result = mmtrans.translate(path, db, settings, backend=local_backend(tmp_path, silent))
    assert (result["failed"], result["accepted"]) == (2, 0)
    assert silent.calls == 2 * 3  # three generations per record, then the record fails
    assert cached_answers(db) == []
    with Store(db) as store:
        problems = [t.problems[0]["message"] for t in store.latest_translations(
            store.latest_run()).values()]
    assert all("the local model's answer is" in m and "after 3 attempt(s)" in m
               for m in problems), problems
    # The same weights again (the same run, the same cache keys): both records are asked
    # anew, because no empty answer was kept.
    healthy = FakeLlama("good")
    again = mmtrans.translate(path, db, settings, backend=local_backend(tmp_path, healthy))
    assert (again["accepted"], again["failed"]) == (2, 0)
    assert healthy.calls == 2


def test_a_local_model_s_empty_answer_then_a_good_one_is_one_record_accepted(tmp_path, sample):
    db = tmp_path / "run.db"
    llama = FakeLlama("", "good")
    result = mmtrans.translate(sample(1), db, mmtrans.Settings(
        src="ja", tgt="en", labels=["scnm"], local=True), backend=local_backend(tmp_path, llama))
    assert result["accepted"] == 1 and llama.calls == 2
    with Store(db) as store:
        assert [row["attempts"] for row in store._db["requests"].rows] == [2]


@pytest.mark.parametrize(("form", "words"), [
    ("dead", "which model it serves (GET /models: cannot connect)"),
    ("hang", "which model it serves (GET /models: no answer within 0.5 s)"),
])
def test_without_model_a_server_that_cannot_be_asked_stops_before_anything_is_written(
        tmp_path, sample, form, words):
    db = tmp_path / "run.db"
    if form == "dead":
        result, seconds = translate(sample(2), db, closed_port_url(), "--timeout", "0.5")
    else:
        with FaultServer(form) as server:
            result, seconds = translate(sample(2), db, server.base_url, "--timeout", "0.5")
    assert result.exit_code == 2, result.output
    lines = said(result, "stopped")
    assert len(lines) == 1 and words in lines[0] and "pass --model" in lines[0], result.output
    assert not db.exists() and seconds < 20
