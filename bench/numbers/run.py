"""The `numbers` check before and after it read month names, numerals in words and era years.

No translation of these sets ships with the project (tests/data, ../shared/data hold sources
only), so the targets are the real source sentences with their numbers rewritten the way a
translator writes them, one rendering at a time, everything else left as it is (the check
reads numbers only):

    months      ja/zh -> en   12月 -> December (and 10月, 11月)
    eras        ja -> en      平成27年 -> 2015年 (the Gregorian year)
    counts      ja/zh -> en   25人, 12名, 30歳 ... -> twenty-five, twelve, thirty
    hanzi       ja -> zh      2015年 -> 二〇一五年, 25人 -> 二十五人, 12月 -> 十二月

A correct rendering should pass: "before" counts the false flags of the digits-only check,
"after" those of the check now. Then the control: every rendering with one of its source
numbers taken out must still be flagged ("missed" counts those that pass).

    python bench/numbers/run.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from pathlib import Path

from mmtrans import formats
from mmtrans.checks import check_numbers
from mmtrans.numerals import _TENS, _UNITS, ERAS, normalised, numbers_in
from mmtrans.records import Record

ROOT = Path(__file__).resolve().parents[2]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
COUNTERS = "人名歳回個件社校"
HANZI = "〇一二三四五六七八九"


def english_words(n: int) -> str:
    if n < 20:
        return _UNITS[n]
    tens, units = divmod(n, 10)
    return _TENS[tens] + (f"-{_UNITS[units]}" if units else "")


def hanzi(n: int) -> str:
    """二十五 for 25 (counts below 100)."""
    tens, units = divmod(n, 10)
    return (("" if tens == 1 else HANZI[tens]) + "十" if tens else "") + \
        (HANZI[units] if units or not tens else "")


def months(text: str) -> str:
    return re.sub(r"(?<!\d)(1[0-2])月", lambda m: f" {MONTHS[int(m.group(1)) - 1]} ", text)


def eras(text: str) -> str:
    return re.sub(r"(明治|大正|昭和|平成|令和)(\d{2})年",
                  lambda m: f"{ERAS[m.group(1)] + int(m.group(2))}年", text)


def counts(text: str) -> str:
    return re.sub(rf"(?<!\d)(\d{{2}})(?=[{COUNTERS}])",
                  lambda m: f" {english_words(int(m.group(1)))} ", text)


def to_hanzi(text: str) -> str:
    text = re.sub(r"(?<!\d)(\d{4})(?=年)", lambda m: "".join(HANZI[int(d)] for d in m.group(1)),
                  text)
    text = re.sub(r"(?<!\d)(1[0-2])(?=月)", lambda m: hanzi(int(m.group(1))), text)
    return re.sub(rf"(?<!\d)(\d{{2}})(?=[{COUNTERS}])", lambda m: hanzi(int(m.group(1))), text)


RENDERINGS: dict[str, tuple[Callable[[str], str], str]] = {
    "months": (months, "en"), "eras": (eras, "en"), "counts": (counts, "en"),
    "hanzi": (to_hanzi, "zh")}


def old_flags(source: str, target: str) -> bool:
    """The check as it was: every number of the source among the target's digits."""
    have = set(numbers_in(target))
    return any(n not in have for n in numbers_in(source))


def texts(data: Path) -> dict[str, list[str]]:
    out = {}
    stockmark = data / "stockmark-ner-wikipedia" / "ner.json"
    out["stockmark (ja)"] = [r.text for r in formats.read(stockmark) if isinstance(r, Record)]
    zh = []
    for path in sorted((data / "iepile").glob("*/*.json")):
        if path.name in ("schema.json",) or path.parent.name == "iepile":
            continue
        zh += [r.text for r in formats.read(path) if isinstance(r, Record)]
    out["iepile (zh)"] = list(dict.fromkeys(zh))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(
        os.environ.get("MMTRANS_SHARED_DATA", ROOT / "tests" / "data")))
    args = parser.parse_args()
    print(f"load average {os.getloadavg()}")
    print("| data | rendering | sentences changed | flagged before | flagged after | "
          "number taken out: still flagged before | after |")
    print("|---|---|---|---|---|---|---|")
    for name, sentences in texts(args.data).items():
        for rendering, (render, tgt) in RENDERINGS.items():
            changed = before = after = 0
            controls = control_before = control_after = 0
            for text in sentences:
                target = render(text)
                if target == text:
                    continue
                changed += 1
                before += old_flags(text, target)
                after += bool(check_numbers(Record("s", text), Record("t", target), tgt))
                for number in dict.fromkeys(numbers_in(text)):
                    # the translator left this number out; the others rendered as before
                    cut = render(re.sub(rf"(?<!\d){number}(?!\d)", " ", normalised(text)))
                    controls += 1
                    control_before += old_flags(text, cut)
                    control_after += bool(check_numbers(Record("s", text), Record("t", cut), tgt))
            print(f"| {name} | {rendering} ({tgt}) | {changed} | {before} | {after} | "
                  f"{control_before}/{controls} | {control_after}/{controls} |")
    sixty = texts(args.data)["stockmark (ja)"][:60]
    month_records = [t for t in sixty if months(t) != t]
    now = sum(bool(check_numbers(Record("s", t), Record("t", months(t)), "en"))
              for t in month_records)
    print(f"\nstockmark's first 60 sentences: {len(month_records)} hold a month 10月-12月 "
          f"(a translation naming it was flagged before: "
          f"{sum(old_flags(t, months(t)) for t in month_records)}; now: {now})")


if __name__ == "__main__":
    main()
