"""What annotators review: the queue of flagged (and spot-checked) records and one record's view.

Pure queries over the store; the web app in `app.py` only turns them into JSON.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from ..checks import Problem, run_checks
from ..errors import MmtransError
from ..groups import dataset_names
from ..labels import LabelTable, load_tables
from ..records import Mention, Record, locate_mentions
from ..store import Review, Store, Translation, effective_reviews
from .agreement import disagreement, votes
from .pairs import Pair, pair_mentions
from .plan import Plan, RowFilter, to_do_by
from .view import StructureError, check_text_label, parse_structures, structure_view

STATES = ("to review", "accepted", "edited", "rejected")
#: A status filter beside the states: records whose annotators' verdicts differ.
DISAGREEMENT = "disagreement"
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
    disagreement: bool = False

    def to_dict(self) -> dict[str, Any]:
        return vars(self)

    def shown(self, code: str | None, status: str | None) -> bool:
        """Whether the queue's filters (problem code, state or disagreement) keep it."""
        if code and code not in self.codes:
            return False
        if status == DISAGREEMENT:
            return self.disagreement
        return not status or self.state == status


def _entry(run_id: str, record_id: str, dataset: str, position: int, t: Translation,
           reviews: list[Review]) -> Entry:
    decision = reviews[-1] if reviews else None
    return Entry(run_id, record_id, dataset, position, t.status,
                 sorted({p["code"] for p in t.problems}), state(decision),
                 decision.annotator if decision else None, disagreement(reviews))


def entry(store: Store, run_id: str, record_id: str) -> Entry | None:
    """One record's queue entry, read alone (a decision updates the page's queue in place
    instead of rebuilding it)."""
    t = store.latest_translation(run_id, record_id)
    if t is None:
        return None
    run = store.run(run_id)
    position = store.position(run_id, record_id) or 0
    return _entry(run_id, record_id, dataset_names(store).run(run), position,
                  t, store.reviews(run_id, record_id))


def queue(store: Store, code: str | None = None, dataset: str | None = None,
          status: str | None = None, spot_check: float = 0.0,
          run_id: str | None = None) -> list[Entry]:
    """Flagged and failed records first, then the spot-check draw of accepted ones; each in
    input order, filtered by problem code, dataset (`datasets.DatasetNames.run`) and review
    state. With `run_id`, that run's records only."""
    first: list[Entry] = []
    spot: list[Entry] = []
    names = dataset_names(store)
    for run in store.run_rows(run_id):
        run_id, name = run["id"], names.run(run)
        if dataset and dataset != name:
            continue
        latest = store.latest_translations(run_id)
        reviews = store.all_reviews(run_id)
        positions = store.positions(run_id)
        for record_id, t in latest.items():
            if t.status == "accepted" and not spot_checked(run_id, record_id, spot_check):
                continue
            e = _entry(run_id, record_id, name, positions.get(record_id, 0), t,
                       reviews.get(record_id, []))
            if e.shown(code, status):
                (spot if t.status == "accepted" else first).append(e)
    first.sort(key=lambda e: (e.run_id, e.position))
    spot.sort(key=lambda e: (e.run_id, e.position))
    return first + spot


def seen_by(entry: Entry, reviews: list[Review], annotator: str | None,
            adjudicate: bool) -> Entry:
    """The entry as one page of a blind review shows it: an annotator's own decision (or
    the lead's adjudication) as its state, never another annotator's; and, for the lead,
    whether the annotators' versions differ."""
    own = [r for r in reviews if (r.adjudicated if adjudicate else
                                  r.annotator == annotator and not r.adjudicated)]
    decision = own[-1] if own else None
    return replace(entry, state=state(decision),
                   annotator=decision.annotator if decision else None,
                   disagreement=entry.disagreement and adjudicate)


def to_do(entries: list[Entry], reviews: dict[tuple[str, str], list[Review]],
          plans: dict[str, Plan], annotator: str) -> list[Entry]:
    """The annotator's own queue of work ("mine to do"): records assigned to them (or to
    anyone) that they have not decided; never one they decided, blind or shared."""
    return [e for e in entries
            if to_do_by(plans[e.run_id], annotator, e.run_id, e.id, e.dataset,
                        reviews.get((e.run_id, e.id), []))]


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
        labels = [t.label for t in translation.target.mentions]
        return replace(source, label=translation.target.label,
                       mentions=[replace(m, label=labels[i] if i < len(labels) else m.label)
                                 for i, m in enumerate(source.mentions)])
    return source


def target_labels(run: dict[str, Any], expected: Record) -> list[str]:
    """The labels an annotator may give a mention: the record's own expected ones first, then
    every other label the run's tables translate to (never a free-text label)."""
    table = _table(run)
    known = sorted(set(table.mapping.values())) if table is not None else []
    return list(dict.fromkeys([m.label for m in expected.mentions] + known))


