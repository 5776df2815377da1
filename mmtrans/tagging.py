"""The inline-tag strategy: anchored strings are marked inside the text, so they cannot be lost.

`<m1>東京</m1>は<m2>日本</m2>の首都` goes to the model, which translates it keeping the tags;
the strings are read back from the tags, so they occur in the translated text by construction.
Every anchored string (mention, relation head or tail, trigger, argument) refers to a tag;
strings at the same span share one. Nested spans nest their tags; crossing spans cannot be
tagged, and such a record falls back to the default strategy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import regex

from .checks import Problem
from .payload import reply_object, unparsable
from .records import Record, locate_mentions, map_anchored

TAG = regex.compile(r"<(/?)m(\d+)>")


@dataclass
class Tagged:
    text: str  # the source text with tags in it
    tag_of: dict[str, str]  # where (as in Record.anchored) -> tag id ("m1")


def _spans(record: Record) -> dict[str, tuple[int, int]] | None:
    """A span in the source text for every anchored string, or None if one cannot be found."""
    located = locate_mentions(record)
    spans: dict[str, tuple[int, int]] = {}
    by_string: dict[str, tuple[int, int]] = {}
    for i, m in enumerate(located.mentions):
        if m.start is None or m.end is None:
            return None
        spans[f"mentions[{i}]"] = (m.start, m.end)
        by_string.setdefault(m.text, (m.start, m.end))
    for where, s in record.anchored():
        if where in spans:
            continue
        if s not in by_string:
            start = record.text.find(s) if s else -1
            if start < 0:
                return None
            by_string[s] = (start, start + len(s))
        spans[where] = by_string[s]
    return spans


def tag(record: Record) -> Tagged | str:
    """The record's text with its anchored strings tagged, or why it cannot be tagged."""
    spans = _spans(record)
    if spans is None:
        return "an annotated string does not occur in the source text"
    ids: dict[tuple[int, int], str] = {}
    for span in sorted(set(spans.values()), key=lambda s: (s[0], -s[1])):
        ids[span] = f"m{len(ids) + 1}"
    open_spans: list[tuple[int, int]] = []
    for span in ids:  # in (start, -end) order: a parent comes before what it contains
        while open_spans and open_spans[-1][1] <= span[0]:
            open_spans.pop()
        if open_spans and span[1] > open_spans[-1][1]:
            return f"annotated strings cross at {span[0]}-{open_spans[-1][1]}: cannot nest tags"
        open_spans.append(span)
    opens: dict[int, list[str]] = {}
    closes: dict[int, list[str]] = {}
    for (start, end), tag_id in ids.items():
        opens.setdefault(start, []).append(tag_id)  # outer (longer) spans first
        closes.setdefault(end, []).insert(0, tag_id)  # inner spans close first
    out = []
    text = record.text
    for i in range(len(text) + 1):
        out.extend(f"</{t}>" for t in closes.get(i, []))
        out.extend(f"<{t}>" for t in opens.get(i, []))
        if i < len(text):
            out.append(text[i])
    return Tagged("".join(out), {where: ids[span] for where, span in spans.items()})


def untag(tagged_text: str, expected_ids: set[str]) -> tuple[str, dict[str, str], list[Problem]]:
    """Plain text, the text inside each tag, and a `format` problem per lost, invented,
    repeated or broken tag."""
    plain: list[str] = []
    starts: dict[str, int] = {}
    contents: dict[str, str] = {}
    stack: list[str] = []
    problems: list[Problem] = []
    pos = 0
    for m in TAG.finditer(tagged_text):
        plain.append(tagged_text[pos:m.start()])
        pos = m.end()
        tag_id = f"m{m.group(2)}"
        here = sum(map(len, plain))
        if not m.group(1):
            if tag_id in starts:
                problems.append(Problem("format", f"tag {tag_id} appears twice", tag_id))
            starts[tag_id] = here
            stack.append(tag_id)
        elif stack and stack[-1] == tag_id:
            stack.pop()
            text = "".join(plain)
            contents[tag_id] = text[starts[tag_id]:here]
        else:
            problems.append(Problem("format", f"</{tag_id}> closes a tag that is not open here",
                                    tag_id))
    plain.append(tagged_text[pos:])
    for tag_id in stack:
        problems.append(Problem("format", f"tag {tag_id} is not closed", tag_id))
    for tag_id in sorted(expected_ids - set(starts), key=lambda t: int(t[1:])):
        problems.append(Problem("format", f"tag {tag_id} was lost", tag_id))
    for tag_id in sorted(set(starts) - expected_ids, key=lambda t: int(t[1:])):
        problems.append(Problem("format", f"tag {tag_id} is not in the source", tag_id))
    return "".join(plain), contents, problems


def read_tagged(tagged_text: str, tagged: Tagged, expected: Record) -> tuple[Record | None,
                                                                            list[Problem]]:
    """The expected record with the translated text and every anchored string read from its
    tag, or None and the tag problems."""
    plain, contents, problems = untag(tagged_text, set(tagged.tag_of.values()))
    if problems:
        return None, problems
    record = map_anchored(expected, lambda where, s: contents[tagged.tag_of[where]])
    for m in record.mentions:
        m.start = m.end = None
    record.text = plain
    return record, []


def tagged_payload(tagged: Tagged) -> str:
    return json.dumps({"text": tagged.text}, ensure_ascii=False)


def parse_tagged_reply(reply: str, tagged: Tagged, expected: Record) -> tuple[Record | None,
                                                                              list[Problem]]:
    try:
        data = reply_object(reply)
    except ValueError as e:
        return None, unparsable(e)
    return read_tagged(data["text"], tagged, expected)
