"""Every input item is accounted for: each one a Record with its own identity, or a Reject
that names its file, line and item index. Real IEPile / UniversalNER files where they exist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mmtrans
from mmtrans import formats
from mmtrans.formats import Reject
from mmtrans.formats._io import parse_items
from mmtrans.labels import load_tables
from mmtrans.records import Record, Relation
from mmtrans.testing import FakeLLM

from .conftest import DATA

IEPILE = DATA / "iepile"
CROSSNER = DATA / "universal-ner" / "CrossNER_AI.json"


def read(path: str | Path, fmt: str | None = None) -> tuple[list[Record], list[Reject]]:
    items = list(formats.read(path, fmt))
    return ([r for r in items if isinstance(r, Record)],
            [r for r in items if isinstance(r, Reject)])


def jsonl(path: Path, values: list[Any]) -> Path:
    path.write_text("".join(json.dumps(v, ensure_ascii=False) + "\n" for v in values),
                    encoding="utf-8")
    return path


def instruction(schema: list[Any], output: dict[str, Any], task: str = "EE") -> dict[str, Any]:
    return {"task": task, "source": task, "output": json.dumps(output, ensure_ascii=False),
            "instruction": json.dumps({"instruction": "x", "schema": schema, "input": "公司裁员"},
                                      ensure_ascii=False)}


# -- identity -------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "count"), [("RE/test.json", 72), ("EE/test.json", 96)])
def test_iepile_test_files_keep_every_item_though_they_repeat_ids(tmp_path, name, count):
    source = IEPILE / name
    items = [json.loads(x) for x in source.read_text(encoding="utf-8").splitlines() if x.strip()]
    assert len(items) == count and len({i["id"] for i in items}) == 6  # the dataset repeats ids
    records, rejects = read(source)
    assert rejects == [] and len(records) == count
    assert [r.id for r in records] == [f"test.json:{i}" for i in range(count)]
    assert [r.meta["id"] for r in records] == [i["id"] for i in items]
    assert [r.meta["line"] for r in records] == list(range(1, count + 1))
    assert {r.meta["path"] for r in records} == {str(source.resolve())}
    for record, item in zip(records, items):  # each keeps its own schema, not its id-mate's
        schema = json.loads(item["instruction"])["schema"]
        first = schema[0]["event_type"] if isinstance(schema[0], dict) else schema[0]
        assert record.schema[0] == first
    out = tmp_path / "back.jsonl"
    assert formats.write(records, out, "iepile-instruction") == count
    back = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert back == items


def test_a_dataset_id_of_any_json_type_is_written_back_as_read(tmp_path):
    values = [{"id": 7, "input": "東京/NER", "output": "社会/NER/:地名;東京"},
              {"id": [1, "a"], "input": "日本/NER", "output": "社会/NER/:地名;日本"},
              {"input": "大阪/NER", "output": "社会/NER/:地名;大阪"}]
    path = jsonl(tmp_path / "ids.jsonl", values)
    records, _ = read(path)
    assert [r.id for r in records] == ["ids.jsonl:0", "ids.jsonl:1", "ids.jsonl:2"]
    assert [r.meta.get("id", "absent") for r in records] == [7, [1, "a"], "absent"]
    out = tmp_path / "back.jsonl"
    formats.write(records, out, "mre")
    assert [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()] == values


def test_raw_iepile_and_uie_items_keep_their_own_ids(tmp_path):
    raw = [{"id": "a1", "text": "周星驰", "entity": [{"entity": "周星驰", "entity_type": "人物"}]}]
    records, _ = read(jsonl(tmp_path / "raw.jsonl", raw))
    assert records[0].meta["id"] == "a1"
    formats.write(records, tmp_path / "raw.out.jsonl", "iepile")
    assert json.loads((tmp_path / "raw.out.jsonl").read_text(encoding="utf-8")) == raw[0]
    folder = tmp_path / "uie" / "demo"
    folder.mkdir(parents=True)
    item = {"id": 3, "sentence": "东京", "entities": [{"name": "东京", "type": "地名",
                                                     "pos": [0, 2]}]}
    (folder / "dev.json").write_text(json.dumps([item], ensure_ascii=False), encoding="utf-8")
    records, _ = read(tmp_path / "uie")
    assert [(r.id, r.meta["id"]) for r in records] == [("demo/dev.json:0", 3)]
    formats.write(records, tmp_path / "uie.out", "uie")
    assert json.loads((tmp_path / "uie.out" / "demo" / "dev.json").read_text()) == [item]


def test_stockmark_curid_is_the_items_own_id(tmp_path):
    items = [{"curid": "42", "text": "東京と大阪", "entities": [
        {"name": "東京", "span": [0, 2], "type": "地名"}]},
             {"curid": "42", "text": "大阪", "entities": []}]
    path = tmp_path / "ner.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    records, _ = read(path)
    assert [(r.id, r.meta["id"]) for r in records] == [("ner.json:0", "42"), ("ner.json:1", "42")]
    formats.write(records, tmp_path / "out.json", "stockmark")
    assert json.loads((tmp_path / "out.json").read_text(encoding="utf-8")) == items


def test_json_lines_index_counts_items_not_lines(tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_text('\n{"input": "a/NER", "output": "/NER/"}\n\n{oops\n'
                    '{"input": "b/NER", "output": "/NER/"}\n', encoding="utf-8")
    records, rejects = read(path)
    assert [(r.id, r.meta["line"]) for r in records] == [("gaps.jsonl:0", 2), ("gaps.jsonl:2", 5)]
    assert [(r.line, r.index) for r in rejects] == [(4, 1)]


def test_uniner_merged_record_takes_its_first_items_identity():
    items = json.loads(CROSSNER.read_text(encoding="utf-8"))
    records, rejects = read(CROSSNER)
    assert rejects == [] and len(records) == 430
    assert len({r.id for r in records}) == 430
    first_of = {}
    for index, item in enumerate(items):
        first_of.setdefault(item["conversations"][0]["value"], (index, item["id"]))
    for record in records:
        index, own = first_of["Text: " + record.text]
        assert (record.id, record.meta["id"]) == (f"CrossNER_AI.json:{index}", own)
        assert record.meta["path"] == str(CROSSNER.resolve())
    assert sum(len(r.meta["items"]) for r in records) == len(items)


# -- rejects ----------------------------------------------------------------------------------

MALFORMED = {
    "stockmark integer span": ("stockmark", "ner.json", [
        {"curid": "1", "text": "東京", "entities": [{"name": "東京", "span": 3, "type": "地名"}]}],
        "entities[0].span"),
    "iepile non-object argument": ("iepile", "raw.jsonl", [
        {"text": "公司裁员", "event": [{"event_type": "裁员", "event_trigger": "裁员",
                                        "arguments": ["公司"]}]}],
        "event[0].arguments[0] must be an object"),
    "uie non-object relation": ("uie", None, [
        {"sentence": "东京", "entities": [], "relations": ["东京"]}],
        "relations[0] must be an object"),
    "iepile-instruction schema entry without event_type": ("iepile-instruction", "i.jsonl", [
        instruction([{"trigger": True, "arguments": ["时间"]}], {})],
        "schema[0] must be a label or an object with one of event_type, predicate, entity_type"),
    "iepile-instruction arguments given as a list": ("iepile-instruction", "i.jsonl", [
        instruction([{"event_type": "裁员", "trigger": True, "arguments": ["时间"]}],
                    {"裁员": [{"trigger": "裁员", "arguments": ["时间"]}]})],
        "output['裁员'][0].arguments must be an object"),
    "iepile-instruction schema roles not a list": ("iepile-instruction", "i.jsonl", [
        instruction([{"event_type": "裁员", "trigger": True, "arguments": "时间"}], {})],
        "schema[0].arguments must be a list of strings"),
    "iepile-instruction SPO object type not a string": ("iepile-instruction", "i.jsonl", [
        instruction([{"subject_type": "人物", "predicate": "作者", "object_type": ["人物"]}],
                    {}, "SPO")],
        "schema[0].object_type must be a string"),
    "iepile-instruction KG entities not an object": ("iepile-instruction", "i.jsonl", [
        instruction([{"entity_type": "人物", "attributes": ["别名"]}], {"人物": ["张三"]},
                    "KG")],
        "output['人物'] must be an object, got a list"),
    "iepile-instruction KG attribute value not a string": ("iepile-instruction", "i.jsonl", [
        instruction([{"entity_type": "人物", "attributes": ["别名"]}],
                    {"人物": {"张三": {"别名": 3}}}, "KG")],
        "output['人物']['张三']['别名'] must be a list of strings"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_item_is_a_reject_and_the_next_item_is_read(tmp_path, case):
    fmt, name, bad, message = MALFORMED[case]
    good = {"stockmark": {"curid": "2", "text": "大阪", "entities": []},
            "iepile": {"text": "大阪", "entity": []},
            "uie": {"sentence": "大阪", "entities": []},
            "iepile-instruction": instruction(["地名"], {"地名": []}, "NER")}[fmt]
    if fmt == "uie":
        (tmp_path / "d").mkdir()
        path = tmp_path / "d" / "train.json"
        path.write_text(json.dumps([*bad, good], ensure_ascii=False), encoding="utf-8")
        records, rejects = read(tmp_path, fmt)
    else:
        path = tmp_path / name
        if name.endswith(".jsonl"):
            jsonl(path, [*bad, good])
        else:
            path.write_text(json.dumps([*bad, good], ensure_ascii=False), encoding="utf-8")
        records, rejects = read(path, fmt)
    assert len(records) == 1 and records[0].id.endswith(":1")
    (reject,) = rejects
    assert (reject.path, reject.line, reject.index) == (str(path.resolve()), 1, 0)
    assert message in reject.message
    assert str(reject).startswith(f"{path.resolve()}:1: item 0: ")


def test_any_exception_a_reader_raises_on_one_item_is_a_reject(tmp_path):
    path = jsonl(tmp_path / "x.jsonl", [{"a": 1}, {"b": 2}, {"a": 3}])

    def parse(value: dict[str, Any], record_id: str) -> Record:
        return Record(record_id, str(value["a"]))  # KeyError on the second item

    items = list(parse_items(path, parse))
    assert [type(i).__name__ for i in items] == ["Record", "Reject", "Record"]
    reject = items[1]
    assert isinstance(reject, Reject) and (reject.line, reject.index) == (2, 1)
    assert "KeyError" in reject.message and f"{path}:2: item 1: " in str(reject)


def test_several_bad_items_on_one_line_are_each_recorded(tmp_path):
    path = tmp_path / "one-line.json"
    path.write_text(json.dumps([
        {"curid": "1", "text": "a", "entities": [{"name": "a", "span": 0, "type": "x"}]},
        {"curid": "2", "text": "b", "entities": "none"},
        {"curid": "3", "text": "c", "entities": []},
        {"curid": "4", "text": 4, "entities": []}]), encoding="utf-8")
    records, rejects = read(path, "stockmark")
    assert [r.id for r in records] == ["one-line.json:2"]
    assert [(r.line, r.index) for r in rejects] == [(1, 0), (1, 1), (1, 3)]
    assert len({str(r) for r in rejects}) == 3


def test_a_uniner_conversation_names_each_bad_part(tmp_path):
    item = {"id": "x", "conversations": [
        {"from": "human", "value": "no prefix"}, {"from": "gpt", "value": "ok"},
        {"from": "human", "value": "What is this?"}, {"from": "gpt", "value": "[oops"}]}
    path = tmp_path / "u.json"
    path.write_text(json.dumps([item, item]), encoding="utf-8")
    records, rejects = read(path, "uniner")
    assert records == [] and [r.index for r in rejects] == [0, 1]
    for part in ("'Text: '", "What describes", "not a JSON list"):
        assert part in rejects[0].message


def test_one_file_named_two_ways_is_one_file(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    jsonl(tmp_path / "a.jsonl", [{"input": "a/NER", "output": "/NER/"}, {"input": "b"}])
    monkeypatch.chdir(tmp_path / "sub")
    seen = set()
    for name in ("../a.jsonl", "../sub/../a.jsonl", str(tmp_path / "a.jsonl")):
        records, rejects = read(name)
        seen.add((records[0].meta["path"], rejects[0].path))
    assert seen == {(str((tmp_path / "a.jsonl").resolve()),) * 2}


def test_a_uie_split_file_cut_short_is_a_reject_and_the_other_files_are_read(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "train.json").write_text('[{"sentence": "a", "entities": []},\n {"sent', "utf-8")
    (folder / "test.json").write_text('[{"sentence": "b", "entities": []}]', "utf-8")
    records, rejects = read(tmp_path)
    assert [r.id for r in records] == ["demo/train.json:0", "demo/test.json:0"]
    (reject,) = rejects
    assert reject.path == str((folder / "train.json").resolve()) and reject.index is None
    assert reject.line == 2


@pytest.mark.parametrize(("name", "count"), [("RE/test.json", 72), ("EE/test.json", 96)])
def test_iepile_test_files_translate_and_export_every_item_with_its_own_schema(
        tmp_path, name, count):
    source = IEPILE / name
    with FakeLLM() as llm:
        result = mmtrans.translate(source, tmp_path / "run.db", mmtrans.Settings(
            src="zh", tgt="en", labels=["iepile"], base_url=llm.base_url))
    assert (result["records"], result["accepted"]) == (count, count)
    out = tmp_path / "en.jsonl"
    assert mmtrans.export(tmp_path / "run.db", out).written == count
    exported, _ = read(out)
    sources, _ = read(source)
    table = load_tables(["iepile"], "zh", "en")
    assert [r.meta["id"] for r in exported] == [r.meta["id"] for r in sources]
    assert [r.schema for r in exported] == [table.translate(r).schema for r in sources]


def test_a_relation_item_with_no_relation_writes_back(tmp_path):
    item = json.loads((IEPILE / "RE" / "test.json").read_text(encoding="utf-8").splitlines()[0])
    item["label"] = "[]"  # no relation in this text: meta["keys"] was never set
    records, _ = read(jsonl(tmp_path / "re.jsonl", [item]))
    out = tmp_path / "out.jsonl"
    formats.write(records, out, "iepile-instruction")
    assert json.loads(out.read_text(encoding="utf-8")) == item
    uie = Record("x", "周星驰主演喜剧之王", task="RE", meta={"keys": ["relations", "events"]},
                 relations=[Relation("喜剧之王", "主演", "周星驰")])  # uie's keys: its lists
    formats.write([uie], tmp_path / "raw.jsonl", "iepile")
    assert json.loads((tmp_path / "raw.jsonl").read_text(encoding="utf-8"))["relation"] == [
        {"head": "喜剧之王", "relation": "主演", "tail": "周星驰"}]


# -- one pass over the input, as a stream --------------------------------------------------

def mre_item(text: str) -> dict[str, str]:
    return {"input": f"{text}/NER", "output": "社会/NER/:地名;東京"}


def test_json_lines_keep_u2028_and_u0085_inside_their_text(tmp_path):
    texts = ["東京\u2028です", "東京\u0085です", "東京\u2029\x1c\x0b\x0cです", "東京\rです"]
    path = jsonl(tmp_path / "breaks.jsonl", [mre_item(t) for t in texts])
    assert path.read_bytes().count(b"\n") == 4
    records, rejects = read(path)
    assert rejects == []
    assert [r.text for r in records] == texts
    assert [r.meta["line"] for r in records] == [1, 2, 3, 4]


def test_a_line_that_is_not_utf8_is_one_reject_and_the_rest_is_read(tmp_path):
    lines = [json.dumps(mre_item(f"東京{i}"), ensure_ascii=False).encode() for i in range(10)]
    lines[5] = lines[5].replace("東京".encode(), b"\xff\xfe", 1)
    path = tmp_path / "bad-byte.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    records, rejects = read(path)
    assert [r.meta["line"] for r in records] == [1, 2, 3, 4, 5, 7, 8, 9, 10]
    (reject,) = rejects
    assert (reject.line, reject.index) == (6, 5) and "not UTF-8" in reject.message
    assert [r.id for r in records][5] == "bad-byte.jsonl:6"


def write_array(path: Path, pieces: list[str]) -> Path:
    path.write_text("".join(pieces), encoding="utf-8")
    return path


def test_a_json_array_gives_each_item_the_line_it_starts_on(tmp_path):
    items = [mre_item(f"東京{i}") for i in range(6)]
    dumped = [json.dumps(x, ensure_ascii=False) for x in items]
    indented = json.dumps(items[4], ensure_ascii=False, indent=2)  # 4 lines
    text = ("\n\n[" + dumped[0] + ",\n"       # line 3: "[" and item 0
            + dumped[1] + ", " + dumped[2] + ",\n"  # line 4: items 1 and 2
            + "  " + dumped[3] + ", " + indented + "\n"  # line 5: item 3, item 4 from 5
            + ",\n\n  " + dumped[5] + "]\n")  # item 5 on line 11
    path = write_array(tmp_path / "layout.json", [text])
    records, rejects = read(path)
    assert rejects == []
    assert [r.meta["line"] for r in records] == [3, 4, 4, 5, 5, 11]
    assert [r.text for r in records] == [f"東京{i}" for i in range(6)]


def test_a_json_array_broken_mid_way_keeps_the_items_before_and_names_the_line(tmp_path):
    items = [json.dumps(mre_item(f"東京{i}"), ensure_ascii=False, indent=1) for i in range(3)]
    # each item spans 4 lines: "[" on line 1, items start on lines 2, 6 and 10
    text = "[\n" + ",\n".join(items[:2]) + ",\n" + items[2].replace('"output"', "output") + "]"
    path = write_array(tmp_path / "broken.json", [text])
    records, rejects = read(path)
    assert [r.meta["line"] for r in records] == [2, 6]
    (reject,) = rejects
    assert reject.line == 12 and reject.index is None
    assert "from item 2 on" in reject.message and reject.message.startswith("not JSON")


def test_a_json_array_cut_short_is_one_reject_at_its_last_line(tmp_path):
    path = write_array(tmp_path / "cut.json", ['[\n {"input": "a/NER", "output": "/NER/"},\n',
                                               ' {"input": "b/NER", "outp'])
    records, rejects = read(path)
    assert [r.text for r in records] == ["a"]
    (reject,) = rejects
    assert reject.line == 3 and "cut short" in reject.message


def test_a_json_array_read_as_a_stream_matches_the_whole_file_decoded(tmp_path,
                                                                      stockmark_items):
    path = tmp_path / "ner.json"
    path.write_text(json.dumps(list(stockmark_items[:200]), ensure_ascii=False, indent=4),
                    encoding="utf-8")
    lines = path.read_text(encoding="utf-8").split("\n")
    starts = [n for n, line in enumerate(lines, 1) if line == "    {"]
    records, _ = read(path)
    assert [r.meta["line"] for r in records] == starts
    assert [r.text for r in records] == [x["text"] for x in stockmark_items[:200]]


class Passes:
    """How often a run decodes its input (items parsed) and reads or hashes its bytes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        from mmtrans import run
        from mmtrans.formats import _io, stockmark

        self.parsed = 0
        self.hashed: list[str] = []  # file_hash calls: a read of the bytes, no decoding
        self.streamed: list[int] = []  # bytes each InputReader read from its file
        parse, file_hash, close = stockmark.parse, run.file_hash, _io.InputReader.close

        def counting_parse(item: Any, record_id: str) -> Record:
            self.parsed += 1
            return parse(item, record_id)

        def counting_hash(path: str | Path) -> str:
            self.hashed.append(str(path))
            return file_hash(path)

        def counting_close(reader: _io.InputReader) -> None:
            self.streamed.append(reader.bytes_read)
            close(reader)

        monkeypatch.setattr(stockmark, "parse", counting_parse)
        monkeypatch.setattr(run, "file_hash", counting_hash)
        monkeypatch.setattr(_io.InputReader, "close", counting_close)

    def reset(self) -> None:
        self.parsed, self.hashed, self.streamed = 0, [], []


