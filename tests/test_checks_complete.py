"""The checks see every kind of defect: event arguments, Chinese-only hanzi in Japanese,
kanji-only Japanese, and numbers that change on the way."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

from mmtrans import formats
from mmtrans.checks import check_language, check_numbers, run_checks
from mmtrans.labels import load_tables
from mmtrans.records import Argument, Event, Record
from mmtrans.scripts import simplified_only_hanzi

from .conftest import DATA

REPO = Path(__file__).resolve().parent.parent


def codes(result) -> list[str]:
    return [p.code for p in result.problems]


def iepile_event() -> Record:
    """A real IEPile event with arguments, its labels translated into English."""
    records = [r for r in formats.read(DATA / "iepile" / "EE" / "sample.json")
               if isinstance(r, Record) and r.events and r.events[0].arguments]
    return load_tables(["iepile"], "zh", "en").translate(records[0])


def with_arguments(record: Record, arguments: list[Argument]) -> Record:
    first = replace(record.events[0], arguments=arguments)
    return replace(record, events=[first, *record.events[1:]])


def test_a_dropped_added_or_relabelled_argument_is_flagged():
    exp = iepile_event()
    args = exp.events[0].arguments
    dropped = with_arguments(exp, args[:-1])
    result = run_checks(exp, dropped, "zh", "en")
    assert ("count_mismatch", "events[0].arguments") in [(p.code, p.where)
                                                          for p in result.problems]
    added = with_arguments(exp, [*args, Argument(args[0].role, args[0].text)])
    assert "count_mismatch" in codes(run_checks(exp, added, "zh", "en"))
    relabelled = with_arguments(exp, [Argument("Somebody Else", args[0].text), *args[1:]])
    problems = run_checks(exp, relabelled, "zh", "en").problems
    assert [(p.code, p.where) for p in problems if p.code == "label_changed"] == [
        ("label_changed", "events[0].arguments[0].role")]


def test_an_event_with_its_arguments_intact_has_no_count_or_label_problem():
    exp = Record("e", "In 2019 Acme bought Widgets.", task="EE", events=[
        Event("Acquisition", "bought", [Argument("Buyer", "Acme"), Argument("Target", "Widgets")])])
    assert codes(run_checks(exp, exp, "zh", "en")) == []


def test_chinese_only_hanzi_left_in_a_japanese_translation_are_flagged():
    source = Record("z", "你们两个人在刘家减肥。")
    target = replace(source, text="あなたたち两人は刘家で减量した。你")
    result = run_checks(source, target, "zh", "ja")
    (problem,) = [p for p in result.problems if p.code == "residual_source"]
    assert all(c in problem.message for c in "两刘减你")
    shared = replace(source, text="日本人は国へ帰った。")
    assert "residual_source" not in codes(run_checks(source, shared, "zh", "ja"))


def test_the_simplified_only_set_is_gb2312_minus_jis_x_0208_as_built():
    spec = importlib.util.spec_from_file_location(
        "build", REPO / "scripts" / "build_simplified_only_hanzi.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)  # type: ignore[union-attr]
    built = build.simplified_only()
    assert frozenset(built) == simplified_only_hanzi() and len(built) == 3432
    assert set("你两众刘减这们说") <= simplified_only_hanzi()
    assert not set("日本人国東京") & simplified_only_hanzi()


def test_japanese_written_only_in_kanji_is_japanese():
    assert check_language(Record("k", "日本国憲法第九条改正議論"), "ja") == []
    assert check_language(Record("k", "内閣総理大臣談話全文公表"), "ja") == []
    chinese = check_language(Record("c", "这个问题我们明天再说吧朋友们"), "ja")
    assert [p.code for p in chinese] == ["language"]


def test_a_changed_year_is_flagged_and_repaired_numbers_pass():
    source = Record("n", "1964年4月、IBMはSystem/360を発表した。2019年に10万人が訪れた。")
    good = Record("n", "In April 1964 IBM announced the System/360; in 2019, 100,000 people came.")
    assert check_numbers(source, good) == []
    bad = replace(good, text=good.text.replace("2019", "2018"))
    (problem,) = check_numbers(source, bad)
    assert (problem.code, problem.where) == ("numbers", "text") and "2019" in problem.message
    inside = replace(good, text=good.text.replace("2019", "20190"))
    assert "2019" in check_numbers(source, inside)[0].message


def test_numbers_match_across_digit_width_and_thousands_separators():
    source = Record("n", "売上は1,000億円、社員は２５０人。")
    assert check_numbers(source, Record("n", "Sales of 1000 billion yen and 250 staff.")) == []
    assert check_numbers(source, Record("n", "销售额1,000亿日元，员工２５０人。")) == []
    assert check_numbers(Record("n", "1つ、2つ"), Record("n", "one, two")) == []  # one digit


def test_numbers_check_is_silent_on_every_real_sentence_kept_as_is():
    records = [r for r in formats.read(DATA / "stockmark-ner-wikipedia" / "ner.json")
               if isinstance(r, Record)]
    with_numbers = [r for r in records if check_numbers(r, replace(r, text=""))]
    assert len(with_numbers) > 500  # years and counts are common in the real data
    assert [r.id for r in records if check_numbers(r, r)] == []
