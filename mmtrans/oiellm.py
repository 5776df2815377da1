"""OIELLM training files: every kept record as an MRE `/task`-word pair, one JSON Lines file
per dataset and language.

    input:  <text>/<task word>
    output: <text label>/<task word>/:<label>;<string>:<label>;<string>...

Records of any input format are written: NER, RE and event records take the MRE task words
`NER`, `Relation Extraction` and `Event Extraction`; MRE records keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .files import write_json_values
from .formats import mre
from .groups import OutputPaths, kept_groups, open_store
from .records import Record

TASK_WORDS = {"NER": "NER", "RE": "Relation Extraction", "SPO": "Relation Extraction",
              "EE": "Event Extraction", "EET": "Event Extraction", "EEA": "Event Extraction"}


def task_word(record: Record) -> str:
    if record.task in mre.TASKS:
        return record.task
    if record.task in TASK_WORDS:
        return TASK_WORDS[record.task]
    return "Event Extraction" if record.events else \
        "Relation Extraction" if record.relations else "NER"


def to_item(record: Record) -> dict[str, Any]:
    """The record's OIELLM `{input, output}` pair (nothing else of its source format)."""
    return mre.to_item(replace(record, task=task_word(record), meta={}))


@dataclass
class Written:
    """One file written for one dataset and language."""

    dataset: str
    language: str
    path: str
    records: int


def export_oiellm(db_path: str | Path, out_dir: str | Path, run_id: str | None = None,
                  include_flagged: bool = False) -> list[Written]:
    """`<out_dir>/<dataset>.<language>.jsonl` for every dataset and language of the store,
    the dataset's path kept (`NER/train.json` in English: `NER/train.en.jsonl`)."""
    written = []
    paths = OutputPaths()
    with open_store(db_path) as store:
        for group in kept_groups(store, run_id, include_flagged):
            path = paths.claim(Path(out_dir) / f"{group.name}.jsonl", group.dataset)
            n = write_json_values((to_item(r) for r in group.records), path)
            written.append(Written(group.dataset, group.language, str(path), n))
    return written