@pytest.mark.parametrize("labels", [["scnm"], []], ids=["named tables", "tables found"])
def test_a_run_decodes_and_hashes_its_input_once_and_its_resume_decodes_nothing(
        tmp_path, sample, llm, monkeypatch, labels):
    path, db = sample(12), tmp_path / "run.db"
    settings = mmtrans.Settings(src="ja", tgt="en", labels=labels, base_url=llm.base_url,
                                model="fake")
    passes = Passes(monkeypatch)
    first = mmtrans.translate(path, db, settings)
    assert (first["records"], first["accepted"]) == (12, 12)
    # every item parsed once (detection only sniffs the first value, whose bytes are then
    # replayed, not read or hashed again), every byte read and hashed once, by one stream
    assert passes.parsed == 12 and passes.hashed == []
    assert passes.streamed == [path.stat().st_size]
    from mmtrans.run import file_hash
    from mmtrans.store import Store
    with Store(db) as store:
        assert store.run_config(first["run_id"])["input_hash"] == file_hash(path)
    passes.reset()
    again = mmtrans.translate(path, db, settings)
    assert (again["run_id"], again["skipped"], again["records"], again["items"]) == (
        first["run_id"], 12, 12, 12)
    assert passes.parsed == 0 and passes.streamed == [] and passes.hashed == [str(path)]
    assert len(llm.requests) == 12


