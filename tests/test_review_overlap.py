"""Blind double annotation (`--overlap N`), assignment, "mine to do", comments and batch accept,
through two real review servers (uvicorn on 127.0.0.1) over one real SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app as cli
from mmtrans.errors import ConfigError
from mmtrans.review import Team
from mmtrans.review.plan import Plan, assignees, parse_assign
from mmtrans.store import Store
from mmtrans.testing import FakeLLM, Reply, good_translation

#: What the scripted model leaves in every flagged translation: kana, a checks failure.
LEFTOVER = " これは"
FLAGGED = 20


def flag_the_first(n: int):
    """A script whose answers for the first `n` records (by their text, fixed below) keep
    source script, and pass every check for the rest."""
    flagged: set[str] = set()

    def script(payload, request):
        answer = good_translation(payload)
        if payload["text"] in flagged or len(flagged) < n:
            flagged.add(payload["text"])
            answer["text"] += LEFTOVER
        return Reply(json.dumps(answer, ensure_ascii=False))
    return script


def make_db(tmp_path: Path, items: list[dict], n_flagged: int, name: str = "scnm.json",
            db: Path | None = None) -> Path:
    source = tmp_path / name
    source.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    db = db or tmp_path / "team.db"
    with FakeLLM(flag_the_first(n_flagged)) as llm:
        mmtrans.translate(source, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, repair=0,
            concurrency=1))
    return db


@pytest.fixture
def team_db(tmp_path, stockmark_items):
    """20 flagged records and 5 that pass every check."""
    return make_db(tmp_path, stockmark_items[:FLAGGED + 5], FLAGGED)


class Page:
    """One annotator's page on one server, as the page speaks to it."""

    def __init__(self, url: str, annotator: str):
        self.client = httpx.Client(base_url=url, timeout=30)
        self.annotator = annotator

    def queue(self, **filters: str) -> dict:
        answer = self.client.get("/api/queue", params={"annotator": self.annotator, **filters})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def view(self, entry: dict, **extra: str) -> dict:
        answer = self.client.get("/api/record", params={
            "run": entry["run_id"], "id": entry["id"], "annotator": self.annotator, **extra})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def decide(self, entry: dict, decision: str, **extra) -> httpx.Response:
        view = self.view(entry)
        return self.client.post("/api/decision", json={
            "run": entry["run_id"], "id": entry["id"], "decision": decision,
            "annotator": self.annotator, "seen": view["seen"], **extra})


def fixed(view: dict, suffix: str = "") -> dict:
    """The model's translation without its leftover kana (passes every check)."""
    target = view["target"]
    return {"text": target["text"].removesuffix(LEFTOVER) + suffix, "label": target["label"],
            "mentions": [{"label": m["label"], "text": m["text"]} for m in target["mentions"]]}


