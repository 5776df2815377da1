"""A server that misbehaves: faults are retried and never cached, a hanging or dead server
costs bounded time and says so, and the exit status tells whether every record made it."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app
from mmtrans.errors import EndpointDownError, EndpointSilentError
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply, good_translation

runner = CliRunner()

FAULTS = {
    "empty choices": Reply(body={"id": "x", "object": "chat.completion", "created": 0,
                                 "model": "fake", "choices": []}),
    "null content": Reply(None),
    "empty content": Reply(""),
    "html page": Reply(raw=b"<html><body>502 Bad Gateway</body></html>",
                       content_type="text/html"),
    "not json": Reply(raw=b'{"id": "x", "choices": [', content_type="application/json"),
    "null body": Reply(raw=b"null"),
}


def faulty_then_good(fault: Reply, times: int):
    """Answer each record `times` times with `fault`, then with a good translation."""
    seen: dict[str, int] = {}

    def script(payload, request):
        n = seen[payload["text"]] = seen.get(payload["text"], 0) + 1
        if n <= times:
            return fault
        return Reply(json.dumps(good_translation(payload), ensure_ascii=False))
    return script


def settings(llm: FakeLLM, **kw) -> mmtrans.Settings:
    return mmtrans.Settings(src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url,
                            model="fake", **kw)


def cached_answers(db: Path) -> list[str]:
    with Store(db) as store:
        return [row["response"] for row in store._db["requests"].rows]


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_a_fault_is_retried_like_a_5xx_and_never_cached(tmp_path, sample, fault):
    db = tmp_path / "run.db"
    with FakeLLM(faulty_then_good(FAULTS[fault], 1)) as llm:
        result = mmtrans.translate(sample(3), db, settings(llm, max_attempts=3))
    assert (result["accepted"], result["failed"]) == (3, 0)
    answers = cached_answers(db)
    assert len(answers) == 3
    assert all(json.loads(a)["text"].startswith("This is a report") for a in answers)


@pytest.mark.parametrize("fault", ["null content", "html page", "empty choices"])
def test_a_record_whose_every_attempt_is_a_fault_fails_and_the_next_run_retries_it(
        tmp_path, sample, fault):
    db = tmp_path / "run.db"
    path = sample(2)
    healthy = False

    def script(payload, request):  # one server, one URL: the rerun is the same run
        if healthy:
            return Reply(json.dumps(good_translation(payload), ensure_ascii=False))
        return FAULTS[fault]

    with FakeLLM(script) as llm:
        args = ["translate", str(path), "--src", "ja", "--tgt", "en", "--labels", "scnm",
                "--db", str(db), "--base-url", llm.base_url, "--model", "fake",
                "--max-attempts", "2"]
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert "2 record(s) failed" in result.output
        assert cached_answers(db) == []
        faulted = len(llm.requests)
        assert faulted == 4  # two records, two attempts each
        healthy = True
        again = runner.invoke(app, args)
        assert again.exit_code == 0, again.output
        # both records are asked again (no fault was kept as their answer) and accepted
        assert len(llm.requests) - faulted == 2
    with Store(db) as store:
        runs = store.runs()
    assert len(runs) == 1, runs  # resumed, not a new run under another cache key


@pytest.mark.parametrize("fault", ["html page", "not json", "null content"])
def test_labels_suggest_says_so_when_the_answer_is_no_answer(tmp_path, sample, fault):
    table = tmp_path / "tiny.tsv"
    table.write_text("人名\tPerson\n", encoding="utf-8")  # every other label is missing
    with FakeLLM(lambda payload, request: FAULTS[fault]) as bad:
        result = runner.invoke(app, [
            "labels", "suggest", str(sample(2)), "--src", "ja", "--tgt", "en",
            "--labels", str(table), "--out", str(tmp_path / "s.tsv"),
            "--base-url", bad.base_url, "--max-attempts", "2"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and "Traceback" not in result.output
    assert not (tmp_path / "s.tsv").exists()


def test_the_cache_key_includes_the_endpoint(tmp_path, sample):
    db = tmp_path / "run.db"
    path = sample(2)
    with FakeLLM() as first:
        mmtrans.translate(path, db, settings(first))
    with FakeLLM() as second:  # another server under the same model name
        mmtrans.translate(path, db, settings(second))
        assert len(second.requests) == 2


def test_a_local_model_is_known_by_its_weights_not_its_path(tmp_path):
    from mmtrans.llm import LocalBackend

    a = tmp_path / "a.gguf"
    a.write_bytes(b"GGUF weights one")
    b = tmp_path / "b" / "a.gguf"
    b.parent.mkdir()
    b.write_bytes(b"GGUF weights one")
    c = tmp_path / "c.gguf"
    c.write_bytes(b"GGUF weights two")
    assert LocalBackend(a).endpoint == LocalBackend(b).endpoint != LocalBackend(c).endpoint


def test_a_hanging_server_costs_one_timeout_per_attempt_and_three_in_a_row_stop_the_run(
        tmp_path, sample):
    db = tmp_path / "run.db"
    with FakeLLM(lambda payload, request: Reply("late", delay=3)) as slow:
        started = time.monotonic()
        with pytest.raises(EndpointSilentError, match="accepts connections but does not "
                                                      "answer: 3 requests in a row"):
            mmtrans.translate(sample(2), db, settings(slow, timeout=0.3, max_attempts=2,
                                                      concurrency=1))
        elapsed = time.monotonic() - started
        assert len(slow.requests) == 3  # record 1's two attempts, record 2's first
    assert elapsed < 3, elapsed  # three timeouts of 0.3 s and a short backoff, not 3 x 3 s
    with Store(db) as store:
        problems = [t.problems[0]["message"] for t in store.latest_translations(
            store.latest_run()).values()]
        assert store.status()["pending"] == 1  # the record in flight: no row, asked again
    assert len(problems) == 1 and "no answer within 0.3 s after 2 attempt(s)" in problems[0]


def test_the_progress_line_says_why_it_waits():
    p = mmtrans.pipeline.Progress(total=3)
    p.in_flight["k"] = 100.0
    assert p.waiting(60, now=112.0) == "waiting 12 s for the server (1 request(s), timeout 60 s)"
    p.in_flight.clear()
    p.note = "retrying in 4 s (attempt 2 of 6): HTTP 503"
    assert p.waiting(60, now=112.0) == p.note


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_a_dead_server_stops_the_run_at_once_and_leaves_records_pending(tmp_path, sample):
    db = tmp_path / "run.db"
    path = sample(12)
    url = closed_port_url()
    started = time.monotonic()
    with pytest.raises(EndpointDownError, match="3 records in a row failed to connect"):
        mmtrans.translate(path, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=url, model="fake", concurrency=2))
    assert time.monotonic() - started < 15
    with Store(db) as store:
        assert store._db["translations"].count == 0
        assert store.status()["pending"] == 12
    result = runner.invoke(app, ["translate", str(path), "--src", "ja", "--tgt", "en",
                                 "--db", str(db), "--base-url", url, "--model", "fake"])
    assert result.exit_code == 2
    assert "stopped:" in result.output and "stay pending" in result.output
    assert "Traceback" not in result.output


def test_exit_status_is_1_with_the_count_when_records_fail(tmp_path, sample):
    db = tmp_path / "run.db"
    with FakeLLM(lambda payload, request: Reply(status=500)) as llm:
        result = runner.invoke(app, [
            "translate", str(sample(3)), "--src", "ja", "--tgt", "en", "--db", str(db),
            "--base-url", llm.base_url, "--max-attempts", "1"])
    assert result.exit_code == 1, result.output
    assert "3 record(s) failed" in result.output


def test_identical_requests_in_flight_share_one_answer(tmp_path, sample, stockmark_items):
    path = tmp_path / "dup.json"
    path.write_text(json.dumps([stockmark_items[0]] * 5 + [stockmark_items[1]],
                               ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "run.db"
    with FakeLLM(lambda payload, request: Reply(
            json.dumps(good_translation(payload)), delay=0.2)) as llm:
        result = mmtrans.translate(path, db, settings(llm, concurrency=6))
        assert len(llm.requests) == 2
    assert result["accepted"] == 6
    out = tmp_path / "out.json"
    assert mmtrans.export(db, out).written == 6
