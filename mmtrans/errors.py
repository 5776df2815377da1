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


class ModelError(MmtransError):
    """The model server failed in a way retrying does not fix."""


class FatalModelError(ModelError):
    """The server refuses every request alike (bad key, unknown model): the run stops."""
