"""What `vllm run-batch -i requests.jsonl -o results.jsonl` writes, in both of vLLM's line
shapes, from vLLM's own `vllm/entrypoints/openai/run_batch.py` and `protocol.py`:

- current (`BatchRequestOutput.response` is a `BatchResponseData`): an answer is
  `{"id": "vllm-...", "custom_id", "response": {"status_code": 200, "request_id":
  "vllm-batch-...", "body": <chat completion>}, "error": null}`; a request that failed is
  `{"response": {"status_code": 400, "request_id", "body": null}, "error": "<message>"}`
  (`make_error_request_output`).
- older (vLLM 0.4.x, `response: Optional[ChatCompletionResponse]`): `response` is the chat
  completion itself, with no status code and no body; a failed request has `response` null
  and `error` the server's `ErrorResponse` (`{"object": "error", "message", "type", "param",
  "code"}`).

Every request of the input file gets one line, in input order; answers come from the
scripted translator.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from mmtrans.testing import good_translation, record_payload


def _completion(request: dict[str, Any], tgt: str) -> dict[str, Any]:
    content = json.dumps(good_translation(record_payload(request["body"]), tgt),
                         ensure_ascii=False)
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": 0,
            "model": request["body"]["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": content,
                                     "tool_calls": []}, "stop_reason": None}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


def run_batch(requests: Path, results: Path, shape: str = "current",
              fail: set[int] = frozenset(), tgt: str = "en") -> None:
    """Answer every line of `requests` into `results` as vLLM does; lines in `fail`
    (0-based) fail. `shape`: "current" or "older"."""
    lines = []
    for n, text in enumerate(requests.read_text(encoding="utf-8").splitlines()):
        request = json.loads(text)
        assert (request["method"], request["url"]) == ("POST", "/v1/chat/completions")
        line: dict[str, Any] = {"id": f"vllm-{uuid.uuid4().hex}",
                                "custom_id": request["custom_id"]}
        request_id = f"vllm-batch-{uuid.uuid4().hex}"
        if shape == "current":
            line.update(
                {"response": {"status_code": 400, "request_id": request_id, "body": None},
                 "error": "The model does not support Chat Completions API"} if n in fail else
                {"response": {"status_code": 200, "request_id": request_id,
                              "body": _completion(request, tgt)}, "error": None})
        elif shape == "older":
            line.update(
                {"response": None, "error": {"object": "error", "message": "bad request",
                                             "type": "BadRequestError", "param": None,
                                             "code": 400}} if n in fail else
                {"response": _completion(request, tgt), "error": None})
        else:
            raise ValueError(f"shape {shape!r}: current or older")
        lines.append(json.dumps(line, ensure_ascii=False))
    results.write_text("\n".join(lines) + "\n", encoding="utf-8")
