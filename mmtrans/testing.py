"""An OpenAI-compatible chat-completions server on 127.0.0.1 with scripted answers.

For tests and benchmarks: real HTTP through the real openai client, while the caller chooses,
per request, what the "model" answers (a good translation, one with a defect, a 429, a 500,
a slow answer). The scripted
translator is deterministic: each annotated string becomes a made-up target-language name,
and the sentence is built around them, so every defect is one the test put there on purpose.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .checks import numbers_in

EN_NAMES = ["Alder", "Birch", "Cedar", "Dogwood", "Elm", "Fir", "Ginkgo", "Hazel", "Ivy",
            "Juniper", "Kapok", "Larch", "Maple", "Nutmeg", "Oak", "Pine"]
ZH_NAMES = "松柏杉桦榆槐桂梅竹兰菊荷桃李杏枫"
JA_NAMES = ["サクラ", "カエデ", "ツバキ", "ヒノキ", "スギ", "マツ", "ウメ", "モモ", "キク", "ハス",
            "フジ", "ユリ", "ケヤキ", "クリ", "カシ", "ナシ"]


def name_for(s: str, tgt: str) -> str:
    """A stable made-up translation of the source string `s`."""
    h = int(hashlib.sha256(s.encode()).hexdigest(), 16)
    if tgt == "zh":
        return ZH_NAMES[h % 16] + ZH_NAMES[(h >> 4) % 16] + "公司"
    if tgt == "ja":
        return JA_NAMES[h % 16] + JA_NAMES[(h >> 4) % 16] + str(h % 97)
    return f"{EN_NAMES[h % 16]} {EN_NAMES[(h >> 4) % 16]}{h % 97}"


def _sentence(names: list[str], tgt: str, source: str = "") -> str:
    """A sentence about `names` that keeps the source's numbers, as a translation must."""
    numbers = numbers_in(source)
    tail = f" ({', '.join(numbers)})" if numbers else ""
    if tgt == "zh":
        return ("这是一篇关于" + "、".join(names or ["城市"]) + "的报道，来自市立图书馆的档案"
                + tail + "。")
    if tgt == "ja":
        return ("これは" + "、".join(names or ["町"])
                + "についての報告で、市立図書館の記録によるものです" + tail + "。")
    return ("This is a report about " + ", ".join(names or ["the city"])
            + " from the archive of the city library and its many readers" + tail + ".")


_TAGGED = re.compile(r"<(m\d+)>(.*?)</\1>", re.S)


def _render_tags(tagged: str, tgt: str) -> list[str]:
    """Each top-level tag of `tagged` with a made-up translation inside, nesting kept."""
    out = []
    for m in _TAGGED.finditer(tagged):
        inner = m.group(2)
        children = _render_tags(inner, tgt)
        rest = _TAGGED.sub("", inner)
        body = " ".join(children + ([name_for(rest, tgt)] if rest.strip() else []))
        out.append(f"<{m.group(1)}>{body}</{m.group(1)}>")
    return out


def good_translation(payload: dict[str, Any], tgt: str = "en") -> dict[str, Any]:
    """A translation that passes every check, for the default or the tagged payload: every
    annotated string becomes a made-up name, and the sentence is built around them."""
    if "entities" not in payload and "relations" not in payload and "events" not in payload:
        tagged = _render_tags(payload["text"], tgt)
        return {"text": _sentence(tagged, tgt, re.sub(r"</?m\d+>", " ", payload["text"]))}
    out: dict[str, Any] = {}
    names: list[str] = []

    def name(s: str) -> str:
        translated = name_for(s, tgt)
        if translated not in names:
            names.append(translated)
        return translated

    if "entities" in payload:
        out["entities"] = [{"label": e["label"], "text": name(e["text"])}
                           for e in payload["entities"]]
    if "relations" in payload:
        out["relations"] = [{"head": name(r["head"]), "relation": r["relation"],
                             "tail": name(r["tail"])} for r in payload["relations"]]
    if "events" in payload:
        out["events"] = [{"type": e["type"], "trigger": name(e["trigger"]) if e["trigger"] else "",
                          "arguments": [{"role": a["role"], "text": name(a["text"])}
                                        for a in e["arguments"]]}
                         for e in payload["events"]]
    return {"text": _sentence(names, tgt, payload.get("text", "")), **out}


@dataclass
class Reply:
    content: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: dict[str, Any] | None = None
    usage: dict[str, int] | None = None
    #: Bytes sent as they are (an HTML error page, `null`, a truncated body), with this type.
    raw: bytes | None = None
    content_type: str = "application/json"


Script = Callable[[dict[str, Any], dict[str, Any]], Reply]


def record_payload(request: dict[str, Any]) -> dict[str, Any]:
    """The record being translated: the JSON in the fourth message (after the one-shot);
    empty for requests of another shape (label suggestions)."""
    messages = request["messages"]
    if len(messages) < 4 or "{" not in messages[3]["content"]:
        return {}
    content = messages[3]["content"]
    return json.loads(content[content.index("{"):])


def translating(tgt: str = "en") -> Script:
    def script(payload: dict[str, Any], request: dict[str, Any]) -> Reply:
        return Reply(json.dumps(good_translation(payload, tgt), ensure_ascii=False))
    return script


class FakeLLM:
    """Start with `with FakeLLM() as llm:`; `llm.base_url` goes to --base-url."""

    def __init__(self, script: Script | None = None):
        self.script: Script = script or translating("en")
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                request = json.loads(self.rfile.read(length))
                with fake.lock:
                    fake.requests.append(request)
                reply = fake.script(record_payload(request), request)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status == 200:
                    body = reply.body or {
                        "id": "chatcmpl-test", "object": "chat.completion", "created": 0,
                        "model": request.get("model", "fake"),
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": reply.content}}],
                        "usage": reply.usage or {"prompt_tokens": 100, "completion_tokens": 20,
                                                 "total_tokens": 120},
                    }
                else:
                    body = reply.body or {"error": {"message": f"scripted {reply.status}",
                                                    "type": "test"}}
                data = reply.raw if reply.raw is not None else \
                    json.dumps(body, ensure_ascii=False).encode()
                self.send_response(reply.status)
                self.send_header("content-type", reply.content_type)
                self.send_header("content-length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def texts(self) -> list[str]:
        """The source texts of every request received, in order."""
        with self.lock:
            return [record_payload(r)["text"] for r in self.requests]
