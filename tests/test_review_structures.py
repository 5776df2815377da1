"""Relations and events reviewed through the real review API over a real SQLite file: the
view pairs them and places their strings, an edit is validated by the same checks (labels
from the run's tables only) and saved, and the export carries it; and the pairing of
mentions, relations and arguments when the model dropped or relabelled one."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

import mmtrans
from mmtrans.records import Argument, Event, Mention, Relation
from mmtrans.review import make_app
from mmtrans.review.pairs import pair_events, pair_mentions, pair_relations
from mmtrans.testing import FakeLLM, Reply, good_translation

from .editor_data import EE_TEXT, RE_TEXT, WRONG_TAIL, make_structures_db


@pytest.fixture
def client(tmp_path):
    return TestClient(make_app(make_structures_db(tmp_path)))


def view_of(client, task_text: str):
    for e in client.get("/api/queue").json()["entries"]:
        v = client.get("/api/record", params={"run": e["run_id"], "id": e["id"]}).json()
        if v["source"]["text"].startswith(task_text):
            return v
    raise AssertionError(task_text)


def check(client, v, record):
    return client.post("/api/check", json={"run": v["run_id"], "id": v["id"], "record": record})


def test_a_relation_record_shows_its_relation_paired_placed_and_its_problem(client):
    v = view_of(client, "如何演好")
    assert v["expected_relations"][0]["relation"] == "starring"
    assert v["relation_pairs"] == [{"source": 0, "target": 0}]
    assert v["source_spans"]["relations[0].tail"] == [26, 29]  # 周星驰
    start = RE_TEXT.index("The King of Comedy")
    assert v["target_spans"] == {"relations[0].head": [start, start + 18],
                                 "relations[0].tail": None}
    assert v["problems"][0]["where"] == "relations[0].tail"
    assert v["label_kinds"]["relation"][0] == "starring"
    assert "Banana" not in v["label_kinds"]["text"]


def test_a_fixed_tail_passes_the_checks_is_saved_and_exported(client, tmp_path):
    v = view_of(client, "如何演好")
    fixed = {"text": RE_TEXT, "relations": [
        {"head": "The King of Comedy", "relation": "starring", "tail": "Stephen Chow"}]}
    checked = check(client, v, fixed).json()
    assert checked["problems"] == []
    assert checked["spans"]["relations[0].tail"] == [RE_TEXT.index("Stephen Chow"),
                                                     RE_TEXT.index("Stephen Chow") + 12]
    still = check(client, v, {**fixed, "relations": [{**fixed["relations"][0],
                                                      "tail": WRONG_TAIL}]}).json()
    assert [p["where"] for p in still["problems"]] == ["relations[0].tail"]
    saved = client.post("/api/decision", json={"run": v["run_id"], "id": v["id"],
                                                "annotator": "aiko", "decision": "edit",
                                                "record": fixed, "seen": v["seen"]})
    assert saved.status_code == 200
    out = tmp_path / "re.json"
    mmtrans.export(_db(client), out, run_id=v["run_id"], fmt="iepile")
    assert json.loads(out.read_text(encoding="utf-8"))[0]["relation"][0]["tail"] == \
        "Stephen Chow"


def _db(client):
    return json.loads(client.get("/api/config").content)["db"]


def test_removing_a_relation_is_a_count_problem_and_adding_one_back_clears_it(client):
    v = view_of(client, "如何演好")
    removed = check(client, v, {"text": RE_TEXT, "relations": []}).json()
    assert [p["code"] for p in removed["problems"]] == ["count_mismatch"]
    added = check(client, v, {"text": RE_TEXT, "relations": [
        {"head": "The King of Comedy", "relation": "starring", "tail": "Stephen Chow"}]}).json()
    assert added["problems"] == []


@pytest.mark.parametrize("where, edit", [
    ("relations[0].relation", lambda r: r["relations"][0].update(relation="acted in")),
    ("text-level label", lambda r: r.update(label="Banana")),
    ("relations[0].tail", lambda r: r["relations"][0].update(tail=" ")),
])
def test_a_label_no_table_knows_or_an_empty_string_is_refused(client, where, edit):
    v = view_of(client, "如何演好")
    record = {"text": RE_TEXT, "relations": [
        {"head": "The King of Comedy", "relation": "starring", "tail": "Stephen Chow"}]}
    edit(record)
    refused = check(client, v, record)
    assert refused.status_code == 400 and where in refused.json()["error"]


def test_an_event_argument_fixed_and_a_role_no_table_knows_refused(client, tmp_path):
    v = view_of(client, "消失")
    assert v["event_pairs"] == [{"source": 0, "target": 0, "arguments": [
        {"source": 0, "target": 0}, {"source": 1, "target": 1}]}]
    assert v["problems"][0]["where"] == "events[0].arguments[1]"
    event = v["target"]["events"][0]
    fixed = {"text": EE_TEXT, "events": [{**event, "arguments": [
        event["arguments"][0], {**event["arguments"][1], "text": "in May"}]}]}
    assert check(client, v, fixed).json()["problems"] == []
    wrong_role = json.loads(json.dumps(fixed))
    wrong_role["events"][0]["arguments"][1]["role"] = "when"
    refused = check(client, v, wrong_role)
    assert refused.status_code == 400 and "arguments[1].role" in refused.json()["error"]
    dropped = json.loads(json.dumps(fixed))
    dropped["events"][0]["arguments"].pop()
    assert [p["where"] for p in check(client, v, dropped).json()["problems"]] == \
        ["events[0].arguments"]
    assert client.post("/api/decision", json={
        "run": v["run_id"], "id": v["id"], "annotator": "aiko", "decision": "edit",
        "record": fixed, "seen": v["seen"]}).status_code == 200
    out = tmp_path / "ee.json"
    mmtrans.export(_db(client), out, run_id=v["run_id"], fmt="iepile")
    arguments = json.loads(out.read_text(encoding="utf-8"))[0]["event"][0]["arguments"]
    assert [a["argument"] for a in arguments] == ["over 900 people", "in May"]


# -- pairing -----------------------------------------------------------------------------

AIRLINES_JA = "2019年現在、日本の航空会社では日本航空、全日本空輸、AIRDOの3社で使用されている。"
AIRLINES = "As of 2019, in Japan it is used by Japan Airlines, All Nippon Airways and AIRDO."


def placed(label: str, s: str, text: str, nth: int = 0) -> Mention:
    start = -1
    for _ in range(nth + 1):
        start = text.index(s, start + 1)
    return Mention(label, s, start, start + len(s))


def airline_sources() -> list[Mention]:
    return [placed("Corp", s, AIRLINES_JA) for s in ("日本航空", "全日本空輸", "AIRDO")]


def test_of_three_same_label_mentions_the_dropped_last_one_is_the_missing_one():
    """stockmark item 5: AIRDO dropped from the answer (kept in the text)."""
    target = [placed("Corp", "Japan Airlines", AIRLINES), placed("Corp", "All Nippon Airways",
                                                                  AIRLINES)]
    pairs = pair_mentions(airline_sources(), AIRLINES_JA, ["Corp"] * 3, target, AIRLINES)
    assert [(p.source, p.target) for p in pairs] == [(0, 0), (1, 1), (2, None)]


def test_of_three_same_label_mentions_the_dropped_middle_one_is_the_missing_one():
    target = [placed("Corp", "Japan Airlines", AIRLINES), placed("Corp", "AIRDO", AIRLINES)]
    pairs = pair_mentions(airline_sources(), AIRLINES_JA, ["Corp"] * 3, target, AIRLINES)
    assert [(p.source, p.target) for p in pairs] == [(0, 0), (1, None), (2, 1)]


def test_a_relabelled_mention_is_one_row_not_a_missing_and_an_added_one():
    target = [placed("Corp", "Japan Airlines", AIRLINES),
              placed("Other Organization Name", "All Nippon Airways", AIRLINES),
              placed("Corp", "AIRDO", AIRLINES)]
    pairs = pair_mentions(airline_sources(), AIRLINES_JA, ["Corp"] * 3, target, AIRLINES)
    assert [(p.source, p.target) for p in pairs] == [(0, 0), (1, 1), (2, 2)]


def test_of_two_same_name_relations_the_dropped_first_one_is_the_missing_one():
    text = "周星驰和吴孟达主演了《喜剧之王》"
    source = [Relation("喜剧之王", "主演", "周星驰"), Relation("喜剧之王", "主演", "吴孟达")]
    translated = "Stephen Chow and Ng Man-tat starred in The King of Comedy"
    target = [Relation("The King of Comedy", "starring", "Ng Man-tat")]
    pairs = pair_relations(source, text, ["starring"] * 2, target, translated)
    assert [(p.source, p.target) for p in pairs] == [(0, None), (1, 0)]
    relabelled = [Relation("The King of Comedy", "starring", "Stephen Chow"),
                  Relation("The King of Comedy", "director", "Ng Man-tat")]
    pairs = pair_relations(source, text, ["starring"] * 2, relabelled, translated)
    assert [(p.source, p.target) for p in pairs] == [(0, 0), (1, 1)]


def test_of_two_same_type_events_the_dropped_first_one_is_missing_and_arguments_pair_by_role():
    """IEPile EE sample line 3: two layoff events, the first dropped by the model."""
    text = "不仅仅是中国IT企业在裁员，为何500强的甲骨文也发生了全球裁员"
    layoff = "Organizational Relation-Layoff"
    source = [Event("组织关系-裁员", "裁员", [Argument("裁员方", "中国IT企业")]),
              Event("组织关系-裁员", "裁员", [Argument("裁员方", "500强的甲骨文")])]
    expected = [Event(layoff, "裁员", [Argument("laying-off party", "中国IT企业")]),
                Event(layoff, "裁员", [Argument("laying-off party", "500强的甲骨文")])]
    translated = ("It is not only Chinese IT firms that are laying off: why is Oracle, a "
                  "Fortune 500 company, also cutting jobs worldwide?")
    target = [Event(layoff, "cutting jobs", [Argument("laying-off party",
                                                      "Oracle, a Fortune 500 company")])]
    pairs = pair_events(source, text, expected, target, translated)
    assert [(p.source, p.target) for p in pairs] == [(0, None), (1, 0)]
    assert [(a.source, a.target) for a in pairs[1].arguments] == [(0, 0)]
    two = [Event(layoff, "laying off", [Argument("time", "now"),
                                         Argument("laying-off party", "Chinese IT firms")])]
    args = pair_events(source[:1], text, expected[:1], two, translated)[0].arguments
    assert [(a.source, a.target) for a in args] == [(None, 0), (0, 1)]


def airline_script(payload, request):
    if payload["text"].startswith("2019年現在"):
        labels = ["Location", "Corporation Name", "Other Organization Name", "Corporation Name"]
        return Reply(json.dumps({"text": AIRLINES, "entities": [
            {"label": label, "text": t} for label, t in zip(labels, (
                "Japan", "Japan Airlines", "All Nippon Airways", "AIRDO"))]}))
    return Reply(json.dumps(good_translation(payload), ensure_ascii=False))


def test_the_page_shows_a_relabelled_mention_as_one_pair(tmp_path, stockmark_items):
    source = tmp_path / "scnm.json"
    source.write_text(json.dumps([stockmark_items[5]], ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "review.db"
    with FakeLLM(airline_script) as llm:
        mmtrans.translate(source, db, mmtrans.Settings(
            src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, repair=0))
    client = TestClient(make_app(db))
    e = client.get("/api/queue").json()["entries"][0]
    v = client.get("/api/record", params={"run": e["run_id"], "id": e["id"]}).json()
    assert [p["code"] for p in v["problems"]] == ["label_changed"]
    assert v["pairs"] == [{"source": i, "target": i} for i in range(4)]


THINK_TANKS_JA = ("スウェーデン2大シンクタンクは、右指向のTimbroと左志向のアゴラで、"
                  "アゴラはArena Ideに変更。")
THINK_TANKS = ("Sweden's two big think tanks are the right-leaning Timbro and the left-leaning "
               "Agora; Agora was renamed Arena Ide.")


@pytest.mark.parametrize("dropped", ["Timbro", "Arena Ide"])
def test_a_dropped_name_kept_verbatim_in_the_text_is_the_missing_one(dropped):
    """stockmark: スウェーデン, Timbro, アゴラ, アゴラ, Arena Ide; the model's answer leaves one
    of the Latin names out, its text keeps it."""
    source = [placed("地名", "スウェーデン", THINK_TANKS_JA)] + [
        placed("法人名", s, THINK_TANKS_JA, nth)
        for s, nth in (("Timbro", 0), ("アゴラ", 0), ("アゴラ", 1), ("Arena Ide", 0))]
    target = [placed("Location", "Sweden", THINK_TANKS)] + [
        placed("Corp", s, THINK_TANKS, nth)
        for s, nth in (("Timbro", 0), ("Agora", 0), ("Agora", 1), ("Arena Ide", 0))
        if s != dropped]
    pairs = pair_mentions(source, THINK_TANKS_JA, ["Location"] + ["Corp"] * 4, target,
                          THINK_TANKS)
    shown = [(p.source, None if p.target is None else target[p.target].text) for p in pairs]
    names = ["Sweden", "Timbro", "Agora", "Agora", "Arena Ide"]
    assert shown == [(i, None if s == dropped else s) for i, s in enumerate(names)]
