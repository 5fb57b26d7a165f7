"""Errors a user can cause (the CLI turns them into a message and exit code 2), and interruption."""
from __future__ import annotations


class UsageError(Exception):
    """Bad input: what was wrong, what is allowed, what to run instead."""


class ResultsFileError(UsageError):
    """A results file that cannot be read, or breaks the schema (sigbench/results/schemas/results.schema.json).

    ``path`` is the file; the message names it, and the row and field where one is to blame.
    """

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class OutputWriteError(OSError):
    """An output file could not be written (a full disk, no permission, a read-only file system).

    Every output is written to a temporary file and renamed, so the file at ``path`` is the last whole
    version or absent, never half written; the command line says so and which files are kept.
    """

    def __init__(self, path: object, error: OSError) -> None:
        super().__init__(error.errno, error.strerror)
        self.path = path
        self.error = error

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.error.strerror or self.error}"


class BackendUnavailable(UsageError):
    """A known backend whose framework is not installed."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop after saving what is finished; ``exit_code`` is 128 + the signal."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code
