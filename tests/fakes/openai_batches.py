"""OpenAI's Files and Batches endpoints on 127.0.0.1, written from OpenAI's API reference and
Batch guide (not from mmtrans's code), with the faults a real client meets.

Sources: the API reference's Batch and Files pages (platform.openai.com/docs/api-reference/
batch and .../files: the batch object, "the per-line object of the batch output and error
files", list batches), the Batch guide (platform.openai.com/docs/guides/batch: statuses,
expiry, the error file), and the types openai-python generates from OpenAI's OpenAPI spec
(openai/types/batch.py, batch_error.py, batch_request_counts.py).

What the documentation says, and this fake does:
- `POST /v1/files` (multipart, `purpose=batch`) stores a JSONL file and answers a file object
  (`id`, `object: "file"`, `bytes`, `created_at`, `filename`, `purpose`);
  `GET /v1/files/{id}/content` gives its bytes back.
- `POST /v1/batches` (`input_file_id`, `endpoint`, `completion_window: "24h"`, `metadata`)
  answers a batch object: `id`, `object: "batch"`, `endpoint`, `input_file_id`,
  `completion_window`, `status`, `output_file_id`, `error_file_id`, `errors`
  (`{"object": "list", "data": [{"code", "message", "param", "line"}]}` or null),
  `request_counts` (`total`, `completed`, `failed`), `created_at` and one timestamp per
  state reached (`in_progress_at`, `finalizing_at`, `completed_at`, `failed_at`, `expired_at`,
  `cancelling_at`, `cancelled_at`), `expires_at`, `metadata`.
- Status lifecycle: `validating` -> `in_progress` -> `finalizing` -> `completed`; `failed`
  when the input file does not validate (with `errors.data`, no output); `expired` when the
  24 h window runs out (answered lines in the output file, the rest in the error file with
  `error.code = "batch_expired"`); `cancelling` -> `cancelled` after `POST .../cancel`.
- The output file holds the lines of requests that succeeded, the error file those that did
  not; every line is `{"id", "custom_id", "response": {"status_code", "request_id", "body"},
  "error"}` (`response` null and `error` `{"code", "message"}` for a request never answered).
  Lines come in any order: a client matches them by `custom_id`.
- `POST /v1/chat/completions` answers online (full price), as the same organisation would.
- `GET /v1/batches?after=<id>&limit=<n>` lists the organisation's batches newest first, `limit`
  1 to 100 (default 20): `{"object": "list", "data", "first_id", "last_id", "has_more"}`.

Faults, set on the instance before (or between) calls:
- `drop_create_answers = n`: the next n `batches.create` make their batch, then close the
  connection without answering (the client sees a dropped connection).
- `fail_creates = n`: the next n creates answer HTTP 500 and make nothing.
- `hold_creates = True`: a create makes its batch, sets `create_arrived`, and waits for
  `release_creates` before answering (a client killed meanwhile never hears of it).
- `fail_lines = {i, ...}`: those input lines (0-based) get HTTP 500 answers: error file.
- `truncate_output_lines = {i, ...}`: those lines of the output file are cut in half.
- `expire_after = n`: the window runs out after n lines; status `expired`.
- `invalid = [{"code", "message", "param", "line"}, ...]`: validation fails with these errors
  (a line that is not a documented request line fails it too).
- `polls_to_finish = n`: a batch reaches its final state on its n-th retrieve (default 1; 3
  walks through `in_progress` and `finalizing` on the way).
- `add_foreign_batches(n)`: batches of the organisation that are not the client's (to make the
  listing span pages).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mmtrans.testing import good_translation, record_payload

ENDPOINTS = {"/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/responses"}
FINAL = {"completed", "failed", "expired", "cancelled"}


def _id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


class FakeOpenAIBatches:
    """The Files and Batches API of one organisation; `base_url` is what a client is given."""

    def __init__(self, tgt: str = "en") -> None:
        self.tgt = tgt
        self.lock = threading.Lock()
        self.files: dict[str, dict[str, Any]] = {}
        #: Every batch, oldest first (the listing reverses it).
        self.batches: dict[str, dict[str, Any]] = {}
        #: Ids of the batches `POST /v1/batches` made, in order (foreign ones left out).
        self.created: list[str] = []
        self.create_calls = 0
        #: Requests answered online (`POST /v1/chat/completions`), at full price.
        self.online_requests = 0
        #: Query of every `GET /v1/batches` (to see the client page through).
        self.list_calls: list[dict[str, list[str]]] = []
        self._lines: dict[str, list[dict[str, Any]]] = {}
        self._polls: dict[str, int] = {}
        # faults
        self.drop_create_answers = 0
        self.hold_creates = False
        self.fail_creates = 0
        self.create_arrived = threading.Event()
        self.release_creates = threading.Event()
        self.fail_lines: set[int] = set()
        self.truncate_output_lines: set[int] = set()
        self.expire_after: int | None = None
        self.invalid: list[dict[str, Any]] | None = None
        self.polls_to_finish = 1
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def send(self, status: int, body: Any = None, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/octet-stream" if raw is not None
                                 else "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def refuse(self, status: int, message: str, param: str | None = None) -> None:
                self.send(status, {"error": {"message": message, "type": "invalid_request_error",
                                             "param": param, "code": None}})

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if not self.headers.get("authorization", "").startswith("Bearer "):
                    return self.refuse(401, "You didn't provide an API key.")
                path = urlsplit(self.path).path.rstrip("/")
                if path == "/v1/files":
                    return self.send(200, fake.upload(self.headers["content-type"], body))
                if path == "/v1/batches":
                    return self.create(json.loads(body or b"{}"))
                if path == "/v1/chat/completions":  # the same organisation, online
                    with fake.lock:
                        fake.online_requests += 1
                    return self.send(200, fake.completion({"body": json.loads(body)}))
                if path.startswith("/v1/batches/") and path.endswith("/cancel"):
                    batch = fake.cancel(path.split("/")[-2])
                    return self.send(200, batch) if batch else self.refuse(404, "No such batch")
                return self.refuse(404, f"Invalid URL (POST {path})")

            def create(self, request: dict[str, Any]) -> None:
                if request.get("input_file_id") not in fake.files:
                    return self.refuse(400, "No such file", "input_file_id")
                if request.get("endpoint") not in ENDPOINTS:
                    return self.refuse(400, "Invalid endpoint", "endpoint")
                if request.get("completion_window") != "24h":
                    return self.refuse(400, "Invalid completion_window", "completion_window")
                with fake.lock:
                    fake.create_calls += 1
                    refuse = fake.fail_creates > 0
                    fake.fail_creates -= refuse
                if refuse:  # nothing made
                    return self.send(500, {"error": {
                        "message": "The server had an error while processing your request.",
                        "type": "server_error", "param": None, "code": None}})
                with fake.lock:
                    batch = fake.new_batch(request)
                    fake.created.append(batch["id"])
                    drop = fake.drop_create_answers > 0
                    fake.drop_create_answers -= drop
                if drop:  # the batch exists; its answer never reaches the client
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fake.hold_creates:
                    fake.create_arrived.set()
                    fake.release_creates.wait(60)
                try:
                    self.send(200, batch)
                except OSError:  # the client is gone
                    self.close_connection = True

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                parts = url.path.rstrip("/").split("/")
                if parts[1:3] == ["v1", "files"] and len(parts) == 5 and parts[4] == "content":
                    file = fake.files.get(parts[3])
                    return self.send(200, raw=file["content"]) if file else \
                        self.refuse(404, "No such file")
                if parts[1:3] == ["v1", "files"] and len(parts) == 4:
                    file = fake.files.get(parts[3])
                    return self.send(200, fake.file_object(parts[3])) if file else \
                        self.refuse(404, "No such file")
                if parts[1:] == ["v1", "batches"]:
                    query = parse_qs(url.query)
                    fake.list_calls.append(query)
                    return self.send(200, fake.listing(query))
                if parts[1:3] == ["v1", "batches"] and len(parts) == 4:
                    batch = fake.retrieve(parts[3])
                    return self.send(200, batch) if batch else self.refuse(404, "No such batch")
                return self.refuse(404, f"Invalid URL (GET {url.path})")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- files -----------------------------------------------------------------------------

    def upload(self, content_type: str, body: bytes) -> dict[str, Any]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"content-type: " + content_type.encode() + b"\r\n\r\n" + body)
        fields = {part.get_param("name", header="content-disposition"): part
                  for part in message.iter_parts()}
        file_id = _id("file-")
        with self.lock:
            self.files[file_id] = {
                "content": fields["file"].get_payload(decode=True),
                "filename": fields["file"].get_filename() or "upload.jsonl",
                "purpose": fields["purpose"].get_payload(decode=True).decode(),
                "created_at": int(time.time())}
        return self.file_object(file_id)

    def file_object(self, file_id: str) -> dict[str, Any]:
        file = self.files[file_id]
        return {"id": file_id, "object": "file", "bytes": len(file["content"]),
                "created_at": file["created_at"], "filename": file["filename"],
                "purpose": file["purpose"], "status": "processed"}

    def _store_file(self, lines: list[str], purpose: str) -> str | None:
        if not lines:
            return None
        file_id = _id("file-")
        self.files[file_id] = {"content": "".join(lines).encode(), "purpose": purpose,
                               "filename": f"{purpose}.jsonl", "created_at": int(time.time())}
        return file_id

    # -- batches ---------------------------------------------------------------------------

    def new_batch(self, request: dict[str, Any]) -> dict[str, Any]:
        created = int(time.time())
        batch = {"id": _id("batch_"), "object": "batch", "endpoint": request["endpoint"],
                 "errors": None, "input_file_id": request["input_file_id"],
                 "completion_window": request["completion_window"], "status": "validating",
                 "output_file_id": None, "error_file_id": None, "created_at": created,
                 "in_progress_at": None, "expires_at": created + 86400, "finalizing_at": None,
                 "completed_at": None, "failed_at": None, "expired_at": None,
                 "cancelling_at": None, "cancelled_at": None,
                 "request_counts": {"total": 0, "completed": 0, "failed": 0},
                 "metadata": request.get("metadata")}
        self.batches[batch["id"]] = batch
        self._polls[batch["id"]] = 0
        return batch

    def add_foreign_batches(self, n: int) -> None:
        """Batches someone else in the organisation made (finished, of files of theirs)."""
        with self.lock:
            for _ in range(n):
                file_id = self._store_file(['{"custom_id": "x"}\n'], "batch")
                batch = self.new_batch({"endpoint": "/v1/embeddings", "input_file_id": file_id,
                                        "completion_window": "24h"})
                batch.update(status="completed", completed_at=batch["created_at"])

    def retrieve(self, batch_id: str) -> dict[str, Any] | None:
        """A batch as it stands; each retrieve moves an unfinished one a step on."""
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            if batch["status"] not in FINAL:
                self._polls[batch_id] += 1
                self._advance(batch)
            return dict(batch)

    def _advance(self, batch: dict[str, Any]) -> None:
        now = int(time.time())
        if batch["status"] == "cancelling":
            batch.update(status="cancelled", cancelled_at=now)
            return
        if self._polls[batch["id"]] < self.polls_to_finish:
            step = {"validating": "in_progress", "in_progress": "finalizing"}
            if batch["status"] in step:
                batch["status"] = step[batch["status"]]
                batch[f"{batch['status']}_at"] = now
                lines = self.files[batch["input_file_id"]]["content"].splitlines()
                batch["request_counts"] = {"total": len(lines), "completed": 0, "failed": 0}
            return
        self._finish(batch)

    def _validate(self, content: bytes, endpoint: str) -> tuple[list[dict[str, Any]],
                                                                 list[dict[str, Any]]]:
        """The request lines of an input file, and the documented errors of those that are
        not request lines (1-based line numbers)."""
        requests, errors, seen = [], [], set()
        for n, text in enumerate(content.decode("utf-8", "replace").splitlines(), 1):
            try:
                line = json.loads(text)
                ok = (isinstance(line, dict) and isinstance(line.get("custom_id"), str)
                      and line.get("method") == "POST" and isinstance(line.get("body"), dict))
            except json.JSONDecodeError:
                ok = False
            if not ok:
                errors.append({"code": "invalid_json_line", "line": n, "param": None,
                               "message": "This line is not parseable as valid JSON."})
            elif line["url"] != endpoint:
                errors.append({"code": "mismatched_endpoint", "line": n, "param": "url",
                               "message": f"The endpoint of this request ({line['url']}) does "
                                          f"not match the batch's ({endpoint})."})
            elif line["custom_id"] in seen:
                errors.append({"code": "duplicate_custom_id", "line": n, "param": "custom_id",
                               "message": "The custom_id for this request is a duplicate."})
            else:
                seen.add(line["custom_id"])
                requests.append(line)
        return requests, errors

    def _finish(self, batch: dict[str, Any]) -> None:
        now = int(time.time())
        requests, errors = self._validate(self.files[batch["input_file_id"]]["content"],
                                          batch["endpoint"])
        errors += self.invalid or []
        if errors:
            batch.update(status="failed", failed_at=now,
                         errors={"object": "list", "data": errors})
            return
        answered, failed = [], []
        for n, request in enumerate(requests):
            line = {"id": _id("batch_req_"), "custom_id": request["custom_id"]}
            if self.expire_after is not None and n >= self.expire_after:
                failed.append({**line, "response": None, "error": {
                    "code": "batch_expired", "message": "This request could not be executed "
                                                        "before the completion window expired."}})
            elif n in self.fail_lines:
                failed.append({**line, "response": {
                    "status_code": 500, "request_id": _id("req_"),
                    "body": {"error": {"message": "The server had an error while processing "
                                                  "your request.", "type": "server_error",
                                       "param": None, "code": None}}}, "error": None})
            else:
                answered.append({**line, "response": {
                    "status_code": 200, "request_id": _id("req_"),
                    "body": self.completion(request)}, "error": None})
        output = [json.dumps(line, ensure_ascii=False) for line in answered]
        output = [text[:len(text) // 2] if i in self.truncate_output_lines else text
                  for i, text in enumerate(output)]
        expired = self.expire_after is not None and self.expire_after < len(requests)
        batch.update(
            status="expired" if expired else "completed",
            **({"expired_at": now} if expired else {"finalizing_at": now, "completed_at": now}),
            in_progress_at=batch["in_progress_at"] or now,
            output_file_id=self._store_file([t + "\n" for t in output], "batch_output"),
            error_file_id=self._store_file(
                [json.dumps(line, ensure_ascii=False) + "\n" for line in failed],
                "batch_output"),
            request_counts={"total": len(requests), "completed": len(answered),
                            "failed": len(failed)})
        self._lines[batch["id"]] = answered + failed

    def completion(self, request: dict[str, Any]) -> dict[str, Any]:
        """A chat completion answering one request line with the scripted translator."""
        content = json.dumps(good_translation(record_payload(request["body"]), self.tgt),
                             ensure_ascii=False)
        return {"id": _id("chatcmpl-"), "object": "chat.completion", "created": 0,
                "model": request["body"]["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}

    def cancel(self, batch_id: str) -> dict[str, Any] | None:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return None
            if batch["status"] not in FINAL:
                batch.update(status="cancelling", cancelling_at=int(time.time()))
            return dict(batch)

    def listing(self, query: dict[str, list[str]]) -> dict[str, Any]:
        limit = max(1, min(100, int(query.get("limit", ["20"])[0])))
        with self.lock:
            newest_first = list(reversed(self.batches.values()))
        after = query.get("after", [None])[0]
        if after is not None:
            ids = [b["id"] for b in newest_first]
            newest_first = newest_first[ids.index(after) + 1:] if after in ids else []
        page = [dict(b) for b in newest_first[:limit]]
        return {"object": "list", "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(newest_first) > limit}

    # -- what the tests read ---------------------------------------------------------------

    def requests_paid(self) -> int:
        """Request lines of every batch the client made that ran (validated): what the
        organisation is billed for, counting a request in two batches twice."""
        return sum(self.batches[b]["request_counts"]["total"] for b in self.created
                   if self.batches[b]["status"] != "failed") + sum(
            len(self._validate(self.files[self.batches[b]["input_file_id"]]["content"],
                               self.batches[b]["endpoint"])[0])
            for b in self.created if self.batches[b]["status"] not in FINAL)

    def custom_ids(self, batch_id: str) -> list[str]:
        """The custom_ids a batch's input file holds."""
        batch = self.batches[batch_id]
        return [r["custom_id"] for r in self._validate(
            self.files[batch["input_file_id"]]["content"], batch["endpoint"])[0]]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAIBatches:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release_creates.set()
        self.server.shutdown()
        self.server.server_close()
