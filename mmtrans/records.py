"""The format-independent data model: a Record and the strings inside it.

Two kinds of strings live in a Record. *Labels* (text label, entity types, relation
names, event types, roles) are translated by rule tables. *Anchored strings* (mention
texts, relation heads and tails, triggers, arguments) must occur verbatim in `text`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any


@dataclass
class Mention:
    label: str
    text: str
    start: int | None = None
    end: int | None = None


@dataclass
class Relation:
    head: str
    relation: str
    tail: str
    head_label: str | None = None
    tail_label: str | None = None


@dataclass
class Argument:
    role: str
    text: str


@dataclass
class Event:
    type: str
    trigger: str
    arguments: list[Argument] = field(default_factory=list)


@dataclass
class Record:
    id: str
    text: str
    task: str = "NER"
    label: str | None = None
    mentions: list[Mention] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    #: Labels the record was annotated against beyond those it holds (IEPile's schema, the
    #: types a UniversalNER text was asked about): translated like every other label.
    schema: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def anchored(self) -> Iterator[tuple[str, str]]:
        """Yield (where, string) for every string that must occur in `text`."""
        for i, m in enumerate(self.mentions):
            yield f"mentions[{i}]", m.text
        for i, r in enumerate(self.relations):
            yield f"relations[{i}].head", r.head
            yield f"relations[{i}].tail", r.tail
        for i, e in enumerate(self.events):
            if e.trigger:
                yield f"events[{i}].trigger", e.trigger
            for j, a in enumerate(e.arguments):
                yield f"events[{i}].arguments[{j}]", a.text

    def labels(self) -> Iterator[tuple[str, str]]:
        """Yield (where, label) for every label, in a fixed order."""
        if self.label is not None:
            yield "label", self.label
        for i, m in enumerate(self.mentions):
            yield f"mentions[{i}].label", m.label
        for i, r in enumerate(self.relations):
            yield f"relations[{i}].relation", r.relation
            if r.head_label is not None:
                yield f"relations[{i}].head_label", r.head_label
            if r.tail_label is not None:
                yield f"relations[{i}].tail_label", r.tail_label
        for i, e in enumerate(self.events):
            yield f"events[{i}].type", e.type
            for j, a in enumerate(e.arguments):
                yield f"events[{i}].arguments[{j}].role", a.role
        for i, label in enumerate(self.schema):
            yield f"schema[{i}]", label

    def map_labels(self, mapping: dict[str, str]) -> Record:
        """A copy with every label replaced by `mapping[label]` (labels not in it stay)."""

        def m(label: str | None) -> str | None:
            return None if label is None else mapping.get(label, label)

        return replace(
            self,
            label=m(self.label),
            mentions=[replace(x, label=m(x.label)) for x in self.mentions],
            relations=[
                replace(r, relation=m(r.relation), head_label=m(r.head_label),
                        tail_label=m(r.tail_label))
                for r in self.relations
            ],
            events=[
                Event(m(e.type) or "", e.trigger, [Argument(m(a.role) or "", a.text)
                                                  for a in e.arguments])
                for e in self.events
            ],
            schema=[mapping.get(x, x) for x in self.schema],
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Canonical JSON: stable key order, no ASCII escaping (the cache key relies on it).
        The same text as `to_dict()` dumped, without its deep copy (a third of the time of
        storing a run's input): the encoder asks for each nested dataclass's fields."""
        return _CANONICAL.encode(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        return cls(
            id=d["id"],
            text=d["text"],
            task=d.get("task", "NER"),
            label=d.get("label"),
            mentions=[Mention(**m) for m in d.get("mentions", [])],
            relations=[Relation(**r) for r in d.get("relations", [])],
            events=[
                Event(e["type"], e["trigger"], [Argument(**a) for a in e.get("arguments", [])])
                for e in d.get("events", [])
            ],
            schema=list(d.get("schema", [])),
            meta=d.get("meta", {}),
        )

    @classmethod
    def from_json(cls, s: str) -> Record:
        return cls.from_dict(json.loads(s))


def _fields_of(value: Any) -> dict[str, Any]:
    names = _FIELD_NAMES.get(type(value))
    if names is None:
        if not is_dataclass(value) or isinstance(value, type):
            raise TypeError(f"{type(value).__name__} is not JSON serializable")
        names = _FIELD_NAMES[type(value)] = tuple(f.name for f in fields(value))
    return {name: getattr(value, name) for name in names}


#: The field names of each dataclass met by `_fields_of` (dataclasses.fields builds them
#: anew on every call, for every mention of every record stored).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
#: One encoder for every record: json.dumps with options builds one at every call (a
#: quarter of the time of encoding a record).
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=_fields_of)


