"""What the review page shows and takes back of a record's relations and events.

Relations and events hold strings, not offsets: the page highlights each string where it
first occurs (the checks find it the same way), and an edit sends the strings an annotator
selected. Labels of every kind (text label, entity types, relation names, event types,
roles) come from the run's tables only: the record's own first, then every other one the
tables translate to.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..formats import relations_edited
from ..records import Argument, Event, Record, Relation, whole_word
from ..scripts import is_spaced
from .pairs import first_place, pair_events, pair_relations


class StructureError(ValueError):
    """An edited relation or event the page sent that cannot be used (a 400, never a 500)."""


def spans(record: Record, spaced: bool) -> dict[str, list[int] | None]:
    """Where each relation and event string lies in the text, in code points, by its place
    in the record (`relations[0].head`, `events[1].arguments[0]`); None: it does not occur.
    Where words are spaced only a whole word counts, as in the `anchored` check."""
    out: dict[str, list[int] | None] = {}
    for where, s in record.anchored():
        if where.startswith("mentions"):
            continue
        out[where] = _place(record.text, s, spaced)
    return out


def target_spans(record: Record, tgt: str) -> dict[str, list[int] | None]:
    """`spans` of a translated record in the language `tgt`."""
    return spans(record, is_spaced(tgt))


def _place(text: str, s: str, spaced: bool) -> list[int] | None:
    start = first_place(text, s)
    while start is not None and spaced and not whole_word(text, start, start + len(s)):
        following = text.find(s, start + 1)
        start = following if following >= 0 else None
    return None if start is None else [start, start + len(s)]


def label_kinds(expected: Record, known: list[str]) -> dict[str, list[str]]:
    """For each kind of label, the ones an annotator may pick: the record's own of that kind
    first (and its schema), then every label the run's tables translate to."""
    own = {
        "text": [expected.label] if expected.label else [],
        "entity": [m.label for m in expected.mentions]
        + [x for r in expected.relations for x in (r.head_label, r.tail_label) if x],
        "relation": [r.relation for r in expected.relations],
        "event": [e.type for e in expected.events],
        "role": [a.role for e in expected.events for a in e.arguments],
    }
    return {kind: list(dict.fromkeys([*labels, *expected.schema, *known]))
            for kind, labels in own.items()}


def structure_view(source: Record, expected: Record, target: Record | None, src: str,
                   tgt: str, known: list[str]) -> dict[str, Any]:
    """The relation and event part of the page's record view: the expected (label-translated)
    relations and events, their pairs with the translation's, where each string lies in
    either text, whether the target spaces its words, and the labels of each kind."""
    spaced = is_spaced(tgt)
    relation_pairs = event_pairs = []
    if target is not None:
        relation_pairs = [p.to_dict() for p in pair_relations(
            source.relations, source.text, [r.relation for r in expected.relations],
            target.relations, target.text)]
        event_pairs = [p.to_dict() for p in pair_events(
            source.events, source.text, expected.events, target.events, target.text)]
    else:
        relation_pairs = [{"source": i, "target": None} for i in range(len(source.relations))]
        event_pairs = [{"source": i, "target": None, "arguments": [
            {"source": j, "target": None} for j in range(len(e.arguments))]}
            for i, e in enumerate(source.events)]
    return {
        "expected_relations": [vars(r) for r in expected.relations],
        "expected_events": [_event_dict(e) for e in expected.events],
        "relation_pairs": relation_pairs, "event_pairs": event_pairs,
        "source_spans": spans(source, is_spaced(src)),
        "target_spans": spans(target, spaced) if target is not None else {},
        "spaced": spaced, "label_kinds": label_kinds(expected, known),
    }


def _event_dict(e: Event) -> dict[str, Any]:
    return {"type": e.type, "trigger": e.trigger,
            "arguments": [{"role": a.role, "text": a.text} for a in e.arguments]}


def _string(value: Any, where: str, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise StructureError(f"{where} needs a non-empty string")
    return value


def _label(value: Any, where: str, labels: list[str] | None) -> str:
    label = _string(value, where).strip()
    if labels is not None and label not in labels:
        raise StructureError(f"{where}: {label!r} is not a label of this run's tables")
    return label


def parse_structures(data: dict[str, Any], base: Record, labels: list[str] | None) -> Record:
    """`base` with the relations and events of an edit (each list only where the edit has
    it), their labels checked against `labels` (the run's tables; None: no table)."""
    record = base
    if "relations" in data:
        relations = data["relations"]
        if not isinstance(relations, list):
            raise StructureError("'relations' must be a list")
        parsed = []
        for i, r in enumerate(relations):
            if not isinstance(r, dict):
                raise StructureError(f"relations[{i}] must be an object")
            old = base.relations[i] if i < len(base.relations) else None
            parsed.append(Relation(
                _string(r.get("head"), f"relations[{i}].head"),
                _label(r.get("relation"), f"relations[{i}].relation", labels),
                _string(r.get("tail"), f"relations[{i}].tail"),
                _optional_label(r, "head_label", i, labels, old),
                _optional_label(r, "tail_label", i, labels, old)))
        if parsed != base.relations:
            record = relations_edited(replace(record, relations=parsed))
    if "events" in data:
        events = data["events"]
        if not isinstance(events, list):
            raise StructureError("'events' must be a list")
        parsed_events = []
        for i, e in enumerate(events):
            if not isinstance(e, dict) or not isinstance(e.get("arguments", []), list):
                raise StructureError(f"events[{i}] must be an object with a list 'arguments'")
            # IEPile's EEA gives arguments without a trigger: an empty trigger stays empty.
            trigger = _string(e.get("trigger", ""), f"events[{i}].trigger", empty_ok=True)
            arguments = []
            for j, a in enumerate(e.get("arguments", [])):
                if not isinstance(a, dict):
                    raise StructureError(f"events[{i}].arguments[{j}] must be an object")
                arguments.append(Argument(
                    _label(a.get("role"), f"events[{i}].arguments[{j}].role", labels),
                    _string(a.get("text"), f"events[{i}].arguments[{j}]")))
            parsed_events.append(Event(_label(e.get("type"), f"events[{i}].type", labels),
                                       trigger, arguments))
        record = replace(record, events=parsed_events)
    return record


def _optional_label(r: dict[str, Any], key: str, i: int, labels: list[str] | None,
                    old: Relation | None) -> str | None:
    """A relation's head or tail type: as sent, or the one it had (None: it has none)."""
    if key not in r:
        return getattr(old, key) if old is not None else None
    if r[key] is None:
        return None
    return _label(r[key], f"relations[{i}].{key}", labels)


def check_text_label(label: str | None, allowed: list[str] | None) -> None:
    """A text-level label must be one the run's tables know (or the record's own)."""
    if label is not None and allowed is not None and label not in allowed:
        raise StructureError(f"the text-level label {label!r} is not a label of this run's "
                             f"tables")
