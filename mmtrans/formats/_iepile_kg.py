"""KG output of an IEPile instruction into a Record and back:

    {"人物": {"明治天皇": {"别名": "睦仁", "父母": ["孝明天皇", "英照皇太后"]}, "某人": {}}}

entity type -> entity -> attribute -> value or values. Each value is a Relation (head: the
entity, relation: the attribute, tail: the value, head_label: the entity type); an entity
with no attribute is a Mention of its type. `meta["kg"]` keeps what the Record does not:
the order of the entities (`heads`: `["m", mention]` or `["r", its first relation]`) and which
attributes were lists (`lists`: relation indices), so an untranslated record is written back
as read and a translated one in the same shape. The model translates an entity's name once per
attribute, and may do it two ways ("Emperor Meiji", "Meiji"): while the record holds the
relations it was read with (`relations`: their count), an entity's relations are the ones read
under it, written under its first name, never split into two entities. An annotator's edit of
the relations ends that (`relations_edited`): then the names say which entity is which.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..records import Mention, Record, Relation
from . import _fields as fields
from ._iepile_schema import entry_key


def read_kg(record: Record, output: dict[str, Any]) -> None:
    heads: list[list[Any]] = []
    lists: list[int] = []
    for entity_type, entities in output.items():
        where = f"output[{entity_type!r}]"
        for head, attributes in fields.obj(entities, where).items():
            at = f"{where}[{head!r}]"
            attributes = fields.obj(attributes, at)
            if not attributes:
                heads.append(["m", len(record.mentions)])
                record.mentions.append(Mention(entity_type, head))
                continue
            heads.append(["r", len(record.relations)])
            for attribute, value in attributes.items():
                values = [value] if isinstance(value, str) else value
                values = fields.strings(values, f"{at}[{attribute!r}]")
                if not values:
                    raise ValueError(f"{at}[{attribute!r}] is an empty list")
                if isinstance(value, list):
                    lists.append(len(record.relations))
                record.relations.extend(Relation(head, attribute, tail, entity_type)
                                        for tail in values)
    record.meta["kg"] = {"heads": heads, "lists": lists, "relations": len(record.relations)}


def write_kg(record: Record, schema: list[Any]) -> dict[str, Any]:
    """The KG output: every schema entity type a key, then entities in the order read."""
    output: dict[str, dict[str, Any]] = {entry_key(e): {} for e in schema}
    kg = record.meta.get("kg", {})
    lists = set(kg.get("lists", []))
    placed: set[int] = set()
    named: set[int] = set()
    relations = record.relations
    entity_of = _entities_read(kg, len(relations))

    def same_entity(i: int, j: int) -> bool:
        if entity_of is not None:
            return entity_of[i] == entity_of[j]
        return (relations[j].head == relations[i].head
                and (relations[j].head_label or "") == (relations[i].head_label or ""))

    def place(i: int) -> None:
        head, entity_type = relations[i].head, relations[i].head_label or ""
        attributes: dict[str, list[str]] = {}
        listed: set[str] = set()
        for j, r in enumerate(relations):
            if j in placed or not same_entity(i, j):
                continue
            placed.add(j)
            attributes.setdefault(r.relation, []).append(r.tail)
            if j in lists:
                listed.add(r.relation)
        entity = output.setdefault(entity_type, {}).setdefault(head, {})
        for attribute, tails in attributes.items():
            if attribute in entity:  # two entities read apart, translated to one name
                before = entity[attribute]
                tails = [*(before if isinstance(before, list) else [before]), *tails]
            entity[attribute] = tails if len(tails) > 1 or attribute in listed else tails[0]

    def name(i: int) -> None:
        named.add(i)
        m = record.mentions[i]
        output.setdefault(m.label, {}).setdefault(m.text, {})

    for kind, i in kg.get("heads", []):
        if kind == "r" and 0 <= i < len(relations) and i not in placed:
            place(i)
        elif kind == "m" and 0 <= i < len(record.mentions) and i not in named:
            name(i)
    for i in range(len(relations)):  # added after reading (review), in their order
        if i not in placed:
            place(i)
    for i in range(len(record.mentions)):
        if i not in named:
            name(i)
    return output


def relations_edited(record: Record) -> Record:
    """`record` once an annotator edited its relations: an entity is no longer known by where
    its relations were read (one moved to another entity keeps the count), only by its name."""
    kg = record.meta.get("kg")
    if not isinstance(kg, dict) or "relations" not in kg:
        return record
    kept = {k: v for k, v in kg.items() if k != "relations"}
    return replace(record, meta={**record.meta, "kg": kept})


def _entities_read(kg: dict[str, Any], count: int) -> list[int] | None:
    """The entity (its place among `heads`) each relation was read under, while the record
    holds the `count` relations it was read with and no edit changed them; None otherwise,
    or for a record read before the count was kept: then the name decides."""
    if kg.get("relations") != count:
        return None
    starts = sorted((i, k) for k, (kind, i) in enumerate(kg.get("heads", [])) if kind == "r")
    if not starts or starts[0][0] != 0:
        return None if count else []
    entity_of = []
    for n, (start, k) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else count
        entity_of.extend([k] * (end - start))
    return entity_of if len(entity_of) == count else None
