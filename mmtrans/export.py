"""Write a run's translated records back out, in the input's format or another."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import formats
from .records import Record, locate_mentions
from .scripts import is_spaced
from .store import Store


@dataclass
class ExportResult:
    path: str
    format: str
    written: int
    skipped: int


def exportable(store: Store, run_id: str, include_flagged: bool = False,
               include_overridden: bool = False) -> Iterator[Record]:
    """The current target record of every record of the run, in input order.

    A reviewer's latest decision wins: accepted records are written as the version the
    reviewer saw (the translation, not a later attempt; or the edit accepted), edited ones
    as edited, rejected ones not at all. A
    record kept with open problems (accepted or saved with a reason) is written only with
    `include_overridden`, and never when a mention has no place in its text (a broken
    span). Unreviewed records are written when the checks accepted them, and flagged ones
    too when asked (a reply that never parsed has nothing to write)."""
    wanted = {"accepted", "flagged"} if include_flagged else {"accepted"}
    spaced = is_spaced(store.run(run_id)["tgt"])
    latest = store.latest_translations(run_id)
    decisions = store.decisions(run_id)
    for source in store.records(run_id):
        t = latest.get(source.id)
        decision = decisions.get(source.id)
        if decision is not None:
            chosen = None
            if decision.record is not None:
                chosen = decision.record  # an edit, or the edit an accept endorsed
            elif decision.decision == "accept":
                judged = store.translation(decision.translation_id) \
                    if decision.translation_id is not None else t
                chosen = judged.target if judged is not None else None
            if chosen is None:
                continue
            if decision.reason and (not include_overridden or any(
                    m.start is None for m in locate_mentions(chosen, spaced).mentions)):
                continue
            yield chosen
        elif t is not None and t.status in wanted and t.target is not None:
            yield t.target


def export(
    db_path: str | Path,
    out: str | Path,
    fmt: str | None = None,
    run_id: str | None = None,
    include_flagged: bool = False,
    include_overridden: bool = False,
) -> ExportResult:
    with Store(db_path, create=False) as store:
        run_id = store.resolve_run(run_id)
        run = store.run(run_id)
        fmt = fmt or run["format"]
        total = store.record_count(run_id)
        chosen = list(exportable(store, run_id, include_flagged, include_overridden))
        formats.write(chosen, out, fmt)  # counts items, which for uniner are not records
        return ExportResult(str(out), fmt, len(chosen), total - len(chosen))
