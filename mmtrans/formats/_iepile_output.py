"""The `output` of an IEPile instruction (a JSON object keyed by schema label) into a Record
and back, for every task but KG (`_iepile_kg`).

    NER  {"人物": ["胡"]}
    RE   {"主演": [{"head": ..., "tail": ...}]}
    SPO  {"作者": [{"subject": ..., "object": ...}]}
    EET  {"组织关系-裁员": ["裁员"]}
    EE   {"组织关系-裁员": [{"trigger": ..., "arguments": {role: text | "NAN" | [texts]}}]}
    EEA  the same; a trigger may be "NAN" or absent, arguments may be {}

"NAN" (no such argument, no trigger) is never an anchored string: it is not sent to the
model and is written back where the schema's roles (or the meta) say it was.
"""

from __future__ import annotations

from typing import Any

from ..records import Argument, Event, Mention, Record, Relation
from . import _fields as fields
from . import iepile
from ._iepile_schema import entry_key

NAN = "NAN"
EVENT_TASKS = ("EE", "EET", "EEA")


def read_output(record: Record, task: str, output: dict[str, Any], schema: list[Any]) -> None:
    types = {e["predicate"]: (e.get("subject_type"), e.get("object_type"))
             for e in schema if isinstance(e, dict) and isinstance(e.get("predicate"), str)}
    for label, values in output.items():
        where = f"output[{label!r}]"
        for k, v in enumerate(fields.array(values, where)):
            at = f"{where}[{k}]"
            if task == "NER":
                if not isinstance(v, str):
                    raise ValueError(f"{where} must hold strings")
                record.mentions.append(Mention(label, v))
            elif task in EVENT_TASKS and isinstance(v, str):  # EET: the trigger alone
                record.events.append(Event(label, v))
            elif task in EVENT_TASKS:
                record.events.append(_event(record, label, fields.obj(v, at), at))
            else:
                v = fields.obj(v, at)
                head, tail = ("subject", "object") if "subject" in v else ("head", "tail")
                record.meta["keys"] = [head, tail]
                head_type, tail_type = types.get(label, (None, None))
                record.relations.append(Relation(
                    fields.string(v, head, at), label, fields.string(v, tail, at),
                    head_type if isinstance(head_type, str) else None,
                    tail_type if isinstance(tail_type, str) else None))


def _event(record: Record, label: str, value: dict[str, Any], where: str) -> Event:
    """One EE/EEA output value: {trigger, arguments: {role: value | NAN | [values]}}."""
    index = str(len(record.events))
    given = value.get("arguments")
    if given == {}:  # written back as {}, not as all-NAN
        record.meta.setdefault("empty_arguments", []).append(int(index))
    arguments = []
    for role, texts in fields.obj(given or {}, f"{where}.arguments").items():
        at = f"{where}.arguments[{role!r}]"
        for text in fields.strings(texts if isinstance(texts, list) else [texts], at):
            if text != NAN:
                arguments.append(Argument(role, text))
    trigger = fields.optional_string(value, "trigger", where)
    if trigger == NAN or "trigger" not in value:
        record.meta.setdefault("trigger_forms", {})[index] = \
            NAN if trigger == NAN else "absent"
    return Event(label, "" if trigger in (None, NAN) else trigger, arguments)


def _event_roles(schema: list[Any]) -> dict[str, list[str]]:
    return {e["event_type"]: e.get("arguments", []) for e in schema
            if isinstance(e, dict) and "event_type" in e}


def _event_value(record: Record, i: int, event: Event, roles: list[str]) -> Any:
    if record.task == "EET":
        return event.trigger
    empty = i in record.meta.get("empty_arguments", [])
    arguments: dict[str, Any] = {} if empty and not event.arguments else \
        {role: NAN for role in roles}
    for a in event.arguments:
        current = arguments.get(a.role, NAN)
        arguments[a.role] = a.text if current == NAN else (
            [*current, a.text] if isinstance(current, list) else [current, a.text])
    form = record.meta.get("trigger_forms", {}).get(str(i))
    value: dict[str, Any] = {}
    if event.trigger or form != "absent":
        # No trigger: "NAN" where it was read so, and in EEA (IEPile's converter writes it)
        value["trigger"] = event.trigger or (
            NAN if form == NAN or (form is None and record.task == "EEA") else "")
    value["arguments"] = arguments
    return value


def write_output(record: Record, schema: list[Any]) -> dict[str, Any]:
    """The output object: every schema label a key (in schema order), its values after."""
    output: dict[str, list[Any]] = {entry_key(e): [] for e in schema}
    if record.task not in EVENT_TASKS:  # an EEA record's mentions hold schema triggers
        for m in record.mentions:
            output.setdefault(m.label, []).append(m.text)
    head, tail = iepile.relation_keys(record)
    for r in record.relations:
        output.setdefault(r.relation, []).append({head: r.head, tail: r.tail})
    roles_of = _event_roles(schema)
    for i, e in enumerate(record.events):
        output.setdefault(e.type, []).append(_event_value(record, i, e, roles_of.get(e.type, [])))
    return output
