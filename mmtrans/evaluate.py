"""`mmtrans eval`: F1 of a prediction file against its gold file.

Two kinds of gold, told apart by the first item:

- MRE (`{input, output}`, the OIELLM export): text-level F1 (the text label), word-level F1
  (the `(label, string)` pairs, or relation and event tuples) and joint F1 (a pair counts
  only when the record's text label is right too), as in the MMM paper: tuples compared as
  sets per record, micro-averaged.
- IEPile instructions (`{instruction, label}` test lines or `{instruction, output}` lines):
  NER (entity, type), RE (head, relation, tail; `head`/`tail` and `subject`/`object` alike),
  EE triggers (type, trigger) and arguments (type, argument, role), EET triggers, EEA
  arguments. Lines sharing an id (one text cut into schema batches) are one record.

Predictions are aligned with gold items by position. A prediction that does not parse counts
as an empty one (all its gold tuples missed) and is counted as malformed; it never stops the
scorer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, MmtransError
from .formats import iepile_instruction, mre
from .formats._io import Item, Reject, iter_json_items
from .labels import known_labels
from .payload import extract_json
from .records import Record

Tuple = tuple[Any, ...]
MAX_LISTED = 20


@dataclass
class Score:
    """Micro-averaged counts over records: true positives, predicted, gold."""

    tp: int = 0
    pred: int = 0
    gold: int = 0

    def add(self, pred: set[Tuple], gold: set[Tuple], right: bool = True) -> None:
        self.tp += len(pred & gold) if right else 0
        self.pred += len(pred)
        self.gold += len(gold)

    @property
    def precision(self) -> float:
        return self.tp / self.pred if self.pred else 0.0

    @property
    def recall(self) -> float:
        return self.tp / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, float | int]:
        return {"precision": round(self.precision, 6), "recall": round(self.recall, 6),
                "f1": round(self.f1, 6), "tp": self.tp, "pred": self.pred, "gold": self.gold}


@dataclass
class Group:
    """The scores of one dataset and language."""

    dataset: str
    language: str
    records: int = 0
    malformed: int = 0
    missing: int = 0
    scores: dict[str, Score] = field(default_factory=dict)

    def score(self, name: str) -> Score:
        return self.scores.setdefault(name, Score())

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "language": self.language, "records": self.records,
                "malformed": self.malformed, "missing": self.missing,
                "scores": {k: v.to_dict() for k, v in self.scores.items()}}


@dataclass
class Evaluation:
    kind: str  # "mre" or "iepile"
    groups: list[Group]
    malformed_lines: list[str]
    extra: int  # prediction lines beyond the gold file's

    @property
    def total(self) -> Group:
        total = Group("all", "all")
        for g in self.groups:
            total.records += g.records
            total.malformed += g.malformed
            total.missing += g.missing
            for name, s in g.scores.items():
                t = total.score(name)
                t.tp, t.pred, t.gold = t.tp + s.tp, t.pred + s.pred, t.gold + s.gold
        return total

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "total": self.total.to_dict(),
                "groups": [g.to_dict() for g in self.groups],
                "malformed_lines": self.malformed_lines, "extra_predictions": self.extra}


def _items(path: str | Path) -> list[Item | Reject]:
    if not Path(path).is_file():
        raise InputError(path, None, "no such file")
    return list(iter_json_items(path))


def name_parts(path: Path) -> tuple[str, str | None]:
    """(dataset, language) from an exported file's name: `scnm.en.jsonl` and its split
    `scnm.en.test.jsonl` are dataset `scnm`, language `en`."""
    parts = path.stem.split(".")
    langs = [p for p in parts[1:] if len(p) == 2 and p.isalpha() and p.islower()]
    return (parts[0], langs[-1]) if langs else (path.stem, None)


def _prediction_text(item: Item | Reject | None) -> str | None:
    """The model's answer of a prediction item: a string, or the `output` (`predict`)
    field of an object. None when there is none."""
    if not isinstance(item, Item):
        return None
    value = item.value
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("output", "predict", "prediction"):
            if isinstance(value.get(key), str):
                return value[key]
    return None


def _gold(items: list[Item | Reject], path: Path, parse: Callable[[Any, str], Record]
          ) -> Iterator[tuple[int, Item, Record]]:
    """(position, item, record) of every gold item; an unreadable one is an InputError (the
    gold file is the yardstick: it must be whole)."""
    for n, item in enumerate(items):
        if isinstance(item, Reject):
            raise InputError(path, item.line, item.message)
        try:
            yield n, item, parse(item.value, str(n))
        except ValueError as e:
            raise InputError(path, item.line, str(e)) from None


# -- MRE -------------------------------------------------------------------------------------

def mre_tuples(record: Record) -> set[Tuple]:
    kind = mre.TASKS.get(record.task, "mention")
    if kind == "relation":
        return {(r.head, r.relation, r.tail) for r in record.relations}
    if kind == "event":
        return {(e.type, e.trigger, tuple((a.role, a.text) for a in e.arguments))
                for e in record.events}
    return {(m.label, m.text) for m in record.mentions}


def _score_mre(gold_items: list[Item | Reject], preds: list[Item | Reject], gold_path: Path,
               language: str | None) -> Evaluation:
    labels = frozenset(known_labels())
    groups: dict[tuple[str, str], Group] = {}
    malformed: list[str] = []
    for n, item, gold in _gold(gold_items, gold_path, lambda v, n: mre.parse(v, n, labels)):
        value = item.value
        named, named_lang = name_parts(gold_path)
        dataset = str(value.get("dataset") or named)
        lang = str(value.get("language") or language or named_lang or "-")
        group = groups.setdefault((dataset, lang), Group(dataset, lang))
        group.records += 1
        pred_item = preds[n] if n < len(preds) else None
        answer = _prediction_text(pred_item)
        predicted: Record | None = None
        if pred_item is None:
            group.missing += 1
        elif answer is not None:
            try:
                predicted = mre.parse({"input": value["input"], "output": answer}, str(n), labels)
            except ValueError:
                predicted = None
        if predicted is None and pred_item is not None:
            group.malformed += 1
            line = pred_item.line
            malformed.append(f"{line}: not '<label>/{gold.task}/:...'")
        pred_label = predicted.label if predicted else None
        label_right = predicted is not None and (pred_label or None) == (gold.label or None)
        group.score("text").add({pred_label} if pred_label else set(),
                                {gold.label} if gold.label else set())
        pred_tuples = mre_tuples(predicted) if predicted else set()
        gold_tuples = mre_tuples(gold)
        group.score("word").add(pred_tuples, gold_tuples)
        group.score("joint").add(pred_tuples, gold_tuples, right=label_right)
    return Evaluation("mre", list(groups.values()), malformed[:MAX_LISTED],
                      max(0, len(preds) - len(gold_items)))


# -- IEPile ----------------------------------------------------------------------------------

def _strings(value: Any) -> list[str]:
    """An argument value: a string, or a list of them; NAN and non-strings dropped."""
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, str) and v and v != iepile_instruction.NAN]


def iepile_tuples(task: str, answer: Any) -> dict[str, set[Tuple]]:
    """The tuples of one IEPile JSON answer, by score name. Parts of the wrong shape are
    skipped; an answer that is not a JSON object raises ValueError."""
    if not isinstance(answer, dict):
        raise ValueError("not a JSON object")
    out: dict[str, set[Tuple]] = {}
    for label, values in answer.items():
        if not isinstance(values, list):
            continue
        for v in values:
            if task == "NER":
                if isinstance(v, str):
                    out.setdefault("entity", set()).add((v, label))
            elif task in ("RE", "SPO"):
                if isinstance(v, dict):
                    head = v.get("head", v.get("subject"))
                    tail = v.get("tail", v.get("object"))
                    if isinstance(head, str) and isinstance(tail, str):
                        out.setdefault("relation", set()).add((head, label, tail))
            else:
                _event_tuples(task, label, v, out)
    return out


def _event_tuples(task: str, event_type: str, v: Any, out: dict[str, set[Tuple]]) -> None:
    if isinstance(v, str) and task == "EET":  # EET answers may list bare triggers
        out.setdefault("trigger", set()).add((event_type, v))
        return
    if not isinstance(v, dict):
        return
    trigger = v.get("trigger", v.get("event_trigger"))
    if task in ("EE", "EET") and isinstance(trigger, str) and trigger \
            and trigger != iepile_instruction.NAN:
        out.setdefault("trigger", set()).add((event_type, trigger))
    if task == "EET":
        return
    arguments = v.get("arguments")
    if arguments is None and task == "EEA":  # IEPile's EEA answers: {role: value} directly
        arguments = {k: x for k, x in v.items() if k not in ("trigger", "event_trigger")}
    if isinstance(arguments, dict):
        for role, value in arguments.items():
            for text in _strings(value):
                out.setdefault("argument", set()).add((event_type, text, role))


def record_tuples(record: Record) -> dict[str, set[Tuple]]:
    """The gold tuples of an IEPile instruction record, by score name."""
    out: dict[str, set[Tuple]] = {}
    if record.task == "NER":
        out["entity"] = {(m.text, m.label) for m in record.mentions}
    elif record.task in ("RE", "SPO"):
        out["relation"] = {(r.head, r.relation, r.tail) for r in record.relations}
    else:
        if record.task in ("EE", "EET"):
            out["trigger"] = {(e.type, e.trigger) for e in record.events if e.trigger}
        if record.task in ("EE", "EEA"):
            out["argument"] = {(e.type, a.text, a.role) for e in record.events
                               for a in e.arguments}
    return out


def _iepile_gold(value: Any, record_id: str) -> Record:
    if isinstance(value, dict) and "label" in value:  # IEPile's inference output holds both
        value = {k: v for k, v in value.items() if k != "output"}  # the gold is its label
    return iepile_instruction.parse(value, record_id)


@dataclass
class _Pending:
    group: Group
    task: str
    gold: dict[str, set[Tuple]] = field(default_factory=dict)
    pred: dict[str, set[Tuple]] = field(default_factory=dict)


def _merge(into: dict[str, set[Tuple]], more: dict[str, set[Tuple]]) -> None:
    for name, tuples in more.items():
        into.setdefault(name, set()).update(tuples)


def _score_iepile(gold_items: list[Item | Reject], preds: list[Item | Reject], gold_path: Path,
                  language: str | None) -> Evaluation:
    groups: dict[tuple[str, str], Group] = {}
    pending: dict[tuple[str, str], _Pending] = {}
    malformed: list[str] = []
    for n, item, gold in _gold(gold_items, gold_path, _iepile_gold):
        dataset = str(item.value.get("source") or gold_path.stem)
        lang = str(gold.meta.get("lang") or language or "-")
        group = groups.setdefault((dataset, lang), Group(dataset, lang))
        key = (dataset, str(item.value.get("id") or gold.text))
        entry = pending.get(key)
        if entry is None:
            entry = pending[key] = _Pending(group, gold.task)
            group.records += 1
        _merge(entry.gold, record_tuples(gold))
        pred_item = preds[n] if n < len(preds) else None
        answer = _prediction_text(pred_item)
        if pred_item is None:
            group.missing += 1
            continue
        try:
            if answer is None:
                raise ValueError("no 'output' string")
            _merge(entry.pred, iepile_tuples(gold.task, extract_json(answer)))
        except ValueError as e:
            group.malformed += 1
            malformed.append(f"{pred_item.line}: {e}")
    for entry in pending.values():
        names = set(entry.gold) | set(entry.pred) | set(record_tuples(Record("", "", entry.task)))
        for name in sorted(names):
            entry.group.score(name).add(entry.pred.get(name, set()), entry.gold.get(name, set()))
    return Evaluation("iepile", list(groups.values()), malformed[:MAX_LISTED],
                      max(0, len(preds) - len(gold_items)))


def evaluate(pred: str | Path, gold: str | Path, language: str | None = None) -> Evaluation:
    """Score the predictions in `pred` against `gold` (line for line). IEPile's inference
    output, test lines with the model's `output` added, may be both `pred` and `gold`.

    `language` names the language of groups whose gold items do not say it themselves.
    Raises InputError when the gold file cannot be read or is of neither kind.
    """
    gold_path = Path(gold)
    gold_items = _items(gold_path)
    preds = _items(pred)
    first = next((i.value for i in gold_items if isinstance(i, Item)), None)
    if mre.sniff(first):
        return _score_mre(gold_items, preds, gold_path, language)
    if iepile_instruction.sniff(first):
        return _score_iepile(gold_items, preds, gold_path, language)
    raise InputError(gold_path, 1, "gold must be MRE ({input, output}) or IEPile instruction "
                                   "({instruction, label|output}) lines")


def rows(evaluation: Evaluation) -> Iterable[tuple[Group, str, Score]]:
    """(group, score name, score) for every group and then the total, for a table."""
    for group in [*evaluation.groups, evaluation.total]:
        for name, score in group.scores.items():
            yield group, name, score


__all__ = ["Evaluation", "Group", "MmtransError", "Score", "evaluate", "iepile_tuples"]