def test_an_unknown_label_rolls_back_the_input_and_leaves_the_store_as_it_was(
        tmp_path, sample, llm):
    from mmtrans.errors import LabelError
    from mmtrans.store import Store

    db = tmp_path / "run.db"
    mmtrans.translate(sample(3), db, mmtrans.Settings(
        src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, model="fake"))
    with Store(db) as store:
        before = {t: store._db[t].count for t in ("runs", "records", "rejects", "inputs")}
    table = tmp_path / "partial.ja-en.tsv"
    table.write_text("人名\tPerson\n", encoding="utf-8")
    other = tmp_path / "other.json"
    other.write_text(sample(10).read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(LabelError):
        mmtrans.translate(other, db, mmtrans.Settings(
            src="ja", tgt="en", labels=[str(table)], base_url=llm.base_url, model="fake"))
    with Store(db) as store:
        assert {t: store._db[t].count for t in before} == before
    assert len(llm.requests) == 3


def test_a_run_keeps_the_items_before_a_break_in_its_json_array(tmp_path, sample, llm):
    path = sample(6)
    text = path.read_text(encoding="utf-8")
    cut = text.index('"curid"', text.index('"curid"', text.index('"curid"') + 1) + 1)
    path.write_text(text[:cut] + "oops" + text[cut:], encoding="utf-8")
    result = mmtrans.translate(path, tmp_path / "run.db", mmtrans.Settings(
        src="ja", tgt="en", labels=["scnm"], base_url=llm.base_url, model="fake"))
    assert (result["records"], result["rejects"], result["items"]) == (2, 1, 3)
    line = text[:cut].count("\n") + 1
    assert result["reject_lines"][0].startswith(f"{path.resolve()}:{line}: not JSON")


def test_a_one_line_json_array_broken_mid_way_keeps_the_items_before_the_break(tmp_path):
    items = [json.dumps(mre_item(f"東京{i}"), ensure_ascii=False) for i in range(3)]
    path = write_array(tmp_path / "one-line.json", ["[" + ", ".join(items) + ", {oops}]"])
    records, rejects = read(path)
    assert [(r.text, r.meta["line"]) for r in records] == [(f"東京{i}", 1) for i in range(3)]
    assert [(r.line, r.index) for r in rejects] == [(1, None)]
    assert "from item 3 on" in rejects[0].message


@pytest.mark.parametrize("layout", ["array", "lines"])
def test_a_byte_order_mark_and_leading_blank_lines_are_skipped(tmp_path, layout):
    items = [mre_item("東京"), mre_item("大阪")]
    body = (json.dumps(items, ensure_ascii=False, indent=1) if layout == "array" else
            "\n".join(json.dumps(x, ensure_ascii=False) for x in items))
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf\n\n" + body.encode("utf-8") + b"\n")
    records, rejects = read(path)
    assert rejects == [] and [r.text for r in records] == ["東京", "大阪"]
    assert [r.meta["line"] for r in records] == ([4, 8] if layout == "array" else [3, 4])


def test_a_break_inside_a_long_indented_item_names_its_line(tmp_path, stockmark_items):
    items = list(stockmark_items[:30])
    text = json.dumps(items, ensure_ascii=False, indent=4)
    lines = text.split("\n")
    bad = next(n for n, line in enumerate(lines) if '"text"' in line and n > len(lines) // 2)
    lines[bad] = lines[bad].replace('"text"', "text", 1)  # inside an item, no bracket near
    path = write_array(tmp_path / "broken-indented.json", ["\n".join(lines)])
    records, rejects = read(path)
    (reject,) = rejects
    assert reject.line == bad + 1 and len(records) == sum(
        1 for n, line in enumerate(lines[:bad]) if line == "    }" or line == "    },")
