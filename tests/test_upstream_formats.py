"""Every data file zjunlp/IEPile and zjunlp/DeepKE's InstructKGC ship (tests/data/upstream,
each file the blob its SOURCE names): read with no reject, written back byte for byte, and
translated (scripted server) and exported with every item, its shape, its NAN and nothing of
the source language kept."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import mmtrans
from mmtrans import formats
from mmtrans.formats import Reject, iepile_instruction
from mmtrans.labels import read_table, table_path
from mmtrans.records import Event, Mention, Record, Relation, map_anchored
from mmtrans.testing import FakeLLM, record_payload

from .conftest import DATA

UPSTREAM = DATA / "upstream"
HAN = re.compile(r"[\u4e00-\u9fff]")


def sources() -> list[tuple[str, str, str, Path]]:
    """(repository, blob id, path in it, the file here) for every line of every SOURCE."""
    out = []
    for source in sorted(UPSTREAM.glob("*/SOURCE")):
        text = source.read_text(encoding="utf-8")
        repo = text.split()[1]
        for line in text.splitlines():
            if line and not line.startswith("#"):
                blob, path, here = line.split("\t")
                out.append((repo, blob, path, (source.parent / here).resolve()))
    return out


def is_records(path: Path) -> bool:
    """IEPile's schema.json (three lines of labels) and hard_negative/ (label -> labels)
    describe label sets; every other file holds records."""
    return path.name != "schema.json" and "hard_negative" not in path.parts


#: Every record file the two repositories ship, by "repository:path"; DeepKE's 26 files that
#: are IEPile's blobs are the same file here.
RECORD_FILES = {f"{repo}:{path}": here for repo, _, path, here in sources() if is_records(here)}
FILES = sorted(set(RECORD_FILES.values()))


def values(path: Path) -> list[Any]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").split("\n") if x.strip()]


def read(path: Path) -> tuple[list[Record], list[Reject]]:
    records, rejects = [], []
    for r in formats.read(path):
        (records if isinstance(r, Record) else rejects).append(r)
    return records, rejects


def name(path: Path) -> str:
    return str(path.relative_to(UPSTREAM))


def test_each_upstream_file_is_the_blob_its_source_names():
    entries = sources()
    assert len(entries) == 30 + 28  # IEPile's data/ and InstructKGC's data/, every file
    for repo, blob, path, here in entries:
        data = here.read_bytes()
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == blob, (repo, path)
    assert len(RECORD_FILES) == 21 + 21 and len(FILES) == 23


@pytest.mark.parametrize("path", FILES, ids=name)
def test_every_upstream_record_file_is_read_whole_and_written_back_byte_for_byte(
        tmp_path, path):
    records, rejects = read(path)
    assert rejects == []
    assert len(records) == len(values(path))
    out = tmp_path / "back.jsonl"  # IEPile's files are JSON Lines whatever their suffix
    assert formats.write(records, out, formats.detect(path)) == len(records)
    original = path.read_bytes()
    assert out.read_bytes() in (original, original + b"\n")


def skeleton(value: Any) -> Any:
    """A JSON value with every string but "NAN" made "s" and every key made its position
    (JSON held in a string opened): the nesting, the lists, the empties and the NANs."""
    if isinstance(value, dict):
        return [[i, skeleton(v)] for i, v in enumerate(value.values())]
    if isinstance(value, list):
        return [skeleton(v) for v in value]
    if isinstance(value, str):
        if value[:1] in "{[":
            try:
                return skeleton(json.loads(value))
            except json.JSONDecodeError:
                pass
        return value if value == iepile_instruction.NAN else "s"
    return value


def strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return strings(json.loads(value))
        except json.JSONDecodeError:
            pass
    return [value] if isinstance(value, str) else []


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", FILES, ids=name)
def test_every_upstream_record_file_translates_and_exports_every_item_in_its_shape(
        tmp_path, path):
    source = values(path)
    with FakeLLM() as llm:
        result = mmtrans.translate(path, tmp_path / "run.db", mmtrans.Settings(
            src="zh", tgt="en", labels=["iepile"], base_url=llm.base_url))
        sent = [json.dumps(record_payload(r), ensure_ascii=False) for r in llm.requests]
    assert (result["items"], result["rejects"], result["accepted"]) == (len(source), 0,
                                                                        len(source))
    assert not any('"NAN"' in s for s in sent)  # a missing argument is never sent as text
    out = tmp_path / "en.jsonl"
    assert mmtrans.export(tmp_path / "run.db", out).written == len(source)
    exported = values(out)
    assert [skeleton(v) for v in exported] == [skeleton(v) for v in source]
    left = [s for v in exported for s in strings(v) if HAN.search(s)]
    assert left == []  # every label, anchored string and sentence translated
    back, rejects = read(out)
    assert (len(back), rejects) == (len(source), [])
    for record in back:
        for where, s in record.anchored():
            assert s in record.text, (where, s)
    for item in exported:  # EEA: the schema's trigger words are the translated triggers
        instruction = json.loads(item.get("instruction", "{}"))
        for entry in instruction.get("schema", []):
            for word in entry.get("trigger", []) if isinstance(entry, dict) and \
                    isinstance(entry.get("trigger"), list) else []:
                assert word in instruction["input"]


def schema_labels(path: Path) -> list[str]:
    """The labels of an IEPile schema.json: types, roles or relations, type -> roles; SPO and
    KG types are "subject_predicate_object" strings."""
    lines = values(path)
    labels: list[str] = []
    for x in lines[0]:
        parts = x.split("_") if path.parent.name in ("SPO", "KG") else [x]
        labels += [parts[0], "_".join(parts[1:-1]), parts[-1]] if len(parts) > 2 else parts
    labels += lines[1]
    for key, roles in lines[2].items():
        labels += [key, *roles]
    return labels


@pytest.mark.parametrize("tgt", ["en", "ja"])
def test_the_iepile_tables_cover_every_label_the_upstream_files_use_or_declare(tgt):
    table = read_table(table_path("iepile", "zh", tgt))
    used = {label for path in FILES for r in read(path)[0] for _, label in r.labels()}
    declared = {label for path in UPSTREAM.rglob("schema.json") for label in schema_labels(path)}
    assert {"Number", "Date", "Text", "父母", "企业/品牌"} <= used
    assert sorted((used | declared) - table.keys()) == []


IEPILE = UPSTREAM / "iepile" / "data"


def line(path: Path, n: int) -> Record:
    return read(path)[0][n]


def test_kg_output_nests_entities_attributes_and_values_as_relations():
    record = line(IEPILE / "KG" / "train.json", 0)
    assert record.task == "KG" and record.schema[0] == "人物"
    assert record.relations[:2] == [Relation("明治天皇", "别名", "睦仁", "人物"),
                                    Relation("明治天皇", "父母", "孝明天皇", "人物")]
    assert len(record.relations) == 6 and record.mentions == []
    names = {"明治天皇": "Meiji", "睦仁": "Mutsuhito", "孝明天皇": "Komei",
             "英照皇太后": "Eisho", "权大纳言": "Gon-Dainagon"}
    translated = map_anchored(record, lambda where, s: names[s])
    output = json.loads(iepile_instruction.to_item(translated)["output"])
    assert output == {"人物": {"Meiji": {"别名": "Mutsuhito",
                                        "父母": ["Komei", "Eisho", "Gon-Dainagon"]},
                               "Komei": {"配偶": ["Eisho", "Gon-Dainagon"]}}}


def test_a_kg_entity_named_two_ways_by_the_model_stays_one_entity():
    """The model sees an entity's name once per attribute and may translate it two ways: the
    entity is written once, under its first name, with every attribute read under it."""
    record = line(IEPILE / "KG" / "train.json", 0)
    names = {"明治天皇": "Meiji", "睦仁": "Mutsuhito", "孝明天皇": "Komei",
             "英照皇太后": "Eisho", "权大纳言": "Gon-Dainagon"}
    translated = map_anchored(record, lambda where, s: "Emperor Meiji"
                              if where == "relations[2].head" else names[s])
    assert {r.head for r in translated.relations[:4]} == {"Meiji", "Emperor Meiji"}
    output = json.loads(iepile_instruction.to_item(translated)["output"])
    assert output == {"人物": {"Meiji": {"别名": "Mutsuhito",
                                        "父母": ["Komei", "Eisho", "Gon-Dainagon"]},
                               "Komei": {"配偶": ["Eisho", "Gon-Dainagon"]}}}
    # A relation added in review: the names decide again, as for a record read before.
    reviewed = replace(translated, relations=[*translated.relations,
                                              Relation("Komei", "别名", "Osahito", "人物")])
    output = json.loads(iepile_instruction.to_item(reviewed)["output"])
    assert output["人物"]["Komei"] == {"配偶": ["Eisho", "Gon-Dainagon"], "别名": "Osahito"}


def test_a_kg_attribute_an_annotator_moves_to_another_entity_is_written_under_it():
    """A review edit that keeps the number of relations but changes them: the names, not
    where the relations were read, say which entity each belongs to."""
    from mmtrans.review.view import parse_structures

    item = {"task": "KG", "instruction": json.dumps({
        "instruction": "", "schema": [{"entity_type": "城市", "attributes": ["国家", "人口"]}],
        "input": "东京和大阪"}, ensure_ascii=False),
        "output": json.dumps({"城市": {"东京": {"国家": "日本", "人口": "1400万"},
                                       "大阪": {"国家": "日本"}}}, ensure_ascii=False)}
    record = iepile_instruction.parse(item, "x")
    relations = [{"head": r.head, "relation": r.relation, "tail": r.tail,
                  "head_label": r.head_label} for r in record.relations]
    relations[1]["head"] = "大阪"  # 人口 belongs to 大阪
    edited = parse_structures({"relations": relations}, record, None)
    output = json.loads(iepile_instruction.to_item(edited)["output"])
    assert output == {"城市": {"东京": {"国家": "日本"},
                               "大阪": {"人口": "1400万", "国家": "日本"}}}
    unchanged = parse_structures({"relations": relations[:1] + [
        {**relations[1], "head": "东京"}] + relations[2:]}, record, None)
    assert iepile_instruction.to_item(unchanged)["output"] == item["output"]


def test_a_kg_entity_without_attributes_is_an_anchored_mention_written_back_empty():
    item = {"task": "KG", "instruction": json.dumps({
        "instruction": "", "schema": [{"entity_type": "人物", "attributes": ["别名"]}],
        "input": "张三和李四"}, ensure_ascii=False),
        "output": json.dumps({"人物": {"张三": {}, "李四": {"别名": ["小四"]}}},
                             ensure_ascii=False)}
    record = iepile_instruction.parse(item, "x")
    assert record.mentions == [Mention("人物", "张三")]
    assert [(r.head, r.tail) for r in record.relations] == [("李四", "小四")]
    assert iepile_instruction.to_item(record)["output"] == item["output"]  # ["小四"] kept a list


def test_spo_schema_triples_are_labels_and_types_reach_the_relations():
    record = line(IEPILE / "SPO" / "train.json", 0)
    assert record.schema[:6] == ["图书作品", "作者", "人物", "影视作品", "制片人", "人物"]
    assert record.relations == [Relation("邪少兵王", "作者", "冰火未央", "图书作品", "人物")]
    english = record.map_labels({"图书作品": "Book", "作者": "author", "人物": "Person"})
    schema = json.loads(iepile_instruction.to_item(english)["instruction"])["schema"]
    assert schema[0] == {"subject_type": "Book", "predicate": "author", "object_type": "Person"}


def test_eet_outputs_that_list_trigger_strings_are_events():
    records, rejects = read(IEPILE / "EET" / "train.json")
    assert rejects == []
    with_events = [r for r in records if r.events]
    assert len(with_events) == 7
    assert with_events[0].events[0] == Event("组织关系-裁员", "裁员")


def test_eea_nan_arguments_stay_out_of_the_record_and_come_back_as_nan():
    record = line(IEPILE / "EEA" / "train.json", 0)
    (event,) = record.events
    assert [(a.role, a.text) for a in event.arguments] == [
        ("时间", "5月份"), ("裁员人数", "900余人")]
    assert all(s != "NAN" for _, s in record.anchored())
    output = json.loads(iepile_instruction.to_item(record)["output"])
    assert output["组织关系-裁员"][0]["arguments"]["裁员方"] == "NAN"


def test_eea_schema_triggers_are_written_from_the_events_they_name():
    record = line(IEPILE / "EEA" / "train.json", 2)  # two events, both triggered by 裁员
    renamed = map_anchored(record, lambda where, s: f"<{where}>")
    schema = json.loads(iepile_instruction.to_item(renamed)["instruction"])["schema"]
    assert schema[0]["trigger"] == ["<events[0].trigger>", "<events[1].trigger>"]


def test_an_eea_schema_trigger_naming_no_event_is_an_anchored_mention():
    item = {"task": "EEA", "instruction": json.dumps({
        "instruction": "", "schema": [{"event_type": "组织关系-裁员", "trigger": ["裁掉"],
                                       "arguments": ["裁员方"]}], "input": "猛龙裁掉了他"},
        ensure_ascii=False), "output": json.dumps({"组织关系-裁员": []})}
    record = iepile_instruction.parse(item, "x")
    assert record.mentions == [Mention("组织关系-裁员", "裁掉")]
    renamed = map_anchored(record, lambda where, s: "waived")
    written = iepile_instruction.to_item(renamed)
    assert json.loads(written["instruction"])["schema"][0]["trigger"] == ["waived"]
    assert json.loads(written["output"]) == {"组织关系-裁员": []}  # the mention is no output


def test_a_nan_trigger_is_no_anchored_string_and_is_written_back():
    item = {"task": "EEA", "instruction": json.dumps({
        "instruction": "", "schema": [{"event_type": "人生-死亡", "arguments": ["时间"]}],
        "input": "昨天他去世了"}, ensure_ascii=False),
        "output": json.dumps({"人生-死亡": [{"trigger": "NAN", "arguments": {"时间": "昨天"}}]},
                             ensure_ascii=False)}
    record = iepile_instruction.parse(item, "x")
    assert record.events[0].trigger == "" and [s for _, s in record.anchored()] == ["昨天"]
    assert iepile_instruction.to_item(record)["output"] == item["output"]


def test_labels_missing_lists_spo_object_types_and_kg_attributes_for_an_uncovered_pair():
    from typer.testing import CliRunner

    from mmtrans.cli import app

    listed = set()
    for task in ("SPO", "KG"):
        result = CliRunner().invoke(app, ["labels", "missing", str(IEPILE / task / "train.json"),
                                          "--src", "zh", "--tgt", "fr"])
        assert result.exit_code == 0, result.output
        listed |= {x.split("\t")[0] for x in result.stdout.splitlines() if "\t" in x}
    assert {"Number", "Date", "Text", "作者", "影视作品", "父母", "别名"} <= listed
