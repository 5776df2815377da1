"""Errors a user may meet. The CLI prints each as one line and exits 2; a traceback is a bug."""

from __future__ import annotations

from pathlib import Path


class MmtransError(Exception):
    """Base of every error mmtrans raises on purpose."""


class InputError(MmtransError):
    """An input file, or one line of it, cannot be read."""

    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class LabelError(MmtransError):
    """Labels that no rule table translates; nothing was sent to any model."""

    def __init__(self, missing: dict[str, int], table_hint: str):
        self.missing = missing
        self.table_hint = table_hint
        listed = ", ".join(f"{label} ({n}x)" for label, n in sorted(missing.items()))
        super().__init__(
            f"{len(missing)} label(s) have no translation: {listed}. "
            f"Add them to {table_hint} as 'source<TAB>target' lines."
        )


class ConfigError(MmtransError):
    """A setting is missing or contradicts another."""


class StoreError(MmtransError):
    """The --db path is not an mmtrans store (a directory, another SQLite file, not SQLite)."""


class StoreWriteError(StoreError):
    """A write the store's disk refused (full, read-only file or folder, I/O error): the run
    stops; everything committed before it, every answer paid for among it, is kept."""

    def __init__(self, message: str, path: str | Path):
        super().__init__(message)
        self.path = str(path)


class EnoughVotesError(StoreError):
    """A blind vote on a record that already has the N independent decisions it needs (two
    annotators saved at the same moment): it is not kept, so a record never gets N+1."""


class OutputError(MmtransError):
    """An output file cannot or may not be written (it exists, it is the run's input, it is a
    folder, the disk is full); nothing partial was left."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        super().__init__(message)


class CheckProcessError(MmtransError):
    """A process that checks the run's answers (`--check-processes`) ended mid-run."""


class RunBusyError(MmtransError):
    """Another process is translating the same run right now."""


class ModelError(MmtransError):
    """One request failed in a way retrying did not fix: its record fails, or waits for the
    next run when the fault is the server's reachability rather than the record's."""


class DeferredError(ModelError):
    """The request was not sent: it waits elsewhere (a batch file) and its record with it."""


class ConnectError(ModelError):
    """No connection could be made to the server (refused, no such host, TLS): the record
    stays pending, and several in a row stop the run (EndpointDownError)."""


class ConnectionDroppedError(ModelError):
    """The server accepted the request, then closed the connection before its answer was
    complete: counted like ConnectError (the record stays pending)."""


class NoAnswerError(ModelError):
    """No answer within the timeout; several in a row stop the run (EndpointSilentError)."""


class ServerFaultError(ModelError):
    """A 5xx, or a 200 that holds no answer (empty, null, not JSON, no choices), on every
    attempt: the record fails and the next run asks again (faults are never cached)."""


class HTTPStatusError(ModelError):
    """A 4xx the server gives this request alone (400 bad request, 413, 422): the record
    fails, the run goes on."""

    def __init__(self, message: str, status_code: int):
        super().__init__(message)
        self.status_code = status_code


class FatalModelError(ModelError):
    """The run cannot go on: every request would meet the same answer. The run stops at
    once; records not translated stay pending for the next run."""


class AuthError(FatalModelError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(FatalModelError):
    """403: the key is valid but not allowed this model or endpoint (or region)."""


class ModelNotFoundError(FatalModelError):
    """The server does not serve the model asked for (OpenAI's 404 model_not_found,
    vLLM's 404 or 400 "The model `x` does not exist", Ollama's 404 "model ... not found")."""


class EndpointNotFoundError(FatalModelError):
    """404 on /chat/completions itself: the base URL points at something else (it usually
    ends in /v1)."""


class QuotaExhaustedError(FatalModelError):
    """429 insufficient_quota: the account has no credit left; waiting does not help."""


class EndpointDownError(FatalModelError):
    """Several records in a row could not reach the server (no connection, or a connection
    closed before the answer) on any attempt."""


class EndpointSilentError(FatalModelError):
    """The server accepts connections but answered none of several requests in a row within
    the timeout: a hung server, or a model far slower than --timeout allows."""


class EmbeddingsError(MmtransError):
    """The embeddings endpoint of the fidelity check (--embeddings-url) failed or answered
    something else than one embedding per text."""