def occurrences(text: str, s: str) -> list[int]:
    """Every start of `s` in `text`, overlapping ones too (str.find: no pattern compiled
    per string, this runs for every mention of every record)."""
    if not s:
        return list(range(len(text) + 1))
    found = []
    i = text.find(s)
    while i >= 0:
        found.append(i)
        i = text.find(s, i + 1)
    return found


def whole_word(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] stands alone: no letter or digit touches it on either side."""
    return (start == 0 or not text[start - 1].isalnum()) and \
        (end >= len(text) or not text[end].isalnum())


def locate_mentions(record: Record, spaced: bool = False) -> Record:
    """Set each mention's start/end in `text`. A span that already holds the mention's string
    stays (for `spaced`, only when it is a whole word); others take the first occurrence that
    overlaps no span taken so far and comes after the previous mention of the same string (so
    the k-th repeat gets the k-th occurrence), else one nested in another mention. A string
    that does not occur gets None. `spaced` (languages that space their words): only
    whole-word occurrences count, as in the `anchored` check ("Japan" is not in "Japanese")."""
    text = record.text
    taken: list[tuple[int, int]] = []
    valid = []
    for m in record.mentions:
        ok = m.start is not None and m.end is not None and text[m.start:m.end] == m.text \
            and (not spaced or whole_word(text, m.start, m.end))  # not "Japan" in "Japanese"
        valid.append(ok)
        if ok:
            taken.append((m.start, m.end))  # type: ignore[arg-type]

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    last: dict[str, int] = {}
    mentions = []
    for m, ok in zip(record.mentions, valid):
        if ok:
            last[m.text] = m.start  # type: ignore[assignment]
            mentions.append(m)
            continue
        found = occurrences(text, m.text)
        if spaced:
            found = [i for i in found if whole_word(text, i, i + len(m.text))]
        after = last.get(m.text, -1)
        preferences = (
            [i for i in found if i > after and free(i, i + len(m.text))],
            [i for i in found if free(i, i + len(m.text))],
            [i for i in found if i > after],  # nested inside another mention
            found,
        )
        pos = next((c[0] for c in preferences if c), None) if m.text else None
        if pos is not None:
            taken.append((pos, pos + len(m.text)))
            last[m.text] = pos
        mentions.append(replace(m, start=pos, end=None if pos is None else pos + len(m.text)))
    return replace(record, mentions=mentions)


def map_anchored(record: Record, fn: Callable[[str, str], str]) -> Record:
    """A copy with every anchored string `s` at `where` replaced by `fn(where, s)`."""
    return replace(
        record,
        mentions=[replace(m, text=fn(f"mentions[{i}]", m.text))
                  for i, m in enumerate(record.mentions)],
        relations=[
            replace(r, head=fn(f"relations[{i}].head", r.head),
                    tail=fn(f"relations[{i}].tail", r.tail))
            for i, r in enumerate(record.relations)
        ],
        events=[
            Event(e.type, fn(f"events[{i}].trigger", e.trigger) if e.trigger else e.trigger,
                  [Argument(a.role, fn(f"events[{i}].arguments[{j}]", a.text))
                   for j, a in enumerate(e.arguments)])
            for i, e in enumerate(record.events)
        ],
    )
