"""The review API over a real SQLite file: queue, decisions, conflicts, undo, edits, access."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from starlette.testclient import TestClient

import mmtrans
from mmtrans.resources import resource_dir
from mmtrans.review import access_token, make_app, parse_share
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply

from .review_data import WRONG_NAME, make_review_db


@pytest.fixture
def db(tmp_path, stockmark_items):
    return make_review_db(tmp_path, stockmark_items)


@pytest.fixture
def client(db):
    return TestClient(make_app(db))


def entries(client, **filters):
    return client.get("/api/queue", params=filters).json()["entries"]


def decide(client, entry, decision, annotator="ann", record=None, seen=0, force=False,
           override=None):
    body = {"run": entry["run_id"], "id": entry["id"], "decision": decision,
            "annotator": annotator, "seen": seen, "force": force}
    if record is not None:
        body["record"] = record
    if override is not None:
        body["override"] = override
    return client.post("/api/decision", json=body)


def test_queue_holds_flagged_records_first_with_filters(client):
    queue = entries(client)
    assert [(e["id"], e["codes"]) for e in queue] == [
        ("scnm.json:1", ["anchored"]), ("scnm.json:3", ["residual_source"]),
        ("scnm.json:5", ["format"])]
    assert [e["id"] for e in entries(client, code="format")] == ["scnm.json:5"]
    assert [e["id"] for e in entries(client, dataset="scnm.json")] == [
        "scnm.json:1", "scnm.json:3", "scnm.json:5"]
    assert entries(client, dataset="other.json") == []
    assert len(entries(client, status="to review")) == 3
    assert entries(client, status="rejected") == []
    page = client.get("/api/queue").json()
    assert page["progress"] == {"in_queue": 3, "reviewed": 0, "by_annotator": {}}
    assert page["codes"] == ["anchored", "format", "residual_source"]


def test_spot_check_draws_a_stable_share_of_accepted_records(db):
    everything = TestClient(make_app(db, spot_check=1.0)).get("/api/queue").json()["entries"]
    assert len(everything) == 6 and [e["status"] for e in everything[3:]] == ["accepted"] * 3
    none = TestClient(make_app(db, spot_check=0.0)).get("/api/queue").json()["entries"]
    assert len(none) == 3
    assert parse_share("5%") == 0.05 and parse_share("0.2") == 0.2


def test_record_view_has_both_texts_spans_problems_and_raw_output(client):
    entry = entries(client)[0]
    view = client.get("/api/record", params={"run": entry["run_id"], "id": entry["id"]}).json()
    assert view["source"]["text"] == "松友美佐紀は、日本のバドミントン選手。"
    assert [(m["start"], m["end"]) for m in view["source"]["mentions"]] == [(0, 5), (7, 9)]
    assert view["target"]["mentions"][0]["text"] == WRONG_NAME
    assert view["target"]["mentions"][0]["start"] is None  # it does not occur
    assert view["problems"][0]["code"] == "anchored"
    assert json.loads(view["raw"])["entities"][0]["text"] == WRONG_NAME
    assert view["expected_labels"] == ["Person", "Location"] and view["state"] == "to review"
    missing = client.get("/api/record", params={"run": entry["run_id"], "id": "nope"})
    assert missing.status_code == 404


def test_two_annotators_on_one_record_conflict_and_nothing_is_lost(client, db):
    entry = entries(client)[1]
    first = decide(client, entry, "accept", annotator="aiko", override="kana is a name here")
    assert first.status_code == 200
    second = decide(client, entry, "reject", annotator="ben")  # ben had not seen aiko's
    assert second.status_code == 409
    assert second.json()["theirs"]["annotator"] == "aiko"
    # Seeing aiko's decision is not enough to override it: ben is asked, and says so.
    assert decide(client, entry, "reject", annotator="ben",
                  seen=second.json()["seen"]).status_code == 409
    forced = decide(client, entry, "reject", annotator="ben", seen=second.json()["seen"],
                    force=True)
    assert forced.status_code == 200 and forced.json()["view"]["state"] == "rejected"
    store = Store(db)
    rows = [(r["annotator"], r["decision"]) for r in store._db["reviews"].rows]
    store.close()
    assert rows == [("aiko", "accept"), ("ben", "reject")]


def test_edits_are_checked_and_a_record_that_does_not_parse_is_refused(client, db):
    entry = entries(client)[0]
    view = client.get("/api/record", params={"run": entry["run_id"], "id": entry["id"]}).json()
    fixed = {"text": view["target"]["text"], "label": None,
             "mentions": [{"label": "Person", "text": "Misaki Matsutomo"},
                          dict(view["target"]["mentions"][1])]}
    fixed["text"] = fixed["text"].replace(fixed["mentions"][1]["text"], "Japan")
    fixed["mentions"][1] = {"label": "Location", "text": "Japan"}
    checked = client.post("/api/check", json={"run": entry["run_id"], "id": entry["id"],
                                               "record": fixed}).json()
    assert [p["code"] for p in checked["problems"]] == ["anchored"]  # Misaki Matsutomo absent
    fixed["text"] = "Misaki Matsutomo is a badminton player from Japan."
    checked = client.post("/api/check", json={"run": entry["run_id"], "id": entry["id"],
                                               "record": fixed}).json()
    assert checked["problems"] == []
    bad = decide(client, entry, "edit", record={"text": "", "mentions": []})
    assert bad.status_code == 400 and "non-empty" in bad.json()["error"]
    bad = decide(client, entry, "edit", record={"text": "x", "mentions": [{"label": 3}]})
    assert bad.status_code == 400 and "mentions[0]" in bad.json()["error"]
    assert decide(client, entry, "edit", record=fixed).status_code == 200
    store = Store(db)
    rows = list(store._db["reviews"].rows)
    store.close()
    assert len(rows) == 1 and json.loads(rows[0]["record"])["text"] == fixed["text"]


def test_undo_takes_back_a_decision_with_a_new_row(client, db):
    entry = entries(client)[2]
    review = decide(client, entry, "reject").json()["review"]
    undone = client.post("/api/undo", json={"run": entry["run_id"], "id": entry["id"],
                                            "review": review, "annotator": "ann"})
    assert undone.status_code == 200 and undone.json()["view"]["state"] == "to review"
    again = client.post("/api/undo", json={"run": entry["run_id"], "id": entry["id"],
                                           "review": review, "annotator": "ann"})
    assert again.status_code == 409
    store = Store(db)
    assert [r["decision"] for r in store._db["reviews"].rows] == ["reject", "undo"]
    store.close()


def test_export_takes_the_latest_decision_and_status_counts_reviews(client, db, tmp_path):
    flagged = entries(client)
    decide(client, flagged[0], "reject")
    assert decide(client, flagged[1], "accept").json()["error"] == "needs_reason"
    decide(client, flagged[1], "accept", override="the kana is part of a name")
    view = client.get("/api/record", params={"run": flagged[2]["run_id"],
                                             "id": flagged[2]["id"]}).json()
    expected = [{"label": label, "text": f"Name{i}"} for i, label in
                enumerate(view["expected_labels"])]
    text = "The station " + " and ".join(m["text"] for m in expected) + " is closed now."
    decide(client, flagged[2], "edit", record={"text": text, "mentions": expected})
    out = tmp_path / "final.json"
    assert mmtrans.export(db, out, fmt="mre").written == 4  # the overridden one left out
    result = mmtrans.export(db, out, fmt="mre", include_overridden=True, force=True)
    texts = [item["input"] for item in json.loads(out.read_text())]
    assert result.written == 5  # 3 accepted by the checks + 1 accepted + 1 edited
    assert f"{text}/NER" in texts
    assert not any("Misaki" in t for t in texts)  # rejected
    store = Store(db)
    assert store.status()["reviews"] == {"accepted": 1, "edited": 1, "rejected": 1}
    store.close()


def test_a_token_is_required_on_every_request(db):
    client = TestClient(make_app(db, token="s3cret"))
    assert client.get("/api/queue").status_code == 401
    assert client.get("/").status_code == 401
    assert client.get("/app.js").status_code == 401
    assert client.get("/api/queue", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/queue", headers={"authorization": "Bearer s3cret"}).status_code == 200
    page = client.get("/?token=s3cret")
    assert page.status_code == 200 and "mmtrans review" in page.text
    assert client.get("/app.js").status_code == 200  # the cookie set above
    assert access_token("127.0.0.1", None) is None
    assert access_token("0.0.0.0", None) and access_token("0.0.0.0", "given") == "given"


def raw_get(base_url: str, target: str) -> tuple[int, bytes]:
    """GET `target` exactly as written: HTTP clients (httpx, urllib) resolve `..` and
    `%2e%2e` before sending, so they cannot show what the server does with them."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     "Connection: close\r\n\r\n".encode("ascii"))
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


