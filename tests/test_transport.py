"""The aiohttp transport under the run's OpenAI client (mmtrans/transport.py), against real
servers on 127.0.0.1: each way a server fails arrives as the httpx2 error that names it (llm.py
tells a dead server, a silent one and a dropped connection apart by these), answers arrive
byte for byte, and the limiter's hook hears each request once, when it is written."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import threading
from collections.abc import Callable, Iterator

import httpx2
import pytest
import yarl

from mmtrans.faults import FaultServer, closed_port_url
from mmtrans.transport import AiohttpTransport


def fetch(url: str, *, timeout: float = 5.0, on_sent: Callable[[], None] | None = None,
          times: int = 1, pause: float = 0.0, **request: object) -> list[httpx2.Response]:
    """POST `url` `times` times in turn through one transport (one connection pool)."""
    async def run() -> list[httpx2.Response]:
        transport = AiohttpTransport(on_sent=on_sent)
        async with httpx2.AsyncClient(transport=transport, timeout=timeout) as client:
            answers = []
            for _ in range(times):
                answers.append(await client.post(url, **request))  # type: ignore[arg-type]
                await asyncio.sleep(pause)
            return answers

    return asyncio.run(run())


@contextlib.contextmanager
def raw_server(answer: Callable[[socket.socket], None],
               seen: list[tuple[bytes, bytes]] | None = None) -> Iterator[str]:
    """A server that reads each request's head and body (by its content-length; both kept
    in `seen`), lets `answer` write to the socket whatever it likes and closes the
    connection; its URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                if seen is not None:
                    seen.append((head, body))
                answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1/chat/completions"
    finally:
        stop.set()
        listener.close()


# -- each failure is the httpx2 error that names it -------------------------------------------


def test_a_refused_connection_is_a_connect_error():
    with pytest.raises(httpx2.ConnectError):
        fetch(closed_port_url() + "/chat/completions", json={})


def test_a_server_that_hangs_up_before_answering_is_a_remote_protocol_error():
    """(The SDK's bundled aiohttp transport calls this a ConnectTimeout: a dead server.)"""
    with FaultServer("close") as server, pytest.raises(httpx2.RemoteProtocolError):
        fetch(server.base_url + "/chat/completions", json={})


def test_an_answer_cut_off_mid_body_is_a_read_error():
    with FaultServer("drop") as server, pytest.raises(httpx2.ReadError):
        fetch(server.base_url + "/chat/completions", json={})


def test_a_server_that_never_answers_is_a_read_timeout():
    with FaultServer("hang") as server, pytest.raises(httpx2.ReadTimeout):
        fetch(server.base_url + "/chat/completions", json={}, timeout=0.3)


