"""IEPile training instructions: each record's schema with hard negatives, cut into batches.

IEPile (zjunlp/IEPile, ie2instruction) asks about a few schema labels at a time: the labels a
record holds, the labels a hard-negative dictionary names as confusable with them, and a
sampled share of the other labels of the dataset, shuffled and cut into batches of
`split_num` (NER 6, RE and events 4). A leftover of at least half a batch is a batch of its
own; a smaller one joins the last batch (49 labels at 4: eleven batches of 4 and one of 5).
Each batch is one instruction line whose output lists every schema label in schema order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError, InputError
from .files import write_json_values
from .formats import iepile_instruction
from .groups import Group, OutputPaths, kept_groups, open_store
from .oiellm import Written
from .records import Record

T = TypeVar("T")
SPLIT_NUM = {"NER": 6, "RE": 4, "EE": 4, "EET": 4, "EEA": 4}
IEPILE_TASK = {"Relation Extraction": "RE", "Event Extraction": "EE", "SPO": "RE"}
HardNegatives = dict[str, list[str]]


def cut(labels: list[T], split_num: int) -> list[list[T]]:
    """IEPile's cut of a schema into batches of `split_num` (below 1: one batch)."""
    if not labels:
        return []
    if split_num < 1:
        return [list(labels)]
    full = max(len(labels) // split_num, 1) * split_num
    batches = [list(labels[i:i + split_num]) for i in range(0, full, split_num)]
    rest = list(labels[full:])
    if len(rest) >= max(1, split_num // 2):
        batches.append(rest)
    else:
        batches[-1].extend(rest)
    return batches


def iepile_task(record: Record) -> str:
    """NER, RE or EE: the IEPile task a record trains."""
    if record.task in SPLIT_NUM:
        return record.task
    if record.task in IEPILE_TASK:
        return IEPILE_TASK[record.task]
    return "EE" if record.events else "RE" if record.relations else "NER"


def load_hard_negatives(path: str | Path, task: str, dataset: str) -> HardNegatives:
    """A label -> similar labels dictionary from a file in IEPile's nested form (task ->
    dataset -> label -> labels) or its flat form (label -> labels). In the nested form the
    dataset is found by name or stem; a task holding other datasets only gives their union."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, None, "no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(path, None, f"not a JSON hard-negative dictionary: {e}") from None
    if not isinstance(data, dict):
        raise InputError(path, None, "expected a JSON object")
    if all(isinstance(v, list) for v in data.values()):
        return _checked(data, path)
    by_dataset = data.get(task, {})
    if not isinstance(by_dataset, dict):
        raise InputError(path, None, f"{task!r} must map datasets to dictionaries")
    for name in (dataset, Path(dataset).stem):
        if isinstance(by_dataset.get(name), dict):
            return _checked(by_dataset[name], path)
    merged: dict[str, list[str]] = {}
    for table in by_dataset.values():
        for label, similar in _checked(table, path).items():
            merged.setdefault(label, [])
            merged[label] += [s for s in similar if s not in merged[label]]
    return merged


def _checked(table: Any, path: str | Path) -> HardNegatives:
    if not isinstance(table, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in table.values()):
        raise InputError(path, None, "a hard-negative table maps each label to a list of labels")
    return table


def _ordered(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def positives(record: Record, task: str) -> list[str]:
    if task == "NER":
        return _ordered(m.label for m in record.mentions)
    if task == "RE":
        return _ordered(r.relation for r in record.relations)
    return _ordered(e.type for e in record.events)


def asked_labels(record: Record, task: str) -> list[str]:
    """The labels the record's own schema asked about (IEPile schema, UniversalNER types):
    for events, the event types of the schema entries, without their roles."""
    shape = record.meta.get("shape")
    if not shape:
        return [] if task == "EE" else list(record.schema)
    labels, i = [], 0
    for entry in shape:
        labels.append(record.schema[i])
        i += 1 + (entry.get("arguments", 0) if isinstance(entry, dict) else 0)
    return labels


@dataclass
class Universe:
    """Every label of a dataset (NER: types, RE: relations, EE: event types with roles)."""

    labels: list[str]
    roles: dict[str, list[str]]

    @classmethod
    def of(cls, records: list[Record], task: str) -> Universe:
        labels: list[str] = []
        roles: dict[str, list[str]] = {}
        for record in records:
            labels += positives(record, task) + asked_labels(record, task)
            for e in record.events:
                roles[e.type] = _ordered([*roles.get(e.type, []), *(a.role for a in e.arguments)])
        return cls(_ordered(labels), roles)


def schema_labels(record: Record, task: str, universe: Universe, hard: HardNegatives,
                  neg_ratio: float, rng: random.Random) -> list[str]:
    """The record's positives, their hard negatives and a `neg_ratio` share of the other
    labels (at least one when the record holds none), shuffled."""
    positive = positives(record, task)
    chosen = _ordered([*positive, *(h for p in positive for h in hard.get(p, []))])
    others = [label for label in universe.labels if label not in chosen]
    sampled = [label for label in others if rng.random() < neg_ratio]
    if not chosen and not sampled and others:
        sampled = [rng.choice(others)]
    labels = chosen + sampled
    rng.shuffle(labels)
    return labels


TRAIN_KEYS = ["task", "source", "instruction", "output"]
TEST_KEYS = ["id", "task", "source", "instruction", "label"]


def sampled_roles(record: Record, universe: Universe, neg_ratio: float,
                  rng: random.Random) -> dict[str, list[str]]:
    """The roles to ask about for each event type (IEPile samples roles too): those the
    record fills, and a `neg_ratio` share of the others (at least one when it fills none),
    in the dataset's role order."""
    out = {}
    for event_type, roles in universe.roles.items():
        filled = {a.role for e in record.events if e.type == event_type for a in e.arguments}
        others = [r for r in roles if r not in filled]
        sampled = {r for r in others if rng.random() < neg_ratio}
        if not filled and not sampled and others:
            sampled = {rng.choice(others)}
        out[event_type] = [r for r in roles if r in filled or r in sampled]
    return out


def batch_record(record: Record, task: str, batch: list[str], language: str, dataset: str,
                 roles: dict[str, list[str]], test: bool = False) -> Record:
    """The record restricted to one batch of schema labels (events: each type with the
    `roles` asked of it), ready for the instruction writer. A test line keeps the whole
    record: its `label` is every annotation of the text."""
    meta: dict[str, Any] = {
        "lang": language, "sentence": None, "item_keys": TEST_KEYS if test else TRAIN_KEYS,
        "extra": {"task": task, "source": Path(dataset).stem},
        "keys": record.meta.get("keys") or ["head", "tail"],
    }
    if task == "EE":
        schema: list[str] = []
        shape: list[Any] = []
        for label in batch:
            asked = roles.get(label, [])
            schema += [label, *asked]
            shape.append({"trigger": True, "arguments": len(asked)})
    else:
        schema, shape = list(batch), [None] * len(batch)
    meta["shape"] = shape
    if test:
        # A test line carries the id `eval` groups a text's batches by: the record's, which is
        # unique in the run (datasets repeat their own ids).
        meta["id"] = record.id
        return replace(record, task=task, schema=schema, meta=meta)
    return replace(
        record, task=task, schema=schema, meta=meta,
        mentions=[m for m in record.mentions if m.label in batch] if task == "NER" else [],
        relations=[r for r in record.relations if r.relation in batch] if task == "RE" else [],
        events=[e for e in record.events if e.type in batch] if task == "EE" else [])


def instructions(group: Group, split_num: int | None = None,
                 hard_negatives: str | Path | None = None, neg_ratio: float = 1.0,
                 seed: int = 0, test: bool = False) -> list[dict[str, Any]]:
    """The instruction lines of one dataset and language, seeded per record. `test`: IEPile's
    test form instead, `{id, task, source, instruction, label}` lines asking about every
    label of the dataset, in batches, which `mmtrans eval` scores predictions against."""
    if not 0 <= neg_ratio <= 1:
        raise ConfigError(f"--neg-ratio {neg_ratio}: must be between 0 and 1")
    by_task: dict[str, list[Record]] = {}
    for record in group.records:
        by_task.setdefault(iepile_task(record), []).append(record)
    items = []
    for task, records in by_task.items():
        universe = Universe.of(records, task)
        hard = load_hard_negatives(hard_negatives, task, group.dataset) if hard_negatives else {}
        size = split_num if split_num is not None else SPLIT_NUM[task]
        for record in records:
            rng = random.Random(f"{seed}:{record.id}")
            if test:
                labels, roles = list(universe.labels), universe.roles
            else:
                labels = schema_labels(record, task, universe, hard, neg_ratio, rng)
                roles = sampled_roles(record, universe, neg_ratio, rng)
            for batch in cut(labels, size):
                items.append(iepile_instruction.to_item(batch_record(
                    record, task, batch, group.language, group.dataset, roles, test)))
    return items


def export_iepile_instructions(db_path: str | Path, out_dir: str | Path,
                               run_id: str | None = None, include_flagged: bool = False,
                               split_num: int | None = None,
                               hard_negatives: str | Path | None = None,
                               neg_ratio: float = 1.0, seed: int = 0,
                               test: bool = False) -> list[Written]:
    """`<out_dir>/<dataset>.<language>.jsonl` of IEPile training instructions per dataset and
    language, the dataset's path kept (`NER/train.en.jsonl`); `test`: IEPile's test form.
    `split_num` None: IEPile's per task (NER 6, RE and EE 4)."""
    written = []
    paths = OutputPaths()
    with open_store(db_path) as store:
        for group in kept_groups(store, run_id, include_flagged):
            items = instructions(group, split_num, hard_negatives, neg_ratio, seed, test)
            path = paths.claim(Path(out_dir) / f"{group.name}.jsonl", group.dataset)
            n = write_json_values(iter(items), path)
            written.append(Written(group.dataset, group.language, str(path), n))
    return written