def test_two_annotators_with_overlap_2_decide_blind_and_the_lead_settles_the_export(
        team_db, serve, tmp_path):
    # Two servers over one store; the second reads the plan the first one kept.
    aiko = Page(serve(team_db, annotator="aiko", team=Team(overlap=2)), "aiko")
    ben = Page(serve(team_db, annotator="ben"), "ben")
    lead = Page(serve(team_db, annotator="chie", team=Team(adjudicate=True)), "chie")
    entries = aiko.queue(mine="1")["entries"]
    assert len(entries) == FLAGGED and ben.queue(mine="1")["entries"] == entries
    for i, e in enumerate(entries):
        # aiko: reject 0-16, edit 17-19; ben: reject 0-13, edit 14-19 (17-19: the same fix).
        view = aiko.view(e)
        answer = aiko.decide(e, "edit", record=fixed(view)) if i >= 17 else \
            aiko.decide(e, "reject")
        assert answer.status_code == 200, answer.text
    for i, e in enumerate(entries):
        view = ben.view(e)
        # ben sees the model's translation, its problems, and nothing of aiko's.
        assert view["version"] == "translation" and view["target"]["text"].endswith(LEFTOVER)
        assert view["problems"] and view["reviews"] == [] and view["votes"] == []
        assert view["state"] == "to review" and view["record"]["label"] == "1/2"
        answer = ben.decide(e, "edit", record=fixed(view, " Fixed.")) if i in (14, 15) else \
            ben.decide(e, "edit", record=fixed(view)) if i >= 16 else ben.decide(e, "reject")
        assert answer.status_code == 200, answer.text  # never 409: no conflict question
    assert aiko.queue(mine="1")["entries"] == [] and ben.queue(mine="1")["entries"] == []
    assert ben.client.get("/api/agreement").json()["pairs"] == []  # blind: the lead's only
    (pair,) = lead.client.get("/api/agreement").json()["pairs"]
    assert (pair["a"], pair["b"], pair["records"]) == ("aiko", "ben", FLAGGED)
    assert pair["agreement"] == pytest.approx(17 / 20)
    disputed = lead.queue(status="disagreement")["entries"]
    assert [e["id"] for e in disputed] == [e["id"] for e in entries[14:17]]
    assert {e["record"]["label"] for e in disputed} == {"disputed"}
    assert {e["record"]["label"] for e in lead.queue()["entries"][:14]} == {"done"}
    # The lead sees both versions side by side and takes ben's (for one, edited further).
    for e in disputed:
        view = lead.view(e)
        votes = {v["annotator"]: v for v in view["votes"]}
        assert votes["aiko"]["decision"] == "reject" and votes["ben"]["decision"] == "edit"
        record = votes["ben"]["record"]
        if e is disputed[2]:
            version = lead.view(e, version=str(votes["ben"]["id"]))
            assert version["target"]["text"] == record["text"]
            record = {**record, "text": record["text"] + " Settled."}
        answer = lead.decide(e, "edit", record=record, adjudicate=True)
        assert answer.status_code == 200, answer.text
    assert lead.queue(status="disagreement")["entries"] == []
    out = tmp_path / "final.json"
    mmtrans.export(team_db, out, fmt="mre")
    store = Store(team_db)
    decided = store.decisions(entries[0]["run_id"])
    kept = {rid: d.record.text for rid, d in decided.items() if d.record is not None}
    for e in entries[14:16]:
        assert kept[e["id"]].endswith(" Fixed.")
    assert kept[entries[16]["id"]].endswith(" Settled.")
    assert all(not kept[e["id"]].endswith(LEFTOVER) for e in entries[17:])
    assert all(e["id"] not in kept for e in entries[:14])  # rejected by both
    exported = out.read_text(encoding="utf-8")
    assert exported.count("Fixed.") == 2 and exported.count("Settled.") == 1
    assert LEFTOVER.strip() not in exported


def test_a_record_half_decided_or_disputed_is_not_exported_as_decided(team_db, serve):
    aiko = Page(serve(team_db, annotator="aiko", team=Team(overlap=2)), "aiko")
    ben = Page(serve(team_db, annotator="ben"), "ben")
    one, two = aiko.queue()["entries"][:2]
    run_id = one["run_id"]
    view = aiko.view(one)
    aiko.decide(one, "edit", record=fixed(view))
    assert Store(team_db).decisions(run_id) == {}  # 1/2: not settled yet
    ben.decide(one, "reject")
    assert Store(team_db).decisions(run_id) == {}  # disputed: the lead settles it
    aiko.decide(two, "reject")
    ben.decide(two, "reject")
    assert list(Store(team_db).decisions(run_id)) == [two["id"]]  # 2/2 alike


def test_shared_review_with_overlap_1_still_asks_before_overriding(team_db, serve):
    aiko = Page(serve(team_db, annotator="aiko"), "aiko")
    ben = Page(serve(team_db, annotator="ben"), "ben")
    e = aiko.queue()["entries"][0]
    assert aiko.decide(e, "reject").status_code == 200
    assert ben.view(e)["reviews"][0]["annotator"] == "aiko"  # shared: everyone sees it
    assert ben.decide(e, "reject").status_code == 409


def test_mine_to_do_never_shows_a_record_the_annotator_decided(team_db, serve):
    aiko = Page(serve(team_db, annotator="aiko", team=Team(overlap=2)), "aiko")
    ben = Page(serve(team_db, annotator="ben"), "ben")
    chen = Page(serve(team_db, annotator="chen"), "chen")
    entries = aiko.queue(mine="1")["entries"]
    aiko.decide(entries[0], "reject")
    ben.decide(entries[0], "reject")
    aiko.decide(entries[1], "reject")
    mine = [e["id"] for e in aiko.queue(mine="1")["entries"]]
    assert entries[0]["id"] not in mine and entries[1]["id"] not in mine
    assert len(mine) == FLAGGED - 2
    # With anyone any record, a record two decided is nobody else's work.
    theirs = [e["id"] for e in chen.queue(mine="1")["entries"]]
    assert entries[0]["id"] not in theirs and entries[1]["id"] in theirs
    # A reload of aiko's queue skips nothing she has not decided, whoever else did.
    assert entries[1]["id"] in [e["id"] for e in ben.queue(mine="1")["entries"]]
    progress = aiko.queue()["annotator_progress"]
    assert progress["aiko"]["decided"] == 2 and progress["ben"]["decided"] == 1


