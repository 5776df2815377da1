"""How many tokens a request's prompt holds, counted before it is sent.

The seam between pacing (ratelimit.py, which only needs a count the server's own usage figures
can calibrate) and pricing (exact counts with tiktoken for OpenAI models, owned by the dry run).
Until an exact counter lands here, a cheap estimate: a third of the characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

CHARS_PER_TOKEN = 3
PER_MESSAGE = 4  # role and separators


def estimate_tokens(messages: Iterable[Mapping[str, str]], model: str = "") -> int:
    """Prompt tokens of chat `messages` for `model` (an estimate for now, see above)."""
    chars = 0
    count = 0
    for message in messages:
        chars += len(message.get("content") or "")
        count += 1
    return chars // CHARS_PER_TOKEN + PER_MESSAGE * count
