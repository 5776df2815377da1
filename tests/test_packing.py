"""--pack K: K records share one request for their first answers; a packed answer that does
not split whole is retried record by record; the records end as they do unpacked."""

from __future__ import annotations

import json

import pytest

import mmtrans
from mmtrans.packing import split_answer, with_index
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply, answer_packed, good_translation


def settings(llm, **kw) -> mmtrans.Settings:
    return mmtrans.Settings(**{"src": "ja", "tgt": "en", "labels": ["scnm"],
                               "base_url": llm.base_url, "model": "fake", **kw})


def final_records(db) -> dict:
    with Store(db) as store:
        return {rid: (t.status, t.target.to_dict() if t.target else None)
                for rid, t in store.latest_translations(store.latest_run()).items()}


def test_a_packed_answer_splits_by_index_whatever_its_order():
    reply = '```json\n[{"index": 1, "text": "b"}, {"index": 0, "text": "a"}]\n```'
    assert split_answer(reply, 2) == ['{"text": "a"}', '{"text": "b"}']
    assert with_index('{"text": "x"}', 3) == '{"index": 3, "text": "x"}'


@pytest.mark.parametrize("reply", [
    '[{"index": 0, "text": "a"}]',                            # one answer for two records
    '[{"index": 0, "text": "a"}, {"index": 0, "text": "b"}]',  # an index twice
    '[{"index": 0, "text": "a"}, {"text": "b"}]',              # an index missing
    'Sorry, here is the first: {"text": "a"}',                 # no array at all
])
def test_a_packed_answer_that_does_not_split_whole_splits_into_nothing(reply):
    assert split_answer(reply, 2) is None


@pytest.mark.parametrize("strategy", ["default", "tagged"])
def test_packed_records_end_as_unpacked_ones_with_a_quarter_of_the_requests(
        tmp_path, sample, strategy):
    path = sample(8)
    with FakeLLM() as llm:
        mmtrans.translate(path, tmp_path / "one.db", settings(llm, strategy=strategy))
        assert len(llm.requests) == 8
    with FakeLLM() as llm:
        mmtrans.translate(path, tmp_path / "packed.db", settings(llm, strategy=strategy, pack=4))
        assert len(llm.requests) == 2
        assert "records from Japanese into English" in llm.requests[0]["messages"][3]["content"]
    assert final_records(tmp_path / "packed.db") == final_records(tmp_path / "one.db")
    with Store(tmp_path / "packed.db") as store:  # a shared request is paid once
        assert store.status()["attempts"]["0"]["tokens"] == 2 * 120


def test_a_bad_packed_answer_is_retried_record_by_record(tmp_path, sample):
    def script(payload, request):
        if "packed" in payload:
            packed = json.loads(answer_packed(payload))
            return Reply(json.dumps(packed[:-1], ensure_ascii=False))  # one answer short
        return Reply(json.dumps(good_translation(payload), ensure_ascii=False))

    path = sample(6)
    with FakeLLM() as llm:
        mmtrans.translate(path, tmp_path / "one.db", settings(llm))
    with FakeLLM(script) as llm:
        result = mmtrans.translate(path, tmp_path / "packed.db", settings(llm, pack=3))
        assert len(llm.requests) == 2 + 6  # two packs, then each record alone
    assert result["accepted"] == 6
    assert final_records(tmp_path / "packed.db") == final_records(tmp_path / "one.db")


def test_a_flawed_part_of_a_packed_answer_is_repaired_alone(tmp_path, sample):
    def script(payload, request):
        if "packed" in payload:
            packed = json.loads(answer_packed(payload))
            packed[1]["entities"][0]["text"] = "Nobody Atall"
            return Reply(json.dumps(packed, ensure_ascii=False))
        return Reply(json.dumps(good_translation(payload), ensure_ascii=False))

    with FakeLLM(script) as llm:
        result = mmtrans.translate(sample(4), tmp_path / "run.db", settings(llm, pack=4))
        repairs = llm.requests[1:]
    assert result["accepted"] == 4
    assert len(repairs) == 1 and "Nobody Atall" in repairs[0]["messages"][-2]["content"]


def _stored(db) -> list:
    """Every translation row of the run: record, attempt, status, target, problems, notes."""
    with Store(db) as store:
        rows = store._db.conn.execute(
            "select record_id, attempt, status, target, problems, notes from translations "
            "order by record_id, attempt").fetchall()
    return rows


