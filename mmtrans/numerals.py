"""The numbers a text states, however it writes them: digits, numerals in words (English
words, Chinese and Japanese numerals), months by name, Japanese era years.

The `numbers` check asks that every number of the source occurs in the translation. A
translator writes 12月 as "December", 25人 as "twenty-five people", 平成27年 as "2015" and
2015年 in Chinese as 二〇一五年; each of those is the source's number, and is read as such here.
Month and weekday names come from CLDR through Babel, for any target language; weekday names
are taken out before numerals are read, so that 星期三 (Wednesday) is not the number 3 and 月曜日
(Monday) is no month. Everything here is a pure function of its text.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import regex

#: Two or more digits not inside a longer number. A number directly followed by a CJK
#: multiplier (10万 = 100,000) is left out: its translation rightly writes other digits.
NUMBER = regex.compile(r"(?<!\d)\d{2,}(?!\d)(?![万億亿千百兆])")
#: A thousands separator between digits (1,000 and 1000 are the same number).
THOUSANDS = regex.compile(r"(?<=\d)[,，](?=\d{3}(?!\d))")
#: Japanese eras: the Gregorian year before each era's first year (平成1年 = 1989).
ERAS = {"明治": 1867, "大正": 1911, "昭和": 1925, "平成": 1988, "令和": 2018}


def normalised(text: str) -> str:
    """NFKC (full-width digits as ASCII) without thousands separators."""
    return THOUSANDS.sub("", unicodedata.normalize("NFKC", text))


def numbers_in(text: str) -> list[str]:
    """The numbers of `text` that a translation must keep."""
    return NUMBER.findall(normalised(text))


def source_numbers(text: str) -> list[tuple[str, set[str]]]:
    """Each number of `text` a translation must keep, with every way a translation may
    state it: the number itself, `month:N` for a month (12月, not 12ヶ月 or 12个月), the
    Gregorian year for an era year (平成27年: 2015)."""
    norm = normalised(text)
    out: list[tuple[str, set[str]]] = []
    for m in NUMBER.finditer(norm):
        number, after = m.group(), norm[m.end():m.end() + 1]
        ways = {number}
        if after == "月" and 1 <= int(number) <= 12:
            ways.add(f"month:{int(number)}")
        era = norm[max(0, m.start() - 2):m.start()]  # every era name is two characters
        if era in ERAS and after == "年":
            ways.add(str(ERAS[era] + int(number)))
        out.append((number, ways))
    return out


# -- English numerals in words -------------------------------------------------------------

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
#: Cardinals and ordinals below a hundred ("twelve" and "twelfth" are both 12).
SMALL: dict[str, int] = (
    {w: i for i, w in enumerate(_UNITS)}
    | {w: 10 * i for i, w in enumerate(_TENS) if w}
    | {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6,
       "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12}
    | {w + "th": i for i, w in enumerate(_UNITS) if 13 <= i <= 19}
    | {w[:-1] + "ieth": 10 * i for i, w in enumerate(_TENS) if w})
SCALES = {"hundred": 100, "thousand": 1000, "million": 10 ** 6, "billion": 10 ** 9}
SCALES |= {w + "th": n for w, n in list(SCALES.items())}
WORD = regex.compile(r"[A-Za-z]+")


def english_numbers(text: str) -> set[str]:
    """The values of the runs of English number words in `text`: "twenty-five" 25, "one
    hundred and twelve" 112, "a thousand" 1000, "twelfth" 12. Words join into one number
    only as numbers are spoken ("five six" is 5 and 6, "two and three" 2 and 3)."""
    values: set[str] = set()
    total = current = 0
    in_run = after_scale = False
    last_end = 0

    def close() -> None:
        nonlocal total, current, in_run, after_scale
        if in_run:
            values.add(str(total + current))
        total = current = 0
        in_run = after_scale = False

    for m in WORD.finditer(text):
        word = m.group().lower()
        adjacent = text[last_end:m.start()].strip(" -") == ""
        last_end = m.end()
        if in_run and not adjacent:
            close()
        if word in SMALL:
            n = SMALL[word]
            tens_open = current % 100 >= 20 and current % 10 == 0 and n < 10
            if in_run and not (after_scale or tens_open):
                close()
            current += n
            in_run, after_scale = True, False
        elif word in SCALES and (in_run or word != "hundredth"):
            scale = SCALES[word]
            if scale == 100:
                current = (current or 1) * 100
            else:
                total, current = total + (current or 1) * scale, 0
            in_run, after_scale = True, True
        elif word == "and" and in_run and after_scale:
            continue
        elif word == "a" and not in_run:
            continue  # "a hundred": the scale word opens the run
        else:
            close()
    close()
    return values


# -- Chinese and Japanese numerals ---------------------------------------------------------

CJK_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
CJK_UNITS = {"十": 10, "百": 100, "千": 1000}
CJK_LARGE = {"万": 10 ** 4, "萬": 10 ** 4, "亿": 10 ** 8, "億": 10 ** 8}
CJK_NUMERAL = regex.compile("[" + "".join([*CJK_DIGITS, *CJK_UNITS, *CJK_LARGE]) + "]+")
#: Chinese weekdays written with a numeral (星期三, 周三, 礼拜三).
ZH_WEEKDAY = regex.compile(r"(?:星期|周|週|礼拜|禮拜)[一二三四五六日天]")


def cjk_value(numeral: str) -> int | None:
    """十二 12, 二十五 25, 三千 3000, 两万 20000, 一九九五 1995 (read digit by digit when no
    unit stands in it); None for a run that is not one number (十十)."""
    if not any(c in CJK_UNITS or c in CJK_LARGE for c in numeral):
        return int("".join(str(CJK_DIGITS[c]) for c in numeral))
    total = section = 0
    digit: int | None = None
    for c in numeral:
        if c in CJK_DIGITS:
            if digit is not None:
                return None
            digit = CJK_DIGITS[c]
        elif c in CJK_UNITS:
            section += (1 if digit is None else digit) * CJK_UNITS[c]
            digit = None
        else:
            total = (total + section + (digit or 0)) * CJK_LARGE[c]
            section, digit = 0, None
    return total + section + (digit or 0)


def cjk_numbers(text: str) -> set[str]:
    values = set()
    for run in CJK_NUMERAL.findall(ZH_WEEKDAY.sub(" ", text)):
        if all(c in CJK_DIGITS for c in run):  # digit by digit, leading zeros kept (〇一一二)
            values.add("".join(str(CJK_DIGITS[c]) for c in run))
        value = cjk_value(run)
        if value is not None:
            values.add(str(value))
    return values


# -- month and weekday names ---------------------------------------------------------------

@lru_cache(maxsize=32)
def month_names(lang: str) -> tuple[tuple[str, int], ...]:
    """(name, month) for every month name CLDR gives `lang` (wide and abbreviated, in
    running text and standing alone), longest first; none for a language CLDR lacks. Names
    that are numerals with 月 (ja 12月, zh 十二月) are left to the numeral readers."""
    try:
        from babel import Locale, UnknownLocaleError
        locale = Locale.parse(lang.replace("-", "_"))
    except (ImportError, ValueError, UnknownLocaleError):
        return ()
    names: dict[str, int] = {}
    for context in ("format", "stand-alone"):
        for width in ("wide", "abbreviated"):
            for month, name in locale.months.get(context, {}).get(width, {}).items():
                name = name.rstrip(".")
                if name and not regex.search(r"[\d〇一二三四五六七八九十]", name):
                    names.setdefault(name, month)
    if lang.split("-")[0] == "en":
        names.setdefault("Sept", 9)
    return tuple(sorted(names.items(), key=lambda kv: -len(kv[0])))


@lru_cache(maxsize=32)
def weekday_names(lang: str) -> tuple[str, ...]:
    """Every weekday name CLDR gives `lang` (wide and abbreviated), longest first."""
    try:
        from babel import Locale, UnknownLocaleError
        locale = Locale.parse(lang.replace("-", "_"))
    except (ImportError, ValueError, UnknownLocaleError):
        return ()
    names = {name for context in ("format", "stand-alone")
             for width in ("wide", "abbreviated")
             for name in locale.days.get(context, {}).get(width, {}).values() if name}
    return tuple(sorted(names, key=len, reverse=True))


@lru_cache(maxsize=32)
def _month_pattern(lang: str) -> tuple[regex.Pattern[str] | None, dict[str, int]]:
    """One pattern for every month name of `lang` (whole words, any case but "May", which
    is a month only capitalised), and the month of each name, lower-cased."""
    names = month_names(lang)
    if not names:
        return None, {}
    alternatives = "|".join(
        regex.escape(name) if name == "May" else f"(?i:{regex.escape(name)})"
        for name, _ in names)
    return (regex.compile(rf"(?<!\p{{L}})(?:{alternatives})\.?(?!\p{{L}})"),
            {name.lower(): month for name, month in names})


def months_in(text: str, lang: str) -> set[str]:
    """`month:N` for each month named in `text`."""
    pattern, months = _month_pattern(lang)
    if pattern is None:
        return set()
    return {f"month:{months[m.group().rstrip('.').lower()]}" for m in pattern.finditer(text)}


def stated_values(text: str, lang: str | None) -> set[str]:
    """Every number `text` states in the language `lang`: its digits (as `numbers_in` reads
    them), numerals in words, and `month:N` for months named."""
    norm = normalised(text)
    values = set(NUMBER.findall(norm))
    if lang is None:
        return values
    base = lang.split("-")[0]
    without_weekdays = norm
    for name in weekday_names(base):
        without_weekdays = without_weekdays.replace(name, " ")
    if base == "en":
        values |= english_numbers(without_weekdays)
    if base in ("zh", "ja"):
        values |= cjk_numbers(without_weekdays)
    return values | months_in(without_weekdays, base)
