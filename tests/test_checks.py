"""Every check on real stockmark sentences, with translations written by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mmtrans.checks import check_language, find_anchor, run_checks
from mmtrans.labels import load_tables
from mmtrans.payload import parse_reply
from mmtrans.records import Mention, Record
from mmtrans.scripts import japanese_only_kanji

MATSUTOMO = 2  # 松友美佐紀は、日本のバドミントン選手。
IBM = 2299  # 1964年4月、IBMはSystem/360を発表した。
ANTAN = 2517  # 安丹駅は、山形県鶴岡市安丹にあった、庄内交通湯野浜線の駅である。


def expected(records, index: int, tgt: str) -> Record:
    return load_tables(["scnm"], "ja", tgt).translate(records[index])


def translated(exp: Record, text: str, *strings: str) -> Record:
    return replace(exp, text=text,
                   mentions=[Mention(m.label, s) for m, s in zip(exp.mentions, strings)])


def codes(result) -> list[str]:
    return [p.code for p in result.problems]


def test_good_english_translation_passes(stockmark_records):
    exp = expected(stockmark_records, ANTAN, "en")
    assert [m.label for m in exp.mentions] == ["Facility Name", "Location", "Corporation Name",
                                               "Facility Name"]
    target = translated(exp, "Antan Station was a station of the Shonai Kotsu Yunohama Line in "
                             "Antan, Tsuruoka, Yamagata Prefecture.",
                        "Antan Station", "Antan, Tsuruoka, Yamagata Prefecture", "Shonai Kotsu",
                        "Yunohama Line")
    result = run_checks(exp, target, "ja", "en")
    assert result.ok, result.problems
    assert all(target.text[m.start:m.end] == m.text for m in result.record.mentions)


def test_good_chinese_translation_passes(stockmark_records):
    exp = expected(stockmark_records, ANTAN, "zh")
    target = translated(exp, "安丹站是位于山形县鹤冈市安丹的庄内交通汤野浜线的车站。",
                        "安丹站", "山形县鹤冈市安丹", "庄内交通", "汤野浜线")
    assert run_checks(exp, target, "ja", "zh").ok


def test_japanese_only_kanji_left_in_chinese_is_residual_source(stockmark_records):
    exp = expected(stockmark_records, ANTAN, "zh")
    target = translated(exp, "安丹駅是位于山形県鹤冈市安丹的庄内交通汤野浜线的车站。",
                        "安丹駅", "山形県鹤冈市安丹", "庄内交通", "汤野浜线")
    result = run_checks(exp, target, "ja", "zh")
    assert codes(result) == ["residual_source"]
    assert "駅" in result.problems[0].message and "県" in result.problems[0].message


def test_the_japanese_only_kanji_list_holds_the_known_forms_and_no_simplified_ones():
    kanji = japanese_only_kanji()
    assert set("県駅円広売読気鉄団図戦関発対転続権") <= kanji
    assert not set("县站圆广卖读气铁团图战关发对转续权的是日本") & kanji


def test_kana_left_in_english_is_residual_source(stockmark_records):
    exp = expected(stockmark_records, MATSUTOMO, "en")
    target = translated(exp, "Misaki Matsutomo is a バドミントン player from Japan.",
                        "Misaki Matsutomo", "Japan")
    result = run_checks(exp, target, "ja", "en")
    assert "residual_source" in codes(result)


def test_anchored_matches_whole_words_in_english(stockmark_records):
    exp = expected(stockmark_records, MATSUTOMO, "en")
    target = translated(exp, "Misaki Matsutomo is a Japanese badminton player.",
                        "Misaki Matsutomo", "Japan")
    result = run_checks(exp, target, "ja", "en")
    assert codes(result) == ["anchored"]
    assert result.problems[0].where == "mentions[1]" and "'Japan'" in result.problems[0].message


def test_anchored_is_a_substring_match_in_chinese(stockmark_records):
    exp = expected(stockmark_records, MATSUTOMO, "zh")
    target = translated(exp, "松友美佐纪是日本羽毛球运动员。", "松友美佐纪", "日本")
    assert run_checks(exp, target, "ja", "zh").ok


def test_altered_entity_is_anchored(stockmark_records):
    exp = expected(stockmark_records, IBM, "en")
    target = translated(exp, "In April 1964, IBM announced the System/360.", "IBM", "System 360")
    assert codes(run_checks(exp, target, "ja", "en")) == ["anchored"]


def test_match_after_normalisation_is_repaired_not_flagged(stockmark_records):
    exp = expected(stockmark_records, IBM, "en")
    target = translated(exp, "In April 1964, IBM announced the System/360.", "ＩＢＭ",
                        "System/360")
    result = run_checks(exp, target, "ja", "en")
    assert result.ok
    assert result.record.mentions[0].text == "IBM"
    assert result.notes and "normalisation" in result.notes[0]
    # whitespace: the text's own spelling is kept
    found, exact = find_anchor("Misaki  Matsutomo plays.", "Misaki Matsutomo", spaced=True)
    assert (found, exact) == ("Misaki  Matsutomo", False)


def test_chinese_sentence_with_latin_names_is_chinese(stockmark_records):
    exp = expected(stockmark_records, IBM, "zh")
    target = translated(exp, "1964年4月，IBM发布了System/360。", "IBM", "System/360")
    assert run_checks(exp, target, "ja", "zh").ok


def test_wrong_language_is_flagged(stockmark_records):
    exp = expected(stockmark_records, MATSUTOMO, "en")
    target = translated(exp, "Misaki Matsutomo est une joueuse de badminton très connue, "
                             "originaire du Japon, qui a gagné beaucoup de médailles.",
                        "Misaki Matsutomo", "Japon")
    assert codes(run_checks(exp, target, "ja", "en")) == ["language"]
    zh = expected(stockmark_records, MATSUTOMO, "zh")
    english = translated(zh, "Misaki Matsutomo is a badminton player from Japan.",
                         "Misaki Matsutomo", "Japan")
    assert "language" in codes(run_checks(zh, english, "ja", "zh"))


def test_language_check_abstains_on_too_little_text():
    record = Record("x", "IBM, System/360.", mentions=[Mention("Product Name", "System/360")])
    assert check_language(record, "en") == []


def test_count_mismatch_and_label_changed(stockmark_records):
    exp = expected(stockmark_records, IBM, "en")
    dropped = translated(exp, "In April 1964, IBM announced the System/360.", "IBM")
    assert codes(run_checks(exp, dropped, "ja", "en")) == ["count_mismatch"]
    relabelled = translated(exp, "In April 1964, IBM announced the System/360.", "IBM",
                            "System/360")
    relabelled.mentions[0].label = "Company"
    result = run_checks(exp, relabelled, "ja", "en")
    assert codes(result) == ["label_changed"]
    assert "'Corporation Name' came back as 'Company'" in result.problems[0].message


@pytest.mark.parametrize("reply", ["Sure! Here is the translation: In April 1964...",
                                   '{"text": 5}', '{"text": "x", "entities": "IBM"}',
                                   '{"text": "x", "entities": [{"label": "Person"}]}'])
def test_malformed_reply_is_a_format_problem(stockmark_records, reply):
    target, problems = parse_reply(reply, expected(stockmark_records, IBM, "en"))
    assert target is None and [p.code for p in problems] == ["format"]


def test_reply_in_a_code_fence_parses(stockmark_records):
    reply = ('```json\n{"text": "In April 1964, IBM announced the System/360.", "entities": '
             '[{"label": "Corporation Name", "text": "IBM"}, '
             '{"label": "Product Name", "text": "System/360"}]}\n```')
    exp = expected(stockmark_records, IBM, "en")
    target, problems = parse_reply(reply, exp)
    assert problems == [] and run_checks(exp, target, "ja", "en").ok


def test_repeated_mention_gets_the_kth_occurrence_in_the_translation():
    exp = Record("x", "BMW JAPANはBMWを売る。BMWは人気。", mentions=[
        Mention("法人名", "BMW JAPAN"), Mention("法人名", "BMW"), Mention("法人名", "BMW")])
    target = translated(exp, "BMW Japan sells BMW cars, and BMW is popular.", "BMW Japan", "BMW",
                        "BMW")
    result = run_checks(exp, target, "ja", "en")
    assert [(m.start, m.end) for m in result.record.mentions] == [(0, 9), (16, 19), (30, 33)]
