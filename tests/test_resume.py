"""Resume after the translating process is killed with SIGKILL mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from mmtrans.store import Store
from mmtrans.testing import Reply, good_translation


def translate_command(path, db, base_url) -> list[str]:
    return [sys.executable, "-m", "mmtrans", "translate", str(path), "--src", "ja", "--tgt", "en",
            "--labels", "scnm", "--db", str(db), "--base-url", base_url, "--model", "fake",
            "--concurrency", "4"]


def test_resume_after_sigkill_sends_no_completed_request(tmp_path, sample, llm):
    llm.script = lambda payload, request: Reply(json.dumps(good_translation(payload)), delay=0.05)
    path, db = sample(60), tmp_path / "run.db"
    env = {**os.environ, "OPENAI_API_KEY": "test"}
    process = subprocess.Popen(translate_command(path, db, llm.base_url), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(llm.requests) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(llm.requests) >= 20, "the run never got to its 20th request"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL

    store = Store(db)
    completed = {json.loads(store.request_messages(row["key"])[3]["content"]
                            .split(":\n", 1)[1])["text"]
                 for row in store._db.query("select key from requests "
                                           "where response is not null")}
    store.close()
    assert 10 <= len(completed) < 60
    sent_before = len(llm.requests)

    finish = subprocess.run(translate_command(path, db, llm.base_url), env=env,
                            capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr
    resent = set(llm.texts()[sent_before:])
    assert not resent & completed
    store = Store(db)
    rows = Counter(row["record_id"] for row in store._db["translations"].rows)
    run_status = store.status()
    store.close()
    assert len(rows) == 60 and set(rows.values()) == {1}
    assert (run_status["accepted"], run_status["pending"]) == (60, 0)
