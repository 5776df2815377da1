"""Batches paid twice: the measurements of issue 16, rerun against the fake of OpenAI's Files
and Batches API written from OpenAI's documentation (tests/fakes/openai_batches.py).

Each scenario prints what was paid or shown; the figure asked is in brackets. It runs the
mmtrans found first on PYTHONPATH, so the same script measures any checkout:

    PYTHONPATH=. python bench/batch/faults.py                  # this checkout
    PYTHONPATH=/work/main python bench/batch/faults.py         # another one (main)
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app

HERE = Path(__file__).resolve().parents[2]
STOCKMARK = HERE / "tests" / "data" / "stockmark-ner-wikipedia" / "ner.json"
if not STOCKMARK.is_file():
    STOCKMARK = HERE / "data" / "samples" / "stockmark-ner-20.json"


def _load(name: str, path: Path):  # by path: the checkout measured may have no tests/fakes
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fakes = _load("openai_batches", HERE / "tests" / "fakes" / "openai_batches.py")
vllm = _load("vllm_batch", HERE / "tests" / "fakes" / "vllm_batch.py")
runner = CliRunner()
RUN = ["--src", "ja", "--tgt", "en", "--labels", "scnm", "--model", "gpt-4o-mini"]
ITEMS = json.loads(STOCKMARK.read_text(encoding="utf-8"))


def dataset(tmp: Path, name: str, start: int, n: int) -> Path:
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(ITEMS[start:start + n], ensure_ascii=False), encoding="utf-8")
    return path


def cli(*args: str):
    return runner.invoke(app, list(args))


def submit(path: Path, db: Path, base_url: str):
    return cli("batch", "submit", str(path), "--db", str(db), *RUN, "--base-url", base_url,
               "--api-key", "k")


def collect(db: Path, base_url: str):
    return cli("batch", "collect", "--db", str(db), "--base-url", base_url, "--api-key", "k")


def imported(output: str) -> tuple[int, int]:
    found = re.search(r"(\d+) answer\(s\) imported, (\d+) failed", output)
    return (int(found[1]), int(found[2])) if found else (-1, -1)


def online(path: Path, db: Path, base_url: str) -> dict:
    return mmtrans.translate(path, db, mmtrans.Settings(
        src="ja", tgt="en", labels=["scnm"], model="gpt-4o-mini", base_url=base_url,
        api_key="k"))


def lost_create(tmp: Path) -> str:
    path, db = dataset(tmp, "a", 0, 40), tmp / "lost.db"
    with fakes.FakeOpenAIBatches() as api:
        api.drop_create_answers = 1
        submit(path, db, api.base_url)
        return (f"create's answer lost: {len(api.created)} batch(es), {api.requests_paid()} "
                "requests paid for 40 [1 batch, 40]")


def killed_submit(tmp: Path) -> str:
    path, db = dataset(tmp, "a", 0, 40), tmp / "killed.db"
    with fakes.FakeOpenAIBatches() as api:
        api.hold_creates = True
        proc = subprocess.Popen([sys.executable, "-m", "mmtrans", "batch", "submit", str(path),
                                 "--db", str(db), *RUN, "--base-url", api.base_url,
                                 "--api-key", "k"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        api.create_arrived.wait(120)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        api.hold_creates = False
        api.release_creates.set()
        submit(path, db, api.base_url)
        return (f"submit killed during create, submitted again: {len(api.created)} batch(es), "
                f"{api.requests_paid()} requests paid for 40 [1 batch, 40]")


def translate_before_collect(tmp: Path) -> str:
    path, db = dataset(tmp, "a", 0, 40), tmp / "early.db"
    with fakes.FakeOpenAIBatches() as api:
        submit(path, db, api.base_url)
        online(path, db, api.base_url)
        sent = api.online_requests
        got, _ = imported(collect(db, api.base_url).output)
        return (f"translate between submit and collect: {sent} of 40 sent online, then "
                f"{got} imported from the batch [0 online, 40 imported]")


def truncated_line(tmp: Path) -> str:
    first, second = dataset(tmp, "a", 0, 20), dataset(tmp, "b", 20, 20)
    db = tmp / "truncated.db"
    with fakes.FakeOpenAIBatches() as api:
        submit(first, db, api.base_url)
        api.truncate_output_lines = {3}
        api.retrieve(api.created[0])
        api.truncate_output_lines = set()
        submit(second, db, api.base_url)
        codes = [collect(db, api.base_url).exit_code for _ in range(2)]
        after = submit(first, db, api.base_url).output
        resent = re.search(r"(\d+) request\(s\) submitted", after)
        return (f"one truncated output line in batch 1 of 2: collect exits {codes}, then "
                f"submit sends {resent[1] if resent else '?'} of batch 1's 20 again "
                "[exit 0, 1 sent again]")


def endpoint_as_typed(tmp: Path) -> str:
    path, db = dataset(tmp, "a", 0, 20), tmp / "typed.db"
    with fakes.FakeOpenAIBatches() as api:
        typed = f"HTTP://127.0.0.1:{api.server.server_address[1]}/v1"
        submit(path, db, typed)
        collect(db, typed)
        result = online(path, db, typed)
        return (f"--base-url {typed.split(':')[0]}://..: translate after collect sends "
                f"{result['requests_sent']} of 20 again [0]")


def error_file(tmp: Path) -> str:
    path, db = dataset(tmp, "a", 0, 40), tmp / "errors.db"
    with fakes.FakeOpenAIBatches() as api:
        api.fail_lines = set(range(24))
        submit(path, db, api.base_url)
        got, failed = imported(collect(db, api.base_url).output)
        return f"24 of 40 in the error file: collect shows {got} imported, {failed} failed " \
               "[16, 24]"


def batch_errors(tmp: Path) -> str:
    path, db = dataset(tmp, "a", 0, 10), tmp / "invalid.db"
    with fakes.FakeOpenAIBatches() as api:
        api.invalid = [{"code": "model_not_found", "line": 1, "param": "body.model",
                        "message": "The model does not exist."}]
        submit(path, db, api.base_url)
        shown = "model_not_found" in collect(db, api.base_url).output
        return f"a batch refused with errors.data: its reason shown: {shown} [True]"


def vllm_older(tmp: Path) -> str:
    path, db = dataset(tmp, "a", 0, 40), tmp / "vllm.db"
    requests, results = tmp / "req.jsonl", tmp / "out.jsonl"
    cli("batch", "write", str(path), "--out", str(requests), "--db", str(db), *RUN,
        "--base-url", "vllm:local")
    vllm.run_batch(requests, results, shape="older")
    got, failed = imported(cli("batch", "read", str(results), "--db", str(db)).output)
    return f"vLLM's older line shape, 40 answers: {got} imported, {failed} failed [40, 0]"


def main() -> None:
    print(f"mmtrans from {Path(mmtrans.__file__).parent}; load {os.getloadavg()[0]:.2f}")
    for scenario in (lost_create, killed_submit, translate_before_collect, truncated_line,
                     endpoint_as_typed, error_file, batch_errors, vllm_older):
        with tempfile.TemporaryDirectory() as tmp:
            try:
                print(scenario(Path(tmp)), flush=True)
            except Exception as e:  # a scenario the checkout cannot run at all
                print(f"{scenario.__name__}: {type(e).__name__}: {e}", flush=True)


if __name__ == "__main__":
    main()