def test_an_answer_that_is_not_http_is_a_remote_protocol_error():
    with raw_server(lambda conn: conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")) as url, \
            pytest.raises(httpx2.RemoteProtocolError):
        fetch(url, json={})


# -- answers arrive as sent ----------------------------------------------------------------


def test_a_gzipped_answer_is_decoded_and_repeated_headers_are_all_kept():
    body = gzip.compress(b'{"ok": true}')

    def answer(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                     b"content-encoding: gzip\r\nx-ratelimit-limit-requests: 600\r\n"
                     b"x-seen: one\r\nx-seen: two\r\n"
                     b"content-length: " + str(len(body)).encode() + b"\r\n"
                     b"connection: close\r\n\r\n" + body)

    with raw_server(answer) as url:
        [response] = fetch(url, json={})
    assert response.json() == {"ok": True}
    assert response.headers.get_list("x-seen") == ["one", "two"]
    assert response.headers["x-ratelimit-limit-requests"] == "600"


def test_a_streamed_body_such_as_a_file_upload_is_sent_whole():
    seen: list[tuple[bytes, bytes]] = []

    async def chunks():  # a body httpx2 has not read, sent chunked: what an upload sends
        for part in (b"line one\n", b"line two\n"):
            yield part

    def answer(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")

    with raw_server(answer, seen) as url:
        [response] = fetch(url, content=chunks())
    assert response.status_code == 200
    assert [body for _, body in seen] == [b"line one\nline two\n"]


def test_the_url_goes_as_the_sdk_built_it():
    """A deployment path with an escaped slash, and a query with an escaped one (a key or a
    signature in the URL, as some gateways take it): aiohttp's URL class, given the URL as
    text, would unescape the query's %2F and %41."""
    seen: list[tuple[bytes, bytes]] = []

    def answer(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")

    with raw_server(answer, seen) as url:
        base = url.removesuffix("/v1/chat/completions")
        fetch(base + "/openai/deployments/a%2Fb/chat/completions?api-version=2024-10-21"
              "&sig=k%2Fx%41", json={})
    request_line = seen[0][0].split(b"\r\n")[0]
    assert request_line == (b"POST /openai/deployments/a%2Fb/chat/completions"
                            b"?api-version=2024-10-21&sig=k%2Fx%41 HTTP/1.1")


def test_a_keep_alive_connection_the_server_closed_while_idle_is_not_an_error():
    """Servers close idle connections after a while (uvicorn after 5 s): the next request
    goes on a new one instead of failing on the closed one."""
    def answer(conn: socket.socket) -> None:  # keep-alive, then hang up at once while idle
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")

    with raw_server(answer) as url:
        answers = fetch(url, json={}, times=3, pause=0.2)
    assert [a.status_code for a in answers] == [200, 200, 200]


def test_a_request_the_server_read_and_then_dropped_is_not_sent_again():
    """The server answers one request, then reads the next on the same kept-alive
    connection and hangs up without answering (it crashed, or a balancer cut it): the
    request may have been taken, so it is not sent again here (the run retries it, and
    counts the drop; aiohttp, too, resends only idempotent requests)."""
    seen: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            for n in range(2):
                data = b""
                while b"}" not in data:
                    data += conn.recv(65536)
                seen.append(data.rsplit(b"\r\n\r\n", 1)[-1])
                if n == 0:
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        try:  # a second connection, were the request sent again
            conn, _ = listener.accept()
            with conn:
                seen.append(conn.recv(65536).rsplit(b"\r\n\r\n", 1)[-1])
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/chat/completions"

    async def run() -> None:
        async with httpx2.AsyncClient(transport=AiohttpTransport()) as client:
            await client.post(url, json={"n": "first"})
            await client.post(url, json={"n": "charge-me"})

    with pytest.raises(httpx2.RemoteProtocolError):
        asyncio.run(run())
    listener.close()
    assert seen == [b'{"n":"first"}', b'{"n":"charge-me"}']


def test_a_server_that_stops_taking_the_body_is_a_timeout_not_a_hang():
    """aiohttp has no write timeout: a bound on the whole request stands for it."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]),
                     daemon=True).start()  # accepts, never reads
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/chat/completions"

    async def run() -> None:
        async with httpx2.AsyncClient(transport=AiohttpTransport(), timeout=1.0) as client:
            await asyncio.wait_for(client.post(url, content=b"x" * 32_000_000), 15)

    try:
        with pytest.raises(httpx2.TimeoutException):
            asyncio.run(run())
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


# -- the limiter hears when each request went --------------------------------------------------


def test_on_sent_is_told_once_per_request_before_its_answer_comes():
    events: list[str] = []

    def answer(conn: socket.socket) -> None:
        events.append("answered")
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")

    with raw_server(answer) as url:
        fetch(url, json={"big": "x" * 200_000}, times=2, on_sent=lambda: events.append("sent"))
    assert events == ["sent", "answered", "sent", "answered"]


# -- the environment's proxy, read once ---------------------------------------------------------


def test_the_environments_proxy_carries_the_requests_and_no_proxy_is_kept(monkeypatch):
    """HTTP_PROXY as httpx2 honours it (the SDK's client does not, once given a transport):
    the proxy gets the request in absolute form; a server NO_PROXY names is asked direct."""
    seen: list[tuple[bytes, bytes]] = []

    def answer(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")

    with raw_server(answer, seen) as proxy_url, raw_server(answer, seen) as direct_url:
        proxy = proxy_url.removesuffix("/v1/chat/completions")
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("NO_PROXY", "localhost")
        # (the name is never resolved here: the proxy on 127.0.0.1 answers for it)
        fetch("http://llm.example.invalid/v1/chat/completions", json={})
        fetch(direct_url.replace("127.0.0.1", "localhost"), json={})
    assert seen[0][0].split(b"\r\n")[0] == \
        b"POST http://llm.example.invalid/v1/chat/completions HTTP/1.1"
    assert seen[1][0].split(b"\r\n")[0] == b"POST /v1/chat/completions HTTP/1.1"


def test_no_request_waits_for_a_worker_thread():
    """aiohttp's `trust_env` reads the proxy and ~/.netrc in a worker thread for every
    request; the transport reads the proxy once, on the event loop."""
    threads: list[str] = []

    def answer(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")

    async def run(url: str) -> None:
        async with httpx2.AsyncClient(transport=AiohttpTransport()) as client:
            for _ in range(3):
                await client.post(url, json={})
            threads.extend(t.name for t in threading.enumerate())

    with raw_server(answer) as url:
        asyncio.run(run(url))
    assert not [name for name in threads if name.startswith("asyncio_")], threads


def test_tls_certificates_are_read_only_for_an_https_server(monkeypatch):
    """Reading the SDK's certificates takes 30 to 60 ms, before the first request: a run
    against a local http server does without them; an https server gets them, once."""
    import ssl

    import mmtrans.transport

    made: list[ssl.SSLContext] = []
    real = mmtrans.transport.httpx2.create_ssl_context

    def counted() -> ssl.SSLContext:
        made.append(real())
        return made[-1]

    monkeypatch.setattr(mmtrans.transport.httpx2, "create_ssl_context", counted)

    def answer(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")

    with raw_server(answer) as url:
        fetch(url, json={}, times=2)
    assert made == []
    transport = AiohttpTransport()
    https = transport._ssl_for(yarl.URL("https://api.example.invalid/v1"))
    assert transport._ssl_for(yarl.URL("https://other.example.invalid/v1")) is https
    assert made == [https]
