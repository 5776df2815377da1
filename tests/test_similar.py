"""`mmtrans labels similar`: a hard-negative dictionary proposed from lexical and
co-occurrence similarity, in the form the IEPile export reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmtrans.cli import app
from mmtrans.records import Mention, Record
from mmtrans.schema_batches import load_hard_negatives
from mmtrans.similar import cooccurrence, lexical, propose, similar_labels
from tests.conftest import DATA

IEPILE = DATA / "iepile"


def test_lexical_similarity_is_the_jaccard_of_characters_pairs_and_words() -> None:
    # person: 6 characters, 5 pairs, 1 word; person name: 8, 9, 2; shared: 6 + 5 + 1
    assert lexical("person", "person name") == pytest.approx(12 / 19)
    assert lexical("人名", "人名") == 1.0 and lexical("abc", "xyz") == 0.0


def test_labels_held_beside_the_same_labels_are_proposed_as_similar() -> None:
    records = [
        Record("1", "t", mentions=[Mention("city", "a"), Mention("person", "b")]),
        Record("2", "t", mentions=[Mention("town", "a"), Mention("person", "b")]),
        Record("3", "t", mentions=[Mention("year", "a"), Mention("date", "b")]),
    ]
    assert cooccurrence(records, "NER")["person"] == {"city": 1, "town": 1}
    proposed = similar_labels(records, "NER", top=3, threshold=0.3)
    assert proposed["city"] == ["town"]  # no shared letters, the same company
    assert proposed["year"] == []


def test_similar_on_real_iepile_files_loads_as_a_hard_negative_dictionary(
        tmp_path: Path) -> None:
    out = tmp_path / "hard.json"
    result = CliRunner().invoke(app, ["labels", "similar", str(IEPILE / "EE" / "train.json"),
                                      str(IEPILE / "RE" / "train.json"), "--top", "3",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert set(data) == {"EE", "RE"}
    ee = load_hard_negatives(out, "EE", "train.json")
    assert "交往-感谢" in ee["交往-会见"] and all(len(v) <= 3 for v in ee.values())
    assert "主角" in load_hard_negatives(out, "RE", "train")["主演"]
    assert propose([IEPILE / "RE" / "train.json"], top=3) == {"RE": data["RE"]}
