"""The `numbers` check reads a number however the target language writes it (month names,
numerals in words, Chinese numerals, era years) and still flags a number that is missing."""

from __future__ import annotations

import re

import pytest

from mmtrans.checks import check_numbers, run_checks
from mmtrans.numerals import cjk_numbers, english_numbers, months_in, numbers_in, stated_values
from mmtrans.records import Mention, Record

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


def flags(source: str, target: str, tgt: str) -> bool:
    return bool(check_numbers(Record("s", source), Record("t", target), tgt))


@pytest.mark.parametrize(("target", "tgt"), [
    ("The festival is held in December.", "en"),
    ("The festival is held in Dec. every year.", "en"),
    ("Le festival a lieu en décembre.", "fr"),
    ("祭典在十二月举行。", "zh"),
    ("祭りは12月に行われる。", "ja"),
])
def test_a_month_written_by_name_passes(target: str, tgt: str) -> None:
    assert not flags("祭りは12月に行われる。", target, tgt)


def test_a_missing_month_or_a_duration_named_as_a_month_still_flags() -> None:
    assert flags("祭りは12月に行われる。", "The festival is held in winter.", "en")
    assert flags("祭りは11月に行われる。", "The festival is held in December.", "en")
    assert flags("工事は12ヶ月かかった。", "The work took until December.", "en")  # 12 months
    assert months_in("It may rain in SEPT.", "en") == {"month:9"}  # "may" is no May
    assert months_in("It rains in May.", "en") == {"month:5"}
    assert flags("祭りは12月に行われる。", "祭りは月曜日に行われる。", "ja")  # a weekday, no month


def test_counts_written_in_english_words_pass_and_wrong_ones_flag() -> None:
    assert not flags("選手25人が出場した。", "Twenty-five players took part.", "en")
    assert not flags("112人", "one hundred and twelve people", "en")
    assert not flags("第15日", "on the fifteenth day", "en")
    assert flags("選手25人が出場した。", "Twenty players took part.", "en")
    assert english_numbers("two and three, five six") == {"2", "3", "5", "6"}


def test_chinese_and_japanese_numerals_pass_and_weekdays_are_no_numbers() -> None:
    assert not flags("2015年に25人が参加した。", "二〇一五年有二十五人参加。", "zh")
    assert not flags("1995年", "一九九五年", "ja")
    assert not flags("3500人", "三千五百人", "zh")
    assert flags("2015年に25人が参加した。", "二〇一五年有二十人参加。", "zh")
    assert cjk_numbers("星期三和周六") == set()
    assert stated_values("On Monday the 3rd", "en") == set()


def test_a_japanese_era_year_passes_as_its_gregorian_year() -> None:
    assert not flags("平成27年に開業した。", "It opened in 2015.", "en")
    assert not flags("昭和31年", "1956", "en")
    assert flags("平成27年に開業した。", "It opened in 2016.", "en")
    assert flags("2015年に開業した。", "It opened in the Heisei era.", "en")


def test_run_checks_reads_numbers_in_the_target_language() -> None:
    source = Record("s", "東京で12月に25人が集まった。", mentions=[Mention("地名", "東京")])
    target = Record("t", "Twenty-five people met in Tokyo in December.",
                    mentions=[Mention("Location", "Tokyo")])
    expected = Record("s", source.text, mentions=[Mention("Location", "東京")])
    assert [p.code for p in run_checks(expected, target, "ja", "en").problems] == []
    wrong = Record("t", "Twenty people met in Tokyo in November.",
                   mentions=[Mention("Location", "Tokyo")])
    (problem,) = [p for p in run_checks(expected, wrong, "ja", "en").problems
                  if p.code == "numbers"]
    assert "12, 25" in problem.message


def test_real_sentences_with_their_months_named_pass_and_with_one_left_out_flag(
        stockmark_records) -> None:
    def named(text: str) -> str:
        return re.sub(r"(?<!\d)(1[0-2])月", lambda m: f" {MONTHS[int(m.group(1)) - 1]} ", text)

    with_months = [r.text for r in stockmark_records if named(r.text) != r.text]
    assert len(with_months) > 200
    assert [t for t in with_months if flags(t, named(t), "en")] == []
    left_out = [t for t in with_months if not flags(t, named(re.sub(
        r"(?<!\d)(1[0-2])月", "月", t, count=1)), "en")]
    # only a sentence that states that number again (10月10日, 12月7日から12日) may pass
    for t in left_out:
        month = re.search(r"(?<!\d)(1[0-2])月", t).group(1)
        assert numbers_in(t).count(month) > 1, t
    assert len(left_out) < len(with_months) * 0.1
