"""Flagged exports are loadable: no offset is ever null. A record with a mention that has no
place in its text goes to a side file (file exports) or the `unplaced` split (HF), which says
what has no place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import mmtrans
from mmtrans import formats
from mmtrans.cli import app
from mmtrans.formats import uie
from mmtrans.records import Mention, Record, Relation
from mmtrans.unplaced import side_line, side_path, unplaced
from tests.train_data import make_train_db

#: The record of make_train_db whose first mention the model renamed (松友美佐紀 ->
#: "Misaki Matsumoto", not in the text); a reviewer accepted it as it is.
UNPLACED_ID = "scnm.json:2"


@pytest.fixture
def db(tmp_path: Path, stockmark_items) -> Path:
    return make_train_db(tmp_path, stockmark_items)


def nulls(value: Any, where: str = "") -> list[str]:
    """Where `value` holds a null."""
    if value is None:
        return [where]
    if isinstance(value, dict):
        return [w for k, v in value.items() for w in nulls(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [w for i, v in enumerate(value) for w in nulls(v, f"{where}[{i}]")]
    return []


def test_flagged_stockmark_export_writes_integer_spans_and_sets_unplaced_aside(
        db: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.json"
    result = CliRunner().invoke(app, ["export", "--db", str(db), "--out", str(out),
                                      "--format", "stockmark", "--include-flagged"])
    assert result.exit_code == 0, result.output
    assert "7 record(s) written" in result.output
    assert f"1 record(s) with a string not in their text written to {side_path(out)}" \
        in " ".join(result.output.split())
    items = json.loads(out.read_text(encoding="utf-8"))
    assert nulls(items) == []
    for item in items:  # a loader that slices by span gets each entity's name
        assert all(item["text"][slice(*e["span"])] == e["name"] for e in item["entities"])
    assert len([r for r in formats.read(out)]) == 7  # and mmtrans reads it back
    (line,) = [json.loads(x) for x in side_path(out).read_text(encoding="utf-8").splitlines()]
    assert line["id"] == UNPLACED_ID and nulls(line) == []
    assert line["unplaced"] == [{"where": "mentions[0]", "text": "Misaki Matsumoto",
                                 "label": "Person"}]
    renamed, kept = line["item"]["entities"]
    assert "span" not in renamed and kept["span"] == [
        line["item"]["text"].index(kept["name"]),
        line["item"]["text"].index(kept["name"]) + len(kept["name"])]


def test_an_export_without_offsets_keeps_every_record_in_its_file(db: Path,
                                                                  tmp_path: Path) -> None:
    result = mmtrans.export(db, tmp_path / "all.json", fmt="mre", include_flagged=True)
    assert (result.written, result.unplaced) == (8, 0)
    assert not side_path(tmp_path / "all.json").exists()


def test_an_existing_side_file_is_refused_before_anything_is_written(db: Path,
                                                                     tmp_path: Path) -> None:
    out = tmp_path / "all.json"
    side_path(out).write_text("mine\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["export", "--db", str(db), "--out", str(out),
                                      "--format", "stockmark", "--include-flagged"])
    assert result.exit_code == 2 and "exists; pass --force" in result.output
    assert not out.exists() and side_path(out).read_text(encoding="utf-8") == "mine\n"


def test_uie_relation_and_event_offsets_are_left_out_not_null() -> None:
    record = Record("train.json:0", "Tokyo is in Japan.", task="RE",
                    mentions=[Mention("LOC", "Tokyo", 0, 5), Mention("LOC", "Nippon")],
                    relations=[Relation("Tokyo", "located in", "Nippon", "LOC", "LOC")])
    where = unplaced(record, ("mentions[", "relations[", "events["))
    assert [w["where"] for w in where] == ["mentions[1]", "relations[0].tail"]
    item = uie.to_item(record)
    assert nulls(item)  # what the format alone writes
    line = side_line(record, item, where)
    assert nulls(line) == []
    assert line["item"]["relations"][0]["head"]["pos"] == [0, 5]
    assert "pos" not in line["item"]["relations"][0]["tail"]


def test_hf_export_keeps_unplaced_mentions_out_of_train_in_a_split_of_their_own(
        db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    out = tmp_path / "hf"
    mmtrans.export_hf(db, out, include_flagged=True)
    for split in ("train", "unplaced"):
        mentions = pq.read_table(out / "data" / "scnm_en" / f"{split}.parquet") \
            .column("mentions").combine_chunks().flatten()
        assert mentions.field("start").null_count == 0 and mentions.field("end").null_count == 0
    import datasets

    loaded = datasets.load_dataset(str(out))
    assert (loaded["train"].num_rows, loaded["unplaced"].num_rows) == (7, 1)
    row = loaded["unplaced"][0]
    assert row["id"] == UNPLACED_ID
    assert row["unplaced"] == [{"where": "mentions[0]", "label": "Person",
                                "text": "Misaki Matsumoto"}]
    assert [m["text"] for m in row["mentions"]] == [row["text"][m["start"]:m["end"]]
                                                   for m in row["mentions"]]
    assert "in the split `unplaced`" in (out / "README.md").read_text(encoding="utf-8")
