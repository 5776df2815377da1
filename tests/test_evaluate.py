"""F1 of predictions against gold, checked against values computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mmtrans
from mmtrans.cli import app
from mmtrans.formats.iepile_instruction import templates
from tests.conftest import DATA

IEPILE = DATA / "iepile"


def lines(path: Path, values: list) -> Path:
    path.write_text("".join(json.dumps(v, ensure_ascii=False) + "\n" for v in values),
                    encoding="utf-8")
    return path


GOLD = [
    {"input": "Tokyo is in Japan/NER", "output": "Geography/NER/:Location;Tokyo:Location;Japan"},
    {"input": "Alice met Bob/NER", "output": "Society/NER/:Person;Alice:Person;Bob"},
    {"input": "Carol sleeps/NER", "output": "Society/NER/:Person;Carol"},
]


def test_mre_text_word_and_joint_f1_match_hand_computed_values(tmp_path: Path) -> None:
    gold = lines(tmp_path / "gold.jsonl", GOLD)
    pred = lines(tmp_path / "pred.jsonl", [
        # a duplicate pair counts once; one pair right, one wrong; text label right
        {"output": "Geography/NER/:Location;Tokyo:Location;Tokyo:Person;Japan"},
        "this is no prediction",  # malformed: all its gold pairs missed
        {"output": "Literature/NER/:Person;Carol"},  # pair right, text label wrong
    ])
    result = mmtrans.evaluate(pred, gold, language="en")
    total = result.to_dict()["total"]
    assert total["malformed"] == 1 and total["missing"] == 0 and total["records"] == 3
    text, word, joint = (total["scores"][k] for k in ("text", "word", "joint"))
    # text: 1 right of 2 predicted, 3 gold -> P 1/2, R 1/3, F1 2/5
    assert (text["tp"], text["pred"], text["gold"]) == (1, 2, 3)
    assert text["f1"] == pytest.approx(0.4)
    # word: right (Location, Tokyo) and (Person, Carol) of 3 predicted, 5 gold -> F1 1/2
    assert (word["tp"], word["pred"], word["gold"]) == (2, 3, 5)
    assert word["f1"] == pytest.approx(0.5)
    # joint: Carol's pair does not count, its text label is wrong -> P 1/3, R 1/5, F1 1/4
    assert joint["tp"] == 1 and joint["f1"] == pytest.approx(0.25)
    assert result.malformed_lines == ["2: not '<label>/NER/:...'"]
    assert result.groups[0].dataset == "gold" and result.groups[0].language == "en"


def test_mre_empty_gold_and_predictions_score_zero_without_dividing_by_zero(
        tmp_path: Path) -> None:
    gold = lines(tmp_path / "gold.jsonl", [{"input": "Nothing/NER", "output": "/NER/"}])
    pred = lines(tmp_path / "pred.jsonl", [{"output": "/NER/"}])
    total = mmtrans.evaluate(pred, gold).to_dict()["total"]
    for name in ("text", "word", "joint"):
        assert total["scores"][name] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                         "tp": 0, "pred": 0, "gold": 0}
    assert total["malformed"] == 0


def test_missing_prediction_lines_count_as_wrong_and_are_reported(tmp_path: Path) -> None:
    gold = lines(tmp_path / "gold.jsonl", GOLD)
    pred = lines(tmp_path / "pred.jsonl", [{"output": GOLD[0]["output"]}])
    total = mmtrans.evaluate(pred, gold).to_dict()["total"]
    assert total["missing"] == 2
    assert total["scores"]["word"]["tp"] == 2 and total["scores"]["word"]["gold"] == 5
    assert total["scores"]["word"]["recall"] == pytest.approx(0.4)


def test_mre_groups_are_named_after_exported_files(tmp_path: Path) -> None:
    gold = lines(tmp_path / "scnm.ja.test.jsonl", GOLD[:1])
    pred = lines(tmp_path / "pred.jsonl", [{"output": GOLD[0]["output"]}])
    group = mmtrans.evaluate(pred, gold).groups[0]
    assert (group.dataset, group.language) == ("scnm", "ja")


def test_mre_groups_by_dataset_and_language_fields(tmp_path: Path) -> None:
    gold = lines(tmp_path / "gold.jsonl", [
        {**GOLD[0], "dataset": "scnm", "language": "en"},
        {**GOLD[1], "dataset": "scpos", "language": "en"}])
    pred = lines(tmp_path / "pred.jsonl", [{"output": GOLD[0]["output"]}, {"output": "x"}])
    result = mmtrans.evaluate(pred, gold)
    by = {(g.dataset, g.language): g for g in result.groups}
    assert by["scnm", "en"].scores["word"].f1 == 1.0
    assert by["scpos", "en"].scores["word"].f1 == 0.0 and by["scpos", "en"].malformed == 1


def iepile_gold(task: str, schema: list, text: str, label: list, id_: str = "a") -> dict:
    instruction = {"instruction": templates()["zh"][task], "schema": schema, "input": text}
    return {"id": id_, "instruction": json.dumps(instruction, ensure_ascii=False),
            "label": json.dumps(label, ensure_ascii=False)}


def test_iepile_re_scores_head_tail_and_subject_object_answers_alike(tmp_path: Path) -> None:
    label = [{"head": "喜剧之王", "relation": "主演", "tail": "周星驰"},
             {"head": "周星驰", "relation": "国籍", "tail": "中国"}]
    gold = lines(tmp_path / "gold.jsonl", [
        iepile_gold("RE", ["主演", "导演"], "《喜剧之王》周星驰", label),
        iepile_gold("RE", ["国籍", "作者"], "《喜剧之王》周星驰", label)])
    for head, tail in (("head", "tail"), ("subject", "object")):
        pred = lines(tmp_path / f"pred-{head}.jsonl", [
            {"output": json.dumps({"主演": [{head: "喜剧之王", tail: "周星驰"}], "导演": []},
                                  ensure_ascii=False)},
            {"output": json.dumps({"国籍": [{head: "周星驰", tail: "香港"}], "作者": []},
                                  ensure_ascii=False)}])
        score = mmtrans.evaluate(pred, gold).total.scores["relation"]
        # two schema batches of one text: one record; 1 right of 2 predicted and 2 gold
        assert (score.tp, score.pred, score.gold) == (1, 2, 2)
        assert score.f1 == pytest.approx(0.5)


def test_iepile_inference_output_scores_its_output_against_its_label(tmp_path: Path) -> None:
    label = [{"entity": "广州松日队", "entity_type": "组织机构"},
             {"entity": "青岛海牛队", "entity_type": "组织机构"}]
    item = iepile_gold("NER", ["组织机构", "人物"], "青岛海牛队和广州松日队", label)
    item["output"] = json.dumps({"组织机构": ["广州松日队"], "人物": ["海牛"]},
                                ensure_ascii=False)
    both = lines(tmp_path / "inferred.jsonl", [item])
    score = mmtrans.evaluate(both, both).total.scores["entity"]
    assert (score.tp, score.pred, score.gold) == (1, 2, 2)


def test_iepile_ee_eet_and_eea_score_triggers_and_arguments(tmp_path: Path) -> None:
    label = [{"event_trigger": "裁员", "event_type": "组织关系-裁员",
              "arguments": [{"argument": "900余人", "role": "裁员人数"},
                            {"argument": "5月份", "role": "时间"}]}]
    text = "5月份在华裁员900余人"
    schema = [{"event_type": "组织关系-裁员", "trigger": True, "arguments": ["裁员人数", "时间"]}]
    cases = {
        "EE": ({"组织关系-裁员": [{"trigger": "裁员", "arguments": {
            "裁员人数": "900余人", "时间": ["5月份", "6月份"]}}]},
            {"trigger": (1, 1, 1), "argument": (2, 3, 2)}),
        "EET": ({"组织关系-裁员": ["裁员"]}, {"trigger": (1, 1, 1)}),
        "EEA": ({"组织关系-裁员": [{"裁员人数": "900余人", "时间": "NAN"}]},
                {"argument": (1, 1, 2)}),
    }
    for task, (answer, expected) in cases.items():
        gold = lines(tmp_path / f"{task}.gold.jsonl", [iepile_gold(task, schema, text, label)])
        pred = lines(tmp_path / f"{task}.pred.jsonl",
                     [{"output": json.dumps(answer, ensure_ascii=False)}])
        scores = mmtrans.evaluate(pred, gold).total.scores
        assert {k: (s.tp, s.pred, s.gold) for k, s in scores.items()} == expected, task


def test_iepile_malformed_answers_count_as_wrong_and_never_crash(tmp_path: Path) -> None:
    label = [{"entity": "广州松日队", "entity_type": "组织机构"}]
    gold = lines(tmp_path / "gold.jsonl", [
        iepile_gold("NER", ["组织机构"], "广州松日队", label, "a"),
        iepile_gold("NER", ["组织机构"], "青岛海牛队", [], "b"),
        iepile_gold("NER", ["组织机构"], "海牛", [], "c")])
    pred = tmp_path / "pred.jsonl"
    pred.write_text('{"output": "{\\"组织机构\\": [\\"广州松日队\\"'  # cut off
                    '"}\n'
                    '{"output": "[1, 2]"}\n'
                    'not json at all\n', encoding="utf-8")
    result = mmtrans.evaluate(pred, gold)
    total = result.total
    assert total.malformed == 3 and len(result.malformed_lines) == 3
    assert (total.scores["entity"].tp, total.scores["entity"].gold) == (0, 1)


def test_real_iepile_re_test_file_scores_one_for_its_own_labels(tmp_path: Path) -> None:
    """IEPile's own scorer reads only subject/object and scores these `head`/`tail` files 0."""
    gold = IEPILE / "RE" / "test.json"
    preds = []
    for line in gold.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        schema = json.loads(item["instruction"])["schema"]
        answer = {rel: [{"head": t["head"], "tail": t["tail"]} for t in json.loads(item["label"])
                        if t["relation"] == rel] for rel in schema}
        preds.append({"output": json.dumps(answer, ensure_ascii=False)})
    pred = lines(tmp_path / "pred.jsonl", preds)
    result = mmtrans.evaluate(pred, gold)
    score = result.total.scores["relation"]
    assert result.kind == "iepile" and result.total.records == 6  # 72 lines, 6 texts
    assert score.gold > 0 and score.f1 == 1.0


def test_eval_command_prints_a_table_and_json(tmp_path: Path) -> None:
    gold = lines(tmp_path / "gold.jsonl", GOLD)
    pred = lines(tmp_path / "pred.jsonl", [{"output": g["output"]} for g in GOLD])
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(pred), str(gold), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total"]["scores"]["joint"]["f1"] == 1.0
    result = runner.invoke(app, ["eval", str(pred), str(gold)])
    assert result.exit_code == 0 and "joint" in result.stdout
    result = runner.invoke(app, ["eval", str(pred), str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2 and "no such file" in result.output
