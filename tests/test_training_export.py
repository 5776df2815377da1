"""Training files from a translated run: OIELLM pairs, IEPile instructions, a HF dataset."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmtrans
from mmtrans import formats
from mmtrans.cli import app
from mmtrans.formats import mre
from mmtrans.records import Event, Record, Relation
from mmtrans.schema_batches import (
    Universe,
    cut,
    load_hard_negatives,
    schema_labels,
)
from mmtrans.testing import FakeLLM, translating
from tests.conftest import DATA
from tests.train_data import make_train_db

HARD = DATA / "iepile" / "hard_negative_dict.json"


@pytest.fixture
def db(tmp_path: Path, stockmark_items) -> Path:
    return make_train_db(tmp_path, stockmark_items)


def read_lines(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_oiellm_export_writes_task_word_pairs_per_dataset_and_language(db: Path,
                                                                      tmp_path: Path) -> None:
    written = mmtrans.export_oiellm(db, tmp_path / "oiellm")
    assert [(w.dataset, w.language, w.records) for w in written] == [("scnm.json", "en", 8)]
    assert Path(written[0].path).name == "scnm.en.jsonl"
    items = read_lines(written[0].path)
    assert all(set(i) == {"input", "output"} for i in items)
    assert all(i["input"].endswith("/NER") and "/NER/" in i["output"] for i in items)
    records = [mre.parse(i, str(n), frozenset()) for n, i in enumerate(items)]
    assert sum(len(r.mentions) for r in records) > 0
    # the one string not in its text is the flagged record a reviewer accepted as it was
    assert [m.text for r in records for m in r.mentions if m.text not in r.text] == \
        ["Misaki Matsumoto"]


def test_oiellm_items_for_relations_and_events_use_mre_task_words() -> None:
    from mmtrans.oiellm import to_item

    re_item = to_item(Record("a", "Alice founded Acme", task="RE",
                             relations=[Relation("Acme", "founder", "Alice")]))
    assert re_item == {"input": "Alice founded Acme/Relation Extraction",
                       "output": "/Relation Extraction/:Acme;founder;Alice"}
    ee_item = to_item(Record("b", "Acme laid off 900", task="EE", label="Economy",
                             events=[Event("layoff", "laid off", [])]))
    assert ee_item["output"] == "Economy/Event Extraction/:layoff;laid off"


def test_cut_reproduces_iepile_batches() -> None:
    assert [len(b) for b in cut(list(range(49)), 4)] == [4] * 11 + [5]
    assert [len(b) for b in cut(list(range(10)), 6)] == [6, 4]
    assert [len(b) for b in cut(list(range(7)), 6)] == [7]
    assert [len(b) for b in cut(list(range(3)), 6)] == [3]
    assert [len(b) for b in cut(list(range(9)), 6)] == [6, 3]  # half a batch stands alone
    assert cut([], 4) == []
    assert cut(list(range(49)), 4)[-1] == [44, 45, 46, 47, 48]  # order kept


def test_hard_negatives_come_from_iepiles_dictionary_plus_a_seeded_share() -> None:
    hard = load_hard_negatives(HARD, "EE", "ACE05")
    assert hard["convict"][:2] == ["charge indict", "trial hearing"]
    flat = load_hard_negatives(DATA / "iepile" / "hard_negative_SPO_DuIE2.0.json", "RE", "x")
    assert "人物_母亲_人物" in flat["人物_毕业院校_学校"]
    record = Record("r", "He was convicted.", task="EE", events=[Event("convict", "convicted")])
    others = [f"other{i}" for i in range(40)]
    universe = Universe(["convict", *hard["convict"], *others], {})
    labels = schema_labels(record, "EE", universe, hard, 0.25, random.Random("0:r"))
    assert set(labels) >= {"convict", *hard["convict"]}
    sampled = set(labels) & set(others)
    assert 0 < len(sampled) < 40
    again = schema_labels(record, "EE", universe, hard, 0.25, random.Random("0:r"))
    assert again == labels  # seeded
    none = schema_labels(record, "EE", universe, {}, 0.0, random.Random(1))
    assert none == ["convict"]


def test_iepile_instruction_export_cuts_schemas_and_lists_outputs_in_schema_order(
        db: Path, tmp_path: Path) -> None:
    written = mmtrans.export_iepile_instructions(db, tmp_path / "ie", split_num=2, seed=1)
    items = read_lines(written[0].path)
    assert items and all(i["task"] == "NER" and i["source"] == "scnm" for i in items)
    by_text: dict[str, list[dict]] = {}
    for item in items:
        instruction = json.loads(item["instruction"])
        output = json.loads(item["output"])
        assert list(output) == instruction["schema"]  # outputs in schema order
        assert 1 <= len(instruction["schema"]) <= 3
        assert instruction["instruction"].startswith("You are an expert in named entity")
        for label, strings in output.items():
            assert all(s in instruction["input"] or s == "Misaki Matsumoto"  # reviewed as is
                       for s in strings), label
        by_text.setdefault(instruction["input"], []).append(output)
    # every text is asked about every label with neg-ratio 1: 8 labels of SCNM seen here
    labels = {k for outputs in by_text.values() for o in outputs for k in o}
    assert all({k for o in outputs for k in o} == labels for outputs in by_text.values())
    again = mmtrans.export_iepile_instructions(db, tmp_path / "ie2", split_num=2, seed=1)
    assert read_lines(again[0].path) == items
    other = mmtrans.export_iepile_instructions(db, tmp_path / "ie3", split_num=2, seed=2)
    assert read_lines(other[0].path) != items


def test_hf_export_loads_with_datasets(db: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    out = tmp_path / "hf"
    (db.parent / "LICENSE").write_text("CC-BY-SA 3.0 (stockmark)\n", encoding="utf-8")
    mmtrans.export_hf(db, out, sizes=(5, {}), seed=0)
    import datasets

    loaded = datasets.load_dataset(str(out))
    # the accepted 松友美佐紀 record keeps a mention not in its text: split `unplaced`
    assert (loaded["train"].num_rows, loaded["test"].num_rows,
            loaded["unplaced"].num_rows) == (5, 2, 1)
    row = loaded["train"][0]
    assert row["language"] == "en" and row["dataset"] == "scnm.json"
    assert all(m["text"] in row["text"] for m in row["mentions"])
    assert row["input"] == row["text"] + "/NER"
    one = datasets.load_dataset(str(out), "scnm_en")
    assert one["test"].num_rows == 2
    card = (out / "README.md").read_text(encoding="utf-8")
    import yaml  # comes with datasets

    header = yaml.safe_load(card.split("---")[1])
    assert header["language"] == ["en"]
    assert [c["config_name"] for c in header["configs"]] == ["default", "scnm_en"]
    assert "| scnm_en | scnm.json | en | 5 | 2 |" in card
    # the model the server names (GET /v1/models), not a guess, and the prompt
    assert "| scripted-model |" in card and "| ja-en v1 |" in card
    assert "gpt-4o-mini" not in card
    assert "| scnm.json | en | 10 | 8 |" in card  # the statistics table
    assert (out / "licenses" / "scnm" / "LICENSE").read_text().startswith("CC-BY-SA")


def test_export_as_commands_write_each_kind(db: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    for kind in ("oiellm", "iepile-instruction"):
        result = runner.invoke(app, ["export", "--db", str(db), "--as", kind,
                                     "--out", str(tmp_path / kind)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / kind / "scnm.en.jsonl").is_file()
    result = runner.invoke(app, ["export", "--db", str(db), "--as", "hf", "--train", "4",
                                 "--out", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "hf" / "data" / "scnm_en" / "test.parquet").is_file()
    result = runner.invoke(app, ["export", "--db", str(db), "--as", "csv", "--out", "x"])
    assert result.exit_code == 2 and "expected oiellm" in result.output
    result = runner.invoke(app, ["export", "--db", str(db), "--as", "iepile-instruction",
                                 "--out", str(tmp_path / "x"), "--hard-negatives",
                                 str(tmp_path / "none.json")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_iepile_test_form_asks_every_label_and_is_what_eval_scores_against(
        db: Path, tmp_path: Path) -> None:
    (written,) = mmtrans.export_iepile_instructions(db, tmp_path / "test", split_num=3,
                                                    test=True)
    items = read_lines(written.path)
    assert all(list(i) == ["id", "task", "source", "instruction", "label"] for i in items)
    schemas = [json.loads(i["instruction"])["schema"] for i in items]
    labels = {x for s in schemas for x in s}
    per_record = len(cut(sorted(labels), 3))
    assert len(items) == 8 * per_record  # the 8 kept records, every label asked of each
    preds = []
    for item, schema in zip(items, schemas):
        gold = json.loads(item["label"])
        preds.append({"output": json.dumps(
            {label: [g["entity"] for g in gold if g["entity_type"] == label] for label in schema},
            ensure_ascii=False)})
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds),
                    encoding="utf-8")
    result = mmtrans.evaluate(pred, written.path)
    assert result.total.records == 8 and result.total.scores["entity"].f1 == 1.0
    assert (result.groups[0].dataset, result.groups[0].language) == ("scnm", "en")


def test_event_instructions_ask_filled_roles_and_a_share_of_the_others(tmp_path: Path) -> None:
    db = tmp_path / "ee.db"
    with FakeLLM(translating("en")) as llm:
        mmtrans.translate(DATA / "iepile" / "EE" / "sample.json", db, mmtrans.Settings(
            src="zh", tgt="en", base_url=llm.base_url))
    (written,) = mmtrans.export_iepile_instructions(db, tmp_path / "ee", neg_ratio=0.5, seed=4)
    items = read_lines(written.path)
    kept = [r for r in formats.read(DATA / "iepile" / "EE" / "sample.json")]
    assert items and all(i["task"] == "EE" for i in items)
    for item in items:
        instruction = json.loads(item["instruction"])
        output = json.loads(item["output"])
        assert list(output) == [e["event_type"] for e in instruction["schema"]]
        assert len(instruction["schema"]) <= 4 + 1
        for entry in instruction["schema"]:
            for event in output[entry["event_type"]]:
                assert set(event["arguments"]) <= set(entry["arguments"])  # filled: asked
    (test,) = mmtrans.export_iepile_instructions(db, tmp_path / "ee-test", test=True)
    lines_ = read_lines(test.path)
    preds = []
    for line in lines_:
        schema = json.loads(line["instruction"])["schema"]
        gold = json.loads(line["label"])
        answer = {}
        for entry in schema:
            answer[entry["event_type"]] = [
                {"trigger": g["event_trigger"],
                 "arguments": {a["role"]: a["argument"] for a in g["arguments"]}}
                for g in gold if g["event_type"] == entry["event_type"]]
        preds.append({"output": json.dumps(answer, ensure_ascii=False)})
    pred = tmp_path / "pred.jsonl"
    pred.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preds),
                    encoding="utf-8")
    scores = mmtrans.evaluate(pred, test.path).total.scores
    assert scores["trigger"].f1 == 1.0 and scores["argument"].f1 == 1.0
    # a record's (type, trigger) pairs are a set: two events of one trigger count once
    assert scores["trigger"].gold == sum(len({(e.type, e.trigger) for e in r.events})
                                         for r in kept)