def test_assign_by_share_gives_each_record_to_n_of_the_named(team_db, serve):
    url = serve(team_db, team=Team(overlap=2, assign="aiko=1,ben=1,chen=2"))
    mine = {n: {e["id"] for e in Page(url, n).queue(mine="1")["entries"]}
            for n in ("aiko", "ben", "chen")}
    everything = {e["id"] for e in Page(url, "aiko").queue()["entries"]}
    for record_id in everything:
        assert sum(record_id in m for m in mine.values()) == 2  # two annotators a record
    progress = Page(url, "aiko").queue()["annotator_progress"]
    assert sum(p["assigned"] for p in progress.values()) == 2 * len(everything)


def test_assign_by_dataset_gives_each_dataset_to_its_annotators(tmp_path, stockmark_items,
                                                                 serve):
    db = make_db(tmp_path, stockmark_items[:6], 6, "ner.json")
    make_db(tmp_path, stockmark_items[6:10], 4, "other.json", db)
    url = serve(db, team=Team(assign="aiko=ner.json,ben=other.json"))
    aiko, ben = Page(url, "aiko"), Page(url, "ben")
    assert {e["dataset"] for e in aiko.queue(mine="1")["entries"]} == {"ner.json"}
    assert {e["dataset"] for e in ben.queue(mine="1")["entries"]} == {"other.json"}
    assert len(aiko.queue(mine="1")["entries"]) == 6


def test_a_comment_is_kept_with_its_decision_and_shown_to_the_lead_only(team_db, serve):
    aiko = Page(serve(team_db, annotator="aiko", team=Team(overlap=2)), "aiko")
    ben = Page(serve(team_db, annotator="ben"), "ben")
    lead = Page(serve(team_db, annotator="chie", team=Team(adjudicate=True)), "chie")
    e = aiko.queue()["entries"][0]
    answer = aiko.decide(e, "reject", comment="the source sentence is cut off")
    assert answer.status_code == 200
    review_id = answer.json()["review"]
    alone = ben.client.post("/api/comment", json={"run": e["run_id"], "id": e["id"],
                                                  "annotator": "ben", "text": "ask chie"})
    assert alone.status_code == 200
    assert [c["text"] for c in ben.view(e)["comments"]] == ["ask chie"]  # blind: own only
    comments = lead.view(e)["comments"]
    assert [(c["annotator"], c["text"], c["review_id"]) for c in comments] == [
        ("aiko", "the source sentence is cut off", review_id), ("ben", "ask chie", None)]
    empty = ben.client.post("/api/comment", json={"run": e["run_id"], "id": e["id"],
                                                  "annotator": "ben", "text": " "})
    assert empty.status_code == 400


def test_accepting_every_passing_record_asks_once_and_accepts_only_those(team_db, serve):
    aiko = Page(serve(team_db, annotator="aiko", spot_check=1.0), "aiko")
    everything = aiko.queue()["entries"]
    passing = [e for e in everything if not e["codes"]]
    assert len(passing) == 5 and len(everything) == FLAGGED + 5
    aiko.decide(passing[0], "reject")  # decided already: not accepted over
    counted = aiko.client.post("/api/accept-passing", json={"annotator": "aiko"}).json()
    assert counted["count"] == 4
    assert Store(team_db).decisions(passing[0]["run_id"]).keys() == {passing[0]["id"]}
    # Confirming a record that fails a check (sent by hand) accepts it not.
    confirm = counted["records"] + [[everything[0]["run_id"], everything[0]["id"]]]
    done = aiko.client.post("/api/accept-passing", json={"annotator": "aiko",
                                                         "confirm": confirm}).json()
    assert (done["accepted"], done["skipped"]) == (4, 1)
    decisions = Store(team_db).decisions(passing[0]["run_id"])
    assert {rid: d.decision for rid, d in decisions.items()} == {
        passing[0]["id"]: "reject", **{e["id"]: "accept" for e in passing[1:]}}
    # Within a filter: the flagged records' filter holds none that pass.
    none = aiko.client.post("/api/accept-passing", json={"annotator": "aiko",
                                                         "status": "to review"}).json()
    assert none["count"] == 0


