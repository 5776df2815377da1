"""The inline-tag strategy: strings come back from tags, so they occur in the text."""

from __future__ import annotations

import json

import mmtrans
from mmtrans.records import Mention, Record
from mmtrans.store import Store
from mmtrans.tagging import Tagged, read_tagged, tag, untag
from mmtrans.testing import Reply, good_translation

TOKYO = Record("x", "東京は日本の首都。東京タワー", mentions=[
    Mention("地名", "東京"), Mention("地名", "日本"), Mention("施設名", "東京タワー"),
    Mention("地名", "東京")])


def test_repeats_get_their_own_tags_and_nested_spans_nest():
    tagged = tag(TOKYO)
    assert isinstance(tagged, Tagged)
    assert tagged.text == "<m1>東京</m1>は<m2>日本</m2>の首都。<m3><m4>東京</m4>タワー</m3>"
    assert tagged.tag_of == {"mentions[0]": "m1", "mentions[1]": "m2", "mentions[2]": "m3",
                             "mentions[3]": "m4"}


def test_strings_are_read_back_from_the_tags():
    reply = ("<m1>Tokyo</m1> is the capital of <m2>Japan</m2>. "
             "<m3><m4>Tokyo</m4> Tower</m3>")
    record, problems = read_tagged(reply, tag(TOKYO), TOKYO)
    assert problems == []
    assert record.text == "Tokyo is the capital of Japan. Tokyo Tower"
    assert [m.text for m in record.mentions] == ["Tokyo", "Japan", "Tokyo Tower", "Tokyo"]


def test_lost_invented_repeated_and_broken_tags_are_format_problems():
    ids = {"m1", "m2", "m3"}
    *_, problems = untag("<m1>Tokyo</m1> is <m2>Japan <m9>x</m9>", ids)
    assert [p.message for p in problems] == ["tag m2 is not closed", "tag m3 was lost",
                                             "tag m9 is not in the source"]
    *_, problems = untag("<m1>a</m1><m1>b</m1><m2>c</m3>", {"m1", "m2", "m3"})
    assert {p.code for p in problems} == {"format"}
    assert "tag m1 appears twice" in [p.message for p in problems]


def test_crossing_spans_fall_back_to_the_default_strategy(tmp_path, llm):
    path = tmp_path / "cross.jsonl"
    item = {"input": "東京都庁舎/NER", "output": "社会/NER/:地名;東京都:施設名;都庁舎"}
    path.write_text(json.dumps(item, ensure_ascii=False) + "\n", encoding="utf-8")
    assert isinstance(tag(Record("x", "東京都庁舎", mentions=[Mention("a", "東京都"),
                                                           Mention("b", "都庁舎")])), str)
    db = tmp_path / "run.db"
    mmtrans.translate(path, db, mmtrans.Settings(src="ja", tgt="en", labels=["scnm"],
                                                 base_url=llm.base_url, strategy="tagged"))
    assert "entities" in json.loads(llm.requests[0]["messages"][3]["content"].split(":\n", 1)[1])
    store = Store(db)
    (t,) = store.latest_translations(store.latest_run()).values()
    store.close()
    assert t.status == "accepted" and "used the default strategy" in t.notes[0]


def test_tagged_run_end_to_end_with_a_lost_tag_repaired(tmp_path, sample, llm):
    def script(payload, request):
        answer = good_translation(payload)
        if len(request["messages"]) == 4 and len(llm.requests) == 1:
            answer["text"] = answer["text"].replace("<m1>", "").replace("</m1>", "")
        return Reply(json.dumps(answer, ensure_ascii=False))

    llm.script = script
    db = tmp_path / "run.db"
    settings = mmtrans.Settings(src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url,
                                strategy="tagged", concurrency=1)
    result = mmtrans.translate(sample(8), db, settings)
    assert result["accepted"] == 8 and len(llm.requests) == 9
    assert "<m1>" in llm.requests[0]["messages"][3]["content"]
    assert "tag m1 was lost" in llm.requests[1]["messages"][-1]["content"]
    out = tmp_path / "out.json"
    mmtrans.export(db, out, fmt="mre")
    exported = json.loads(out.read_text())
    assert len(exported) == 8
    for item in exported:
        assert "<m" not in item["input"]
    verdicts = list(mmtrans.check_files(sample(8), out, "ja", "en", ["scnm"]))
    assert all(v.ok for v in verdicts)
