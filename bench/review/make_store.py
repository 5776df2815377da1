"""A store of N flagged records for the review bench, made in a minute instead of a day.

A small run (`SEED` stockmark records, each answer left with kana so every one is flagged)
is translated for real against the scripted loopback server; its records, translations and
cached answers are then repeated with new ids into one run of N records, through the store's
own API (`add_input`, `add_translation` in grouped writes), so the queue table and its trigger
are exercised exactly as a real run fills them.

    python bench/review/make_store.py OUT.db [--records 1000000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import mmtrans
from mmtrans.records import Record
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply, good_translation

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from overhead.run import make_input  # noqa: E402 (the stockmark input, repeated)

SEED = 200


def flagged(payload: dict, request: object) -> Reply:
    answer = good_translation(payload)
    answer["text"] += " これは"  # residual kana: every record goes to review
    return Reply(json.dumps(answer, ensure_ascii=False))


def _seed(db: Path) -> None:
    source = db.parent / "seed.json"
    make_input(source, SEED)
    with FakeLLM(flagged) as llm:
        mmtrans.translate(source, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, repair=0,
            concurrency=32))


def make_store(db: Path, records: int) -> str:
    """Fill `db` (a new file) with one run of `records` flagged records; returns its id."""
    with tempfile.TemporaryDirectory() as tmp:
        seed_db = Path(tmp) / "seed.db"
        _seed(seed_db)
        with Store(seed_db, create=False) as seed:
            run_id = seed.latest_run()
            assert run_id is not None
            run = seed.run(run_id)
            config = json.loads(run["config"])
            sources = list(seed.records(run_id))
            latest = seed.latest_translations(run_id)
    config = {**config, "input_hash": f"bench-{records}"}  # a run of its own

    def copies() -> Iterator[Record]:
        for i in range(records):
            r = sources[i % len(sources)]
            yield replace(r, id=f"{r.id}~{i}") if i >= len(sources) else r

    with Store(db) as store:
        new_run = store.upsert_run(config)
        store.add_input(copies(), config["input_path"], lambda: config, {})
        # add_input names the run by the config it is handed: the same config, the same id.
        with store.grouped():
            for i in range(records):
                r = sources[i % len(sources)]
                t = latest[r.id]
                record_id = f"{r.id}~{i}" if i >= len(sources) else r.id
                target = replace(t.target, id=record_id) if t.target else None
                store.add_translation(new_run, replace(t, record_id=record_id,
                                                       target=target, id=None))
        store.index_search()  # what the first search of a review server would do
    return new_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.db.exists():
        sys.exit(f"{args.db} exists: give a new file")
    started = time.monotonic()
    run_id = make_store(args.db, args.records)
    print(f"run {run_id}: {args.records} flagged records in {args.db} in "
          f"{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
