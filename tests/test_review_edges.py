"""No request a client can send gives the review server a 500: any token a shell can pass
works for the page, its files and the API; bodies are capped however they arrive; odd
numbers and deep bodies are a 400. Sent over raw sockets and http.client to a real server,
so that no client library tidies the request first."""

from __future__ import annotations

import http.client
import json
import logging
import socket
from urllib.parse import urlsplit

import pytest

from mmtrans.review import page_url
from mmtrans.review.app import MAX_BODY

from .review_data import make_review_db
from .test_review_browser import browser  # noqa: F401 (fixture)


@pytest.fixture
def db(tmp_path, stockmark_items):
    return make_review_db(tmp_path, stockmark_items)


def connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def get(url: str, path: str, headers: dict[str, str] | None = None
        ) -> http.client.HTTPResponse:
    conn = connect(url)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.read()
    return response


@pytest.fixture
def server_errors(caplog):
    """The errors the served app logs (uvicorn logs every traceback it catches)."""
    caplog.set_level(logging.ERROR)
    return lambda: [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("token", ["a&b=c", "two words", "hash#tag", "plus+sign", "pässwörd",
                                   "100%"])
def test_the_printed_url_opens_the_page_and_its_files_with_any_token(db, serve, token):
    url = serve(db, token=token)
    port = urlsplit(url).port
    printed = urlsplit(page_url("127.0.0.1", port, token))
    path = f"{printed.path}?{printed.query}"
    page = get(url, path)
    assert page.status == 200, path
    cookie = page.getheader("set-cookie").split(";")[0]
    for asset in ("/app.js", "/style.css", "/api/queue"):
        assert get(url, asset, {"cookie": cookie}).status == 200, asset
    assert get(url, "/api/queue", {"cookie": "mmtrans_token=wrong"}).status == 401


@pytest.mark.parametrize("token", ["pässwörd", "密码 & #1"])  # Latin-1, and beyond it
def test_a_non_ascii_token_loads_the_page_and_its_queue_in_a_browser(db, serve, browser,  # noqa: F811
                                                                     token):
    url = serve(db, token=token)
    page = browser.new_page()
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto(page_url("127.0.0.1", urlsplit(url).port, token))
    page.wait_for_selector("#view:not([hidden])")
    assert page.locator("#queue-list li").count() == 3
    assert failed == []
    page.close()


def chunked_post(url: str, body: bytes, chunk: int = 64 * 1024) -> tuple[int, bytes]:
    """POST `body` in chunks of `chunk` bytes (no Content-Length), then read the answer (the
    server may answer and close before the body is all sent)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(b"POST /api/decision HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     % parts.netloc.encode())
        try:
            for at in range(0, len(body), chunk):
                piece = body[at:at + chunk]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sock.sendall(b"0\r\n\r\n")
        except OSError:  # the server answered and closed: what it said is still there
            pass
        answer = b""
        while data := sock.recv(65536):
            answer += data
    status = int(answer.split(b" ", 2)[1]) if answer else 0
    return status, answer


def test_a_chunked_body_over_the_cap_is_a_413_without_a_traceback(db, serve, server_errors):
    url = serve(db)
    status, answer = chunked_post(url, b"[" * (16 * MAX_BODY))
    assert status == 413, answer[:300]
    assert server_errors() == []
    assert get(url, "/api/config").status == 200  # the server goes on


def test_a_chunked_body_under_the_cap_reaches_the_api_whole(db, serve):
    body = json.dumps({"run": "r", "id": "nothing", "decision": "accept", "annotator": "ann",
                       "pad": "x" * (MAX_BODY // 2)}).encode()
    status, answer = chunked_post(serve(db), body)
    assert status == 404 and b"no record 'nothing'" in answer, answer[:300]


def post(url: str, body: bytes) -> tuple[int, bytes]:
    conn = connect(url)
    conn.request("POST", "/api/decision", body=body,
                 headers={"content-type": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def test_a_body_nested_100000_deep_is_a_400(db, serve, server_errors):
    url = serve(db)
    status, answer = post(url, b"[" * 100_000 + b"]" * 100_000)
    assert status == 400, answer
    status, answer = post(url, b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    assert status == 400, answer
    assert server_errors() == []


@pytest.mark.parametrize("path", [
    "/api/changes?since=99999999999999999999999,0", "/api/changes?since=0,9223372036854775808",
    "/api/changes?since=-1,0", "/api/changes?since=1", "/api/changes?since=%C2%B2,0",
    "/api/queue?limit=abc", "/api/queue?limit=99999999999999999999", "/api/queue?limit=0",
    "/api/queue?after=x", "/api/queue?after=2,r,1", "/api/queue?before=0,r,99999999999999999999",
    "/api/queue?q=" + "x" * 5000,
])
def test_numbers_no_row_can_hold_are_a_400(db, serve, server_errors, path):
    assert get(serve(db), path).status == 400
    assert server_errors() == []


@pytest.mark.parametrize("path", [
    "/%00", "/app.js%00", "/api/record?run=%00&id=%00", "/api/record", "/..%2f..%2fetc/passwd",
    "/api/queue?status=%FF&code=%00&q=%25_%5C&by=x", "/api/queue?after=0,r,5",
    "/api/queue?before=1,~,0&limit=1000", "/" + "a" * 4000,
])
def test_odd_requests_are_never_a_500(db, serve, server_errors, path):
    assert get(serve(db), path).status < 500
    assert server_errors() == []
