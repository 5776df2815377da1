"""Reviews are tied to what was reviewed, and the review server refuses what a browser could
be tricked into: oversized bodies, DNS rebinding, cross-site writes, malformed bodies."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

import mmtrans
from mmtrans.review import loopback_hosts, make_app
from mmtrans.store import Store, Translation

from .review_data import make_review_db
from .test_review_browser import browser, open_page, served  # noqa: F401 (fixtures)


def flagged(client) -> list[dict]:
    return client.get("/api/queue").json()["entries"]


def body(entry: dict, decision: str = "accept", **extra) -> dict:
    return {"run": entry["run_id"], "id": entry["id"], "decision": decision,
            "annotator": "ann", "seen": 0, **extra}


def test_export_writes_the_translation_the_reviewer_accepted_not_a_later_one(
        tmp_path, stockmark_items):
    db = make_review_db(tmp_path, stockmark_items)
    client = TestClient(make_app(db))
    entry = next(e for e in flagged(client) if e["codes"] == ["residual_source"])
    answer = client.post("/api/decision", json=body(entry, override="kana in a name"))
    assert answer.status_code == 200
    with Store(db) as store:
        judged = store.latest_translation(entry["run_id"], entry["id"])
        (review,) = store.reviews(entry["run_id"], entry["id"])
        assert review.translation_id == judged.id
        later = Translation(entry["id"], 5, "accepted",
                            mmtrans.Record(entry["id"], "A later attempt nobody reviewed."),
                            [], [], None)
        store.add_translation(entry["run_id"], later)
    out = tmp_path / "out.jsonl"
    mmtrans.export(db, out, fmt="stockmark", include_overridden=True)
    texts = [json.loads(line)["text"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert judged.target.text in texts and "A later attempt nobody reviewed." not in texts


def test_accepting_a_record_with_no_translation_is_refused(tmp_path, stockmark_items):
    db = make_review_db(tmp_path, stockmark_items)
    client = TestClient(make_app(db))
    unparsed = next(e for e in flagged(client) if "format" in e["codes"])
    answer = client.post("/api/decision", json=body(unparsed))
    assert answer.status_code == 400 and "no usable translation" in answer.json()["error"]
    assert client.post("/api/decision", json=body(unparsed, "reject")).status_code == 200


def test_malformed_bodies_are_400_never_500(tmp_path, stockmark_items):
    db = make_review_db(tmp_path, stockmark_items)
    client = TestClient(make_app(db), raise_server_exceptions=False)
    entry = flagged(client)[0]
    cases = [("/api/undo", {"run": entry["run_id"], "id": entry["id"], "review": [1]}),
             ("/api/decision", [1, 2]), ("/api/decision", {**body(entry), "run": 7}),
             ("/api/check", "not an object")]
    for path, payload in cases:
        assert client.post(path, json=payload).status_code == 400, (path, payload)
    broken = client.post("/api/decision", content=b"{nope",
                         headers={"content-type": "application/json"})
    assert broken.status_code == 400


def test_a_body_over_1_mb_is_413(tmp_path, stockmark_items):
    db = make_review_db(tmp_path, stockmark_items)
    client = TestClient(make_app(db))
    entry = flagged(client)[0]
    big = body(entry, "edit", record={"text": "x" * (1 << 20)})
    assert client.post("/api/check", json=big).status_code == 413


def test_a_loopback_server_answers_only_its_own_host_and_json_from_its_own_origin(
        tmp_path, stockmark_items):
    db = make_review_db(tmp_path, stockmark_items)
    client = TestClient(make_app(db, hosts=loopback_hosts("127.0.0.1", 8700)),
                        base_url="http://127.0.0.1:8700")
    assert client.get("/api/queue").status_code == 200
    rebound = client.get("/api/queue", headers={"host": "evil.example:8700"})
    assert rebound.status_code == 403
    entry = flagged(client)[0]
    foreign = client.post("/api/decision", json=body(entry, "reject"),
                          headers={"origin": "http://evil.example"})
    assert foreign.status_code == 403
    form = client.post("/api/decision", content=json.dumps(body(entry, "reject")),
                       headers={"content-type": "text/plain"})
    assert form.status_code == 403
    own = client.post("/api/decision", json=body(entry, "reject"),
                      headers={"origin": "http://127.0.0.1:8700"})
    assert own.status_code == 200


def test_a_non_ascii_token_is_refused_not_a_crash(tmp_path, stockmark_items):
    db = make_review_db(tmp_path, stockmark_items)
    client = TestClient(make_app(db, token="s3cret"), raise_server_exceptions=False)
    assert client.get("/api/queue", params={"token": "sécret"}).status_code == 401
    assert client.get("/api/queue", params={"token": "s3cret"}).status_code == 200


def test_highlights_fall_on_the_mention_after_astral_characters(tmp_path, browser, serve):  # noqa: F811
    from mmtrans.testing import FakeLLM

    source = tmp_path / "astral.json"
    source.write_text(json.dumps([{
        "curid": "1", "text": "😀𠮷 松友美佐紀は日本のバドミントン選手。",
        "entities": [{"name": "松友美佐紀", "span": [3, 8], "type": "人名"},
                     {"name": "日本", "span": [9, 11], "type": "地名"}]}],
        ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "astral.db"
    with FakeLLM() as llm:
        mmtrans.translate(source, db, mmtrans.Settings(src="ja", tgt="en", labels=["scnm"],
                                                       base_url=llm.base_url))
    page = open_page(browser, serve(db, annotator="ann", spot_check=1.0))
    marks = page.locator("#source-text mark").all_inner_texts()
    assert marks == ["松友美佐紀", "日本"]
    page.close()


def test_keeping_a_record_with_open_problems_needs_a_reason_and_an_explicit_export(
        tmp_path, stockmark_items):
    db = make_review_db(tmp_path, stockmark_items)
    client = TestClient(make_app(db))
    anchored = next(e for e in flagged(client) if e["codes"] == ["anchored"])
    refused = client.post("/api/decision", json=body(anchored))
    assert refused.status_code == 422 and refused.json()["problems"][0]["code"] == "anchored"
    kept = client.post("/api/decision", json=body(anchored, override="name checked by hand"))
    assert kept.status_code == 200
    with Store(db) as store:
        (review,) = store.reviews(anchored["run_id"], anchored["id"])
    assert review.reason == "name checked by hand"
    out = tmp_path / "out.jsonl"
    for include in (False, True):  # its mention is not in the text: never a broken span
        mmtrans.export(db, out, fmt="stockmark", include_overridden=include,
                       force=True)
        spans = [e["span"] for line in out.read_text(encoding="utf-8").splitlines()
                 for e in json.loads(line)["entities"]]
        assert [None, None] not in spans and len(out.read_text().splitlines()) == 3


def test_progress_counts_decisions_made_and_undo_walks_back_an_annotators_history(
        tmp_path, stockmark_items):
    db = make_review_db(tmp_path, stockmark_items)
    client = TestClient(make_app(db))
    a, b, c = flagged(client)
    client.post("/api/decision", json={**body(a, "reject"), "annotator": "aiko"})
    client.post("/api/decision", json={**body(c, "reject"), "annotator": "aiko"})
    rows = client.get("/api/record", params={"run": a["run_id"], "id": a["id"]}).json()
    overridden = client.post("/api/decision", json={**body(a, "reject"), "annotator": "ben",
                                                    "seen": rows["seen"], "force": True})
    assert overridden.status_code == 200
    progress = client.get("/api/queue").json()["progress"]
    assert progress["by_annotator"] == {"aiko": 2, "ben": 1}  # aiko's work still counts
    first = client.post("/api/undo", json={"annotator": "aiko"}).json()
    second = client.post("/api/undo", json={"annotator": "aiko"}).json()
    assert (first["id"], second["id"]) == (c["id"], a["id"])
    assert client.post("/api/undo", json={"annotator": "aiko"}).status_code == 409
    assert client.get("/api/queue").json()["progress"]["by_annotator"] == {"ben": 1}
