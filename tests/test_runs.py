"""Runs: one identity per configuration, commands act on one run, one process per run, and
every bad --db or setting is one line with exit 2 and nothing written."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply, good_translation

runner = CliRunner()
LABELS = Path(__file__).resolve().parent.parent / "data" / "labels"
PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


def translate(path: Path, db: Path, llm: FakeLLM, *extra: str):
    return runner.invoke(app, ["translate", str(path), "--src", "ja", "--tgt", "en",
                               "--db", str(db), "--base-url", llm.base_url, "--model", "fake",
                               *extra])


def test_an_edited_label_table_starts_a_new_run_and_never_mixes_labels(tmp_path, sample, llm):
    table = tmp_path / "scnm.tsv"
    table.write_text((LABELS / "scnm.ja-en.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    path, db = sample(8), tmp_path / "run.db"
    first = translate(path, db, llm, "--labels", str(table), "--limit", "4")
    assert first.exit_code == 0, first.output
    table.write_text(table.read_text(encoding="utf-8").replace("\tPerson", "\tHUMAN"),
                     encoding="utf-8")
    second = translate(path, db, llm, "--labels", str(table))
    assert second.exit_code == 0, second.output
    assert "the label tables' content changed since run" in second.output
    out = tmp_path / "out.jsonl"
    exported = runner.invoke(app, ["export", "--db", str(db), "--out", str(out),
                                   "--format", "stockmark"])
    assert exported.exit_code == 0, exported.output
    types = {e["type"] for line in out.read_text(encoding="utf-8").splitlines()
             for e in json.loads(line)["entities"]}
    assert "HUMAN" in types and "Person" not in types
    with Store(db) as store:
        assert len(store.runs()) == 2


def test_an_edited_prompt_starts_a_new_run(tmp_path, sample, llm):
    prompt = tmp_path / "mine.toml"
    prompt.write_text((PROMPTS / "ja-en.toml").read_text(encoding="utf-8"), encoding="utf-8")
    path, db = sample(4), tmp_path / "run.db"
    assert translate(path, db, llm, "--prompt", str(prompt), "--limit", "2").exit_code == 0
    prompt.write_text(prompt.read_text(encoding="utf-8").replace("Translate", "Please translate",
                                                                1), encoding="utf-8")
    result = translate(path, db, llm, "--prompt", str(prompt))
    assert "the prompt's text changed" in result.output
    with Store(db) as store:
        run = store.latest_run()
        assert store.status(run)["records"] == 4
        assert store.counts(run)["accepted"] == 4  # all four answered under the new prompt
        keys = {t.request_key for t in store.latest_translations(run).values()}
        sent = [store.request_messages(key) for key in keys]
    assert all("Please translate" in json.dumps(m, ensure_ascii=False) for m in sent)


def test_status_and_export_act_on_the_run_last_used_not_the_sum_of_runs(tmp_path, sample, llm):
    path, db = sample(6), tmp_path / "run.db"
    assert translate(path, db, llm).exit_code == 0
    assert translate(path, db, llm, "--temperature", "0.5").exit_code == 0
    assert translate(path, db, llm).exit_code == 0  # the first run, used again
    with Store(db) as store:
        runs = store.runs()
        first = runs[0]["id"]
        assert runs[0]["params"]["temperature"] == 0.0 and len(runs) == 2
    result = runner.invoke(app, ["status", "--db", str(db), "--json"])
    summary = json.loads(result.stdout)
    assert (summary["run"], summary["records"], summary["items_read"]) == (first, 6, 6)
    listed = runner.invoke(app, ["runs", "--db", str(db), "--json"])
    assert [r["records"] for r in json.loads(listed.stdout)] == [6, 6]
    other = runs[1]["id"]
    assert json.loads(runner.invoke(app, ["status", "--db", str(db), "--run", other[:6],
                                          "--json"]).stdout)["run"] == other


def test_status_accounts_for_every_item_of_every_file(tmp_path, stockmark_items):
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(item, ensure_ascii=False) for item in stockmark_items[:4]]
    lines[1] = "{not json"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "run.db"
    with FakeLLM() as llm:
        mmtrans.translate(path, db, mmtrans.Settings(src="ja", tgt="en", labels=["scnm"],
                                                     base_url=llm.base_url, format="stockmark"))
    with Store(db) as store:
        (f,) = store.status()["files"]
    assert (f["items_read"], f["records"], f["rejects"], f["ok"]) == (4, 3, 1, True)
    assert f["path"] == str(path.resolve())


def slow_translation(payload, request):
    return Reply(json.dumps(good_translation(payload), ensure_ascii=False), delay=0.5)


def cli(path: Path, db: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "mmtrans", "translate", str(path), "--src", "ja", "--tgt",
            "en", "--db", str(db), "--base-url", url, "--model", "fake", "--concurrency", "2"]


def test_a_second_process_on_the_same_run_refuses_until_the_first_is_killed(tmp_path, sample):
    path, db = sample(20), tmp_path / "run.db"
    env = {**os.environ, "OPENAI_API_KEY": "test"}
    # The first process's answers wait until the second has been refused: on a busy machine
    # the second's start (imports, the embedding model) outlasted 20 answers of 0.5 s.
    second_done = threading.Event()

    def held_translation(payload, request):
        second_done.wait(60)
        return slow_translation(payload, request)

    with FakeLLM(held_translation) as llm:
        first = subprocess.Popen(cli(path, db, llm.base_url), env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not llm.requests and time.monotonic() < deadline:  # its first request waits
            time.sleep(0.05)
        assert llm.requests, "the first process never got to sending"
        second = subprocess.run(cli(path, db, llm.base_url), env=env, capture_output=True,
                                text=True, timeout=60)
        assert second.returncode == 2, second.stderr
        assert "is being translated by pid" in second.stderr
        first.send_signal(signal.SIGKILL)
        second_done.set()
        first.wait(timeout=10)
        sent_before = len(llm.requests)
        third = subprocess.run(cli(path, db, llm.base_url), env=env, capture_output=True,
                               text=True, timeout=120)
        assert third.returncode == 0, third.stderr
    with Store(db) as store:
        assert store.counts(store.latest_run())["accepted"] == 20
        # every record has exactly one first-attempt row: none was translated twice
        rows = list(store._db.query("select record_id, count(*) n from translations "
                                   "group by record_id having n > 1"))
    assert rows == [] and len(llm.requests) - sent_before <= 20


def test_ctrl_c_says_how_to_resume(tmp_path, sample):
    path, db = sample(20), tmp_path / "run.db"
    with FakeLLM(slow_translation) as llm:
        process = subprocess.Popen(cli(path, db, llm.base_url),
                                   env={**os.environ, "OPENAI_API_KEY": "test"},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while len(llm.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(llm.requests) >= 2, "the first process never got to sending"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "interrupted; run the same command again to resume" in err
    assert "Traceback" not in err


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("error:") and "Traceback" not in result.output
    return result.output


def foreign_db(tmp_path: Path) -> Path:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table notes (id integer primary key, body text)")
    return db


def test_a_foreign_sqlite_file_is_refused_and_left_untouched(tmp_path, sample, llm):
    db = foreign_db(tmp_path)
    before = db.read_bytes()
    for args in (["status", "--db", str(db)], ["runs", "--db", str(db)],
                 ["export", "--db", str(db), "--out", str(tmp_path / "o.json")]):
        assert "not an mmtrans store" in one_line_error(runner.invoke(app, args))
    assert "not an mmtrans store" in one_line_error(translate(sample(2), db, llm))
    assert db.read_bytes() == before and not Path(f"{db}-wal").exists()
    assert llm.requests == []
    text = tmp_path / "notes.db"
    text.write_text("hello, not a database\n" * 100)
    assert "not an SQLite database" in one_line_error(
        runner.invoke(app, ["status", "--db", str(text)]))


def test_bad_settings_are_one_line_and_write_nothing(tmp_path, sample, llm):
    path, db = sample(2), tmp_path / "run.db"
    assert "is a directory" in one_line_error(translate(path, tmp_path, llm))
    same = runner.invoke(app, ["translate", str(path), "--src", "ja", "--tgt", "ja",
                               "--db", str(db), "--base-url", llm.base_url])
    assert "both 'ja'" in one_line_error(same)
    forced = translate(path, db, llm, "--format", "iepile")
    assert "no item is readable as --format iepile" in one_line_error(forced)
    assert not db.exists() and llm.requests == []
    assert translate(path, db, llm).exit_code == 0
    unknown = runner.invoke(app, ["export", "--db", str(db), "--run", "feedface",
                                  "--out", str(tmp_path / "o.json")])
    assert "--run feedface is not a run of this store" in one_line_error(unknown)
    assert not (tmp_path / "o.json").exists()
    missing = runner.invoke(app, ["status", "--db", str(tmp_path / "nope.db")])
    assert "no such database" in one_line_error(missing)
    assert not (tmp_path / "nope.db").exists()
