"""What annotators review: the queue of flagged (and spot-checked) records and one record's view.

Pure queries over the store; the web app in `app.py` only turns them into JSON.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..checks import Problem, run_checks
from ..errors import MmtransError
from ..labels import LabelTable, load_tables
from ..records import Mention, Record, locate_mentions
from ..store import Review, Store, Translation, effective_reviews

STATES = ("to review", "accepted", "edited", "rejected")
_STATE_OF = {"accept": "accepted", "edit": "edited", "reject": "rejected"}


class EditError(MmtransError):
    """An edited record that does not parse; it is refused, not stored."""


def spot_checked(run_id: str, record_id: str, share: float) -> bool:
    """A stable pseudo-random draw: the same records are drawn every time the page opens."""
    digest = hashlib.sha256(f"{run_id}\0{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def state(decision: Review | None) -> str:
    return _STATE_OF[decision.decision] if decision else "to review"


@dataclass
class Entry:
    run_id: str
    id: str
    dataset: str
    position: int
    status: str  # the translation's: flagged, failed, accepted (spot check)
    codes: list[str]
    state: str
    annotator: str | None

    def to_dict(self) -> dict[str, Any]:
        return vars(self)


def queue(store: Store, code: str | None = None, dataset: str | None = None,
          status: str | None = None, spot_check: float = 0.0,
          run_id: str | None = None) -> list[Entry]:
    """Flagged and failed records first, then the spot-check draw of accepted ones; each in
    input order, filtered by problem code, dataset (input file name) and review state. With
    `run_id`, that run's records only."""
    first: list[Entry] = []
    spot: list[Entry] = []
    where, args = ("id = ?", [run_id]) if run_id else (None, None)
    for run in store.db["runs"].rows_where(where, args, order_by="rowid"):
        run_id, name = run["id"], Path(run["input_path"]).name
        if dataset and dataset != name:
            continue
        latest = store.latest_translations(run_id)
        decisions = store.decisions(run_id)
        positions = {row["id"]: row["position"] for row in store.db.query(
            "select id, position from records where run_id = ?", [run_id])}
        for record_id, t in latest.items():
            codes = sorted({p["code"] for p in t.problems})
            chosen = t.status != "accepted" or spot_checked(run_id, record_id, spot_check)
            if not chosen or (code and code not in codes):
                continue
            decision = decisions.get(record_id)
            entry = Entry(run_id, record_id, name, positions.get(record_id, 0), t.status, codes,
                          state(decision), decision.annotator if decision else None)
            if status and entry.state != status:
                continue
            (spot if t.status == "accepted" else first).append(entry)
    first.sort(key=lambda e: (e.run_id, e.position))
    spot.sort(key=lambda e: (e.run_id, e.position))
    return first + spot


def progress(entries: list[Entry]) -> dict[str, Any]:
    by_annotator: dict[str, int] = {}
    for e in entries:
        if e.annotator:
            by_annotator[e.annotator] = by_annotator.get(e.annotator, 0) + 1
    return {"in_queue": len(entries), "reviewed": sum(e.state != "to review" for e in entries),
            "by_annotator": by_annotator}


def _table(run: dict[str, Any]) -> LabelTable | None:
    try:
        return load_tables(json.loads(run["labels"]), run["src"], run["tgt"])
    except MmtransError:
        return None


def expected_record(run: dict[str, Any], source: Record,
                    translation: Translation | None) -> Record:
    """The source with its labels translated (what every target record is checked against)."""
    table = _table(run)
    if table is not None:
        return table.translate(source)
    if translation is not None and translation.target is not None:  # the table file is gone
        return replace(source, label=translation.target.label,
                       mentions=[replace(m, label=t.label) for m, t in
                                 zip(source.mentions, translation.target.mentions)])
    return source


def record_view(store: Store, run_id: str, record_id: str) -> dict[str, Any]:
    """Everything the page shows of one record."""
    run = store.run(run_id)
    source = locate_mentions(store.record(run_id, record_id))
    t = store.latest_translation(run_id, record_id)
    raw = None
    if t is not None and t.request_key:
        row = store.db["requests"].get(t.request_key)
        raw = row["response"] if row else None
    rows = store.review_rows(run_id, record_id)
    reviews = effective_reviews(rows)
    expected = expected_record(run, source, t)
    target = t.target if t and t.target else None
    problems = t.problems if t else []
    version = "translation"
    if reviews and reviews[-1].decision == "edit" and reviews[-1].record is not None:
        # The record's effective version is the saved edit: shown, checked and edited anew.
        version = f"edited by {reviews[-1].annotator}"
        checked = run_checks(expected, reviews[-1].record, run["src"], run["tgt"])
        target, problems = checked.record, [p.to_dict() for p in checked.problems]
    return {
        "run_id": run_id, "id": record_id, "dataset": Path(run["input_path"]).name,
        "src": run["src"], "tgt": run["tgt"],
        "source": source.to_dict(), "expected_labels": [m.label for m in expected.mentions],
        "expected_label": expected.label,
        "target": target.to_dict() if target else None, "version": version,
        "status": t.status if t else "pending", "attempt": t.attempt if t else None,
        "problems": problems, "notes": t.notes if t else [], "raw": raw,
        "reviews": [r.to_dict() for r in reviews],
        "state": state(reviews[-1] if reviews else None),
        "seen": rows[-1]["id"] if rows else 0,
    }


def parse_edit(data: Any, base: Record) -> Record:
    """An edited record from the page -> Record, or EditError saying what is wrong."""
    if not isinstance(data, dict):
        raise EditError("the edit must be an object")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise EditError("the translated text must be a non-empty string")
    mentions = data.get("mentions", [])
    if not isinstance(mentions, list):
        raise EditError("'mentions' must be a list")
    parsed = []
    for i, m in enumerate(mentions):
        if not isinstance(m, dict) or not isinstance(m.get("label"), str) \
                or not isinstance(m.get("text"), str):
            raise EditError(f"mentions[{i}] needs a string 'label' and 'text'")
        if not m["label"].strip() or not m["text"].strip():
            raise EditError(f"mentions[{i}] has an empty label or string")
        parsed.append(Mention(m["label"].strip(), m["text"]))
    label = data.get("label", base.label)
    if label is not None and not isinstance(label, str):
        raise EditError("'label' must be a string")
    return replace(base, text=text, label=label or None, mentions=parsed)


def check_edit(store: Store, run_id: str, record_id: str, data: Any) -> tuple[Record,
                                                                               list[Problem]]:
    """Parse an edit and run every check on it, as on a model's answer."""
    run = store.run(run_id)
    t = store.latest_translation(run_id, record_id)
    expected = expected_record(run, store.record(run_id, record_id), t)
    base = t.target if t is not None and t.target is not None else expected
    edited = parse_edit(data, base)
    result = run_checks(expected, edited, run["src"], run["tgt"])
    return result.record, result.problems