@pytest.mark.parametrize("strategy", ["default", "tagged"])
def test_checks_in_a_process_of_their_own_store_exactly_what_the_run_stores_alone(
        tmp_path, sample, strategy):
    """A pack's replies are parsed and checked in the check process (by the same parsers:
    the tagged one reads tags), one record's checks at a time there when it is alone."""
    def script(payload, request):  # of a pack of four: one still in Japanese, one unreadable
        def answer(p):
            good = good_translation({k: v for k, v in p.items() if k != "index"})
            index = p.get("index", 0)
            if index == 1:
                return {**good, "text": p["text"]}
            return {**good, "text": 5} if index == 2 else good
        if "packed" in payload:
            return Reply(json.dumps([{"index": p["index"], **answer(p)}
                                     for p in payload["packed"]], ensure_ascii=False))
        return Reply(json.dumps(good_translation(payload), ensure_ascii=False))

    path = sample(12)
    for pack in (4, 1):
        with FakeLLM(script) as llm:
            mmtrans.translate(path, tmp_path / f"here{pack}.db",
                              settings(llm, pack=pack, repair=0, strategy=strategy))
        with FakeLLM(script) as llm:
            mmtrans.translate(path, tmp_path / f"pool{pack}.db",
                              settings(llm, pack=pack, repair=0, strategy=strategy,
                                       check_processes=1))
        here, pool = _stored(tmp_path / f"here{pack}.db"), _stored(tmp_path / f"pool{pack}.db")
        flagged = [json.loads(problems)[0]["code"] for _, _, status, _, problems, _ in here
                   if status == "flagged"]
        assert sorted(flagged) == (["format"] * 3 + ["residual_source"] * 3 if pack > 1
                                   else [])
        assert pool == here


def _check_pairs(sample, n: int) -> list:
    """(expected, target) pairs of `n` sample records, every third target still Japanese."""
    from mmtrans import formats
    from mmtrans.labels import load_tables
    from mmtrans.payload import parse_reply
    from mmtrans.records import Record

    table = load_tables(["scnm"], "ja", "en")
    expected = [table.translate(r) for r in formats.read(sample(n)) if isinstance(r, Record)]
    pairs = []
    for i, e in enumerate(expected):
        good = good_translation(json.loads(_payload(e)))
        target, _ = parse_reply(json.dumps({**good, "text": e.text} if i % 3 == 1 else good,
                                           ensure_ascii=False), e)
        pairs.append((e, target))
    return pairs


def _in_pool(processes: int, use, method: str | None = None) -> tuple:
    """`use(pool)` awaited in an event loop of its own, and the pool after it is closed."""
    import asyncio

    from mmtrans.check_pool import CheckPool

    async def run():
        pool = CheckPool(processes, "ja", "en", method)
        try:
            return await use(pool), pool
        finally:
            await pool.stop()
            pool.close()

    return asyncio.run(run())


def test_each_check_goes_to_the_least_busy_worker_and_each_caller_gets_its_own_results(
        sample):
    """Ten checks asked for at once: one call each, spread over both workers, and each
    caller's results are those `check_all` gives for its pair."""
    import asyncio

    from mmtrans.check_pool import check_all

    pairs = _check_pairs(sample, 10)

    async def use(pool):
        return await asyncio.gather(*(pool.check([pair]) for pair in pairs))

    results, pool = _in_pool(2, use)
    alone = check_all(pairs, "ja", "en")
    assert [(r.record, r.problems, r.notes) for (r,) in results] == \
        [(r.record, r.problems, r.notes) for r in alone]
    assert sum(1 for r in alone if r.problems) == 3
    assert (pool.calls, pool.pairs) == (10, 10)
    assert [w.calls for w in pool._workers] == [5, 5]


def test_the_workers_exit_as_soon_as_the_run_closes_its_end(sample):
    """A forked worker holds copies of the run's ends of every socket of the pool: unless it
    closes them, the run closing its end is no end of input, and closing the pool waits its
    10 s of grace and then kills the workers."""
    import time

    pairs = _check_pairs(sample, 2)

    async def use(pool):
        return await pool.check(pairs)

    started = time.monotonic()
    _, pool = _in_pool(2, use, "fork")
    assert [w.process.exitcode for w in pool._workers] == [0, 0]
    assert time.monotonic() - started < 5


