"""Build data/scripts/simplified_only_hanzi.txt: Han characters of GB 2312 (Simplified
Chinese) that JIS X 0208 (the Japanese standard set) lacks.

Both sets come from Python's codec tables of the standards themselves: `gb2312` encodes
exactly GB 2312, and `iso2022_jp` exactly ASCII, JIS X 0201 Roman and JIS X 0208 (unlike
`euc_jp`, which also covers JIS X 0212 and so would let 1,063 Chinese-only characters such
as 你 两 众 刘 减 pass as Japanese).
Run: python scripts/build_simplified_only_hanzi.py
"""

from __future__ import annotations

from pathlib import Path

OUT = Path(__file__).parent.parent / "data" / "scripts" / "simplified_only_hanzi.txt"


def encodes(char: str, codec: str) -> bool:
    try:
        char.encode(codec)
    except UnicodeEncodeError:
        return False
    return True


def simplified_only() -> str:
    """GB 2312 minus JIS X 0208, over the CJK Unified Ideographs block (where GB 2312 lies)."""
    return "".join(c for c in map(chr, range(0x4E00, 0xA000))
                   if encodes(c, "gb2312") and not encodes(c, "iso2022_jp"))


def main() -> None:
    chars = simplified_only()
    lines = [chars[i:i + 80] for i in range(0, len(chars), 80)]
    OUT.write_text(
        "# Han characters of GB 2312 that JIS X 0208 lacks: Simplified Chinese, not Japanese.\n"
        "# Built by scripts/build_simplified_only_hanzi.py from the gb2312 and iso2022_jp\n"
        "# codec tables.\n" + "\n".join(lines) + "\n",
        encoding="utf-8",
    )
    print(f"{len(chars)} characters -> {OUT}")


if __name__ == "__main__":
    main()
