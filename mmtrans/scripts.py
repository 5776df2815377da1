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


@lru_cache(maxsize=1)
def japanese_only_kanji() -> frozenset[str]:
    """Shinjitai kanji that Simplified Chinese does not use (see scripts/build_ja_only_kanji.py)."""
    path = resource_dir("scripts") / "ja_only_kanji.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset("".join(x.strip() for x in lines if not x.startswith("#")))


@lru_cache(maxsize=16)
def source_residue(src: str, tgt: str) -> regex.Pattern[str] | None:
    """Characters that must not survive translation from `src` into `tgt`, or None."""
    parts = []
    if src == "ja":
        parts.append(r"\p{Hiragana}\p{Katakana}")
        if tgt == "zh":
            parts.append(regex.escape("".join(sorted(japanese_only_kanji()))))
    if src in ("ja", "zh") and tgt not in CJK:
        parts.append(r"\p{Han}")
    return regex.compile("[" + "".join(parts) + "]") if parts else None
