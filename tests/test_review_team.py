"""Review by a team, through the API over a real SQLite file: mentions paired when the model
dropped one, edits set by selection, two annotators who disagree, agreement and kappa,
adjudication, reject reasons, guidelines and the changes a page polls for."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app as cli
from mmtrans.errors import ConfigError
from mmtrans.records import Mention
from mmtrans.review import Team, guidelines_html, make_app, parse_reasons
from mmtrans.review.agreement import cohen_kappa
from mmtrans.review.pairs import pair_mentions
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply, good_translation

from .review_data import make_review_db

AIRLINES = "As of 2019, in Japan it is used by Japan Airlines, All Nippon Airways and AIRDO."


def airline_script(payload, request):
    """Record 5 (日本, 日本航空, 全日本空輸, AIRDO) comes back without its Location."""
    if payload["text"].startswith("2019年現在"):
        return Reply(json.dumps({"text": AIRLINES, "entities": [
            {"label": "Corporation Name", "text": t}
            for t in ("Japan Airlines", "All Nippon Airways", "AIRDO")]}))
    return Reply(json.dumps(good_translation(payload), ensure_ascii=False))


@pytest.fixture
def airline_db(tmp_path, stockmark_items):
    source = tmp_path / "scnm.json"
    source.write_text(json.dumps([stockmark_items[5]], ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "review.db"
    with FakeLLM(airline_script) as llm:
        mmtrans.translate(source, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, repair=0))
    return db


@pytest.fixture
def db(tmp_path, stockmark_items):
    return make_review_db(tmp_path, stockmark_items)


def first(client):
    return client.get("/api/queue").json()["entries"][0]


def decide(client, entry, decision, annotator, **extra):
    """A decision as the page sends it; a forced one answers the question about what the
    record showed (the latest review row: `seen`)."""
    if extra.get("force") and "seen" not in extra:
        extra["seen"] = client.get("/api/record", params={
            "run": entry["run_id"], "id": entry["id"]}).json()["seen"]
    return client.post("/api/decision", json={
        "run": entry["run_id"], "id": entry["id"], "decision": decision,
        "annotator": annotator, "seen": extra.pop("seen", 0), **extra})


# -- pairing -----------------------------------------------------------------------------

def test_a_dropped_mention_shows_as_missing_and_the_others_keep_their_pairs(airline_db):
    client = TestClient(make_app(airline_db))
    view = client.get("/api/record", params={"run": first(client)["run_id"],
                                             "id": first(client)["id"]}).json()
    assert view["problems"][0]["code"] == "count_mismatch"
    assert view["pairs"] == [{"source": 0, "target": None},  # 日本: missing
                             {"source": 1, "target": 0}, {"source": 2, "target": 1},
                             {"source": 3, "target": 2}]


def test_among_equal_labels_place_and_shared_characters_decide():
    source = [Mention("Corp", "日本航空", 0, 4), Mention("Corp", "全日本空輸", 5, 10),
              Mention("Corp", "AIRDO", 11, 16)]
    target = [Mention("Corp", "Japan Airlines", 0, 14), Mention("Corp", "AIRDO", 30, 35)]
    pairs = pair_mentions(source, "日本航空、全日本空輸、AIRDO。", ["Corp"] * 3, target,
                          "Japan Airlines and others, and AIRDO.")
    assert [(p.source, p.target) for p in pairs] == [(0, 0), (1, None), (2, 1)]
    added = pair_mentions(source[:1], "日本航空", ["Corp"], target, "x" * 40)
    assert [(p.source, p.target) for p in added] == [(0, 0), (None, 1)]


# -- edits by selection ------------------------------------------------------------------

def test_an_edit_keeps_the_selected_span_and_refuses_a_label_no_table_knows(airline_db):
    client = TestClient(make_app(airline_db))
    e = first(client)
    start = AIRLINES.index("Japan", AIRLINES.index("Japan") + 1)  # the second "Japan"
    mentions = [{"label": "Location", "text": "Japan", "start": start, "end": start + 5},
                *({"label": "Corporation Name", "text": t}
                  for t in ("Japan Airlines", "All Nippon Airways", "AIRDO"))]
    body = {"run": e["run_id"], "id": e["id"], "record": {"text": AIRLINES, "mentions": mentions}}
    checked = client.post("/api/check", json=body).json()
    assert checked["problems"] == []
    assert (checked["record"]["mentions"][0]["start"], checked["record"]["mentions"][0]["end"]) \
        == (start, start + 5)
    mentions[0]["label"] = "Place"  # no table translates to it
    refused = client.post("/api/check", json=body)
    assert refused.status_code == 400 and "'Place' is not a label" in refused.json()["error"]
    view = client.get("/api/record", params={"run": e["run_id"], "id": e["id"]}).json()
    assert "Location" in view["labels"] and "Corporation Name" in view["labels"]


def fixed_airlines(start: int) -> list[dict]:
    """Record 5's mentions with its missing Location placed at `start`."""
    return [{"label": "Location", "text": "Japan", "start": start, "end": start + 5},
            *({"label": "Corporation Name", "text": t}
              for t in ("Japan Airlines", "All Nippon Airways", "AIRDO"))]


