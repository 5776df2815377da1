"""No garbage collection while mmtrans is imported.

Importing mmtrans (openai's types, numpy, sqlite-utils, rich) makes a few hundred thousand
objects that live as long as the process: the collections they set off scan them all, about
0.15 s of every command's start on a 2-core machine, and free none of them. The package's
`__init__` imports this module first and calls `imported()` last.
"""

from __future__ import annotations

import gc

_was_enabled = gc.isenabled()
gc.disable()


def imported() -> None:
    """Collect again as before the import."""
    if _was_enabled:
        gc.enable()
