"""Build data/scripts/ja_only_kanji.txt: kanji forms used in Japanese but not in Simplified Chinese.

Source: OpenCC's JPVariants table (traditional form -> Japanese shinjitai form), shipped by
the `opencc-python-reimplemented` package. A shinjitai form counts as Japanese-only when it is
not in GB 2312, the Simplified Chinese character set (Python's `gb2312` codec).
Run: python scripts/build_ja_only_kanji.py [path/to/JPVariants.txt]
"""

from __future__ import annotations

import sys
from pathlib import Path


def in_gb2312(char: str) -> bool:
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def main() -> None:
    if len(sys.argv) > 1:
        source = Path(sys.argv[1])
    else:
        import opencc  # opencc-python-reimplemented

        source = Path(opencc.__file__).parent / "dictionary" / "JPVariants.txt"
    forms: set[str] = set()
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.strip():
            _, targets = line.split("\t")
            forms.update(t for t in targets.split(" ") if len(t) == 1)
    only = "".join(sorted(c for c in forms if not in_gb2312(c)))
    out = Path(__file__).parent.parent / "data" / "scripts" / "ja_only_kanji.txt"
    out.write_text(
        "# Japanese shinjitai kanji that Simplified Chinese does not use.\n"
        "# Built by scripts/build_ja_only_kanji.py from OpenCC's JPVariants.txt minus GB 2312.\n"
        f"{only}\n",
        encoding="utf-8",
    )
    print(f"{len(only)} characters -> {out}")


if __name__ == "__main__":
    main()