def test_a_selection_inside_a_word_is_not_a_place_for_the_mention(airline_db):
    client = TestClient(make_app(airline_db))
    e = first(client)
    inside = AIRLINES.index("Japan Airlines")  # "Japan" of "Japan Airlines" is a whole word...
    text = AIRLINES.replace("Japan Airlines", "Japanese Airlines")  # ...of "Japanese" it is not
    body = {"run": e["run_id"], "id": e["id"],
            "record": {"text": text, "mentions": fixed_airlines(inside)}}
    body["record"]["mentions"][1]["text"] = "Japanese Airlines"
    checked = client.post("/api/check", json=body).json()
    placed = checked["record"]["mentions"][0]
    assert (placed["start"], placed["end"]) != (inside, inside + 5)  # moved to "in Japan"
    assert text[placed["start"]:placed["end"]] == "Japan" and checked["problems"] == []
    alone = {**body, "record": {"text": "The Japanese airlines.", "mentions": [
        {"label": "Location", "text": "Japan", "start": 4, "end": 9}]}}
    codes = {p["code"] for p in client.post("/api/check", json=alone).json()["problems"]}
    assert "anchored" in codes  # nowhere else to go: a problem, not a span mid-word


def test_accepting_a_saved_edit_keeps_and_exports_that_edit(airline_db, tmp_path):
    client = TestClient(make_app(airline_db))
    e = first(client)
    start = AIRLINES.index("Japan", AIRLINES.index("Japan") + 1)
    edit = {"text": AIRLINES, "mentions": fixed_airlines(start)}
    assert decide(client, e, "edit", "aiko", record=edit).status_code == 200
    seen = client.get("/api/record", params={"run": e["run_id"], "id": e["id"]}).json()["seen"]
    accepted = decide(client, e, "accept", "ben", seen=seen, force=True)
    assert accepted.status_code == 200, accepted.json()  # the edit has no problem: no reason
    view = accepted.json()["view"]
    assert view["version"] == "edit accepted by ben" and view["problems"] == []
    assert len(view["target"]["mentions"]) == 4
    # The two agree (ben endorsed aiko's fix), and the export holds the fix, not the model's
    # answer without its Location.
    (pair,) = client.get("/api/agreement").json()["pairs"]
    assert pair["agreement"] == 1.0
    assert not client.get("/api/queue", params={"status": "disagreement"}).json()["entries"]
    out = tmp_path / "out.json"
    mmtrans.export(airline_db, out)  # in its own format (stockmark)
    (item,) = json.loads(out.read_text(encoding="utf-8"))
    assert [(x["name"], x["span"]) for x in item["entities"]][0] == \
        ("Japan", [start, start + 5])


