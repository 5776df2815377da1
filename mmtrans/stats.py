"""`mmtrans stats`: what each dataset kept in each language, and why the rest was not.

Per dataset and language: items read (records + unreadable items), translations accepted,
flagged, failed, repaired (accepted at a repair turn), reviewer decisions, kept (what export
writes) with its share of what was read, and the problems of records not accepted, by code.
The MMM paper reports kept samples per sub-dataset and language; this is that table.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import MmtransError
from .export import exportable
from .files import atomic_write, writing
from .groups import chosen_runs, dataset_names, open_store

COLUMNS = ("dataset", "language", "read", "accepted", "flagged", "failed", "pending",
           "repaired", "review_accepted", "review_edited", "review_rejected", "kept", "kept_pct")


@dataclass
class Row:
    dataset: str
    language: str
    read: int = 0
    accepted: int = 0
    flagged: int = 0
    failed: int = 0
    pending: int = 0
    repaired: int = 0
    review_accepted: int = 0
    review_edited: int = 0
    review_rejected: int = 0
    kept: int = 0
    problems: Counter[str] = field(default_factory=Counter)

    @property
    def kept_pct(self) -> float:
        return round(100 * self.kept / self.read, 1) if self.read else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": dict(self.problems.most_common()),
                "kept_pct": self.kept_pct}


@dataclass
class Stats:
    rows: list[Row]

    @property
    def total(self) -> Row:
        total = Row("all", "all")
        for row in self.rows:
            for name in COLUMNS[2:-1]:
                setattr(total, name, getattr(total, name) + getattr(row, name))
            total.problems.update(row.problems)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows], "total": self.total.to_dict()}

    def markdown(self) -> str:
        """The table as GitHub Markdown, then the problems by code."""
        head = "| " + " | ".join(COLUMNS) + " |"
        lines = [head, "|" + "|".join("---" for _ in COLUMNS) + "|"]
        for row in [*self.rows, self.total]:
            values = row.to_dict()
            lines.append("| " + " | ".join(str(values[c]) for c in COLUMNS) + " |")
        problems = self.total.problems
        if problems:
            lines += ["", "| problem | records |", "|---|---|"]
            lines += [f"| {code} | {n} |" for code, n in problems.most_common()]
        return "\n".join(lines) + "\n"


def stats(db_path: str | Path, run_id: str | None = None) -> Stats:
    """The statistics of the named run, or of the latest run of every input and language."""
    with open_store(db_path) as store:
        rows: dict[tuple[str, str], Row] = {}
        names = dataset_names(store)
        for run in chosen_runs(store, run_id):
            rid, lang = run["id"], run["tgt"]

            def row(dataset: str, lang: str = lang) -> Row:
                return rows.setdefault((dataset, lang), Row(dataset, lang))

            latest = store.latest_translations(rid)
            decisions = store.decisions(rid)
            for record in store.records(rid):
                r = row(names.record(run, record.id))
                r.read += 1
                t = latest.get(record.id)
                if t is None:
                    r.pending += 1
                    continue
                setattr(r, t.status, getattr(r, t.status) + 1)
                r.repaired += t.status == "accepted" and t.attempt > 0
                if t.status != "accepted":
                    r.problems.update({p["code"] for p in t.problems})
                decision = decisions.get(record.id)
                if decision is not None:
                    name = {"accept": "review_accepted", "edit": "review_edited",
                            "reject": "review_rejected"}.get(decision.decision)
                    if name:
                        setattr(r, name, getattr(r, name) + 1)
            for reject in store.reject_rows(rid):
                row(names.reject(run, reject["path"])).read += 1
            for record in exportable(store, rid):
                row(names.record(run, record.id)).kept += 1
        return Stats(sorted(rows.values(), key=lambda r: (r.dataset, r.language)))


def plot(result: Stats, path: str | Path, force: bool = True) -> Path:
    """A PNG: kept % per dataset and language, and problems by code (an existing file is
    replaced only with `force`)."""
    try:
        import matplotlib
    except ImportError:
        raise MmtransError("plots need matplotlib: pip install 'mmtrans[train]'") from None
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (kept, problems) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    names = [f"{r.dataset}\n{r.language}" for r in result.rows]
    bars = kept.bar(names, [r.kept_pct for r in result.rows], color="#4c72b0")
    kept.bar_label(bars, fmt="%.1f%%")
    kept.set_ylim(0, 105)
    kept.set_ylabel("kept %")
    kept.set_title("kept records per dataset and language")
    codes = result.total.problems.most_common()
    if codes:
        problems.barh([c for c, _ in codes][::-1], [n for _, n in codes][::-1], color="#dd8452")
        problems.set_xlabel("records")
        problems.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        problems.text(0.5, 0.5, "no problems", ha="center", va="center")
        problems.set_axis_off()
    problems.set_title("problems by code (records not accepted)")
    path = Path(path)
    try:
        with writing(force), atomic_write(path, binary=True) as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path
