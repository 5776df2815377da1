"""Annotated strings with no place in their text, kept out of every integer offset.

A flagged record exported with `--include-flagged` may hold a mention (or, for uie, a relation
head or tail, a trigger, an argument) that does not occur in its translated text. Formats that
give offsets (stockmark's `span`, uie's `pos`, the HF export's `start`/`end`) would have to
write `null` where a loader expects an integer. Such a record is not written to the main file:
it goes to a side file beside it, one JSON object a line, that says what has no place:

    {"id": "ner.json:1", "unplaced": [{"where": "mentions[0]", "label": "人名",
     "text": "Misaki Matsumoto"}], "item": {<the record as the format writes it, without the
     offsets of the unplaced strings>}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .records import Record

#: The formats whose items carry character offsets, and which of a record's anchored strings
#: get one (`Record.anchored` names them `mentions[i]`, `relations[i].head`, `events[i]...`).
OFFSET_FORMATS = {"stockmark": ("mentions[",), "uie": ("mentions[", "relations[", "events[")}
#: The keys offsets go under in those formats' items.
OFFSET_KEYS = ("span", "pos")


def unplaced(record: Record, prefixes: tuple[str, ...] = ("mentions[",)) -> list[dict[str, str]]:
    """The strings of `record` (among those `where` starts with one of `prefixes`) that do
    not occur in its text, so that a writer has no offset to give them. The writers place
    strings by plain substring search, and so does this."""
    labels = dict(record.labels())
    out = []
    for where, s in record.anchored():
        if where.startswith(prefixes) and (not s or s not in record.text):
            entry = {"where": where, "text": s}
            label = next((labels[k] for k in (f"{where}.label", f"{where}_label",
                                                f"{where}.role") if k in labels), None)
            if label is not None:
                entry["label"] = label
            out.append(entry)
    return out


def without_null_offsets(value: Any) -> Any:
    """`value` (a format's item) without the offset keys whose value is, or holds, null."""
    if isinstance(value, dict):
        return {k: without_null_offsets(v) for k, v in value.items()
                if not (k in OFFSET_KEYS and (v is None or (isinstance(v, list) and None in v)))}
    if isinstance(value, list):
        return [without_null_offsets(v) for v in value]
    return value


def side_path(out: str | Path) -> Path:
    """`en.unplaced.jsonl` beside `en.json` (or beside the folder `en/` of a uie export)."""
    out = Path(out)
    stem = out.name if out.suffix in ("", ".") or out.is_dir() else out.stem
    return out.with_name(f"{stem}.unplaced.jsonl")


def side_line(record: Record, item: dict[str, Any], where: list[dict[str, str]]) -> dict[str, Any]:
    return {"id": record.id, "unplaced": where, "item": without_null_offsets(item)}
