"""Where the shipped prompt files, label tables and script lists are found.

In a wheel they sit in `mmtrans/_resources/`; in a source checkout (editable install)
they are the repository's own `prompts/` and `data/` folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).parent / "_resources"
_CHECKOUT = Path(__file__).parent.parent


_TOP_LEVEL = {"prompts", "review_ui"}  # the rest live under data/ in a checkout


def resource_dir(kind: str) -> Path:
    """The folder holding `kind` ("prompts", "labels", "scripts" or "review_ui")."""
    packaged = _PACKAGED / kind
    if packaged.is_dir():
        return packaged
    return _CHECKOUT / (kind if kind in _TOP_LEVEL else f"data/{kind}")
