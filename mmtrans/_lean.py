"""sqlite-utils loaded without pandas and numpy: it imports them when it can, only to map
their types on insert, which mmtrans never does, and they cost every mmtrans process about
130 MB of memory. They are blocked only while sqlite-utils loads: a later `import pandas`
(the Hugging Face export) works as usual."""

from __future__ import annotations

import sys

_BLOCKED = [name for name in ("pandas", "numpy") if name not in sys.modules]
if "sqlite_utils" not in sys.modules:
    for name in _BLOCKED:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in _BLOCKED:
            del sys.modules[name]
