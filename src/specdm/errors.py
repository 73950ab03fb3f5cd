"""Errors that specdm shows to users.

Every error raised for bad input is a :class:`SpecdmError`: the CLI prints its
message (which names the file and the problem) and exits non-zero, without a
traceback. Inner code raises the most specific subclass.
"""

from __future__ import annotations

from pathlib import Path


class SpecdmError(Exception):
    """Base class: a problem the user can fix, with the file it concerns."""

    def __init__(self, problem: str, path: str | Path | None = None, hint: str | None = None):
        self.problem = problem
        self.path = None if path is None else str(path)
        self.hint = hint
        msg = f"{self.path}: {problem}" if self.path else problem
        if hint:
            msg += f"\n  hint: {hint}"
        super().__init__(msg)


class DataError(SpecdmError):
    """Input data is missing, unreadable, corrupt or inconsistent."""


class DatasetNotFoundError(DataError):
    """A named data set's files are not where they were looked for."""


class ConfigError(SpecdmError):
    """A configuration file or option is invalid."""


class CheckpointError(SpecdmError):
    """A saved model folder is missing, corrupt or incompatible with the data."""


class OutputError(SpecdmError):
    """An output location exists, is not writable, or ran out of space."""
