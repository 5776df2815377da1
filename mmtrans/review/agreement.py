"""How far annotators agree: each one's verdict per record, disagreements, and per pair of
annotators the raw agreement and Cohen's kappa on the records both decided.

A verdict is an annotator's latest decision in effect on a record. Two accepts agree, two
rejects agree, and two edits agree when they saved the same record (text, labels, strings);
accepting someone's edit is that edit's verdict:
an edit is a category of its own per distinct result, so kappa counts different fixes of the
same record as a disagreement. Adjudicated decisions are nobody's vote: they settle.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from ..store import Review, Store, votes


def verdict(review: Review) -> str:
    """What a decision says, comparable across annotators (`Review.verdict`)."""
    return review.verdict()


def disagreement(reviews: list[Review]) -> bool:
    """Annotators' verdicts differ and no adjudication came after the last of them."""
    if reviews and reviews[-1].adjudicated:
        return False
    return len({verdict(r) for r in votes(reviews).values()}) > 1


@dataclass
class PairAgreement:
    a: str
    b: str
    records: int  # decided by both
    agreement: float | None  # share of those with the same verdict
    kappa: float | None  # Cohen's: agreement beyond what each one's verdict rates explain

    def to_dict(self) -> dict[str, Any]:
        return vars(self)


def cohen_kappa(pairs: list[tuple[str, str]]) -> tuple[float | None, float | None]:
    """(raw agreement, Cohen's kappa) over (a's verdict, b's verdict) pairs; None where
    undefined (no pairs; kappa when chance agreement is already 1)."""
    if not pairs:
        return None, None
    n = len(pairs)
    observed = sum(x == y for x, y in pairs) / n
    a, b = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    chance = sum(a[c] * b[c] for c in a) / (n * n)
    kappa = None if chance == 1 else (observed - chance) / (1 - chance)
    return observed, kappa


def agreement(all_reviews: dict[str, list[Review]]) -> list[PairAgreement]:
    """Per pair of annotators (by name), on the records both decided."""
    by_record = {record_id: {name: verdict(r) for name, r in votes(reviews).items()}
                 for record_id, reviews in all_reviews.items()}
    names = sorted({name for v in by_record.values() for name in v})
    out = []
    for a, b in combinations(names, 2):
        both = [(v[a], v[b]) for v in by_record.values() if a in v and b in v]
        raw, kappa = cohen_kappa(both)
        out.append(PairAgreement(a, b, len(both), raw, kappa))
    return out


def run_agreement(store: Store, run_id: str) -> list[PairAgreement]:
    return agreement(store.all_reviews(run_id))


def team_figures(store: Store, run_id: str) -> dict[str, Any]:
    """What `mmtrans status` adds for a team: open disagreements and agreement per pair."""
    reviews = store.all_reviews(run_id)
    return {"disagreements": sum(disagreement(r) for r in reviews.values()),
            "agreement": [p.to_dict() for p in agreement(reviews)]}


def agreement_line(pair: dict[str, Any]) -> str:
    """`12 records both decided, agreement 0.83, kappa 0.71` (n/a where undefined)."""
    def figure(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    return (f"{pair['records']} records both decided, agreement {figure(pair['agreement'])}, "
            f"kappa {figure(pair['kappa'])}")
