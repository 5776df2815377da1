"""How a team shares a run's records: how many annotators decide each record (`overlap`),
who gets which records (`assign`), what one annotator is shown of the others' work, and how
far along each record is.

With an overlap of 1 (the default) the team shares one queue: the latest decision is the
record's, and deciding over someone else's decision is asked first. With N > 1 each record
goes to N annotators who decide blind: each sees the model's translation and their own
decisions only, never another annotator's edit, verdict or comment, and is never asked
about them; the record is done when N decided alike, disputed when they did not, and the
lead's adjudication settles it.

An assignment is kept in the store as {"shares": {name: weight}} or {"datasets": {name:
[dataset, ...]}}. Each record's N annotators are drawn from its candidates by weighted
rendezvous hashing (the same draw on every server, no table of assignments): a record's
candidates are the annotators named for its dataset (or every annotator with a share).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from ..errors import ConfigError
from ..store import Review, Store, settled, votes

#: A predicate over review rows: the rows that count for what one page is shown.
RowFilter = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Plan:
    """A run's review plan, as the store keeps it."""

    overlap: int = 1
    assign: dict[str, Any] | None = None

    @property
    def blind(self) -> bool:
        return self.overlap > 1

    @classmethod
    def of(cls, store: Store, run_id: str) -> Plan:
        plan = store.review_plan(run_id)
        return cls(plan["overlap"], plan["assign"])


def parse_overlap(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= 20:
        raise ConfigError(f"--overlap takes 1 to 20 annotators a record, not {value}")
    return value


def parse_assign(value: str | None) -> dict[str, Any] | None:
    """`--assign`: `all` (None: anyone any record), shares `aiko=2,ben=1` (or `aiko=60%`),
    or datasets `aiko=ner.json,ben=re.json` (a name may come back for a second dataset)."""
    if not value or value.strip() == "all":
        return None
    pairs: list[tuple[str, str]] = []
    for part in value.split(","):
        name, sep, what = (x.strip() for x in part.partition("="))
        if not sep or not name or not what:
            raise ConfigError(f"--assign takes NAME=SHARE or NAME=DATASET pairs separated "
                              f"by commas, not {part.strip()!r}")
        pairs.append((name, what))
    shares = {name: _share(what) for name, what in pairs if _share(what) is not None}
    if shares and len(shares) != len(pairs):
        raise ConfigError("--assign gives either a share to every name or a dataset to "
                          "every name, not both")
    if shares:
        if any(w <= 0 for w in shares.values()):
            raise ConfigError("--assign: every share must be more than 0")
        return {"shares": shares}
    datasets: dict[str, list[str]] = {}
    for name, what in pairs:
        datasets.setdefault(name, []).append(what)
    return {"datasets": datasets}


def _share(value: str) -> float | None:
    try:
        return float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        return None


def _draw(run_id: str, record_id: str, name: str, weight: float) -> float:
    """Weighted rendezvous score: the N lowest of a record's candidates get it."""
    digest = hashlib.sha256(f"{run_id}\0{record_id}\0{name}".encode()).digest()
    u = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 1)
    return -math.log(u) / weight


def assignees(plan: Plan, run_id: str, record_id: str, dataset: str) -> list[str] | None:
    """The annotators a record is assigned to (None: anyone may take it)."""
    if plan.assign is None:
        return None
    if "shares" in plan.assign:
        candidates: dict[str, float] = plan.assign["shares"]
    else:
        named = [n for n, sets in plan.assign["datasets"].items() if dataset in sets]
        if not named:
            return None  # a dataset nobody was named for is everyone's
        candidates = dict.fromkeys(named, 1.0)
    ranked = sorted(candidates, key=lambda n: _draw(run_id, record_id, n, candidates[n]))
    return ranked[:plan.overlap]


def own_decision(review: Review, viewer: str | None, adjudicate: bool) -> bool:
    """Whether a blind page counts the decision as its own: the annotator's own (never an
    adjudication), or, for the lead, an adjudication."""
    return review.adjudicated if adjudicate else \
        review.annotator == viewer and not review.adjudicated


def rows_for(plan: Plan, annotator: str | None, adjudicate: bool) -> RowFilter | None:
    """Which review rows a page is shown as the record's decisions (None: all of them).
    Blind, an annotator sees their own rows only; the lead sees the adjudications (every
    annotator's version comes beside them, as votes)."""
    if not plan.blind:
        return None
    if adjudicate:
        return lambda row: bool(row.get("adjudicated")) or row["decision"] == "undo"
    return lambda row: row["annotator"] == annotator and not row.get("adjudicated")


def record_progress(plan: Plan, reviews: list[Review]) -> dict[str, Any]:
    """How far a record is: `decided` annotators of `needed`, and its state (`0/2`, `1/2`,
    `done`, `disputed`; `adjudicated` once the lead settled it)."""
    cast = votes(reviews)
    needed = plan.overlap
    if any(r.adjudicated for r in reviews):
        label = "adjudicated"
    elif len(cast) < needed:
        label = f"{len(cast)}/{needed}"
    else:
        label = "done" if settled(reviews, needed) is not None else "disputed"
    return {"decided": len(cast), "needed": needed, "label": label,
            "agreement": record_agreement(reviews)}


def record_agreement(reviews: list[Review]) -> float | None:
    """The share of pairs of a record's annotators who decided it alike (None: fewer than
    two decided)."""
    cast = [r.verdict() for r in votes(reviews).values()]
    pairs = list(combinations(cast, 2))
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else None


def to_do_by(plan: Plan, annotator: str, run_id: str, record_id: str, dataset: str,
             reviews: list[Review]) -> bool:
    """Whether the record is in the annotator's own queue of work: assigned to them (or to
    anyone while fewer than N decided it), and not decided by them yet."""
    cast = votes(reviews)
    if annotator in cast or any(r.adjudicated for r in reviews):
        return False
    assigned = assignees(plan, run_id, record_id, dataset)
    if assigned is None:
        return len(cast) < plan.overlap
    return annotator in assigned


def annotator_progress(plans: dict[str, Plan],
                       entries: list[tuple[str, str, str, list[Review]]],
                       ) -> dict[str, dict[str, int]]:
    """Per annotator: records of the queue decided, and (with an assignment) assigned.
    `plans`: each run's; `entries`: (run, record, dataset, reviews) of the queue."""
    out: dict[str, dict[str, int]] = {}
    for run_id, record_id, dataset, reviews in entries:
        for name in votes(reviews):
            out.setdefault(name, {"decided": 0, "assigned": 0})["decided"] += 1
        for name in assignees(plans[run_id], run_id, record_id, dataset) or []:
            out.setdefault(name, {"decided": 0, "assigned": 0})["assigned"] += 1
    return dict(sorted(out.items()))
