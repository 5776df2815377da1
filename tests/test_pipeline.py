"""A translate run end to end against the scripted server: store, resume, export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import mmtrans
from mmtrans import formats
from mmtrans.errors import LabelError
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply, good_translation

DATA_LABELS = Path(__file__).resolve().parent.parent / "data" / "labels"


def settings(llm: FakeLLM, **kw) -> mmtrans.Settings:
    return mmtrans.Settings(src="ja", tgt=kw.pop("tgt", "en"), labels=kw.pop("labels", ["scnm"]),
                            base_url=llm.base_url, model="fake", **kw)


def status(db: Path) -> dict:
    store = Store(db)
    try:
        return store.status()
    finally:
        store.close()


def test_good_translations_are_accepted_and_exported_as_mre(tmp_path, sample, llm):
    db = tmp_path / "run.db"
    result = mmtrans.translate(sample(12), db, settings(llm))
    assert (result["accepted"], result["flagged"], result["requests_sent"]) == (12, 0, 12)
    s = status(db)
    assert (s["records"], s["accepted"], s["pending"], s["requests"]) == (12, 12, 0, 12)
    assert s["tokens_in"] == 1200 and s["tokens_out"] == 240

    out = tmp_path / "scnm.en.json"
    exported = mmtrans.export(db, out, fmt="mre")
    assert exported.written == 12
    back = [r for r in formats.read(out) if isinstance(r, mmtrans.Record)]
    assert back[1].mentions[0].label == "Corporation Name"
    assert all(m.text in r.text for r in back for m in r.mentions)
    assert json.loads(out.read_text())[1]["output"].startswith("/NER/:Corporation Name;")


def test_every_defect_is_flagged_with_its_code_and_kept(tmp_path, sample, llm):
    def script(payload, request):
        good = good_translation(payload)
        n = len(llm.requests)
        if n == 1:
            good["text"] += " これは日本語です。"
        elif n == 2:
            good["entities"][0]["text"] = "Nobody Atall"
        elif n == 3:
            return Reply("I am sorry, I cannot translate this.")
        elif n == 4:
            good["entities"] = good["entities"][:-1]
        return Reply(json.dumps(good, ensure_ascii=False))

    llm.script = script
    db = tmp_path / "run.db"
    mmtrans.translate(sample(6, [1, 2, 3, 5, 6, 7]), db, settings(llm, concurrency=1, repair=0))
    store = Store(db)
    latest = store.latest_translations(store.latest_run())
    store.close()
    by_code = sorted(tuple(p["code"] for p in t.problems) for t in latest.values())
    assert by_code == [(), (), ("anchored",), ("count_mismatch",), ("format",),
                       ("residual_source",)]
    s = status(db)
    assert (s["accepted"], s["flagged"]) == (2, 4)
    assert s["problems"] == {"residual_source": 1, "anchored": 1, "format": 1,
                             "count_mismatch": 1}
    assert mmtrans.export(db, tmp_path / "a.json").written == 2
    # a reply that never parsed has nothing to write; the other flagged ones are kept, the
    # one whose mention is not in its text beside the file (no null span)
    flagged = mmtrans.export(db, tmp_path / "b.json", include_flagged=True)
    assert (flagged.written, flagged.unplaced) == (4, 1)


def test_unknown_labels_stop_the_run_before_any_request(tmp_path, sample, llm):
    table = tmp_path / "partial.ja-en.tsv"
    table.write_text("人名\tPerson\n地名\tLocation\n", encoding="utf-8")
    with pytest.raises(LabelError) as error:
        mmtrans.translate(sample(20), tmp_path / "run.db", settings(llm, labels=[str(table)]))
    assert {"法人名", "その他の組織名", "製品名"} <= set(error.value.missing)
    assert str(table) in str(error.value)
    assert llm.requests == [] and not (tmp_path / "run.db").exists()


def test_rerun_sends_no_request_and_cache_serves_a_new_run(tmp_path, sample, llm):
    db, path = tmp_path / "run.db", sample(8)
    mmtrans.translate(path, db, settings(llm, limit=5))
    assert len(llm.requests) == 5
    again = mmtrans.translate(path, db, settings(llm))  # the rest of the same run
    assert (again["skipped"], again["requests_sent"], len(llm.requests)) == (5, 3, 8)
    assert mmtrans.translate(path, db, settings(llm))["requests_sent"] == 0
    # a new run (another table file, same labels) finds every request in the cache
    copy = tmp_path / "copy.ja-en.tsv"
    shutil.copy(DATA_LABELS / "scnm.ja-en.tsv", copy)
    fresh = mmtrans.translate(path, db, settings(llm, labels=[str(copy)]))
    assert (fresh["accepted"], fresh["requests_sent"], len(llm.requests)) == (8, 0, 8)


def test_failed_requests_are_stored_and_retried_by_the_next_run(tmp_path, sample, llm):
    llm.script = lambda payload, request: Reply(status=400)
    db, path = tmp_path / "run.db", sample(3)
    first = mmtrans.translate(path, db, settings(llm))
    assert first["failed"] == 3 and status(db)["failed"] == 3
    llm.script = lambda payload, request: Reply(json.dumps(good_translation(payload)))
    second = mmtrans.translate(path, db, settings(llm))
    assert second["accepted"] == 3 and status(db)["failed"] == 0


def test_unreadable_lines_are_recorded_and_the_run_goes_on(tmp_path, llm):
    path = tmp_path / "mre.jsonl"
    path.write_text("\n".join([
        json.dumps({"input": "松友美佐紀は、日本のバドミントン選手。/NER",
                    "output": "社会/NER/:人名;松友美佐紀:地名;日本"}, ensure_ascii=False),
        '{"input": "broken',
        json.dumps({"input": "日本の首都。/NER", "output": "社会/NER/:地名;日本"},
                   ensure_ascii=False),
    ]), encoding="utf-8")
    db = tmp_path / "run.db"
    result = mmtrans.translate(path, db, settings(llm))
    assert (result["accepted"], result["rejects"]) == (2, 1)
    store = Store(db)
    rejects = list(store._db["rejects"].rows)
    store.close()
    assert (rejects[0]["path"], rejects[0]["line"]) == (str(path), 2)
    out = tmp_path / "out.jsonl"
    mmtrans.export(db, out)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert lines[0]["output"].startswith("Society/NER/:Person;")


def test_chinese_target(tmp_path, sample):
    with FakeLLM() as llm:
        llm.script = lambda payload, request: Reply(
            json.dumps(good_translation(payload, "zh"), ensure_ascii=False))
        result = mmtrans.translate(sample(5), tmp_path / "zh.db", settings(llm, tgt="zh"))
    assert result["accepted"] == 5


def test_repair_turns_name_the_problems_and_rescue_the_record(tmp_path, sample, llm):
    def script(payload, request):
        good = good_translation(payload)
        turn = len(request["messages"])
        if turn == 4:  # first answer: drop the location, alter the person
            good["entities"][0]["text"] = "Nobody Atall"
        elif turn == 6 and "まだ" not in request["messages"][-2]["content"]:
            good["text"] += " まだ"  # first repair: still leaves kana in the text
        return Reply(json.dumps(good, ensure_ascii=False))

    llm.script = script
    db = tmp_path / "run.db"
    result = mmtrans.translate(sample(indexes=[2]), db, settings(llm, repair=2))
    assert result["accepted"] == 1 and len(llm.requests) == 3
    repair_1 = llm.requests[1]["messages"][-1]["content"]
    assert "anchored at mentions[0] (translating '松友美佐紀')" in repair_1
    assert "'Nobody Atall' does not occur" in repair_1
    assert llm.requests[1]["messages"][-2]["role"] == "assistant"
    assert "residual_source" in llm.requests[2]["messages"][-1]["content"]
    # the second repair shows the last answer only, not the whole history again
    assert len(llm.requests[2]["messages"]) == 6
    assert "まだ" in llm.requests[2]["messages"][-2]["content"]
    store = Store(db)
    rows = [(r["attempt"], r["status"]) for r in store._db["translations"].rows]
    attempts = store.status()["attempts"]
    store.close()
    assert rows == [(0, "flagged"), (1, "flagged"), (2, "accepted")]
    assert {k: v["accepted"] for k, v in attempts.items()} == {"0": 0, "1": 0, "2": 1}
    assert attempts["2"]["tokens"] == 120
    # the rerun replays nothing and writes no new row
    assert mmtrans.translate(sample(indexes=[2]), db, settings(llm, repair=2))["done"] == 0


def test_a_record_still_flagged_after_its_repairs_is_kept_flagged(tmp_path, sample, llm):
    llm.script = lambda payload, request: Reply("no JSON here, sorry")
    db = tmp_path / "run.db"
    result = mmtrans.translate(sample(2), db, settings(llm, repair=1))
    assert result["flagged"] == 2 and len(llm.requests) == 4
    assert status(db)["flagged"] == 2


def test_a_model_that_repeats_its_flawed_answer_is_asked_again_each_turn(tmp_path, sample, llm):
    def script(payload, request):
        good = good_translation(payload)
        good["entities"][0]["text"] = "Nobody Atall"  # the same flaw, every time
        return Reply(json.dumps(good, ensure_ascii=False))

    llm.script = script
    result = mmtrans.translate(sample(indexes=[2]), tmp_path / "run.db", settings(llm, repair=2))
    assert result["flagged"] == 1
    assert len(llm.requests) == 3  # not served the first repair's cached answer again
    assert "repair turn 2 of 2" in llm.requests[2]["messages"][-1]["content"]
