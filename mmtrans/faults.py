"""Model servers on 127.0.0.1 that fail the way real ones do, one form each, for tests.

`FaultServer("quota")` answers every chat request as OpenAI answers an account without
credit; `"hang"` accepts and never answers; `"drop"` sends its headers and closes the
connection mid-body; and so on (see FORMS). Each counts the chat requests it saw, so a test
can say how much a run spent before it stopped. Bodies are the ones the servers send:
OpenAI's documented error object, vLLM's `{"object": "error", ...}`, Ollama's OpenAI layer.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .testing import good_translation, record_payload


def openai_error(message: str, type_: str, code: str | None, param: str | None = None
                 ) -> dict[str, Any]:
    """OpenAI's error body: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


QUOTA = openai_error(
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors.",
    "insufficient_quota", "insufficient_quota")
RATE_LIMITED = openai_error(
    "Rate limit reached for gpt-4o-mini in organization org-x on requests per min (RPM): "
    "Limit 3, Used 3, Requested 1. Please try again in 1s.", "requests", "rate_limit_exceeded")
BAD_KEY = openai_error("Incorrect API key provided: sk-test. You can find your API key at "
                       "https://platform.openai.com/account/api-keys.",
                       "invalid_request_error", "invalid_api_key")
FORBIDDEN = openai_error("Country, region, or territory not supported", "request_forbidden",
                         "unsupported_country_region_territory")
OPENAI_NO_MODEL = openai_error("The model `nope` does not exist or you do not have access "
                               "to it.", "invalid_request_error", "model_not_found")
VLLM_NO_MODEL = {"object": "error", "message": "The model `nope` does not exist.",
                 "type": "NotFoundError", "param": None, "code": 404}
VLLM_OLD_NO_MODEL = {"object": "error", "message": "The model `nope` does not exist.",
                     "type": "BadRequestError", "param": None, "code": 400}
OLLAMA_NO_MODEL = {"error": {"message": 'model "nope" not found, try pulling it first',
                             "type": "not_found_error", "param": None, "code": None}}
LLAMACPP_NO_PATH = {"error": {"code": 404, "message": "File Not Found",
                              "type": "not_found_error"}}

#: Each form: the status and body a chat request gets, or the name of a misbehaviour done
#: on the socket ("hang", "drop", "close").
FORMS: dict[str, tuple[int, Any] | str] = {
    "empty": (200, b""),
    "null": (200, b"null"),
    "html": (200, b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "hang": "hang",
    "drop": "drop",
    "close": "close",
    "quota": (429, QUOTA),
    "rate-limit": (429, RATE_LIMITED),
    "unauthorized": (401, BAD_KEY),
    "forbidden": (403, FORBIDDEN),
    "openai-no-model": (404, OPENAI_NO_MODEL),
    "vllm-no-model": (404, VLLM_NO_MODEL),
    "vllm-old-no-model": (400, VLLM_OLD_NO_MODEL),
    "ollama-no-model": (404, OLLAMA_NO_MODEL),
    "no-such-path": (404, LLAMACPP_NO_PATH),
    "server-error": (500, openai_error("The server had an error while processing your "
                                       "request.", "server_error", None)),
}


class FaultServer:
    """`with FaultServer("drop") as server:` ... `server.base_url`, `server.requests`.

    `good_after`: requests answered with the fault before every later one gets a good
    translation (a 429 that passes, a fault that heals). `models`: what GET /v1/models
    lists (None: that route is a 404)."""

    def __init__(self, form: str, good_after: int | None = None,
                 models: list[str] | None = None, retry_after: str = "1"):
        if form not in FORMS:
            raise ValueError(f"unknown form {form!r}: one of {', '.join(FORMS)}")
        self.form = form
        self.good_after = good_after
        self.models = models if models is not None else ["fake"]
        self.retry_after = retry_after
        self.requests = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def send(self, status: int, body: Any, headers: dict[str, str] | None = None
                     ) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                html = data.startswith(b"<html")
                self.send_header("content-type", "text/html" if html else "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if fake.form == "hang":  # a hung server hangs on every route
                    fake.stopped.wait()
                    return
                if self.path.rstrip("/").endswith("/models") and fake.models is not None:
                    self.send(200, {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "test"}
                        for m in fake.models]})
                else:
                    self.send(404, LLAMACPP_NO_PATH)

            def do_POST(self) -> None:  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                with fake.lock:
                    fake.requests += 1
                    n = fake.requests
                if fake.good_after is not None and n > fake.good_after:
                    return self.send(200, good_answer(request))
                FAULTS[fake.form](self, fake)

        def hang(handler: Handler, fake: FaultServer) -> None:
            fake.stopped.wait()  # accepted, read, and never answered until the server stops

        def drop(handler: Handler, fake: FaultServer) -> None:
            handler.send_response(200)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", "4000")
            handler.end_headers()
            handler.wfile.write(b'{"id": "chatcmpl-1", "object": "chat.completion", "cho')
            handler.wfile.flush()
            _close(handler)

        def close(handler: Handler, fake: FaultServer) -> None:
            _close(handler)  # no status line at all

        def answer(handler: Handler, fake: FaultServer) -> None:
            status, body = FORMS[fake.form]  # type: ignore[misc]
            headers = {"retry-after": fake.retry_after} if status == 429 else {}
            handler.send(status, body, headers)

        FAULTS: dict[str, Callable[[Handler, FaultServer], None]] = {
            "hang": hang, "drop": drop, "close": close}
        for form in FORMS:
            FAULTS.setdefault(form, answer)
        return Handler

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    """A client that gives up (a timeout, a run that stopped) resets its connection: no
    traceback for that on the test's output."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _close(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True
    with contextlib.suppress(OSError):  # the client may have gone first
        handler.connection.shutdown(socket.SHUT_RDWR)


def good_answer(request: dict[str, Any]) -> dict[str, Any]:
    """A chat completion holding the scripted translator's good translation."""
    payload = record_payload(request)
    content = json.dumps(good_translation(payload) if payload else {}, ensure_ascii=False)
    return {"id": "chatcmpl-good", "object": "chat.completion", "created": 0,
            "model": request.get("model", "fake"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


def closed_port_url() -> str:
    """The URL of a port on 127.0.0.1 that nothing listens on (a dead server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