def effective_edit(store: Store, run_id: str, record_id: str,
                   counted: RowFilter | None = None) -> Record | None:
    """The saved edit in effect on a record (what the page shows and accepting keeps);
    `counted`: the review rows that count for this page (blind: the annotator's own)."""
    rows = store.review_rows(run_id, record_id)
    reviews = effective_reviews([r for r in rows if counted is None or counted(r)])
    return reviews[-1].record if reviews else None


def record_view(store: Store, run_id: str, record_id: str, counted: RowFilter | None = None,
                with_votes: bool = True) -> dict[str, Any]:
    """Everything the page shows of one record. `counted` picks the review rows shown as
    its decisions (blind review: the annotator's own, never another's edit); `with_votes`
    says whether every annotator's version comes beside them (adjudication)."""
    run = store.run(run_id)
    source = locate_mentions(store.record(run_id, record_id))
    t = store.latest_translation(run_id, record_id)
    raw = None
    if t is not None and t.request_key:
        cached = store.cached_response(t.request_key)
        raw = cached["response"] if cached else None
    every = effective_reviews(store.review_rows(run_id, record_id))
    rows = [r for r in store.review_rows(run_id, record_id) if counted is None or counted(r)]
    reviews = effective_reviews(rows)
    expected = expected_record(run, source, t)
    target = t.target if t and t.target else None
    problems = t.problems if t else []
    version = "translation"
    if reviews and (edit := reviews[-1].record) is not None:
        # The record's effective version is the saved edit: shown, checked and edited anew.
        last = reviews[-1]
        version = f"{'edited' if last.decision == 'edit' else 'edit accepted'} by {last.annotator}"
        checked = run_checks(expected, edit, run["src"], run["tgt"])
        target, problems = checked.record, [p.to_dict() for p in checked.problems]
    expected_labels = [m.label for m in expected.mentions]
    pairs = pair_mentions(source.mentions, source.text, expected_labels, target.mentions,
                          target.text) if target else \
        [Pair(i, None) for i in range(len(source.mentions))]
    return {
        "run_id": run_id, "id": record_id, "dataset": dataset_names(store).run(run),
        "src": run["src"], "tgt": run["tgt"],
        "source": source.to_dict(), "expected_labels": expected_labels,
        "expected_label": expected.label, "labels": target_labels(run, expected),
        "target": target.to_dict() if target else None, "version": version,
        "pairs": [p.to_dict() for p in pairs],
        "status": t.status if t else "pending", "attempt": t.attempt if t else None,
        "problems": problems, "notes": t.notes if t else [], "raw": raw,
        "reviews": [r.to_dict() for r in reviews],
        "votes": [_vote(store, run, expected, r) for r in votes(every).values()]
        if with_votes else [],
        "disagreement": disagreement(every) if with_votes else False,
        "state": state(reviews[-1] if reviews else None),
        "seen": rows[-1]["id"] if rows else 0,
        **structure_view(source, expected, target, run["src"], run["tgt"],
                         target_labels(run, expected)),
    }


def _vote(store: Store, run: dict[str, Any], expected: Record, review: Review) -> dict[str, Any]:
    """One annotator's version of the record, as adjudication shows it side by side."""
    record = review.record
    if record is None and review.decision == "accept" and review.translation_id is not None:
        judged = store.translation(review.translation_id)
        record = judged.target if judged else None
    if record is not None:
        record = run_checks(expected, record, run["src"], run["tgt"]).record
    return {**review.to_dict(), "record": record.to_dict() if record else None}


def _span(m: dict[str, Any], text: str) -> tuple[int | None, int | None]:
    """A mention's offsets when they hold its string (a selection made in the page), else
    none: the checks then find the string themselves."""
    start, end = m.get("start"), m.get("end")
    if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text) \
            and text[start:end] == m["text"]:
        return start, end
    return None, None


def parse_edit(data: Any, base: Record, labels: list[str] | None = None) -> Record:
    """An edited record from the page -> Record, or EditError saying what is wrong. With
    `labels`, a mention's label must be one of them."""
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
        if labels is not None and m["label"].strip() not in labels:
            raise EditError(f"mentions[{i}]: {m['label'].strip()!r} is not a label of this "
                            f"run's tables")
        parsed.append(Mention(m["label"].strip(), m["text"], *_span(m, text)))
    label = data.get("label", base.label)
    if label is not None and not isinstance(label, str):
        raise EditError("'label' must be a string")
    try:
        check_text_label(label or None, labels)
        return parse_structures(data, replace(base, text=text, label=label or None,
                                              mentions=parsed), labels)
    except StructureError as e:
        raise EditError(str(e)) from None


def check_edit(store: Store, run_id: str, record_id: str, data: Any) -> tuple[Record,
                                                                               list[Problem]]:
    """Parse an edit and run every check on it, as on a model's answer."""
    run = store.run(run_id)
    t = store.latest_translation(run_id, record_id)
    expected = expected_record(run, store.record(run_id, record_id), t)
    base = t.target if t is not None and t.target is not None else expected
    labels = target_labels(run, expected) if _table(run) is not None else None
    edited = parse_edit(data, base, labels)
    result = run_checks(expected, edited, run["src"], run["tgt"])
    return result.record, result.problems
