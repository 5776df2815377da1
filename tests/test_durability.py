"""What is paid for is kept: answers survive kill -9, SIGTERM, a full disk and a read-only
store; two runs sharing requests never ask the same one at once. Every run here is a real
`mmtrans translate` process against a real HTTP server that notes when it delivered what."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mmtrans.records import Record
from mmtrans.store import Store
from mmtrans.store.records import STAGED_ROWS
from mmtrans.testing import Deliveries, FakeLLM


def translate_command(path: Path, db: Path, base_url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mmtrans", "translate", str(path), "--src", "ja", "--tgt",
            "en", "--labels", "scnm", "--db", str(db), "--base-url", base_url, "--model",
            "fake", "--concurrency", "4", *extra]


ENV = {**os.environ, "OPENAI_API_KEY": "test"}


@pytest.fixture
def slow():
    """A server answering every request 1.5 s after it arrived, noting deliveries."""
    deliveries = Deliveries(delay=1.5)
    with FakeLLM(deliveries) as server:
        # A killed client's connections break under the server's answers: expected here.
        server.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        yield server, deliveries


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def start(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def kill_after_answers(process: subprocess.Popen[str], deliveries: Deliveries, answers: int,
                       sig: signal.Signals) -> float:
    """Send `sig` half a second after the server delivered `answers` answers; the time."""
    wait_for(lambda: deliveries.delivered_before(time.time()) >= answers)
    time.sleep(0.5)
    killed = time.time()
    process.send_signal(sig)
    process.wait(60)
    return killed


def test_resume_after_sigkill_buys_no_delivered_answer_again(tmp_path, sample, slow):
    server, deliveries = slow
    path, db = sample(8), tmp_path / "run.db"
    cmd = translate_command(path, db, server.base_url)
    first = start(cmd)
    killed = kill_after_answers(first, deliveries, 5, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    assert deliveries.delivered_before(killed - 0.2) >= 5
    finish = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr
    assert deliveries.bought_twice([killed]) == 0
    with Store(db, create=False) as store:
        assert store.status()["accepted"] == 8


def test_sigterm_stops_with_a_message_and_keeps_every_delivered_answer(tmp_path, sample, slow):
    server, deliveries = slow
    path, db = sample(8), tmp_path / "run.db"
    cmd = translate_command(path, db, server.base_url)
    first = start(cmd)
    killed = kill_after_answers(first, deliveries, 5, signal.SIGTERM)
    stderr = first.stderr.read()
    assert first.returncode == 143, stderr
    assert "terminated" in stderr and "Traceback" not in stderr
    finish = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr
    assert deliveries.bought_twice([killed]) == 0


def test_sigterm_stops_a_run_started_with_sigint_ignored(tmp_path, sample, slow):
    """A script's `mmtrans translate ... &` starts with SIGINT ignored: SIGTERM still stops
    it (it used to be turned into that ignored SIGINT and dropped: the run went on)."""
    server, deliveries = slow
    path, db = sample(20), tmp_path / "run.db"
    first = subprocess.Popen(
        translate_command(path, db, server.base_url), env=ENV, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    kill_after_answers(first, deliveries, 2, signal.SIGTERM)
    stderr = first.stderr.read()
    assert first.returncode == 143, stderr
    assert deliveries.answered() < 20


def test_reading_a_new_input_never_holds_the_write_lock_for_the_whole_read(tmp_path, sample):
    """Another process keeps committing (a running translate saving its answers) while a
    long input streams into the store: the input goes in by short transactions."""
    db = tmp_path / "run.db"
    Store(db).close()
    other = sqlite3.connect(db, timeout=0.5)  # waits at most half a second for the lock
    records = [Record(id=f"r:{i}", text=f"文{i}", task="NER") for i in range(3 * STAGED_ROWS)]
    writes = []

    def items():
        for i, record in enumerate(records):
            if i and i % STAGED_ROWS == STAGED_ROWS // 2:  # mid-way through a chunk
                with other:
                    other.execute("insert into prompt_prefixes (hash, messages) values (?, '[]')",
                                  [f"h{i}"])
                writes.append(i)
            yield record

    with Store(db) as store:
        run_id, held = store.add_input(items(), "in.json", lambda: {"run": 1}, {"in.json": 3000})
        assert held == 3 * STAGED_ROWS and store.record_count(run_id) == held
    assert len(writes) == 3
    other.close()


def test_input_staged_by_a_killed_process_is_dropped_by_the_next_reader(tmp_path):
    db = tmp_path / "run.db"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    with Store(db) as store:
        with store._write() as conn:
            conn.conn.execute("insert into records (run_id, id, position, source, path) "
                              "values (?, 'x', 0, '{}', 'p')", [f"~{int(dead):x}-1"])
        store.add_input(iter([Record(id="a:0", text="文", task="NER")]), "in.json",
                        lambda: {"run": 2}, {})
        assert store._db.execute("select count(*) from records where run_id >= '~'"
                                 ).fetchone()[0] == 0


def test_a_first_run_that_stops_before_its_input_is_stored_leaves_no_file(tmp_path, sample,
                                                                           llm):
    db = tmp_path / "fresh.db"
    done = subprocess.run(translate_command(sample(3), db, llm.base_url, "--format", "mre"),
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("fresh")) == []


def test_overlapping_runs_never_ask_the_same_request_at_once(tmp_path, sample, slow):
    """Two runs of one store whose requests are the same (one input under two names: two
    runs, one request each per record) ask each request once between them."""
    server, deliveries = slow
    path, db = sample(12), tmp_path / "run.db"
    twin = tmp_path / "twin.json"
    shutil.copy(path, twin)
    runs = [start(translate_command(p, db, server.base_url)) for p in (path, twin)]
    for run in runs:
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
    assert deliveries.answered() == 12
    with Store(db, create=False) as store:
        assert [run["accepted"] for run in store.runs()] == [12, 12]


def test_a_claim_whose_owner_was_killed_is_taken_over(tmp_path, sample, slow):
    server, deliveries = slow
    path, db = sample(4), tmp_path / "run.db"
    twin = tmp_path / "twin.json"
    shutil.copy(path, twin)
    first = start(translate_command(path, db, server.base_url))
    wait_for(lambda: deliveries.answered() == 4)  # all four claimed and asked
    killed = time.time()
    first.send_signal(signal.SIGKILL)
    first.wait(60)
    lost = 4 - deliveries.delivered_before(killed)  # claimed, asked, never answered
    started = time.monotonic()
    second = subprocess.run(translate_command(twin, db, server.base_url), env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert time.monotonic() - started < 30  # not left waiting for the dead owner's answers
    assert lost > 0 and deliveries.answered() == 4 + lost  # the dead run's, asked again


# -- a full disk, a read-only store --------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path):
    """A 2 MB tmpfs of its own (root only), unmounted after."""
    where = tmp_path / "tmpfs"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount(where: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(where)], check=True)


def test_a_full_disk_stops_the_run_with_one_line_and_keeps_every_answer(
        tmp_path, sample, tmpfs):
    quick = Deliveries(delay=0.2)
    with FakeLLM(quick) as server:
        server.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        path, db = sample(500), tmpfs / "run.db"
        cmd = translate_command(path, db, server.base_url)
        full = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
        stopped = time.time()
        assert full.returncode == 2, full.stderr
        lines = [line for line in full.stderr.splitlines() if line.startswith("error:")]
        assert "Traceback" not in full.stderr and len(lines) == 1, full.stderr
        assert str(db) in lines[0] and "disk is full" in lines[0]
        answered = quick.answered()
        assert 0 < answered < 500
        remount(tmpfs, "size=64m")  # space is back
        finish = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
        assert finish.returncode == 0, finish.stderr
        assert quick.bought_twice([stopped]) == 0


def test_a_read_only_store_is_one_line_and_exit_2(tmp_path, sample, llm, tmpfs):
    path, db = sample(4), tmpfs / "run.db"
    done = subprocess.run(translate_command(path, db, llm.base_url, "--limit", "2"), env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    remount(tmpfs, "ro")
    again = subprocess.run(translate_command(path, db, llm.base_url), env=ENV,
                           capture_output=True, text=True, timeout=120)
    lines = [line for line in again.stderr.splitlines() if line.startswith("error:")]
    assert again.returncode == 2 and len(lines) == 1, again.stderr
    assert "Traceback" not in again.stderr
    assert str(db) in lines[0] and "read-only" in lines[0]
    status = subprocess.run([sys.executable, "-m", "mmtrans", "status", "--db", str(db)],
                            env=ENV, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr  # reading a read-only store still works
