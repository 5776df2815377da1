"""Opening a store: to read never writes; a file that is not a store is refused, untouched."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mmtrans.errors import StoreError
from mmtrans.store import Store, Translation


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sqlite_file(path: Path, *statements: str) -> Path:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return path


FOREIGN = {
    "a view alone": lambda p: sqlite_file(p, "create view v as select 1 as x"),
    "a table and its index": lambda p: sqlite_file(
        p, "create table t (a)", "create index t_a on t (a)", "insert into t values (1)"),
    "text that is not SQLite": lambda p: p.write_bytes(b"id,name\n1,Alder\n") and p,
    "zeros that are not SQLite": lambda p: p.write_bytes(bytes(4096)) and p,
    "a migrations table of another tool": lambda p: sqlite_file(
        p, "create table _sqlite_migrations (id integer primary key, migration_set text, "
           "name text, applied_at text)",
        "insert into _sqlite_migrations values (1, 'other', 'm001', '')"),
}


@pytest.mark.parametrize("create", [True, False], ids=["to write", "to read"])
@pytest.mark.parametrize("kind", list(FOREIGN))
def test_a_file_that_is_not_a_store_is_refused_and_left_as_it_was(tmp_path, kind, create):
    path = tmp_path / "other.db"
    FOREIGN[kind](path)
    before = digest(path)
    with pytest.raises(StoreError, match="not an mmtrans store"):
        Store(path, create=create)
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]  # no -wal, -lock, ...


def test_the_cli_refuses_a_foreign_file_in_one_line(tmp_path):
    path = FOREIGN["a view alone"](tmp_path / "view.db")
    before = digest(path)
    shown = subprocess.run([sys.executable, "-m", "mmtrans", "status", "--db", str(path)],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 2
    assert shown.stderr.count("\n") == 1 and "not an mmtrans store" in shown.stderr
    assert digest(path) == before


def test_a_dry_run_refuses_a_foreign_file_by_its_own_name_without_copying_it(tmp_path):
    from mmtrans.store import scratch_store

    path = FOREIGN["a view alone"](tmp_path / "view.db")
    before = digest(path)
    with pytest.raises(StoreError) as refused, scratch_store(path):
        pass
    assert str(refused.value).startswith(f"{path}: not an mmtrans store")
    assert digest(path) == before


def stored_run(path: Path) -> str:
    with Store(path) as store:
        run_id = store.upsert_run({"input_path": "in.json", "format": "json", "src": "ja",
                                   "tgt": "en"})
        store.add_translation(run_id, Translation("r1", 0, "accepted", None, [], [], None))
    return run_id


def rollback_journal(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    assert conn.execute("pragma journal_mode = delete").fetchone()[0] == "delete"
    conn.close()


def test_opening_to_read_never_writes_nor_switches_the_journal(tmp_path):
    path = tmp_path / "run.db"
    run_id = stored_run(path)
    rollback_journal(path)  # as an older mmtrans, or another tool, left it
    before = digest(path)
    with Store(path, create=False) as store:
        assert store.status(run_id)["accepted"] == 1
        assert [run["id"] for run in store.runs()] == [run_id]
        store.latest_translations(run_id)
    assert digest(path) == before
    with sqlite3.connect(path) as conn:
        assert conn.execute("pragma journal_mode").fetchone()[0] == "delete"
    assert not (tmp_path / "run.db-wal").exists()


def test_a_store_opened_to_read_is_upgraded_at_its_first_write(tmp_path):
    path = tmp_path / "run.db"
    run_id = stored_run(path)
    with sqlite3.connect(path) as conn:  # a store made before claims existed
        conn.execute("drop table claims")
        conn.execute("delete from _sqlite_migrations where name = 'm008_request_claims'")
    conn.close()
    rollback_journal(path)  # so that a write would show in the file itself
    before = digest(path)
    with Store(path, create=False) as store:
        assert store.counts(run_id)["accepted"] == 1
        assert digest(path) == before  # reading did not upgrade it
        store.add_review(run_id, "r1", "ann", "accept")
    with sqlite3.connect(path) as conn:
        names = {row[0] for row in conn.execute("select name from _sqlite_migrations")}
        assert "m008_request_claims" in names
        assert conn.execute("select count(*) from reviews").fetchone()[0] == 1


def test_no_sql_outside_the_store_package():
    """Every other module asks the Store by name; its connection is private."""
    root = Path(__file__).resolve().parent.parent / "mmtrans"
    offenders = [
        f"{path.relative_to(root)}:{n}" for path in root.rglob("*.py")
        if "store" not in path.relative_to(root).parts[:1]
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ".db[" in line or ".db.conn" in line or ".db.query" in line or "store._db" in line
        or "import sqlite3" in line]
    assert offenders == []


OPEN_AT = """
import sys, time
from pathlib import Path
from mmtrans.store import Store
start = float(sys.argv[2])
while time.time() < start:
    pass
with Store(Path(sys.argv[1]), create=True):
    pass
"""


def test_two_processes_creating_one_new_store_at_once_both_open_it(tmp_path):
    """Two runs started together on a new --db: both migrated it (`table ... already
    exists`) or one found the lock taken mid-transaction (`database is locked`), in 7 of
    10 tries. Now the second waits for the first's migration and finds nothing to do."""
    import os
    import time

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    for attempt in range(6):
        db = tmp_path / f"new{attempt}.db"
        start = time.time() + 1.5  # both are past their imports by then
        both = [subprocess.Popen([sys.executable, "-c", OPEN_AT, str(db), str(start)],
                                 env=env, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
        for p in both:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err.strip().splitlines()[-1]
        assert Store(db).runs() == []
