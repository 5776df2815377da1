"""Which runs a report or a training export covers, and which dataset and language a record
belongs to.

A dataset is an input file (or, for a uie folder, one sub-folder of it); a language is the
run's target language. A store may hold several runs of one input (another model, another
prompt): unless a run is named, each (input, target language) is covered by its latest run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import MmtransError
from .export import exportable
from .formats import uie
from .records import Record
from .store import Store


def _runs(store: Store) -> list[dict[str, Any]]:
    """Every run row, least recently used first."""
    return [store.run(r["id"]) for r in reversed(store.runs())]


def chosen_runs(store: Store, run_id: str | None = None) -> list[dict[str, Any]]:
    """The named run (a unique prefix will do), or the run last used of every (input,
    target language) in the store."""
    if run_id is not None:
        return [store.run(store.resolve_run(run_id))]
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for run in _runs(store):
        latest[(run["input_path"], run["tgt"])] = run
    if not latest:
        raise MmtransError(f"{store.path}: holds no run yet")
    return list(latest.values())


def dataset_of(run: dict[str, Any], record_id: str) -> str:
    """The input file's name, or for a uie folder the sub-folder the record came from."""
    if run["format"] == uie.NAME:
        return record_id.rsplit(":", 1)[0].split("/")[0]
    return Path(run["input_path"]).name


def reject_dataset(run: dict[str, Any], path: str) -> str:
    if run["format"] == uie.NAME:
        try:
            return Path(path).resolve().relative_to(Path(run["input_path"])).parts[0]
        except (ValueError, IndexError):
            return Path(path).parent.name
    return Path(run["input_path"]).name


@dataclass
class Group:
    """The kept records of one dataset in one language, and where they came from."""

    dataset: str
    language: str
    run: dict[str, Any]
    records: list[Record]

    @property
    def name(self) -> str:
        """`<dataset stem>.<language>`: the stem of every file written for this group."""
        return f"{Path(self.dataset).stem}.{self.language}"


def kept_groups(store: Store, run_id: str | None = None,
                include_flagged: bool = False) -> Iterator[Group]:
    """The records an export writes (reviewers' decisions applied), by dataset and language."""
    for run in chosen_runs(store, run_id):
        groups: dict[str, Group] = {}
        for record in exportable(store, run["id"], include_flagged):
            dataset = dataset_of(run, record.id)
            groups.setdefault(dataset, Group(dataset, run["tgt"], run, [])).records.append(record)
        yield from groups.values()


def open_store(db_path: str | Path) -> Store:
    """An existing store (a missing one is an error, not a new empty file)."""
    return Store(db_path, create=False)
