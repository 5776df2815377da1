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


class OutputError(MmtransError):
    """An output file cannot or may not be written (it exists, it is the run's input, it is a
    folder, the disk is full); nothing partial was left."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        super().__init__(message)


class RunBusyError(MmtransError):
    """Another process is translating the same run right now."""


class ModelError(MmtransError):
    """The model server failed in a way retrying does not fix.

    `kind` says how: "connect" (no connection), "timeout", "fault" (an answer that is no
    answer: empty, null, not JSON), or "status" (an HTTP error status)."""

    def __init__(self, message: str, kind: str = "status"):
        super().__init__(message)
        self.kind = kind


class EndpointDownError(ModelError):
    """Several records in a row could not reach the server at all: the run stops, and the
    records not translated stay pending for the next run."""


class FatalModelError(ModelError):
    """The server refuses every request alike (bad key, unknown model): the run stops."""

    def __init__(self, message: str):
        super().__init__(message, "fatal")
