"""`mmtrans labels`: which labels no table covers, and model-suggested translations for them.

Suggestions go to a separate `.suggested.tsv` file that no run reads: a person checks each
line and moves it into the real table. Labels are never translated by the model unseen.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from .errors import ModelError
from .formats import read as read_records
from .labels import load_tables, pair_tables
from .llm import Backend, Completion, Params, close_backend
from .payload import extract_json
from .pipeline import run_sync
from .records import Record
from .scripts import language_name


def missing_labels(path: str | Path, src: str, tgt: str, tables: Iterable[str] = (),
                   fmt: str | None = None) -> Counter[str]:
    """Every label of the input that the named tables (by default: every shipped table of the
    pair) do not cover, with counts. A named table that does not exist is an InputError."""
    records = [r for r in read_records(path, fmt) if isinstance(r, Record)]
    names = list(tables) or pair_tables(src, tgt)
    if not names:  # no table for this pair yet: every label is missing
        return Counter(label for r in records for _, label in r.labels())
    return load_tables(names, src, tgt).missing(records)


def as_tsv(counts: Counter[str], suggestions: dict[str, str] | None = None,
           header: str = "") -> str:
    lines = [f"# {line}" for line in header.splitlines()]
    for label, n in counts.most_common():
        lines.append(f"# {n}x")
        lines.append(f"{label}\t{(suggestions or {}).get(label, '')}")
    return "\n".join(lines) + "\n"


def suggest(labels: list[str], src: str, tgt: str, backend: Backend,
            params: Params | None = None) -> dict[str, str]:
    """Ask the model for a translation of each label; returns only well-formed answers."""
    if not labels:
        return {}
    messages = [
        {"role": "system", "content": (
            f"You translate the labels of an information-extraction dataset (entity types, "
            f"relation names, event types, argument roles) from {language_name(src)} into "
            f"{language_name(tgt)}. Answer with one JSON object mapping each label to its "
            f"translation: short, in the target language, the usual term of the field.")},
        {"role": "user", "content": json.dumps(labels, ensure_ascii=False)},
    ]
    async def ask() -> Completion:
        try:
            return await backend.complete(messages, params or Params())
        finally:
            await close_backend(backend)  # its HTTP pool belongs to this event loop

    completion = run_sync(ask())
    try:
        data = extract_json(completion.text)
    except ValueError as e:
        raise ModelError(f"the model's suggestions are not JSON: {e}") from e
    if not isinstance(data, dict):
        raise ModelError("the model's suggestions are not a JSON object")
    return {k: v.strip() for k, v in data.items()
            if k in labels and isinstance(v, str) and v.strip()}


