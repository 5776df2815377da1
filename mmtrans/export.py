"""Write a run's translated records back out, in the input's format or another."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import formats
from .errors import MmtransError
from .files import check_folder, check_target, write_json_values, writing
from .formats import uie
from .records import Record, locate_mentions
from .scripts import is_spaced
from .store import Store
from .unplaced import OFFSET_FORMATS, side_line, side_path, unplaced


@dataclass
class ExportResult:
    path: str
    format: str
    written: int
    skipped: int
    #: Records left out, by reason (see SKIP_REASONS).
    reasons: dict[str, int] = field(default_factory=dict)
    #: Records with a string that has no place in the text, written to `unplaced_path`
    #: instead of the main file (formats with offsets only; see `unplaced`).
    unplaced: int = 0
    unplaced_path: str | None = None


def exportable(store: Store, run_id: str, include_flagged: bool = False,
               include_overridden: bool = False) -> Iterator[Record]:
    """The current target record of every record of the run that is exported, in input
    order (see `choices`)."""
    for record, _ in choices(store, run_id, include_flagged, include_overridden):
        if record is not None:
            yield record


def choices(store: Store, run_id: str, include_flagged: bool = False,
            include_overridden: bool = False) -> Iterator[tuple[Record | None, str]]:
    """Every record of the run, in input order: (its target record, "exported"), or (None,
    why it is left out: one of SKIP_REASONS).

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
                yield None, "rejected" if decision.decision == "reject" else "unparsed"
            elif decision.reason and not include_overridden:
                yield None, "overridden"
            elif decision.reason and any(
                    m.start is None for m in locate_mentions(chosen, spaced).mentions):
                yield None, "broken span"
            else:
                yield chosen, "exported"
        elif t is None:
            yield None, "pending"
        elif t.status not in wanted:
            yield None, t.status  # flagged (without --include-flagged) or failed
        elif t.target is None:
            yield None, "unparsed"
        else:
            yield t.target, "exported"


#: Why a record is not exported, in the order a summary lists them, with what to do.
SKIP_REASONS = {
    "flagged": "flagged by the checks (review them, or pass --include-flagged)",
    "failed": "failed (run translate again to retry them)",
    "pending": "pending: not translated yet (run translate again)",
    "rejected": "rejected by a reviewer",
    "overridden": "kept by a reviewer with open problems (pass --include-overridden)",
    "broken span": "kept by a reviewer with a mention not in the text",
    "unparsed": "with no readable reply to write",
}


def export(
    db_path: str | Path,
    out: str | Path,
    fmt: str | None = None,
    run_id: str | None = None,
    include_flagged: bool = False,
    include_overridden: bool = False,
    force: bool = False,
) -> ExportResult:
    """Write the run's exported records to `out`. Refuses (OutputError) the run's input,
    always, and an existing file unless `force`; nothing partial is left on a failure. In a
    format with offsets, a record with a string that has no place in its text goes to the
    side file `unplaced.side_path(out)` instead, so no offset is ever null."""
    with Store(db_path, create=False) as store:
        run_id = store.resolve_run(run_id)
        run = store.run(run_id)
        fmt = fmt or run["format"]
        chosen: list[Record] = []
        skipped: Counter[str] = Counter()
        for record, reason in choices(store, run_id, include_flagged, include_overridden):
            if record is None:
                skipped[reason] += 1
            else:
                chosen.append(record)
    placed, aside = _set_aside_unplaced(chosen, fmt)
    side = side_path(out) if aside else None
    with writing(force, protected=[run["input_path"]]):
        if fmt == uie.NAME:  # a folder of split files
            check_folder(out, force)
        if side is not None:
            check_target(side)  # before the main file, so a refusal leaves nothing written
        formats.write(placed, out, fmt)  # counts items, which for uniner are not records
        if side is not None:
            module = formats.get(fmt)
            write_json_values((side_line(r, module.to_item(r), where) for r, where in aside),
                              side)
    return ExportResult(str(out), fmt, len(placed), sum(skipped.values()),
                        {r: skipped[r] for r in SKIP_REASONS if skipped[r]}, len(aside),
                        str(side) if side is not None else None)


def _set_aside_unplaced(records: list[Record], fmt: str
                        ) -> tuple[list[Record], list[tuple[Record, list[dict[str, str]]]]]:
    """(the records every offset of which is an integer, the others with what has no place).
    Formats without offsets keep every record."""
    prefixes = OFFSET_FORMATS.get(fmt)
    if prefixes is None:
        return records, []
    placed, aside = [], []
    for record in records:
        where = unplaced(record, prefixes)
        if where:
            aside.append((record, where))
        else:
            placed.append(record)
    return placed, aside


TRAINING_KINDS = ("oiellm", "iepile-instruction", "hf")


def export_as(db_path: str | Path, out_dir: str | Path, kind: str, run_id: str | None = None,
              include_flagged: bool = False, force: bool = False, *,
              split_num: int | None = None, hard_negatives: str | Path | None = None,
              neg_ratio: float = 1.0, seed: int = 0,
              sizes: tuple[int | None, dict[str, int]] = (None, {}),
              test_form: bool = False) -> list[Any]:
    """`export --as KIND`: training files in the folder `out_dir`, one per dataset and
    language. A folder holding files is refused unless `force`; no file of a run's input is
    ever replaced."""
    from .hf import export_hf
    from .oiellm import export_oiellm
    from .schema_batches import export_iepile_instructions

    if kind not in TRAINING_KINDS:
        raise MmtransError(f"--as {kind}: expected {', '.join(TRAINING_KINDS)}")
    check_folder(out_dir, force)
    with Store(db_path, create=False) as store:
        inputs = [r["input"] for r in store.runs()]
    with writing(force, protected=inputs):
        if kind == "oiellm":
            return export_oiellm(db_path, out_dir, run_id, include_flagged)
        if kind == "iepile-instruction":
            return export_iepile_instructions(db_path, out_dir, run_id, include_flagged,
                                              split_num, hard_negatives, neg_ratio, seed,
                                              test_form)
        return export_hf(db_path, out_dir, run_id, include_flagged, sizes, seed)
