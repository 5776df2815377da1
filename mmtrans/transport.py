"""The HTTP transport under the run's OpenAI client: aiohttp, beneath the SDK's httpx2.

Why not the SDK's default pool: httpx2's (httpcore2's) pool checks every idle connection on
each request it takes and each answer it hands back, a socket poll and an anyio attribute
lookup apiece, so a run that keeps 32 to 190 connections open paid more of its CPU there than
anywhere in mmtrans (bench/overhead: a record of an unpacked run costs about a fifth less
CPU through aiohttp). aiohttp's pool learns of a closed idle connection from the event loop
instead, for nothing. The SDK itself offers aiohttp for high concurrency
(`openai.DefaultAioHttpClient`); this transport differs from the one it bundles where the
run depends on it:

- aiohttp's errors become httpx2's by what happened: a refused connection is a
  `ConnectError`, a server that hung up before answering a `RemoteProtocolError`, a read that
  waited too long a `ReadTimeout`. The bundled map turns every connection error, refusals and
  hang-ups alike, into a `ConnectTimeout`, and llm.py tells a dead server from a silent one
  and a dropped connection by these classes.
- `on_sent` is told when each request's body is handed to the socket, so the rate limiter
  counts the request from when the server can first see it (`RateLimiter.sent`).
- A request is never sent twice by the transport: a connection dropped after the request
  went (a server that closed a kept-alive connection without saying so, one that crashed)
  is the run's to retry and count, since the server may have taken it.
- The proxy the environment names (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, as httpx2 reads them)
  is looked up once per server, not per request: aiohttp's `trust_env` looks it up, and
  ~/.netrc, in a worker thread for every request, two hand-overs that each put the send
  behind everything else the event loop had to do (9 ms a send at 10,000 RPM, 24 ms p90).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

import aiohttp
import httpx2
import yarl
from aiohttp.helpers import get_env_proxy_for_url

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
    (asyncio.TimeoutError, httpx2.TimeoutException),  # the whole request's bound (`_total`)
    (aiohttp.ClientError, httpx2.NetworkError),
)


def httpx_error(exc: BaseException, request: httpx2.Request) -> httpx2.TransportError | None:
    """The httpx2 error that `exc`, raised by aiohttp, stands for (None: not aiohttp's)."""
    for aiohttp_class, httpx_class in _ERRORS:
        if isinstance(exc, aiohttp_class):
            return httpx_class(str(exc) or type(exc).__name__, request=request)
    return None


def _total(timeout: dict[str, float | None]) -> float | None:
    """A bound on the whole request: aiohttp has no write timeout (its read timer starts
    once the body is written), so a server that stops taking the body would hold the
    request until TCP gives up. The sum of the SDK's connect, write and read timeouts."""
    parts = [timeout.get(name) for name in ("connect", "write", "read")]
    return None if any(part is None for part in parts) else sum(parts)  # type: ignore[arg-type]


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """Sends httpx2 requests through one aiohttp session and reads each answer whole (the
    SDK reads a non-streamed answer whole anyway)."""

    def __init__(self, limits: httpx2.Limits | None = None,
                 on_sent: Callable[[], None] | None = None) -> None:
        self.limits = limits or httpx2.Limits(max_connections=1000)
        self.on_sent = on_sent
        self._session: aiohttp.ClientSession | None = None
        #: The SDK's certificates (certifi, not the OS's), read at the first https request:
        #: 30 to 60 ms that a run against a local http server need not pay.
        self._ssl: ssl.SSLContext | None = None
        #: The environment's proxy (and its credentials) for each server, by origin.
        self._proxies: dict[tuple[str, str, int | None], Any] = {}

    def _open(self) -> aiohttp.ClientSession:
        """The session, made in the running event loop on the first request."""
        trace = aiohttp.TraceConfig()
        trace.on_request_chunk_sent.append(self._chunk_sent)
        connector = aiohttp.TCPConnector(limit=self.limits.max_connections or 0,
                                         keepalive_timeout=self.limits.keepalive_expiry or 5.0)
        return aiohttp.ClientSession(connector=connector, trust_env=False,
                                     trace_configs=[trace], auto_decompress=False)

    def _ssl_for(self, url: yarl.URL) -> ssl.SSLContext | bool:
        """The TLS context for `url` (aiohttp's default, unused, for plain http)."""
        if url.scheme != "https":
            return True
        if self._ssl is None:
            self._ssl = httpx2.create_ssl_context()
        return self._ssl

    def _proxy(self, url: yarl.URL) -> tuple[yarl.URL | None, aiohttp.BasicAuth | None]:
        """The environment's proxy for `url`'s server (None: go direct), read once."""
        origin = (url.scheme, url.host or "", url.port)
        if origin not in self._proxies:
            try:
                self._proxies[origin] = get_env_proxy_for_url(url)
            except LookupError:  # NO_PROXY names it, or no proxy for its scheme
                self._proxies[origin] = (None, None)
        return self._proxies[origin]

    async def _chunk_sent(self, session: aiohttp.ClientSession, context: Any,
                          params: aiohttp.TraceRequestChunkSentParams) -> None:
        """aiohttp's trace, just before a body is written (in one chunk: the body is read
        whole first), with nothing awaited between the two."""
        if self.on_sent is not None:
            self.on_sent()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        content = await request.aread()  # (a streamed body, such as a file upload, too)
        try:
            return await self._send(request, content)
        except Exception as exc:
            error = httpx_error(exc, request)
            if error is None:
                raise
            raise error from exc

    async def _send(self, request: httpx2.Request, content: bytes) -> httpx2.Response:
        if self._session is None:
            self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        url = yarl.URL(str(request.url), encoded=True)  # as httpx2 built it
        proxy, proxy_auth = self._proxy(url)
        async with self._session.request(
            request.method, url, headers=list(request.headers.multi_items()),
            proxy=proxy, proxy_auth=proxy_auth, ssl=self._ssl_for(url),
            data=content or None, allow_redirects=False, compress=None,
            timeout=aiohttp.ClientTimeout(total=_total(timeout), connect=timeout.get("pool"),
                                          sock_connect=timeout.get("connect"),
                                          sock_read=timeout.get("read")),
            server_hostname=request.extensions.get("sni_hostname"),
        ) as response:
            body = await response.read()
        # The body as sent (compressed, if it was): httpx2 decodes it by its headers.
        return httpx2.Response(response.status, headers=response.raw_headers, content=body,
                               request=request,
                               extensions={"http_version": b"HTTP/1.1",
                                           "reason_phrase": (response.reason or "").encode()})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
