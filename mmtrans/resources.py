"""Where the shipped prompt files, label tables and script lists are found.

In a wheel they sit in `mmtrans/_resources/`; in a source checkout (editable install)
they are the repository's own `prompts/` and `data/` folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).parent / "_resources"
_CHECKOUT = Path(__file__).parent.parent


def resource_dir(kind: str) -> Path:
    """The folder holding `kind` ("prompts", "labels" or "scripts")."""
    packaged = _PACKAGED / kind
    if packaged.is_dir():
        return packaged
    return _CHECKOUT / ("prompts" if kind == "prompts" else f"data/{kind}")
