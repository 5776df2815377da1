"""Readers and writers on real data: the MRE parser must be exact where strings hold / and :."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmtrans import formats
from mmtrans.errors import InputError
from mmtrans.formats import Reject, mre
from mmtrans.records import Record

LABELS = frozenset({"Person", "Product Name", "製品名", "法人名", "人名", "地名", "施設名"})


def parse(output: str, text: str = "t") -> Record:
    return mre.parse({"input": f"{text}/NER", "output": output}, "x:0", LABELS)


def pairs(record: Record) -> list[tuple[str, str]]:
    return [(m.label, m.text) for m in record.mentions]


def test_mre_example_from_the_design():
    r = parse("Literature/NER/:Person;Marlon Brando:Product Name;On the Waterfront")
    assert r.label == "Literature" and r.task == "NER"
    assert pairs(r) == [("Person", "Marlon Brando"), ("Product Name", "On the Waterfront")]


def test_mre_strings_with_slash_and_colon_survive():
    r = parse("技術/NER/:法人名;IBM:製品名;System/360", "1964年4月、IBMはSystem/360を発表した。")
    assert pairs(r) == [("法人名", "IBM"), ("製品名", "System/360")]
    r = parse("技術/NER/:製品名;Pi:Co:法人名;アールティ")
    assert pairs(r) == [("製品名", "Pi:Co"), ("法人名", "アールティ")]
    r = parse("文芸/NER/:製品名;キングダム ハーツ358/2 Days")
    assert pairs(r) == [("製品名", "キングダム ハーツ358/2 Days")]


def test_mre_input_splits_on_its_final_task_word():
    r = mre.parse({"input": "DC-9/MD-80/NERシリーズ/NER", "output": "/NER/"}, "x:0", LABELS)
    assert r.text == "DC-9/MD-80/NERシリーズ" and r.mentions == [] and r.label is None


def test_mre_full_width_separators_read_like_ascii():
    assert pairs(parse("社会/NER/：人名；松友美佐紀：地名；日本")) == [("人名", "松友美佐紀"),
                                                              ("地名", "日本")]


@pytest.mark.parametrize("tail", ["", ":無い;", ":None;", ":无;", "：無い；"])
def test_mre_none_markers_mean_no_entities(tail):
    r = parse(f"自然/NER/{tail}")
    assert r.label == "自然" and r.mentions == []


def test_mre_longest_task_word_wins():
    item = {"input": "良い本/Sentiment Adj and N", "output": "positive/Sentiment Adj and N/"}
    r = mre.parse(item, "x:0", LABELS)
    assert r.task == "Sentiment Adj and N" and r.text == "良い本"


def test_mre_unknown_labels_still_split_so_the_label_check_can_name_them():
    assert pairs(parse("社会/NER/:Weird Type;foo:人名;bar")) == [("Weird Type", "foo"),
                                                                 ("人名", "bar")]


def test_mre_bad_lines_are_rejected_with_file_and_line_and_the_rest_is_read(tmp_path: Path):
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([
        json.dumps({"input": "日本の首都/NER", "output": "社会/NER/:地名;日本"},
                   ensure_ascii=False),
        "{not json",
        json.dumps({"input": "no task word", "output": "x"}),
        json.dumps({"input": "東京/NER", "output": "社会/NER/:地名;東京"}, ensure_ascii=False),
    ]), encoding="utf-8")
    items = list(formats.read(path))
    rejects = [i for i in items if isinstance(i, Reject)]
    records = [i for i in items if isinstance(i, Record)]
    assert [r.text for r in records] == ["日本の首都", "東京"]
    assert [(r.line, r.path) for r in rejects] == [(2, str(path)), (3, str(path))]
    assert "not JSON" in rejects[0].message and "task word" in rejects[1].message


def test_broken_json_array_keeps_the_items_before_and_names_the_line(tmp_path: Path):
    path = tmp_path / "broken.json"
    path.write_text('[\n {"input": "a/NER", "output": "/NER/"},\n {"input": oops}\n]')
    records, rejects = [], []
    for item in formats.read(path):
        (rejects if isinstance(item, Reject) else records).append(item)
    assert [r.text for r in records] == ["a"]
    (reject,) = rejects
    assert (reject.line, reject.index) == (3, None)
    assert str(reject).startswith(f"{path}:3: not JSON") and "from item 1 on" in reject.message


def test_missing_file_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        formats.detect(tmp_path / "nope.json")


def test_formats_are_detected(tmp_path: Path, sample):
    assert formats.detect(sample(2)) == "stockmark"
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"input": "a/NER", "output": "/NER/"}) + "\n")
    assert formats.detect(path) == "mre"


def test_all_stockmark_records_round_trip_through_mre(tmp_path: Path, stockmark_records):
    assert len(stockmark_records) == 5343
    out = tmp_path / "scnm.json"
    assert formats.write(stockmark_records, out, "mre") == 5343
    back = [r for r in formats.read(out) if isinstance(r, Record)]
    assert len(back) == 5343
    for a, b in zip(stockmark_records, back):
        assert (b.text, b.task, b.label, pairs(b)) == (a.text, a.task, a.label, pairs(a))
    # and MRE -> MRE gives back the same file
    again = tmp_path / "again.json"
    formats.write(back, again, "mre")
    assert json.loads(again.read_text()) == json.loads(out.read_text())


def test_stockmark_round_trip_keeps_spans(tmp_path: Path, stockmark_items, stockmark_records):
    out = tmp_path / "ner.json"
    formats.write(stockmark_records, out, "stockmark")
    assert json.loads(out.read_text(encoding="utf-8")) == stockmark_items
