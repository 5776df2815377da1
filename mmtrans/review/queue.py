"""What annotators review: the queue of flagged (and spot-checked) records and one record's view.

Pure queries over the store; the web app in `app.py` only turns them into JSON.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..checks import Problem, run_checks
from ..errors import MmtransError
from ..fidelity import recheck
from ..groups import dataset_names
from ..labels import LabelTable, load_tables
from ..records import Mention, Record, locate_mentions
from ..store import ACCEPTED, FLAGGED, QueueQuery, Review, Store, Translation, effective_reviews
from ..store.queue import Cursor, Key
from .agreement import disagreement, votes
from .pairs import Pair, pair_mentions
from .plan import Plan, RowFilter, own_decision, to_do_by
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

    @property
    def cursor(self) -> Cursor:
        return (ACCEPTED if self.status == "accepted" else FLAGGED, self.run_id, self.position)


@dataclass(frozen=True)
class Filters:
    """What the page's filters ask for (None: any)."""

    code: str | None = None
    dataset: str | None = None  # an input file's name
    status: str | None = None  # one of STATES, or DISAGREEMENT
    text: str | None = None  # held by the source or the translation
    annotator: str | None = None  # who has a decision in effect on it


@dataclass
class Page:
    """One page of the queue: its entries, how many the filters keep in all, whether more
    come before and after, and the queue's progress and filter choices."""

    entries: list[Entry]
    total: int
    #: The total is a lower bound: a search found more than SEARCH_CAP and stopped counting.
    more_than_total: bool
    more_before: bool
    more_after: bool
    progress: dict[str, Any]
    codes: list[str]
    datasets: list[str]
    annotators: list[str]
    #: Flagged and failed records in the queue, every filter aside.
    flagged: int

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "entries": [e.to_dict() for e in self.entries]}


#: Entries a page holds unless asked otherwise, and at most.
PAGE = 100
MAX_PAGE = 1000
#: Records a text search finds through the index and counts exactly; a text found in more
#: is looked for row by row, a page at a time, and counted as "over" this.
SEARCH_CAP = 10_000


def _entry_of(row: dict[str, Any], dataset: str, reviews: list[Review]) -> Entry:
    decision = reviews[-1] if reviews else None
    return Entry(row["run_id"], row["record_id"], dataset, row["position"], row["status"],
                 [c for c in row["codes"].split(",") if c], state(decision),
                 decision.annotator if decision else None, disagreement(reviews))


def entry(store: Store, run_id: str, record_id: str) -> Entry | None:
    """One record's queue entry, read alone (a decision updates the page's queue in place
    instead of reading it again)."""
    row = store.queue_row(run_id, record_id)
    if row is None:
        return None
    return _entry_of(row, dataset_names(store).run(store.run(run_id)),
                     store.reviews(run_id, record_id))


def decided_records(store: Store, run_ids: list[str]) -> dict[Key, list[Review]]:
    """Every record with a decision in effect: its effective decisions, oldest first."""
    return {(run_id, record_id): reviews for run_id in run_ids
            for record_id, reviews in store.all_reviews(run_id).items()}


def _by_reviews(decided: dict[Key, list[Review]], filters: Filters
                ) -> tuple[set[Key] | None, set[Key] | None]:
    """The records the review filters keep (None: any), and those they leave out."""
    only: set[Key] | None = None
    without: set[Key] | None = None
    if filters.status == "to review":
        without = set(decided)
    elif filters.status == DISAGREEMENT:
        only = {k for k, reviews in decided.items() if disagreement(reviews)}
    elif filters.status:
        only = {k for k, reviews in decided.items() if state(reviews[-1]) == filters.status}
    if filters.annotator:
        theirs = {k for k, reviews in decided.items()
                  if any(r.annotator == filters.annotator for r in reviews)}
        only = theirs if only is None else only & theirs
    return only, without


def spot_draw(store: Store, run_ids: list[str], share: float) -> set[Key]:
    """The accepted records a spot check of `share` puts in the queue."""
    if share <= 0:
        return set()
    return {(run_id, record_id) for run_id in run_ids
            for record_id in store.queue_ids(run_id, ACCEPTED)
            if spot_checked(run_id, record_id, share)}