def test_a_worker_that_dies_mid_run_stops_the_run_with_one_line_not_a_hang(sample):
    import asyncio
    import os
    import signal

    from mmtrans.errors import CheckProcessError

    pairs = _check_pairs(sample, 2)

    async def use(pool):
        await pool.check(pairs)  # the worker is up and answering
        os.kill(pool._workers[0].process.pid, signal.SIGKILL)
        await asyncio.sleep(0.5)  # it dies idle: no call of its is outstanding
        for _ in range(2):  # nor is any call to come left waiting
            with pytest.raises(CheckProcessError, match="exit code -9"):
                await asyncio.wait_for(pool.check(pairs), 10)  # (a hang fails, not waits)
        return None

    _in_pool(1, use, "fork")


def _raises_input_error(items, src, tgt):
    """A check that raises an error the run could not rebuild from its pickle."""
    from mmtrans.errors import InputError

    raise InputError("x.json", 3, "no such thing")


def test_an_error_the_run_cannot_rebuild_comes_back_named_and_the_worker_goes_on(sample):
    """InputError pickles, but takes other arguments than its message: unpickled as it is,
    it killed the reader of the worker's answers, and every check after it waited."""
    import asyncio

    from mmtrans.errors import CheckProcessError

    pairs = _check_pairs(sample, 2)

    async def use(pool):
        with pytest.raises(CheckProcessError, match="InputError"):
            await asyncio.wait_for(pool._call(_raises_input_error, []), 10)
        return await asyncio.wait_for(pool.check(pairs), 10)

    results, _ = _in_pool(1, use, "fork")
    assert len(results) == 2


def test_a_caller_cancelled_while_the_pool_opens_cancels_no_other(sample):
    import asyncio

    pairs = _check_pairs(sample, 2)

    async def use(pool):
        first = asyncio.ensure_future(pool.check(pairs))
        second = asyncio.ensure_future(pool.check(pairs))
        await asyncio.sleep(0)  # both wait for the one opening
        first.cancel()
        return await asyncio.wait_for(second, 10)

    results, _ = _in_pool(1, use, "fork")
    assert len(results) == 2


def _sleeps(items, src, tgt):
    import time

    time.sleep(60)


def test_closing_kills_a_worker_that_does_not_end_in_its_grace(sample, monkeypatch):
    """The worker ignores SIGTERM (the run handles it): past its grace it is killed."""
    import asyncio
    import time

    from mmtrans import check_pool

    monkeypatch.setattr(check_pool, "_GRACE", 0.5)

    async def use(pool):
        busy = asyncio.ensure_future(pool._call(_sleeps, []))
        await asyncio.sleep(0.5)  # it is in the 60 s call
        busy.cancel()
        return None

    started = time.monotonic()
    _, pool = _in_pool(1, use, "fork")
    assert time.monotonic() - started < 10
    assert pool._workers[0].process.exitcode == -9


def _payload(record) -> str:
    from mmtrans.payload import payload_json

    return payload_json(record)


def test_a_reply_nested_too_deeply_to_read_is_a_format_problem_not_a_crash(sample):
    """json.loads raises RecursionError, not ValueError, on 100,000 nested brackets: it
    crashed the run with a traceback."""
    from mmtrans import formats
    from mmtrans.labels import load_tables
    from mmtrans.payload import parse_reply
    from mmtrans.records import Record

    deep = '{"text": "x", "entities": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert split_answer("[" * 100_000 + "]" * 100_000, 1) is None
    table = load_tables(["scnm"], "ja", "en")
    expected = next(table.translate(r) for r in formats.read(sample(1)) if isinstance(r, Record))
    target, problems = parse_reply(deep, expected)
    assert target is None
    assert [p.code for p in problems] == ["format"]
    assert "nested too deeply" in problems[0].message


def test_a_cli_process_can_fork_its_worker_though_numpy_runs_a_native_thread():
    """Counting native threads too (OpenBLAS's, started when numpy is imported) turned the
    check process off in every run."""
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-c", "import mmtrans.cli, numpy; from mmtrans.check_pool import "
         "auto_processes, can_fork, usable_cores; print(can_fork(), auto_processes(), "
         "usable_cores())"], cwd=Path(__file__).resolve().parents[1], capture_output=True,
        text=True, check=True)
    fork, processes, cores = done.stdout.split()
    assert fork == "True"
    assert processes == ("1" if int(cores) >= 2 else "0")
