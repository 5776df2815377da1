"""OpenAI's Batch API against a fake written from OpenAI's documentation (tests/fakes): what
is submitted is paid once, whatever is lost on the way, and everything a batch gives back
(answers, failures, its errors) is read."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils
from tenacity import wait_none
from typer.testing import CliRunner

import mmtrans
from mmtrans import batch as batch_files
from mmtrans import openai_batch
from mmtrans.cli import app
from mmtrans.endpoint import normalise_endpoint
from mmtrans.store import Store, migrations
from tests.fakes.openai_batches import FakeOpenAIBatches
from tests.fakes.vllm_batch import run_batch

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()
MODEL = "gpt-4o-mini"
RUN = ["--src", "ja", "--tgt", "en", "--labels", "scnm", "--model", MODEL]


def submit(path: Path, db: Path, base_url: str):
    return runner.invoke(app, ["batch", "submit", str(path), "--db", str(db), *RUN,
                               "--base-url", base_url, "--api-key", "test"])


def collect(db: Path, base_url: str):
    return runner.invoke(app, ["batch", "collect", "--db", str(db), "--base-url", base_url,
                               "--api-key", "test"])


def status(db: Path, base_url: str):
    return runner.invoke(app, ["batch", "status", "--db", str(db), "--base-url", base_url,
                               "--api-key", "test"])


def translate(path: Path, db: Path, base_url: str, notices: list[str] | None = None) -> dict:
    return mmtrans.translate(path, db, mmtrans.Settings(
        src="ja", tgt="en", labels=["scnm"], model=MODEL, base_url=base_url, api_key="test"),
        on_notice=(notices.append if notices is not None else None))


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setattr(openai_batch, "WAIT", wait_none())  # retries at once
    with FakeOpenAIBatches() as server:
        yield server


def test_a_create_whose_answer_is_lost_makes_one_batch_not_two(tmp_path, sample, api):
    path, db = sample(40), tmp_path / "b.db"
    api.drop_create_answers = 1
    result = submit(path, db, api.base_url)
    assert result.exit_code == 0, result.output
    assert "40 request(s) submitted in 1 batch(es)" in result.output
    assert api.create_calls == 1 and len(api.created) == 1
    assert api.requests_paid() == 40
    assert "40 answer(s) imported" in collect(db, api.base_url).output


def test_submit_killed_during_create_is_followed_by_one_that_finds_its_batch(
        tmp_path, sample, api):
    path, db = sample(40), tmp_path / "b.db"
    api.hold_creates = True
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmtrans", "batch", "submit", str(path), "--db", str(db), *RUN,
         "--base-url", api.base_url, "--api-key", "test"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    try:
        assert api.create_arrived.wait(60), "the submit never created its batch"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    api.hold_creates = False
    api.release_creates.set()
    api.add_foreign_batches(250)  # newer than ours: found on the listing's third page
    again = submit(path, db, api.base_url)
    assert again.exit_code == 0, again.output
    assert f"found batch {api.created[0]}" in again.output
    assert "0 request(s) submitted" in again.output and "40 still held" in again.output
    assert len(api.created) == 1 and api.requests_paid() == 40
    assert len(api.list_calls) >= 3
    assert "40 answer(s) imported" in collect(db, api.base_url).output
    assert "0 request(s) submitted" in submit(path, db, api.base_url).output
    assert len(api.created) == 1


@pytest.mark.parametrize("first", ["status", "collect"])
def test_status_or_collect_after_a_submit_killed_during_create_finds_its_batch(
        tmp_path, sample, api, first):
    path, db = sample(20), tmp_path / "b.db"
    api.hold_creates = True
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmtrans", "batch", "submit", str(path), "--db", str(db), *RUN,
         "--base-url", api.base_url, "--api-key", "test"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        assert api.create_arrived.wait(60), "the submit never created its batch"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    api.hold_creates = False
    api.release_creates.set()
    if first == "status":
        assert api.created[0] in status(db, api.base_url).output
    collected = collect(db, api.base_url)
    assert "1 batch(es) collected: 20 answer(s) imported" in collected.output, collected.output
    assert len(api.created) == 1


def test_an_upload_whose_batch_was_never_made_gets_one_without_a_second_upload(
        tmp_path, sample, api):
    path, db = sample(20), tmp_path / "b.db"
    api.fail_creates = 4  # every attempt of the first submit
    first = submit(path, db, api.base_url)
    assert first.exit_code == 2 and "the upload is recorded" in first.output, first.output
    assert api.created == [] and "no batch known yet" in status(db, api.base_url).output
    uploads = [f for f in api.files.values() if f["purpose"] == "batch"]
    again = submit(path, db, api.base_url)
    assert f"started batch {api.created[0]} of an earlier upload" in again.output, again.output
    assert "0 request(s) submitted" in again.output and "20 still held" in again.output
    assert [f for f in api.files.values() if f["purpose"] == "batch"] == uploads
    assert len(api.created) == 1 and api.requests_paid() == 20
    assert "20 answer(s) imported" in collect(db, api.base_url).output


def test_an_upload_whose_file_is_gone_is_released_and_its_requests_go_again(
        tmp_path, sample, api):
    path, db = sample(20), tmp_path / "b.db"
    api.fail_creates = 4
    submit(path, db, api.base_url)
    api.files.clear()  # deleted (or expired) before any batch was made of it
    again = submit(path, db, api.base_url)
    assert "20 request(s) submitted in 1 batch(es)" in again.output, again.output
    assert len(api.created) == 1 and api.requests_paid() == 20
    assert "20 answer(s) imported" in collect(db, api.base_url).output


def test_translate_between_submit_and_collect_sends_no_held_request(tmp_path, sample, api):
    path, db = sample(40), tmp_path / "b.db"
    batch_id = submit(path, db, api.base_url).output.split("batch(es) ")[1].split(";")[0]
    notices: list[str] = []
    early = translate(path, db, api.base_url, notices)
    assert api.online_requests == 0 and early["requests_sent"] == 0
    assert early["deferred"] == 40
    assert any(f"40 requests are held by batch {batch_id}; run `mmtrans batch collect`" in n
               for n in notices), notices
    shown = runner.invoke(app, ["translate", str(path), "--db", str(db), *RUN,
                                "--base-url", api.base_url, "--api-key", "test"])
    assert "0 translated" in shown.output and "40 held by a batch" in shown.output
    assert "40 answer(s) imported" in collect(db, api.base_url).output
    done = translate(path, db, api.base_url)
    assert done["accepted"] == 40 and done["requests_sent"] == 0
    assert api.online_requests == 0 and api.requests_paid() == 40


def test_a_truncated_output_line_is_one_failed_request_and_later_batches_are_collected(
        tmp_path, sample, api):
    first = sample(indexes=list(range(20)))
    first = Path(shutil.move(first, tmp_path / "first.json"))
    second = sample(indexes=list(range(20, 40)))
    db = tmp_path / "b.db"
    assert "20 request(s) submitted" in submit(first, db, api.base_url).output
    api.truncate_output_lines = {3}
    assert api.retrieve(api.created[0])["status"] == "completed"  # finished with a bad line
    api.truncate_output_lines = set()
    assert "20 request(s) submitted" in submit(second, db, api.base_url).output
    collected = collect(db, api.base_url)
    assert collected.exit_code == 0, collected.output
    assert "2 batch(es) collected: 39 answer(s) imported, 1 failed" in collected.output
    assert "1 unreadable line" in collected.output
    assert "no batch waiting" in status(db, api.base_url).output
    again = submit(first, db, api.base_url)  # the lost answer is asked again, alone
    assert "1 request(s) submitted" in again.output, again.output
    assert "0 request(s) submitted" in submit(second, db, api.base_url).output


def test_failures_in_the_error_file_are_counted_and_asked_again(tmp_path, sample, api):
    path, db = sample(20), tmp_path / "b.db"
    api.fail_lines = set(range(6))
    submit(path, db, api.base_url)
    collected = collect(db, api.base_url)
    assert "14 answer(s) imported, 6 failed" in collected.output, collected.output
    api.fail_lines = set()
    assert "6 request(s) submitted" in submit(path, db, api.base_url).output
    assert "6 answer(s) imported, 0 failed" in collect(db, api.base_url).output
    done = translate(path, db, api.base_url)  # 14 were checked by the second submit's run
    assert done["accepted"] + done["skipped"] == 20 and done["requests_sent"] == 0
    assert api.online_requests == 0


def test_an_expired_batch_gives_back_its_answers_and_the_rest_go_again(tmp_path, sample, api):
    path, db = sample(20), tmp_path / "b.db"
    api.expire_after = 8
    submit(path, db, api.base_url)
    collected = collect(db, api.base_url)
    assert "8 answer(s) imported, 12 failed" in collected.output, collected.output
    assert "expired" in collected.output
    api.expire_after = None
    assert "12 request(s) submitted" in submit(path, db, api.base_url).output


def test_a_batch_that_fails_validation_shows_its_errors_and_releases_its_requests(
        tmp_path, sample, api):
    path, db = sample(10), tmp_path / "b.db"
    api.invalid = [{"code": "model_not_found", "line": 1, "param": "body.model",
                    "message": "The model `gpt-4o-mini` does not exist or you do not have "
                               "access to it."}]
    submit(path, db, api.base_url)
    shown = status(db, api.base_url)
    assert "failed" in shown.output
    assert "line 1: model_not_found" in shown.output and "does not exist" in shown.output
    collected = collect(db, api.base_url)
    assert "line 1: model_not_found" in collected.output, collected.output
    assert "does not exist" in collected.output
    api.invalid = None
    assert "10 request(s) submitted" in submit(path, db, api.base_url).output


def test_a_batch_is_collected_only_once_it_is_finished(tmp_path, sample, api):
    path, db = sample(6), tmp_path / "b.db"
    api.polls_to_finish = 3
    submit(path, db, api.base_url)
    assert "in_progress" in status(db, api.base_url).output
    waiting = collect(db, api.base_url)  # its second retrieve: finalizing
    assert "0 batch(es) collected" in waiting.output and "1 batch(es) still running" \
        in waiting.output, waiting.output
    assert "6 answer(s) imported" in collect(db, api.base_url).output


@pytest.mark.parametrize("typed", ["HTTP://127.0.0.1:{port}/v1/", "http://127.0.0.1:{port}/v1"])
def test_the_endpoint_as_typed_keys_batch_and_translate_alike(tmp_path, sample, api, typed):
    path, db = sample(20), tmp_path / "b.db"
    base_url = typed.format(port=api.server.server_address[1])
    submit(path, db, base_url)
    assert "20 answer(s) imported" in collect(db, base_url).output
    done = translate(path, db, base_url)
    assert done["accepted"] == 20 and done["requests_sent"] == 0
    assert api.online_requests == 0


@pytest.mark.parametrize("typed, key", [
    ("HTTP://127.0.0.1:8842/v1", "http://127.0.0.1:8842/v1"),
    ("http://127.0.0.1:80/v1", "http://127.0.0.1/v1"),
    ("https://API.OpenAI.com:443/v1/", "https://api.openai.com/v1"),
    ("http://localhost:8000/v1//", "http://localhost:8000/v1"),
    ("http://127.0.0.1:8000/V1", "http://127.0.0.1:8000/V1"),  # a path keeps its case
    ("vllm:local", "vllm:local"),  # a name for `batch write`, not a URL
])
def test_an_endpoint_is_one_key_however_it_is_typed(typed, key):
    assert normalise_endpoint(typed) == key


def test_an_endpoints_key_is_what_httpx_read_before_it_was_read_with_httpx2():
    """Run identities and cache keys hold the key: read with httpx (1) until the SDK moved
    to httpx2, it must not change, or every run made before would start afresh."""
    import itertools

    import httpx

    def with_httpx(url: str) -> str:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https"):
            return url.rstrip("/")
        return str(parsed.copy_with(path=parsed.path.rstrip("/")))

    spellings = ["".join(parts) for parts in itertools.product(
        ["http://", "HTTPS://"], ["", "user:pw@"],
        ["api.openai.com", "API.OpenAI.com", "127.0.0.1", "[::1]", "bücher.example"],
        ["", ":80", ":443", ":08000"],
        ["", "/", "/v1/", "/V1", "/v1//", "/a%20b", "/a b", "/ä", "/v1/../x", "/v1?q=%2F"])]
    spellings += ["vllm:local", "vllm:local/", "ollama"]
    assert [normalise_endpoint(u) for u in spellings] == [with_httpx(u) for u in spellings]


@pytest.mark.parametrize("shape", ["current", "older"])
def test_both_vllm_line_shapes_are_read_as_answers(tmp_path, sample, shape):
    path, db = sample(8), tmp_path / "b.db"
    requests, results = tmp_path / "req.jsonl", tmp_path / "out.jsonl"
    common = ["--src", "ja", "--tgt", "en", "--labels", "scnm", "--db", str(db),
              "--model", "Qwen/Qwen2.5-7B-Instruct", "--base-url", "vllm:local"]
    assert "8 request(s) written" in runner.invoke(
        app, ["batch", "write", str(path), "--out", str(requests), *common]).output
    run_batch(requests, results, shape=shape, fail={3})
    read = runner.invoke(app, ["batch", "read", str(results), "--db", str(db)])
    assert "7 answer(s) imported, 1 failed" in read.output, read.output
    again = runner.invoke(app, ["batch", "write", str(path), "--out", str(requests), "--force",
                                 *common])
    assert "1 request(s) written" in again.output and "7 accepted" in again.output


def test_a_truncated_line_in_a_vllm_file_is_one_failed_request(tmp_path, sample):
    path, db = sample(8), tmp_path / "b.db"
    requests, results = tmp_path / "req.jsonl", tmp_path / "out.jsonl"
    common = ["--src", "ja", "--tgt", "en", "--labels", "scnm", "--db", str(db),
              "--model", "Qwen/Qwen2.5-7B-Instruct", "--base-url", "vllm:local"]
    runner.invoke(app, ["batch", "write", str(path), "--out", str(requests), *common])
    run_batch(requests, results)
    lines = results.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5][:40]
    results.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read = runner.invoke(app, ["batch", "read", str(results), "--db", str(db)])
    assert read.exit_code == 0, read.output
    assert "7 answer(s) imported, 1 failed" in read.output
    assert f"{results}:6" in read.output


def test_batch_files_split_past_the_request_limit_go_in_one_batch_each(
        tmp_path, sample, api, monkeypatch):
    monkeypatch.setattr(batch_files, "MAX_REQUESTS_PER_FILE", 15)
    path, db = sample(40), tmp_path / "b.db"
    api.drop_create_answers = 3  # every create's answer lost once
    result = submit(path, db, api.base_url)
    assert "40 request(s) submitted in 3 batch(es)" in result.output, result.output
    assert len(api.created) == 3 and api.requests_paid() == 40
    ids = [custom_id for b in api.created for custom_id in api.custom_ids(b)]
    assert len(ids) == len(set(ids)) == 40
    assert "40 answer(s) imported" in collect(db, api.base_url).output


def test_a_batch_submitted_before_uploads_were_recorded_still_holds_its_requests(tmp_path):
    db = sqlite_utils.Database(tmp_path / "old.db")
    migrations.apply(db, stop_before="m009_batch_uploads")  # a store as main left it
    db["batch_requests"].insert({"key": "k1", "body": "{}", "file": "requests.jsonl",
                                 "created": "2026-01-01", "batch_id": "batch_old"})
    db["batches"].insert({"id": "batch_old", "file": "file-old", "status": "in_progress",
                          "created": "2026-01-01", "collected": 0})
    db.close()
    with Store(tmp_path / "old.db") as store:
        assert store.held_request_keys() == {"k1": "batch_old"}
        assert [b["id"] for b in store.open_batches("http://127.0.0.1/v1")] == ["batch_old"]
        store.set_batch_status("batch_old", "completed", collected=True)
        assert store.held_request_keys() == {}


def test_a_batch_file_written_for_an_endpoint_as_typed_is_found_by_translate(
        tmp_path, sample, api):
    path, db = sample(8), tmp_path / "b.db"
    typed = f"HTTP://127.0.0.1:{api.server.server_address[1]}/v1/"
    requests, results = tmp_path / "req.jsonl", tmp_path / "out.jsonl"
    runner.invoke(app, ["batch", "write", str(path), "--out", str(requests), "--db", str(db),
                        *RUN, "--base-url", typed])
    run_batch(requests, results)
    assert "8 answer(s) imported" in runner.invoke(
        app, ["batch", "read", str(results), "--db", str(db)]).output
    done = translate(path, db, typed)
    assert done["accepted"] == 8 and done["requests_sent"] == 0 and api.online_requests == 0