def test_a_forced_override_is_asked_again_about_a_decision_made_since(db):
    client = TestClient(make_app(db))
    a = first(client)
    decide(client, a, "reject", "aiko")
    asked = decide(client, a, "reject", "ben")
    assert asked.status_code == 409 and asked.json()["theirs"]["annotator"] == "aiko"
    seen = asked.json()["seen"]  # what ben was shown, and answered "save mine too" to
    chie = decide(client, a, "reject", "chie", seen=seen, force=True)  # meanwhile
    assert chie.status_code == 200
    late = decide(client, a, "reject", "ben", seen=seen, force=True, override="sure")
    assert late.status_code == 409 and late.json()["theirs"]["annotator"] == "chie"


def test_two_servers_on_one_file_never_both_take_the_same_record(db):
    """Two `mmtrans review` processes (an annotator's and an adjudicator's) share the SQLite
    file: deciding the same record at the same moment, one wins and the other is asked."""
    import threading

    clients = [TestClient(make_app(db)) for _ in range(8)]
    a = first(clients[0])
    barrier, answers = threading.Barrier(len(clients)), []

    def decide_at_once(client, name):
        barrier.wait()
        answers.append(decide(client, a, "reject", name).status_code)

    threads = [threading.Thread(target=decide_at_once, args=(c, f"ann{i}"))
               for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200] + [409] * (len(clients) - 1)
    assert len(Store(db).review_rows(a["run_id"], a["id"])) == 1


# -- two annotators ----------------------------------------------------------------------

def test_two_annotators_who_disagree_are_counted_in_the_page_and_in_status(db):
    client = TestClient(make_app(db))
    a, b, c = client.get("/api/queue").json()["entries"]
    decide(client, a, "reject", "aiko")
    decide(client, b, "reject", "aiko")
    decide(client, c, "reject", "aiko")
    assert decide(client, a, "reject", "ben").status_code == 409  # aiko decided it first
    for entry, decision in ((a, "reject"), (b, "accept"), (c, "reject")):
        seen = client.get("/api/record", params={"run": entry["run_id"],
                                                 "id": entry["id"]}).json()["seen"]
        decide(client, entry, decision, "ben", seen=seen, force=True,
               override="looks right to me")
    disagreements = client.get("/api/queue", params={"status": "disagreement"}).json()
    assert [e["id"] for e in disagreements["entries"]] == [b["id"]]
    (pair,) = client.get("/api/agreement").json()["pairs"]
    # 2 of 3 agree, but aiko rejects everything: chance agreement is 1 x 2/3, so kappa is 0
    assert (pair["a"], pair["b"], pair["records"]) == ("aiko", "ben", 3)
    assert pair["agreement"] == pytest.approx(2 / 3) and pair["kappa"] == pytest.approx(0.0)
    result = CliRunner().invoke(cli, ["status", "--db", str(db), "--json"])
    summary = json.loads(result.output)
    assert summary["disagreements"] == 1 and summary["agreement"][0]["records"] == 3
    text = CliRunner().invoke(cli, ["status", "--db", str(db)], env={"COLUMNS": "200"}).output
    assert "aiko / ben" in text and "agreement 0.67, kappa 0.00" in text


def test_cohen_kappa_on_a_textbook_table():
    # 50 items: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> p_o 0.7, p_e 0.5, kappa 0.4
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    observed, kappa = cohen_kappa(pairs)
    assert observed == pytest.approx(0.7) and kappa == pytest.approx(0.4)
    assert cohen_kappa([]) == (None, None)
    assert cohen_kappa([("y", "y")]) == (1.0, None)  # chance agreement 1: undefined


