"""`mmtrans check SRC CAND` pairs records by identity: a candidate that leaves records out (an
export without --include-flagged) is checked record for record, and what is missing is named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import mmtrans
from mmtrans import formats
from mmtrans.cli import app
from mmtrans.records import Record
from mmtrans.testing import FakeLLM, Reply, good_translation
from mmtrans.verify import BY_POSITION

from .conftest import DATA

IEPILE = DATA / "iepile"
#: Six sentences of one article (curid 887996 has four, three of them with one 法人名 each)
#: among others: stockmark's curid repeats, so pairing must look past it.
ARTICLE = [0, 1, 2689, 2915, 3955, 4225, 3, 1347, 1703, 2311, 4, 5]
MISSING = (2, 5)


def failures(verdicts: list[Any]) -> list[tuple[str, list[str]]]:
    return [(v.id, [p.message for p in v.problems]) for v in verdicts if not v.ok]


def translate_leaving_out(source: Path, db: Path, texts: set[str], **settings: Any) -> None:
    """Translate `source`; records whose text is in `texts` come back untranslated (flagged)."""
    def script(payload: dict[str, Any], request: dict[str, Any]) -> Reply:
        if payload.get("text") in texts:
            return Reply(json.dumps(payload, ensure_ascii=False))
        return Reply(json.dumps(good_translation(payload), ensure_ascii=False))

    with FakeLLM(script) as llm:
        result = mmtrans.translate(source, db, mmtrans.Settings(
            base_url=llm.base_url, repair=0, **settings))
    assert result["flagged"] == len(texts), result


def test_export_without_flagged_records_checks_every_other_record(tmp_path, sample):
    source = sample(indexes=ARTICLE)
    records = [r for r in formats.read(source) if isinstance(r, Record)]
    translate_leaving_out(source, tmp_path / "run.db", {records[i].text for i in MISSING},
                          src="ja", tgt="en", labels=["scnm"])
    out = tmp_path / "en.json"
    assert mmtrans.export(tmp_path / "run.db", out).written == len(ARTICLE) - 2
    verdicts = list(mmtrans.check_files(source, out, "ja", "en", ["scnm"]))
    assert len(verdicts) == len(ARTICLE)
    assert failures(verdicts) == [
        (records[i].id, [f"no translated record (source line {records[i].meta['line']}, "
                         f"id {records[i].meta['id']})"]) for i in MISSING]
    # the same candidate written as MRE has no ids at all: paired by position, still right
    mre = tmp_path / "en.mre.json"
    mmtrans.export(tmp_path / "run.db", mre, fmt="mre")
    checked = mmtrans.check_files(source, mre, "ja", "en", ["scnm"])
    assert checked.notes == [BY_POSITION]
    assert [v.id for v in checked if not v.ok] == [records[i].id for i in MISSING]


def test_check_says_it_pairs_by_position_when_the_files_carry_no_ids(tmp_path, sample):
    source = sample(indexes=ARTICLE)
    records = [r for r in formats.read(source) if isinstance(r, Record)]
    mre_source = tmp_path / "ja.mre.json"
    formats.write(records, mre_source, "mre")
    translate_leaving_out(mre_source, tmp_path / "run.db", {records[i].text for i in MISSING},
                          src="ja", tgt="en", labels=["scnm"])
    out = tmp_path / "en.mre.json"
    mmtrans.export(tmp_path / "run.db", out)
    result = CliRunner().invoke(app, ["check", str(mre_source), str(out), "--src", "ja",
                                      "--tgt", "en", "--labels", "scnm"])
    assert result.exit_code == 1
    output = " ".join(result.output.split())  # rich wraps long lines
    assert output.startswith(" ".join(BY_POSITION.split()))
    assert output.count("[format] no translated record") == 2 and output.count("[") == 2
    for i in MISSING:  # named by the source record's id
        assert f"ja.mre.json:{i}: [format] no translated record" in output
    assert f"{len(ARTICLE) - 2} of {len(ARTICLE)} record(s) pass; 2 flagged." in output


def translated_lines(source: Path, tmp_path: Path) -> list[str]:
    """The lines of `source` (IEPile JSON Lines) translated zh -> en and exported."""
    with FakeLLM() as llm:
        mmtrans.translate(source, tmp_path / "run.db", mmtrans.Settings(
            src="zh", tgt="en", labels=["iepile"], base_url=llm.base_url))
    full = tmp_path / "full.jsonl"
    mmtrans.export(tmp_path / "run.db", full)
    return full.read_text(encoding="utf-8").splitlines()


def test_repeated_iepile_ids_pair_within_their_group(tmp_path):
    source = IEPILE / "RE" / "test.json"
    lines = translated_lines(source, tmp_path)
    assert len(lines) == 72
    out = tmp_path / "gaps.jsonl"
    out.write_text("".join(x + "\n" for i, x in enumerate(lines) if i not in MISSING), "utf-8")
    verdicts = list(mmtrans.check_files(source, out, "zh", "en", ["iepile"]))
    assert [v.id for v in verdicts if not v.ok] == [f"test.json:{i}" for i in MISSING]
    assert all("no translated record" in v.problems[0].message for v in verdicts if not v.ok)


def test_unique_ids_pair_whatever_the_order(tmp_path):
    source = IEPILE / "NER" / "test.json"
    lines = translated_lines(source, tmp_path)
    out = tmp_path / "en.jsonl"
    out.write_text("".join(x + "\n" for x in reversed(lines)), "utf-8")
    checked = mmtrans.check_files(source, out, "zh", "en", ["iepile"])
    assert checked.notes == []
    assert failures(list(checked)) == []
    assert [v.id for v in checked] == [f"test.json:{i}" for i in reversed(range(len(lines)))]


def test_a_candidate_record_no_source_matches_is_named(tmp_path):
    source = tmp_path / "src.jsonl"
    source.write_text(json.dumps({"id": "a", "input": "東京/NER", "output": "社会/NER/:地名;東京"},
                                 ensure_ascii=False) + "\n", encoding="utf-8")
    target = tmp_path / "tgt.jsonl"
    target.write_text("".join(json.dumps(x) + "\n" for x in [
        {"id": "a", "input": "Tokyo/NER", "output": "Society/NER/:Location;Tokyo"},
        {"id": "b", "input": "Osaka/NER", "output": "Society/NER/:Location;Osaka"}]), "utf-8")
    table = tmp_path / "t.ja-en.tsv"
    table.write_text("社会\tSociety\n地名\tLocation\n", encoding="utf-8")
    verdicts = list(mmtrans.check_files(source, target, "ja", "en", [str(table)]))
    assert [(v.ok, v.line) for v in verdicts] == [(True, 1), (False, 2)]
    assert verdicts[1].problems[0].message == "no source record with this id"


def test_unreadable_source_items_are_said_not_passed_over(tmp_path):
    source = tmp_path / "src.jsonl"
    source.write_text('{"input": "東京/NER", "output": "社会/NER/:地名;東京"}\n{oops\n', "utf-8")
    target = tmp_path / "tgt.jsonl"
    target.write_text('{"input": "Tokyo/NER", "output": "Society/NER/:Location;Tokyo"}\n', "utf-8")
    table = tmp_path / "t.ja-en.tsv"
    table.write_text("社会\tSociety\n地名\tLocation\n", encoding="utf-8")
    checked = mmtrans.check_files(source, target, "ja", "en", [str(table)])
    assert [v.ok for v in checked] == [True]
    assert checked.notes[1].startswith("1 source item(s) cannot be read")
    assert f"{source}:2: item 1: not JSON" in checked.notes[1]
