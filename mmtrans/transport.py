"""The HTTP transport under the run's OpenAI client: aiohttp, beneath the SDK's httpx2.

Why not the SDK's default pool: httpx2's (httpcore2's) pool checks every idle connection on
each request it takes and each answer it hands back, a socket poll and an anyio attribute
lookup apiece, so a run that keeps 32 to 190 connections open paid more of its CPU there than
anywhere in mmtrans (bench/overhead: a record of an unpacked run costs about a fifth less
CPU through aiohttp). aiohttp's pool learns of a closed idle connection from the event loop
instead, for nothing. The SDK itself offers aiohttp for high concurrency
(`openai.DefaultAioHttpClient`); this transport differs from the one it bundles in two ways
the run depends on:

- aiohttp's errors become httpx2's by what happened: a refused connection is a
  `ConnectError`, a server that hung up before answering a `RemoteProtocolError`, a read that
  waited too long a `ReadTimeout`. The bundled map turns every connection error, refusals and
  hang-ups alike, into a `ConnectTimeout`, and llm.py tells a dead server from a silent one
  and a dropped connection by these classes.
- `on_sent` is told when each request's body is handed to the socket, so the rate limiter
  counts the request from when the server can first see it (`RateLimiter.sent`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import httpx2
import yarl

#: aiohttp's errors, most specific first, and the httpx2 error each one is.
_ERRORS: tuple[tuple[type[BaseException], type[httpx2.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx2.ConnectTimeout),
    (aiohttp.SocketTimeoutError, httpx2.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx2.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx2.ConnectError),  # refused, no such host, TLS
    (aiohttp.ServerDisconnectedError, httpx2.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx2.RemoteProtocolError),  # not HTTP, or bad HTTP
    (aiohttp.ClientPayloadError, httpx2.ReadError),  # the body ended early
    (aiohttp.ClientOSError, httpx2.ReadError),  # reset by the peer
    (aiohttp.InvalidURL, httpx2.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx2.UnsupportedProtocol),
    (TimeoutError, httpx2.PoolTimeout),  # aiohttp's own wait for a free connection
    (aiohttp.ClientError, httpx2.NetworkError),
)


def httpx_error(exc: BaseException, request: httpx2.Request) -> httpx2.TransportError | None:
    """The httpx2 error that `exc`, raised by aiohttp, stands for (None: not aiohttp's)."""
    for aiohttp_class, httpx_class in _ERRORS:
        if isinstance(exc, aiohttp_class):
            return httpx_class(str(exc) or type(exc).__name__, request=request)
    return None


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """Sends httpx2 requests through one aiohttp session and reads each answer whole (the
    SDK reads a non-streamed answer whole anyway)."""

    def __init__(self, limits: httpx2.Limits | None = None,
                 on_sent: Callable[[], None] | None = None) -> None:
        self.limits = limits or httpx2.Limits(max_connections=1000)
        self.on_sent = on_sent
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        """The session, made in the running event loop on the first request."""
        trace = aiohttp.TraceConfig()
        trace.on_request_chunk_sent.append(self._chunk_sent)
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry or 5.0,
            ssl=httpx2.create_ssl_context(),  # the SDK's certificates (certifi), not the OS's
        )
        return aiohttp.ClientSession(connector=connector, trust_env=True,
                                     trace_configs=[trace], auto_decompress=False)

    async def _chunk_sent(self, session: aiohttp.ClientSession, context: Any,
                          params: aiohttp.TraceRequestChunkSentParams) -> None:
        """aiohttp's trace, just before a body is written (in one chunk: the body is read
        whole first), with nothing awaited between the two."""
        if self.on_sent is not None:
            self.on_sent()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._session is None:
            self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        content = await request.aread()  # (a streamed body, such as a file upload, too)
        try:
            async with self._session.request(
                request.method, yarl.URL(str(request.url), encoded=True),  # as httpx2 built it
                headers=list(request.headers.multi_items()),
                data=content or None, allow_redirects=False, compress=None,
                timeout=aiohttp.ClientTimeout(total=None, connect=timeout.get("pool"),
                                              sock_connect=timeout.get("connect"),
                                              sock_read=timeout.get("read")),
                server_hostname=request.extensions.get("sni_hostname"),
            ) as response:
                body = await response.read()
        except Exception as exc:
            error = httpx_error(exc, request)
            if error is None:
                raise
            raise error from exc
        # The body as sent (compressed, if it was): httpx2 decodes it by its headers.
        return httpx2.Response(response.status, headers=response.raw_headers, content=body,
                               request=request,
                               extensions={"http_version": b"HTTP/1.1",
                                           "reason_phrase": (response.reason or "").encode()})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
