"""Checked access to the fields of one input item, for every reader.

Each helper returns the value with the type the reader relies on, or raises ValueError
naming where in the item it is wrong: so a malformed item becomes a Reject that says what
to fix, never a crash deeper in the run.
"""

from __future__ import annotations

from typing import Any


def obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be an object, got {_kind(value)}")
    return value


def array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list, got {_kind(value)}")
    return value


def string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{where} needs a string '{key}', got {_kind(value)}")
    return value


def optional_string(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{where}.{key} must be a string or null, got {_kind(value)}")
    return value


def strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ValueError(f"{where} must be a list of strings, got {_kind(value)}")
    return value


def span(value: Any, where: str) -> tuple[int | None, int | None]:
    """`[start, end]` character offsets; absent or null means unknown (found again on writing)."""
    if value is None or value == []:
        return None, None
    if not isinstance(value, list) or len(value) != 2 or \
            not all(x is None or (isinstance(x, int) and not isinstance(x, bool)) for x in value):
        raise ValueError(f"{where} must be [start, end] offsets, got {value!r}"[:200])
    return value[0], value[1]


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"{type(value).__name__} {value!r}"[:60])