def test_a_bad_overlap_or_assignment_is_one_line_and_exit_2(team_db):
    with pytest.raises(ConfigError):
        parse_assign("aiko=1,ben=ner.json")
    with pytest.raises(ConfigError):
        parse_assign("aiko")
    for args in (["--overlap", "0"], ["--assign", "aiko=0"], ["--assign", "aiko"]):
        result = CliRunner().invoke(cli, ["review", "--db", str(team_db), *args])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and "--" in result.output


def test_the_draw_is_stable_and_follows_the_shares():
    plan = Plan(1, {"shares": {"aiko": 3.0, "ben": 1.0}})
    drawn = [assignees(plan, "run", f"r{i}", "d")[0] for i in range(4000)]
    assert drawn == [assignees(plan, "run", f"r{i}", "d")[0] for i in range(4000)]
    assert drawn.count("aiko") / len(drawn) == pytest.approx(0.75, abs=0.03)
    # Two of three a record: each name once at most, the larger share in more records
    # (chen first half the time, else second two times in three: 5/6).
    plan = Plan(2, {"shares": {"aiko": 1.0, "ben": 1.0, "chen": 2.0}})
    pairs = [assignees(plan, "run", f"r{i}", "d") for i in range(4000)]
    assert all(len(set(p)) == 2 for p in pairs)
    assert sum("chen" in p for p in pairs) / len(pairs) == pytest.approx(5 / 6, abs=0.03)


def test_blind_an_annotator_cannot_undo_another_annotators_decision(team_db, serve):
    aiko = Page(serve(team_db, annotator="aiko", team=Team(overlap=2)), "aiko")
    ben = Page(serve(team_db), "ben")
    e = aiko.queue()["entries"][0]
    review_id = aiko.decide(e, "reject").json()["review"]
    theirs = ben.client.post("/api/undo", json={"run": e["run_id"], "id": e["id"],
                                                "annotator": "ben", "review": review_id})
    assert theirs.status_code == 403
    own = aiko.client.post("/api/undo", json={"annotator": "aiko"})
    assert own.status_code == 200 and aiko.view(e)["state"] == "to review"


def test_a_vote_past_the_overlap_is_refused_and_never_kept(team_db, serve):
    """Under `--overlap 2` with anyone deciding any record, a third annotator who opened the
    record before the second saved gets a one-line refusal: the record keeps two votes."""
    aiko = Page(serve(team_db, annotator="aiko", team=Team(overlap=2)), "aiko")
    ben, chen = Page(serve(team_db, annotator="ben"), "ben"), Page(serve(team_db), "chen")
    entry = aiko.queue()["entries"][0]
    seen = chen.view(entry)["seen"]  # chen opens it while it has no votes
    assert aiko.decide(entry, "reject").status_code == 200
    assert ben.decide(entry, "reject").status_code == 200
    late = chen.client.post("/api/decision", json={
        "run": entry["run_id"], "id": entry["id"], "decision": "reject",
        "annotator": "chen", "seen": seen})
    assert late.status_code == 422
    assert late.json()["error"] == (f"{entry['id']} already has the 2 decisions it needs; "
                                    "yours was not saved")
    reviews = Store(team_db).reviews(entry["run_id"], entry["id"])
    assert sorted(r.annotator for r in reviews) == ["aiko", "ben"]
    # An annotator who already voted may still change their own vote.
    assert aiko.decide(entry, "edit", record=fixed(aiko.view(entry))).status_code == 200


def test_accepting_every_passing_record_skips_one_that_has_its_votes_already(team_db, serve):
    aiko = Page(serve(team_db, annotator="aiko", team=Team(overlap=2), spot_check=1.0), "aiko")
    ben = Page(serve(team_db, annotator="ben", spot_check=1.0), "ben")
    chen = Page(serve(team_db, spot_check=1.0), "chen")
    passing = [e for e in chen.queue()["entries"] if not e["codes"]]
    counted = chen.client.post("/api/accept-passing", json={"annotator": "chen"}).json()
    assert counted["count"] == 5
    aiko.decide(passing[0], "accept")  # the two votes land between the count and the confirm
    ben.decide(passing[0], "accept")
    done = chen.client.post("/api/accept-passing", json={
        "annotator": "chen", "confirm": counted["records"]}).json()
    assert (done["accepted"], done["skipped"]) == (4, 1)
    assert sorted(r.annotator for r in Store(team_db).reviews(
        passing[0]["run_id"], passing[0]["id"])) == ["aiko", "ben"]