#: Paths that name a file outside review_ui/ once their dots are followed (each exists:
#: only the server stands between it and the client). 16 levels up is / from any checkout.
OUTSIDE = ["/../pyproject.toml", "/%2e%2e/pyproject.toml", "/..%2fpyproject.toml",
           "/" + "%2e%2e%2f" * 16 + "etc%2fpasswd", "/static/../../mmtrans/cli.py",
           "/static/%2e%2e/%2E%2E/mmtrans/cli.py"]


@pytest.mark.parametrize("path", OUTSIDE, ids=lambda p: p if len(p) < 40 else "up-to-etc-passwd")
def test_no_path_reaches_a_file_outside_review_ui(db, serve, path):
    named = Path(os.path.normpath(resource_dir("review_ui") / unquote(path).lstrip("/")))
    leaked = named.read_bytes()[:200]
    status, body = raw_get(serve(db), path)
    assert status in (400, 404), (status, body[:200])
    assert leaked not in body


def test_review_works_while_translate_is_writing_to_the_same_file(tmp_path, sample):
    # every record is flagged (malformed replies), slowly, while the page reviews them
    with FakeLLM(lambda payload, request: Reply("not JSON", delay=0.03)) as llm:
        db = tmp_path / "live.db"
        process = subprocess.Popen(
            [sys.executable, "-m", "mmtrans", "translate", str(sample(40)), "--src", "ja",
             "--tgt", "en", "--labels", "scnm", "--db", str(db), "--base-url", llm.base_url,
             "--repair", "0", "--concurrency", "2"],
            env={**os.environ, "OPENAI_API_KEY": "x"}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60  # 40 records at 0.03 s take about a second
        while not db.exists() or not llm.requests:
            assert time.monotonic() < deadline and process.poll() is None, \
                "translate never started sending"
            time.sleep(0.02)
        client = TestClient(make_app(db))
        decided = 0
        sizes = []
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError("translate did not finish within 60 s")
            queue = client.get("/api/queue")
            assert queue.status_code == 200
            entries_now = queue.json()["entries"]
            sizes.append(len(entries_now))
            todo = [e for e in entries_now if e["state"] == "to review"]
            if todo and decided < 5:
                assert decide(client, todo[0], "reject").status_code == 200
                decided += 1
        assert process.returncode == 0
    assert sizes[0] < 40 and entries(client)[-1]["id"] == "ner.json:39"
    assert len(entries(client, status="rejected")) == decided == 5


def test_the_review_command_serves_and_guards_a_non_local_host(db):
    import re
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "mmtrans", "review", "--db", str(db), "--host", "0.0.0.0",
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner = process.stdout.readline() + process.stdout.readline()
        token = re.search(r"generated token: (\S+)", banner).group(1)
        url = f"http://127.0.0.1:{port}/api/config"
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(url, timeout=1)
                raise AssertionError("served a request without the token")
            except urllib.error.HTTPError as e:
                assert e.code == 401
                break
            except OSError:
                assert time.monotonic() < deadline, banner
                time.sleep(0.1)
        request = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
        assert json.loads(urllib.request.urlopen(request, timeout=2).read())["db"] == str(db)
    finally:
        process.terminate()
        process.wait(timeout=10)
