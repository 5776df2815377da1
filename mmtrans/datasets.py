"""A dataset's name: its input's path relative to the common folder of a store's inputs.

IEPile ships `NER/train.json`, `RE/train.json` and `EE/train.json`; named by the file's name
alone, the three are one dataset `train.json`, and their exports overwrite each other. Named
by their paths below the folder all of a store's inputs share, they are `NER/train.json`,
`RE/train.json` and `EE/train.json`: distinct, since distinct paths below one folder are.

The store records nothing more than each run's absolute input path (`runs.input_path`): a
name fixed when the first input is translated could not know the inputs that come after it.
A store of one input file names it by its file name, as before. A uie folder's datasets are
its sub-folders, named below the folder's own name (or alone, when the folder is the root).
Everything here is pure: run rows in, names out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath
from typing import Any

#: The format whose input is a folder of datasets (formats.uie.NAME; not imported, so the
#: store can use this module without the formats).
FOLDER_FORMAT = "uie"


def _is_folder(run: dict[str, Any]) -> bool:
    return run["format"] == FOLDER_FORMAT


def _posix(relative: str) -> str:
    return PurePosixPath(*PurePath(relative).parts).as_posix()


@dataclass(frozen=True)
class DatasetNames:
    """Names below `root`, the deepest folder holding every input of a store (a file's
    folder, or a uie input folder itself)."""

    root: str | None

    @classmethod
    def of(cls, runs: Iterable[dict[str, Any]]) -> DatasetNames:
        anchors = {run["input_path"] if _is_folder(run) else os.path.dirname(run["input_path"])
                   for run in runs}
        if not anchors:
            return cls(None)
        try:
            return cls(os.path.commonpath(sorted(anchors)))
        except ValueError:  # relative and absolute paths mixed, or several drives
            return cls(None)

    def _below_root(self, path: str) -> str | None:
        if self.root is None:
            return None
        relative = os.path.relpath(path, self.root)
        if relative == "." or relative.startswith(".."):
            return None
        return _posix(relative)

    def run(self, run: dict[str, Any]) -> str:
        """The name of the run's input: `NER/train.json` (or its file or folder name when
        nothing sets it apart)."""
        return self._below_root(run["input_path"]) or PurePath(run["input_path"]).name

    def _in_folder(self, run: dict[str, Any], part: str | None) -> str:
        """A uie input's sub-folder `part` (None: the folder is one dataset itself)."""
        if part is None:
            return self.run(run)
        folder = self._below_root(run["input_path"])
        return f"{folder}/{part}" if folder else part

    def record(self, run: dict[str, Any], record_id: str) -> str:
        """The dataset of a record (ids are `<file>:<index>`; a uie record's file is
        relative to the input folder)."""
        if not _is_folder(run):
            return self.run(run)
        parts = PurePosixPath(record_id.rsplit(":", 1)[0]).parts
        return self._in_folder(run, parts[0] if len(parts) > 1 else None)

    def reject(self, run: dict[str, Any], path: str) -> str:
        """The dataset of an item that could not be read from the file `path`."""
        if not _is_folder(run):
            return self.run(run)
        try:
            parts = PurePath(os.path.relpath(os.path.realpath(path),
                                             os.path.realpath(run["input_path"]))).parts
        except ValueError:
            parts = ()
        if len(parts) > 1 and parts[0] != "..":
            return self._in_folder(run, parts[0])
        return self._in_folder(run, None)


def output_stem(dataset: str, language: str) -> str:
    """`NER/train.en` for the dataset `NER/train.json` in English: the path, below an export's
    folder and without a suffix, of every file written for that dataset and language."""
    path = PurePosixPath(dataset)
    return (path.parent / f"{path.stem}.{language}").as_posix()
