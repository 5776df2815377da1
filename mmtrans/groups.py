"""Which runs a report or a training export covers, and which dataset and language a record
belongs to.

A dataset is an input file (or, for a uie folder, one sub-folder of it), named by its path
below the folder the store's inputs share (`NER/train.json`: see `datasets`); a language is
the run's target language. A store may hold several runs of one input (another model, another
prompt): unless a run is named, each (input, target language) is covered by its latest run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .datasets import DatasetNames, output_stem
from .errors import MmtransError
from .export import exportable
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


def dataset_names(store: Store) -> DatasetNames:
    """How the store's datasets are named: by their paths below the folder its inputs share."""
    return DatasetNames.of(store.run_rows())


@dataclass
class Group:
    """The kept records of one dataset in one language, and where they came from."""

    dataset: str
    language: str
    run: dict[str, Any]
    records: list[Record]

    @property
    def name(self) -> str:
        """`<dataset path without suffix>.<language>` (`NER/train.en`): the path, below an
        export's folder, of every file written for this group."""
        return output_stem(self.dataset, self.language)


def kept_groups(store: Store, run_id: str | None = None,
                include_flagged: bool = False) -> Iterator[Group]:
    """The records an export writes (reviewers' decisions applied), by dataset and language."""
    names = dataset_names(store)
    for run in chosen_runs(store, run_id):
        groups: dict[str, Group] = {}
        for record in exportable(store, run["id"], include_flagged):
            dataset = names.record(run, record.id)
            groups.setdefault(dataset, Group(dataset, run["tgt"], run, [])).records.append(record)
        yield from groups.values()


class OutputPaths:
    """The files one export writes, each claimed once: two datasets never share a file
    (nothing of one export overwrites another part of it)."""

    def __init__(self) -> None:
        self._owner: dict[str, str] = {}

    def claim(self, path: Path, dataset: str) -> Path:
        owner = self._owner.setdefault(str(path), dataset)
        if owner != dataset:
            raise MmtransError(f"{path}: datasets {owner} and {dataset} would both be written "
                               "here; export them with --run, one at a time")
        return path


def open_store(db_path: str | Path) -> Store:
    """An existing store (a missing one is an error, not a new empty file)."""
    return Store(db_path, create=False)