def test_adjudication_settles_a_disagreement_and_casts_no_vote(db):
    client = TestClient(make_app(db))
    a = first(client)
    decide(client, a, "reject", "aiko")
    decide(client, a, "accept", "ben", force=True, override="fine")
    assert client.get("/api/queue", params={"status": "disagreement"}).json()["entries"]
    judge = TestClient(make_app(db, team=Team(adjudicate=True)))
    assert judge.get("/api/config").json()["adjudicate"] is True
    view = judge.get("/api/record", params={"run": a["run_id"], "id": a["id"]}).json()
    assert [(v["annotator"], v["decision"]) for v in view["votes"]] == [
        ("aiko", "reject"), ("ben", "accept")]
    decide(judge, a, "reject", "chie", seen=view["seen"], adjudicate=True)
    assert judge.get("/api/queue", params={"status": "disagreement"}).json()["entries"] == []
    (pair,) = judge.get("/api/agreement").json()["pairs"]  # chie judged: no pair of hers
    assert (pair["a"], pair["b"]) == ("aiko", "ben")
    # A plain review page cannot adjudicate by asking to.
    decide(client, a, "accept", "ben", force=True, override="fine", adjudicate=True)
    assert not Store(db).reviews(a["run_id"], a["id"])[-1].adjudicated


# -- reasons and guidelines --------------------------------------------------------------

def test_a_team_rejects_with_a_reason_from_its_list_and_status_counts_them(db, tmp_path):
    reasons = tmp_path / "reasons.txt"
    reasons.write_text("# why a record goes\nsource is garbled\nnot translatable\n",
                       encoding="utf-8")
    client = TestClient(make_app(db, team=Team(reasons=parse_reasons(str(reasons)))))
    a, b, _ = client.get("/api/queue").json()["entries"]
    refused = decide(client, a, "reject", "aiko")
    assert refused.status_code == 422 and refused.json()["reasons"] == [
        "source is garbled", "not translatable"]
    assert decide(client, a, "reject", "aiko", reason="made up").status_code == 422
    assert decide(client, a, "reject", "aiko", reason="not translatable").status_code == 200
    decide(client, b, "reject", "aiko", reason="not translatable")
    summary = json.loads(CliRunner().invoke(cli, ["status", "--db", str(db), "--json"]).output)
    assert summary["reject_reasons"] == {"not translatable": 2}
    assert parse_reasons("garbled, untranslatable,") == ["garbled", "untranslatable"]
    with pytest.raises(ConfigError):
        parse_reasons(" , ")


def test_guidelines_are_rendered_markdown_with_html_escaped(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("# Names\n\nKeep **company** suffixes.\n\n<script>alert(1)</script>\n",
                    encoding="utf-8")
    html = guidelines_html(path)
    assert "<h1>Names</h1>" in html and "<strong>company</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    result = CliRunner().invoke(cli, ["review", "--db", str(tmp_path / "none.db"),
                                      "--guidelines", str(tmp_path / "missing.md")])
    assert result.exit_code == 2


# -- what a page polls for ---------------------------------------------------------------

def test_changes_name_the_records_decided_or_translated_since(db, monkeypatch):
    client = TestClient(make_app(db))
    stamp = client.get("/api/queue").json()["stamp"]
    quiet = client.get("/api/changes", params={"since": ",".join(map(str, stamp))}).json()
    assert quiet == {"stamp": stamp, "entries": [], "decided": False, "by_annotator": None,
                     "reload": False}
    a = first(client)
    decided = decide(client, a, "reject", "aiko").json()
    assert decided["entry"]["state"] == "rejected" and decided["by_annotator"] == {"aiko": 1}
    changed = client.get("/api/changes", params={"since": ",".join(map(str, stamp))}).json()
    assert [e["id"] for e in changed["entries"]] == [a["id"]]
    assert changed["entries"][0]["state"] == "rejected" and changed["decided"]
    assert not changed["reload"]
    # Translations stored since (a running translate): their entries, patched in place.
    behind = client.get("/api/changes", params={"since": f"{changed['stamp'][0]},0"}).json()
    queue_ids = {e["id"] for e in client.get("/api/queue").json()["entries"]}
    assert queue_ids == {e["id"] for e in behind["entries"] if e["status"] != "accepted"}
    assert not behind["decided"] and not behind["reload"]
    # Many at once: the page reads its queue anew instead.
    monkeypatch.setattr("mmtrans.review.app.MAX_PATCHED", 1)
    many = client.get("/api/changes", params={"since": f"{changed['stamp'][0]},0"}).json()
    assert many["reload"] and many["entries"] == []
    assert client.get("/api/changes", params={"since": "x"}).status_code == 400
