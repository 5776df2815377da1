"""Batch files: the requests a run needs, written as `vllm run-batch` and OpenAI's Batch API
read them, and their answers read back, end in the same export as an online run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app
from mmtrans.testing import FakeLLM
from tests.fakes.openai_batches import FakeOpenAIBatches
from tests.fakes.vllm_batch import run_batch

runner = CliRunner()
MODEL = "Qwen/Qwen2.5-7B-Instruct"


def exported(db: Path, out: Path) -> list:
    mmtrans.export(db, out, fmt="mre")
    return json.loads(out.read_text(encoding="utf-8"))


def test_a_vllm_batch_ends_in_the_same_export_as_the_online_run(tmp_path, sample):
    path = sample(8)
    with FakeLLM() as llm:
        mmtrans.translate(path, tmp_path / "online.db", mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, model=MODEL))
    online = exported(tmp_path / "online.db", tmp_path / "online.json")

    db, requests, results = tmp_path / "batch.db", tmp_path / "req.jsonl", tmp_path / "out.jsonl"
    common = ["--src", "ja", "--tgt", "en", "--labels", "scnm", "--db", str(db),
              "--model", MODEL, "--base-url", "vllm:local"]
    written = runner.invoke(app, ["batch", "write", str(path), "--out", str(requests), *common])
    assert written.exit_code == 0, written.output
    assert "8 request(s) written" in written.output
    run_batch(requests, results, fail={3})
    read = runner.invoke(app, ["batch", "read", str(results), "--db", str(db)])
    assert "7 answer(s) imported, 1 failed" in read.output
    again = runner.invoke(app, ["batch", "write", str(path), "--out", str(requests), "--force",
                                *common])
    assert "1 request(s) written" in again.output and "7 accepted" in again.output
    run_batch(requests, results)
    runner.invoke(app, ["batch", "read", str(results), "--db", str(db)])
    with FakeLLM() as llm:  # the same settings online: everything is answered already
        mmtrans.translate(path, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url="vllm:local", model=MODEL))
        assert llm.requests == []
    assert exported(db, tmp_path / "batch.json") == online


def test_reading_a_file_that_is_not_batch_output_is_one_line(tmp_path, sample):
    db = tmp_path / "b.db"
    runner.invoke(app, ["batch", "write", str(sample(2)), "--src", "ja", "--tgt", "en",
                        "--db", str(db), "--base-url", "vllm:local", "--model", MODEL,
                        "--out", str(tmp_path / "r.jsonl")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"no": "custom id"}\n', encoding="utf-8")
    result = runner.invoke(app, ["batch", "read", str(bad), "--db", str(db)])
    assert result.exit_code == 2 and f"{bad}:1: not a batch output line" in result.output


def batch_cli(*args: str):
    return runner.invoke(app, ["batch", *args])


def submit(path: Path, db: Path, api: FakeOpenAIBatches):
    return batch_cli("submit", str(path), "--src", "ja", "--tgt", "en", "--labels", "scnm",
                     "--db", str(db), "--model", "gpt-4o-mini", "--base-url", api.base_url,
                     "--api-key", "test")


def test_an_openai_batch_submitted_twice_and_collected_ends_like_the_online_run(
        tmp_path, sample):
    path = sample(6)
    with FakeLLM() as llm:
        mmtrans.translate(path, tmp_path / "online.db", mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, model="gpt-4o-mini"))
    online = exported(tmp_path / "online.db", tmp_path / "online.json")
    db = tmp_path / "batch.db"
    with FakeOpenAIBatches() as api:
        first = submit(path, db, api)
        assert "6 request(s) submitted in 1 batch(es)" in first.output, first.output
        again = submit(path, db, api)  # before collecting: nothing is sent twice
        assert "0 request(s) submitted" in again.output and "6 still held" in again.output
        assert len(api.created) == 1
        assert "completed (6 of 6 done" in batch_cli(
            "status", "--db", str(db), "--base-url", api.base_url, "--api-key", "t").output
        collected = batch_cli("collect", "--db", str(db), "--base-url", api.base_url,
                              "--api-key", "t")
        assert "6 answer(s) imported" in collected.output
        mmtrans.translate(path, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=api.base_url, model="gpt-4o-mini"))
        assert "0 request(s) submitted" in submit(path, db, api).output
        assert len(api.created) == 1
    assert exported(db, tmp_path / "batch.json") == online


@pytest.mark.parametrize("fault, answered", [({"fail_lines": {2, 5}}, 4),
                                              ({"expire_after": 3}, 3)])
def test_a_partly_failed_or_expired_batch_leaves_the_rest_pending_for_the_next(
        tmp_path, sample, fault, answered):
    path, db = sample(6), tmp_path / "batch.db"
    with FakeOpenAIBatches() as api:
        vars(api).update(fault)
        submit(path, db, api)
        batch_cli("collect", "--db", str(db), "--base-url", api.base_url, "--api-key", "t")
        vars(api).update(fail_lines=set(), expire_after=None)
        resubmitted = submit(path, db, api)
        assert f"{6 - answered} request(s) submitted" in resubmitted.output, resubmitted.output
    assert len(api.created) == 2


def test_a_batch_written_without_model_is_keyed_like_the_translate_that_uses_it(tmp_path,
                                                                                 sample):
    """Without --model both name the model the server lists, so the batch's answers are
    the ones `translate` finds (a batch keyed to a guessed model was never used)."""
    path, db = sample(4), tmp_path / "b.db"
    requests, results = tmp_path / "req.jsonl", tmp_path / "out.jsonl"
    with FakeLLM() as llm:
        common = ["--src", "ja", "--tgt", "en", "--labels", "scnm", "--db", str(db),
                  "--base-url", llm.base_url]
        written = runner.invoke(app, ["batch", "write", str(path), "--out", str(requests),
                                      *common])
        assert written.exit_code == 0, written.output
        bodies = [json.loads(line)["body"] for line in requests.read_text().splitlines()]
        assert {body["model"] for body in bodies} == set(llm.models)
        run_batch(requests, results)
        assert runner.invoke(app, ["batch", "read", str(results), "--db", str(db)]).exit_code == 0
        asked = len(llm.requests)
        online = runner.invoke(app, ["translate", str(path), *common])
        assert online.exit_code == 0, online.output
        assert len(llm.requests) == asked  # every answer came from the batch


def test_a_batch_for_a_runner_name_needs_model(tmp_path, sample):
    result = runner.invoke(app, ["batch", "write", str(sample(2)), "--out",
                                 str(tmp_path / "req.jsonl"), "--src", "ja", "--tgt", "en",
                                 "--labels", "scnm", "--db", str(tmp_path / "b.db"),
                                 "--base-url", "vllm:local"])
    assert result.exit_code == 2 and "pass --model" in result.output, result.output
    assert not (tmp_path / "req.jsonl").exists()