def read_queue(store: Store, filters: Filters = Filters(), limit: int = PAGE,
               after: Cursor | None = None, before: Cursor | None = None,
               spot_check: float = 0.0, run_id: str | None = None,
               codes: list[str] | None = None, flagged: int | None = None,
               counted: Callable[[Review], bool] | None = None,
               left_out: Callable[[dict[Key, list[Review]]], set[Key]] | None = None,
               every: dict[Key, list[Review]] | None = None
               ) -> Page:
    """One page of the queue: flagged and failed records first, then the spot-check draw of
    accepted ones, each in input order, filtered on the server (problem code, dataset, review
    state, text, annotator); the page after `after` or before `before` (queue cursors), or
    the first. With `run_id`, that run's records only; `codes`: the queue's problem codes
    and `flagged`: how many flagged records it holds, when the caller knows them (both
    change only with new translations)."""
    rows_of_runs = store.run_rows(run_id)
    names = dataset_names(store)
    runs = {run["id"]: names.run(run) for run in rows_of_runs}
    run_ids = list(runs)
    kept_runs = [r for r in run_ids if not filters.dataset or runs[r] == filters.dataset]
    every = decided_records(store, run_ids) if every is None else every
    # Blind review (`counted`): a page's states and filters are its own decisions only;
    # whether annotators disagree is still read from every decision.
    decided = every if counted is None else {
        k: own for k, reviews in every.items() if (own := [r for r in reviews if counted(r)])}
    spot = spot_draw(store, run_ids, spot_check)
    only, without = _by_reviews(decided, filters)
    if filters.status == DISAGREEMENT:
        only = {k for k, reviews in every.items() if disagreement(reviews)}
    if left_out is not None:  # "mine to do": what the annotator decided or is not given
        without = (without or set()) | left_out(every)
    if filters.text:
        store.index_search()  # the texts of translations stored since the last search
    hits = store.search_hits(filters.text, SEARCH_CAP) if filters.text else None
    text = filters.text if hits is None else None  # too common: looked for row by row
    first = QueueQuery(FLAGGED, kept_runs, filters.code, text, hits, only, without)
    drawn = spot if only is None else spot & only
    second = QueueQuery(ACCEPTED, kept_runs, filters.code, text, hits,
                        drawn - (without or set()))
    limit = max(1, min(limit, MAX_PAGE))
    if before is not None:
        rows = store.queue_rows(second, limit + 1, before=before)
        rows = store.queue_rows(first, limit + 1 - len(rows), before=before) + rows
        more_before, rows = len(rows) > limit, rows[-limit:]
        more_after = True
    else:
        rows = store.queue_rows(first, limit + 1, after=after)
        rows += store.queue_rows(second, limit + 1 - len(rows), after=after)
        more_after, rows = len(rows) > limit, rows[:limit]
        more_before = after is not None
    entries = [_entry_of(row, runs[row["run_id"]], decided.get((row["run_id"],
                                                                row["record_id"]), []))
               for row in rows]
    if counted is not None:
        for e in entries:
            e.disagreement = disagreement(every.get((e.run_id, e.id), []))
    # A text found in more than SEARCH_CAP records is counted that far ("over 10,000").
    cap = SEARCH_CAP if text else None
    if without and only is None:
        # Counting the records left out is cheaper than comparing every row with them.
        kept = replace(first, without=None)
        total = store.queue_count(kept, cap) - store.queue_count(replace(kept, only=without))
    else:
        total = store.queue_count(first, cap)
    total += store.queue_count(second, cap) if second.only else 0
    everything = QueueQuery(FLAGGED, run_ids)
    reviewed = store.queue_count(replace(everything, only=set(decided))) + len(spot & set(decided))
    flagged = store.queue_count(everything) if flagged is None else flagged
    return Page(entries, min(total, cap) if cap else total, bool(cap and total > cap),
                more_before, more_after,
                {"in_queue": flagged + len(spot), "reviewed": reviewed},
                store.queue_codes(run_ids) if codes is None else codes,
                sorted(set(runs.values())),
                sorted({r.annotator for reviews in decided.values() for r in reviews}),
                flagged)


def seen_by(entry: Entry, reviews: list[Review], annotator: str | None,
            adjudicate: bool) -> Entry:
    """The entry as one page of a blind review shows it: an annotator's own decision (or
    the lead's adjudication) as its state, never another annotator's; and, for the lead,
    whether the annotators' versions differ."""
    own = [r for r in reviews if own_decision(r, annotator, adjudicate)]
    decision = own[-1] if own else None
    return replace(entry, state=state(decision),
                   annotator=decision.annotator if decision else None,
                   disagreement=entry.disagreement and adjudicate)


def left_out_of(store: Store, plans: dict[str, Plan], annotator: str,
                datasets: dict[str, str]) -> Callable[[dict[Key, list[Review]]], set[Key]]:
    """The records an annotator's own queue ("mine to do") leaves out, given every
    record's decisions: those they decided, those settled, those another is given."""
    def left_out(every: dict[Key, list[Review]]) -> set[Key]:
        out = {k for k, reviews in every.items() if k[0] in plans and not to_do_by(
            plans[k[0]], annotator, k[0], k[1], datasets[k[0]], reviews)}
        for run_id, plan in plans.items():
            if plan.assign is None:
                continue  # anyone any record: only decisions leave one out
            # Split: a record nobody decided yet is in the queue of those it is given to.
            out |= {(run_id, record_id) for record_id in store.queue_ids(run_id, FLAGGED)
                    if (run_id, record_id) not in every and not to_do_by(
                        plan, annotator, run_id, record_id, datasets[run_id], [])}
        return out
    return left_out


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


#: Edits whose fidelity verdict is kept (a few KB each).
EDIT_VERDICTS_KEPT = 256
_edit_verdicts: OrderedDict[str, list[Problem]] = OrderedDict()
_edit_verdicts_lock = threading.Lock()


def edit_fidelity(config: dict[str, Any], expected: Record, edited: Record) -> list[Problem]:
    """`fidelity.recheck` of an annotator's edit, kept for the server's life by what it
    depends on (the run's fidelity identity, the expected record, the edit): the page asks
    for an edited record's view each time it opens it, and each verdict is an embedding call."""
    key = json.dumps([config.get("fidelity"), config.get("src"), config.get("tgt"),
                      expected.to_dict(), edited.to_dict()], ensure_ascii=False, sort_keys=True)
    with _edit_verdicts_lock:
        if key in _edit_verdicts:
            _edit_verdicts.move_to_end(key)
            return list(_edit_verdicts[key])
    found = recheck(config, expected, edited)
    if found is None:  # its endpoint is down: not checked, asked again next time
        return []
    with _edit_verdicts_lock:
        _edit_verdicts[key] = found
        while len(_edit_verdicts) > EDIT_VERDICTS_KEPT:
            _edit_verdicts.popitem(last=False)
    return list(found)


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
        found = checked.problems + edit_fidelity(store.run_config(run_id), expected,
                                                 checked.record)
        target, problems = checked.record, [p.to_dict() for p in found]
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
    # The run's fidelity check too: an edit does not make a drift go away.
    return result.record, result.problems + edit_fidelity(store.run_config(run_id), expected,
                                                          result.record)
