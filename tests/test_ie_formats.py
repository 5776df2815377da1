"""IEPile, InstructUIE/B2NERD and UniversalNER data: round trips on the real samples, and
translation of relations and events through the scripted server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmtrans
from mmtrans import formats
from mmtrans.checks import check_residual_source, run_checks
from mmtrans.cli import app
from mmtrans.formats import iepile_instruction, mre, uniner
from mmtrans.records import Mention, Record, Relation
from mmtrans.testing import FakeLLM, Reply, good_translation

from .conftest import DATA

IEPILE = DATA / "iepile"
CROSSNER = DATA / "universal-ner" / "CrossNER_AI.json"
RAW = ["NER", "RE", "EE", "EET", "EEA", "SPO"]


def lines(path: Path) -> list:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def records(path) -> list[Record]:
    return [r for r in formats.read(path) if isinstance(r, Record)]


@pytest.mark.parametrize("task", RAW)
def test_iepile_raw_samples_round_trip(tmp_path, task):
    source = IEPILE / task / "sample.json"
    assert formats.detect(source) == "iepile"
    out = tmp_path / "out.jsonl"
    formats.write(records(source), out, "iepile")
    assert lines(out) == lines(source)


@pytest.mark.parametrize("name", ["NER/train.json", "NER/test.json", "RE/train.json",
                                  "RE/test.json", "EE/train.json", "EE/test.json"])
def test_iepile_instruction_files_round_trip(tmp_path, name):
    source = IEPILE / name
    assert formats.detect(source) == "iepile-instruction"
    out = tmp_path / "out.jsonl"
    formats.write(records(source), out, "iepile-instruction")
    assert lines(out) == lines(source)


def test_crossner_round_trips_and_merges_texts():
    merged = records(CROSSNER)
    assert len(merged) == 430
    first = merged[0]
    assert len(first.schema) == 13 and "organization" in first.schema  # known negatives kept
    assert [m.text for m in first.mentions if m.label == "algorithm"] == [
        "naive Bayes classifier", "Gaussian mixture model", "variational autoencoders"]


def test_crossner_writes_back_the_same_items(tmp_path):
    out = tmp_path / "out.json"
    uniner.write(records(CROSSNER), out)
    assert json.loads(out.read_text()) == json.loads(CROSSNER.read_text())


def test_relation_subject_object_keys_are_kept(tmp_path):
    path = tmp_path / "so.jsonl"
    item = {"text": "周星驰主演喜剧之王", "relation": [
        {"subject": "喜剧之王", "relation": "主演", "object": "周星驰"}]}
    path.write_text(json.dumps(item, ensure_ascii=False) + "\n", encoding="utf-8")
    (record,) = records(path)
    assert record.relations == [Relation("喜剧之王", "主演", "周星驰")]
    formats.write([record], tmp_path / "back.jsonl", "iepile")
    assert lines(tmp_path / "back.jsonl") == [item]


def uie_dataset(root: Path) -> Path:
    folder = root / "b2nerd_demo"
    folder.mkdir(parents=True)
    train = [{"sentence": "東京は日本の首都で、多くの人が東京に住む。",
              "entities": [{"name": "東京", "type": "地名", "pos": [0, 2]},
                           {"name": "日本", "type": "地名", "pos": [3, 5]},
                           {"name": "東京", "type": "地名", "pos": [15, 17]}]}]
    (folder / "train.json").write_text(json.dumps(train, ensure_ascii=False), encoding="utf-8")
    (folder / "labels.json").write_text(json.dumps(["地名", "人名"], ensure_ascii=False),
                                        encoding="utf-8")
    return root


def test_uie_folder_round_trips(tmp_path):
    root = uie_dataset(tmp_path / "in")
    assert formats.detect(root) == "uie"
    out = tmp_path / "out"
    formats.write(records(root), out, "uie")
    assert json.loads((out / "b2nerd_demo" / "train.json").read_text()) == \
        json.loads((root / "b2nerd_demo" / "train.json").read_text())
    assert json.loads((out / "b2nerd_demo" / "labels.json").read_text()) == ["地名", "人名"]


def test_b2nerd_entity_occurring_twice_gets_both_offsets_in_the_translation(tmp_path):
    root = uie_dataset(tmp_path / "in")
    (record,) = records(root)
    assert record.schema == ["地名", "人名"]
    target = Record(record.id, "Tokyo is the capital of Japan, and many people live in Tokyo.",
                    mentions=[Mention("Location", "Tokyo"), Mention("Location", "Japan"),
                              Mention("Location", "Tokyo")], meta=record.meta,
                    schema=["Location", "Person"])
    expected = record.map_labels({"地名": "Location", "人名": "Person"})
    checked = run_checks(expected, target, "ja", "en")
    assert checked.ok, checked.problems
    out = tmp_path / "out"
    formats.write([checked.record], out, "uie")
    (item,) = json.loads((out / "b2nerd_demo" / "train.json").read_text())
    assert [e["pos"] for e in item["entities"]] == [[0, 5], [24, 29], [55, 60]]
    assert all(item["sentence"][s:e] == ent["name"] for ent in item["entities"]
               for s, e in [ent["pos"]])
    assert json.loads((out / "b2nerd_demo" / "labels.json").read_text()) == ["Location", "Person"]


def test_relation_whose_head_is_missing_in_the_translation_is_anchored():
    source = records(IEPILE / "RE" / "sample.json")[0]
    expected = source.map_labels({"主演": "starring"})
    target = Record(source.id, "Read An Actor Prepares; Stephen Chow rose from poverty.",
                    task="RE", relations=[Relation("King of Comedy", "starring", "Stephen Chow")])
    problems = run_checks(expected, target, "zh", "en").problems
    assert [(p.code, p.where) for p in problems] == [("anchored", "relations[0].head")]


@pytest.mark.parametrize("task", RAW)
def test_each_iepile_sample_translates_zh_to_en_with_relations_and_events(tmp_path, task):
    source = IEPILE / task / "sample.json"
    with FakeLLM() as llm:
        result = mmtrans.translate(source, tmp_path / "run.db", mmtrans.Settings(
            src="zh", tgt="en", labels=["iepile"], base_url=llm.base_url))
        payloads = [json.loads(r["messages"][3]["content"].split(":\n", 1)[1])
                    for r in llm.requests]
    n = len(lines(source))
    assert result["accepted"] == n, result
    out = tmp_path / "en.jsonl"
    assert mmtrans.export(tmp_path / "run.db", out).written == n
    translated = records(out)
    for record in translated:
        assert not any("\u4e00" <= c <= "\u9fff" for c in json.dumps(
            record.to_dict()["relations"] + record.to_dict()["events"], ensure_ascii=False))
        for _, s in record.anchored():
            assert s in record.text
    if task in ("RE", "SPO"):
        assert any("relations" in p for p in payloads)
        assert translated[0].relations[0].relation in ("starring", "author")
    if task.startswith("EE"):
        assert any("events" in p for p in payloads)
        assert translated[0].events[0].type == "Organizational Relation-Layoff"


def test_iepile_instruction_file_translates_with_english_instruction(tmp_path):
    source = IEPILE / "NER" / "train.json"
    with FakeLLM() as llm:
        mmtrans.translate(source, tmp_path / "run.db", mmtrans.Settings(
            src="zh", tgt="en", labels=["iepile"], base_url=llm.base_url))
    out = tmp_path / "train.en.json"
    mmtrans.export(tmp_path / "run.db", out)
    items = json.loads(out.read_text())
    assert len(items) == 6
    instruction = json.loads(items[1]["instruction"])
    assert instruction["instruction"] == iepile_instruction.templates()["en"]["NER"]
    assert instruction["schema"] == ["Person", "Organization", "Location"]
    output = json.loads(items[1]["output"])
    assert list(output) == ["Person", "Organization", "Location"]
    assert len(output["Organization"]) == 2
    assert all(s in instruction["input"] for s in output["Organization"])
    assert records(out)[1].task == "NER"  # its own reader reads it back


def test_crossner_translates_into_japanese_keeping_known_negatives(tmp_path):
    source = tmp_path / "crossner.json"
    source.write_text(json.dumps(json.loads(CROSSNER.read_text())[:26]), encoding="utf-8")
    with FakeLLM(lambda p, r: Reply(json.dumps(good_translation(p, "ja"),
                                               ensure_ascii=False))) as llm:
        result = mmtrans.translate(source, tmp_path / "run.db", mmtrans.Settings(
            src="en", tgt="ja", labels=["crossner"], base_url=llm.base_url))
        system = llm.requests[0]["messages"][0]["content"]
    assert result["accepted"] == 2
    assert "tokenised with spaces" in system
    out = tmp_path / "crossner.ja.json"
    mmtrans.export(tmp_path / "run.db", out)
    items = json.loads(out.read_text())
    assert len(items) == 26
    questions = [i["conversations"][2]["value"] for i in items]
    assert "What describes アルゴリズム in the text?" in questions
    assert sum(i["conversations"][3]["value"] == "[]" for i in items) >= 20  # negatives kept


def test_mre_relation_and_event_task_words_round_trip():
    known = frozenset({"主演", "作者", "组织关系-裁员", "裁员人数", "时间"})
    rel = mre.parse({"input": "《喜剧之王》周星驰主演，作者是Pi:Co。/Relation Extraction",
                     "output": "电影/Relation Extraction/:喜剧之王;主演;周星驰:Pi:Co;作者;周星驰"},
                    "x", known)
    assert [(r.head, r.relation, r.tail) for r in rel.relations] == [
        ("喜剧之王", "主演", "周星驰"), ("Pi:Co", "作者", "周星驰")]
    output = "财经/Event Extraction/:组织关系-裁员;裁员;裁员人数;900余人;时间;5月份"
    event = mre.parse({"input": "5月份在华裁员900余人/Event Extraction", "output": output},
                      "x", known)
    (e,) = event.events
    assert (e.type, e.trigger, [(a.role, a.text) for a in e.arguments]) == (
        "组织关系-裁员", "裁员", [("裁员人数", "900余人"), ("时间", "5月份")])
    for record in (rel, event):
        assert mre.parse(mre.to_item(record), "x", known) == record


def test_residual_source_for_chinese_and_english_sources():
    zh_in_ja = Record("x", "这是东京的报道。", mentions=[])
    assert [p.code for p in check_residual_source(zh_in_ja, "zh", "ja")] == ["residual_source"]
    assert check_residual_source(Record("x", "これは東京の報道です。"), "zh", "ja") == []
    english_left = Record("x", "IBMはSystem/360を発表した。the company announced it",
                          mentions=[Mention("a", "IBM"), Mention("b", "System/360")])
    assert "the company announced" in check_residual_source(english_left, "en", "ja")[0].message
    names_only = Record("x", "1964年4月，IBM发布了System/360和naive Bayes classifier。",
                        mentions=[Mention("a", "naive Bayes classifier")])
    assert check_residual_source(names_only, "en", "zh") == []


def test_the_english_run_check_stays_quiet_on_real_japanese_and_chinese(stockmark_records):
    flagged = [r.id for r in stockmark_records[:2000]
               if check_residual_source(r, "en", "ja")]
    assert flagged == []  # annotated names are removed before the check
    chinese = records(IEPILE / "RE" / "train.json") + records(IEPILE / "EE" / "train.json")
    assert [r.id for r in chinese if check_residual_source(r, "en", "zh")] == []


def test_labels_missing_lists_a_ready_to_fill_tsv_and_suggest_writes_for_review(tmp_path):
    runner = CliRunner()
    source = str(IEPILE / "EE" / "sample.json")
    listed = runner.invoke(app, ["labels", "missing", source, "--src", "zh", "--tgt", "fr"])
    assert listed.exit_code == 0
    rows = [x.split("\t") for x in listed.stdout.splitlines() if not x.startswith("#")]
    assert ["组织关系-裁员", ""] in rows and ["裁员方", ""] in rows
    for named in (["--labels", "iepile"], []):  # by default every table of the pair counts
        covered = runner.invoke(app, ["labels", "missing", source, "--src", "zh", "--tgt", "en",
                                      *named])
        assert [x for x in covered.stdout.splitlines() if not x.startswith("#")] == []
    partial = tmp_path / "partial.zh-en.tsv"
    partial.write_text("时间\ttime\n", encoding="utf-8")
    listed = runner.invoke(app, ["labels", "missing", source, "--src", "zh", "--tgt", "en",
                                 "--labels", str(partial)])
    rows = [x.split("\t")[0] for x in listed.stdout.splitlines() if not x.startswith("#")]
    assert "裁员方" in rows and "时间" not in rows
    typo = runner.invoke(app, ["labels", "missing", source, "--src", "zh", "--tgt", "en",
                               "--labels", "iepil"])
    assert typo.exit_code == 2 and "no label table 'iepil'" in typo.output

    def answer(payload, request):
        labels = json.loads(request["messages"][1]["content"])
        return Reply(json.dumps({label: f"FR:{label}" for label in labels},
                                ensure_ascii=False))

    out = tmp_path / "iepile.zh-fr.suggested.tsv"
    with FakeLLM(answer) as llm:
        result = runner.invoke(app, ["labels", "suggest", source, "--src", "zh", "--tgt", "fr",
                                     "--out", str(out), "--base-url", llm.base_url])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "组织关系-裁员\tFR:组织关系-裁员" in text and "NOT USED" in text
    assert not (Path(mmtrans.__file__).parent.parent / "data/labels/iepile.zh-fr.tsv").exists()


def test_iepile_events_translate_zh_to_ja(tmp_path):
    source = IEPILE / "EE" / "sample.json"
    with FakeLLM(lambda p, r: Reply(json.dumps(good_translation(p, "ja"),
                                               ensure_ascii=False))) as llm:
        result = mmtrans.translate(source, tmp_path / "run.db", mmtrans.Settings(
            src="zh", tgt="ja", base_url=llm.base_url))  # no --labels: iepile.zh-ja is found
    assert result["accepted"] == len(lines(source))
    out = tmp_path / "ee.ja.jsonl"
    mmtrans.export(tmp_path / "run.db", out)
    first = lines(out)[0]["event"][0]
    assert first["event_type"] == "組織関係-人員削減"
    assert {a["role"] for a in first["arguments"]} == {"削減人数", "時間"}


def test_a_uie_folder_translates_end_to_end_into_a_folder(tmp_path):
    root = uie_dataset(tmp_path / "in")
    table = tmp_path / "demo.ja-en.tsv"
    table.write_text("地名\tLocation\n人名\tPerson\n", encoding="utf-8")
    with FakeLLM() as llm:
        result = mmtrans.translate(root, tmp_path / "run.db", mmtrans.Settings(
            src="ja", tgt="en", labels=[str(table)], base_url=llm.base_url))
    assert result["accepted"] == 1
    out = tmp_path / "out"
    mmtrans.export(tmp_path / "run.db", out)
    (item,) = json.loads((out / "b2nerd_demo" / "train.json").read_text())
    assert all(item["sentence"][s:e] == ent["name"] for ent in item["entities"]
               for s, e in [ent["pos"]])
    assert json.loads((out / "b2nerd_demo" / "labels.json").read_text()) == ["Location", "Person"]


def test_labels_suggest_closes_its_connections_before_it_exits(tmp_path):
    """The suggestion's one request goes through the run's HTTP pool (aiohttp's), which
    must be closed in the event loop that made it: else every `labels suggest` ends with
    "Unclosed client session" on stderr."""
    import subprocess
    import sys

    def answer(payload, request):
        labels = json.loads(request["messages"][1]["content"])
        return Reply(json.dumps({label: f"FR:{label}" for label in labels}))

    out = tmp_path / "suggested.tsv"
    with FakeLLM(answer) as llm:
        done = subprocess.run(
            [sys.executable, "-m", "mmtrans", "labels", "suggest",
             str(IEPILE / "EE" / "sample.json"), "--src", "zh", "--tgt", "fr", "--out",
             str(out), "--base-url", llm.base_url], capture_output=True, text=True,
            timeout=120)
    assert done.returncode == 0, done.stderr
    assert "FR:" in out.read_text(encoding="utf-8")
    assert "Unclosed" not in done.stderr, done.stderr
