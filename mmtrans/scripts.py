"""Writing systems of the languages mmtrans knows, as `regex` Unicode script classes."""

from __future__ import annotations

from functools import lru_cache

import regex

from .resources import resource_dir

CJK = {"zh", "ja", "ko"}
LANGUAGE_NAMES = {"ja": "Japanese", "zh": "Chinese (Simplified)", "en": "English", "ko": "Korean",
                  "fr": "French", "de": "German", "es": "Spanish"}

KANA = regex.compile(r"[\p{Hiragana}\p{Katakana}]")
HAN = regex.compile(r"\p{Han}")
LETTER = regex.compile(r"\p{L}")
LATIN_RUN = regex.compile(r"[\p{Latin}\p{N}][\p{Latin}\p{N}\p{P}\p{S}]*")


def is_spaced(lang: str) -> bool:
    """Whether words of `lang` are separated by spaces (so anchors match at word boundaries)."""
    return lang not in CJK


def language_name(lang: str) -> str:
    return LANGUAGE_NAMES.get(lang, lang)


def _character_set(name: str) -> frozenset[str]:
    """The characters of `data/scripts/<name>.txt` (lines starting with # are comments)."""
    path = resource_dir("scripts") / f"{name}.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset("".join(x.strip() for x in lines if not x.startswith("#")))


@lru_cache(maxsize=1)
def japanese_only_kanji() -> frozenset[str]:
    """Shinjitai kanji that Simplified Chinese does not use (see scripts/build_ja_only_kanji.py)."""
    return _character_set("ja_only_kanji")


@lru_cache(maxsize=1)
def simplified_only_hanzi() -> frozenset[str]:
    """Han characters of GB 2312 (Simplified Chinese) that JIS X 0208 (Japanese) lacks:
    这, 们, 说, 你, 两 ... (see scripts/build_simplified_only_hanzi.py). A Japanese
    translation of Chinese keeps none of them."""
    return _character_set("simplified_only_hanzi")


#: Three or more lower-case English words in a row: a sentence left untranslated, not a name
#: (names and codes such as IBM or System/360 are capitalised or hold digits).
ENGLISH_RUN = regex.compile(r"(?<![\p{L}\p{N}])[a-z]{2,}(?:[ \t]+[a-z]{2,}){2,}(?![\p{L}\p{N}])")


@lru_cache(maxsize=16)
def source_residue(src: str, tgt: str) -> regex.Pattern[str] | None:
    """Characters that must not survive translation from `src` into `tgt`, or None."""
    parts = []
    if src == "ja":
        parts.append(r"\p{Hiragana}\p{Katakana}")
        if tgt == "zh":
            parts.append(regex.escape("".join(sorted(japanese_only_kanji()))))
    if src == "zh" and tgt == "ja":
        parts.append(regex.escape("".join(sorted(simplified_only_hanzi()))))
    if src in ("ja", "zh") and tgt not in CJK:
        parts.append(r"\p{Han}")
    return regex.compile("[" + "".join(parts) + "]") if parts else None
