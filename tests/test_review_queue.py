"""The review queue is paged and filtered on the server, from the store's queue table (kept by
a trigger on translations): a page after or before a cursor, search by text, filter by
annotator, problem code and state, counts that agree with the pages."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

import mmtrans
from mmtrans.review import make_app
from mmtrans.review import queue as review_queue
from mmtrans.store import Store, Translation
from mmtrans.testing import FakeLLM, Reply, good_translation

from .review_data import make_review_db


def flagged(payload, request):
    answer = good_translation(payload)
    answer["text"] += " これは"  # residual kana: every record goes to review
    return Reply(json.dumps(answer, ensure_ascii=False))


@pytest.fixture(scope="module")
def many(tmp_path_factory, stockmark_items) -> str:
    """A store of 25 flagged records (stockmark items repeated with ids of their own)."""
    folder = tmp_path_factory.mktemp("many")
    items = [{**stockmark_items[i % 10], "curid": f"{stockmark_items[i % 10]['curid']}-{i}"}
             for i in range(25)]
    source = folder / "many.json"
    source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    db = folder / "many.db"
    with FakeLLM(flagged) as llm:
        mmtrans.translate(source, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, repair=0,
            concurrency=8))
    return str(db)


def cursor(e: dict) -> str:
    return f"{int(e['status'] == 'accepted')},{e['run_id']},{e['position']}"


def test_pages_after_and_before_a_cursor_walk_the_whole_queue_in_order(many):
    client = TestClient(make_app(many))
    first = client.get("/api/queue", params={"limit": 10}).json()
    assert first["total"] == 25 and len(first["entries"]) == 10
    assert first["more_after"] and not first["more_before"]
    seen, page = list(first["entries"]), first
    while page["more_after"]:
        page = client.get("/api/queue", params={"limit": 10,
                                                "after": cursor(page["entries"][-1])}).json()
        seen += page["entries"]
    positions = [e["position"] for e in seen]
    assert positions == sorted(positions) and len(set(positions)) == 25
    back = client.get("/api/queue", params={"limit": 10, "before": cursor(seen[15])}).json()
    assert [e["position"] for e in back["entries"]] == positions[5:15]
    assert back["more_before"] and back["more_after"]


def test_a_decision_made_meanwhile_does_not_shift_the_next_page(many, tmp_path):
    db = tmp_path / "copy.db"
    with Store(many, create=False) as source, Store(db) as target:
        source._db.conn.backup(target._db.conn)
    client = TestClient(make_app(db))
    todo = {"status": "to review", "limit": 5}
    page = client.get("/api/queue", params=todo).json()
    for e in page["entries"]:  # the annotator decides the whole page
        answer = client.post("/api/decision", json={
            "run": e["run_id"], "id": e["id"], "decision": "reject", "annotator": "ann",
            "seen": 0})
        assert answer.status_code == 200
    after = client.get("/api/queue", params={**todo, "after": cursor(page["entries"][-1])})
    assert after.json()["entries"][0]["position"] == page["entries"][-1]["position"] + 1
    assert after.json()["total"] == 20


def test_search_finds_text_in_the_source_or_the_translation(many):
    client = TestClient(make_app(many))
    every = client.get("/api/queue", params={"limit": 1000}).json()["entries"]
    with Store(many, create=False) as store:
        views = {e["id"]: (store.record(e["run_id"], e["id"]).text,
                           store.latest_translation(e["run_id"], e["id"]).target.text)
                 for e in every}
    source_word = views[every[3]["id"]][0][:4]
    target_word = views[every[4]["id"]][1].split()[4]
    for needle, side in ((source_word, 0), (target_word.upper(), 1), ("は", 0)):
        found = client.get("/api/queue", params={"q": needle, "limit": 1000}).json()
        expected = {i for i, texts in views.items() if needle.lower() in texts[side].lower()}
        assert {e["id"] for e in found["entries"]} >= expected and found["entries"]
        assert found["total"] == len(found["entries"])
        assert all(needle.lower() in " ".join(views[e["id"]]).lower()
                   for e in found["entries"])
    assert client.get("/api/queue", params={"q": "100%_x"}).json()["total"] == 0


def test_a_search_too_common_to_count_is_paged_row_by_row_and_counted_as_over(
        many, monkeypatch):
    monkeypatch.setattr(review_queue, "SEARCH_CAP", 3)
    client = TestClient(make_app(many))
    common = client.get("/api/queue", params={"q": "これは", "limit": 10}).json()
    assert common["more_than_total"] and common["total"] == 3
    assert len(common["entries"]) == 10 and common["more_after"]
    rare = client.get("/api/queue", params={"q": "-24", "limit": 10}).json()
    assert not rare["more_than_total"] and rare["total"] == 0  # ids are not searched


def test_filter_by_annotator_and_state_counts_what_the_pages_hold(tmp_path, stockmark_items):
    db = make_review_db(tmp_path, stockmark_items)
    client = TestClient(make_app(db))
    a, b, c = client.get("/api/queue").json()["entries"]
    for entry, who, decision in ((a, "ann", "reject"), (b, "ben", "reject"),
                                 (c, "ben", "edit")):
        body = {"run": entry["run_id"], "id": entry["id"], "decision": decision,
                "annotator": who, "seen": 0, "override": "fine"}
        if decision == "edit":
            view = client.get("/api/record", params={"run": entry["run_id"],
                                                     "id": entry["id"]}).json()
            body["record"] = {"text": "A fixed text.", "mentions": []}
            assert view["id"] == entry["id"]
        assert client.post("/api/decision", json=body).status_code == 200
    ben = client.get("/api/queue", params={"by": "ben"}).json()
    assert [e["id"] for e in ben["entries"]] == [b["id"], c["id"]] and ben["total"] == 2
    assert ben["annotators"] == ["ann", "ben"]
    rejected_by_ben = client.get("/api/queue", params={"by": "ben",
                                                       "status": "rejected"}).json()
    assert [e["id"] for e in rejected_by_ben["entries"]] == [b["id"]]
    assert client.get("/api/queue", params={"status": "to review"}).json()["total"] == 0
    page = client.get("/api/queue").json()
    assert page["progress"]["reviewed"] == 3 and page["progress"]["in_queue"] == 3
    assert client.get("/api/queue", params={"by": "nobody"}).json()["total"] == 0


def test_a_new_attempt_replaces_the_queue_row_and_what_search_finds(tmp_path, stockmark_items):
    db = make_review_db(tmp_path, stockmark_items)
    client = TestClient(make_app(db))
    entry = client.get("/api/queue", params={"code": "residual_source"}).json()["entries"][0]
    with Store(db) as store:
        store.add_translation(entry["run_id"], Translation(
            entry["id"], 9, "flagged", mmtrans.Record(entry["id"], "Quokka text now."),
            [{"code": "anchored", "where": "x", "message": "m"}], [], None))
    assert client.get("/api/queue", params={"q": "quokka"}).json()["entries"][0]["id"] == \
        entry["id"]
    assert client.get("/api/queue", params={"code": "residual_source"}).json()["total"] == 0
    found = client.get("/api/queue", params={"code": "anchored"}).json()
    assert entry["id"] in {e["id"] for e in found["entries"]}
    assert "residual_source" not in client.get("/api/queue").json()["codes"]
